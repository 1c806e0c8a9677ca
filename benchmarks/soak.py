"""Soak test of a public deployment (issue 28): a public server under a scripted mix of visitors.

    python benchmarks/soak.py --minutes 30       # → benchmarks/results/soak.json + docs/images/soak.png
    python benchmarks/soak.py --minutes 3 --out /tmp/soak.json --plot /tmp/soak.png

``streamlit run app.py`` with ``FER_PUBLIC=1`` (the bundled models, an empty runs folder) runs as a
subprocess pinned to one core (``taskset -c 1``); this process drives it from the other core over
the raw Streamlit protocol (:class:`RawSession`: the XSRF cookie, the websocket, upload PUTs, widget
states in ``rerun_script`` messages, as the browser sends them), with no browser. ``--visitors``
threads play visitors one after another, each a scripted scenario from :data:`MIX` in turn: a single
photo (two or three in a row, each a new upload), a batch of photos, a zip of photos, a zip bomb,
bad files (0 bytes, random bytes named .jpg, text named .png), a 4K clip and a long 720p clip on the
Video page (Analyse pressed), an upload flood into one session, and visitors who open the app and
leave. Each visitor closes its websocket at the end (Streamlit keeps the session for
``server.disconnectedSessionTTL`` = 120 s). Clips and photos are built before the server starts
(clips cached in ``--cache``).

Every ``--sample-s`` seconds a sampler records the server's resident memory (psutil, the process
tree), its CPU seconds, ``/_stcore/health`` (a failure = no "ok" within 5 s) and the machine's
load. Phases: ``warm`` (one photo through the models, the session closed, then idle: warm RSS is
the median of that phase), ``soak`` (``--minutes``), ``idle`` (no session open; ``--idle-s``,
longer than the 120 s session TTL and the app's 60 s trim period: idle RSS after is the median of
its last 30 s). A photo's answer time runs from the ``rerun_script`` that carries the uploaded file
to the script run's end (the upload PUT before it is local and not counted). Targets:
:data:`TARGETS`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
TARGETS = {"idle_over_warm_mb": 150.0, "peak_mb": 2000.0, "failed_health_checks": 0, "photo_answer_p95_s": 1.5}


# --------------------------------------------------------------------------- raw protocol (no browser)


class RawSession:
    """One Streamlit session over the raw protocol: XSRF cookie, websocket, session id; upload PUTs.

    ``open()`` GETs the health check (the server sets ``_streamlit_xsrf`` there), connects
    the websocket with the token in its subprotocol (as the browser does),
    asks for a script run and returns as soon as the server names the session
    (``new_session``), i.e. while that first run may still be going.
    """

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.session_id: str | None = None
        self._ws = None
        self._http = None

    def open(self, timeout: float = 60.0) -> str:
        import requests
        from websockets.sync.client import connect
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._http = requests.Session()
        self._http.get(self.url + "/_stcore/health", timeout=timeout)  # the server sets the XSRF cookie here
        xsrf = self._http.cookies.get("_streamlit_xsrf")
        ws_url = "ws" + self.url[4:] + "/_stcore/stream"
        self._ws = connect(ws_url, subprotocols=["streamlit", xsrf or "PLACEHOLDER_AUTH_TOKEN"],
                           additional_headers={"Origin": self.url,
                                               "Cookie": f"_streamlit_xsrf={xsrf}" if xsrf else ""},
                           max_size=None, open_timeout=timeout)
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        self._ws.send(msg.SerializeToString())
        deadline = time.time() + timeout
        while time.time() < deadline:
            fwd = ForwardMsg()
            fwd.ParseFromString(self._ws.recv(timeout=max(0.1, deadline - time.time())))
            if fwd.WhichOneof("type") == "new_session":
                self.session_id = fwd.new_session.initialize.session_id
                return self.session_id
        raise TimeoutError("the server named no session")

    def wait_finished(self, timeout: float = 120.0) -> None:
        """Read the session's messages until its script run has finished."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        deadline = time.time() + timeout
        while time.time() < deadline:
            fwd = ForwardMsg()
            fwd.ParseFromString(self._ws.recv(timeout=max(0.1, deadline - time.time())))
            if fwd.WhichOneof("type") == "script_finished":
                return
        raise TimeoutError("the script run did not finish")

    def run(self, page: str = "", widgets: list | None = None, timeout: float = 180.0) -> dict:
        """One script run with these widget states on ``page`` (its url path; "" = home), read to its end.

        Returns ``{"seconds", "ids", "texts", "exception"}``: the run's wall time, every widget's id by its
        user key (Streamlit's ids end in ``-<key>``), the texts of errors, warnings, infos and captions, and
        whether a traceback reached the page.
        """
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        msg.rerun_script.page_name = page
        for w in widgets or []:
            msg.rerun_script.widget_states.widgets.append(w)
        t0 = time.perf_counter()
        self._ws.send(msg.SerializeToString())
        out = {"ids": {}, "texts": [], "exception": False}
        deadline = time.time() + timeout
        started = False
        while time.time() < deadline:
            fwd = ForwardMsg()
            fwd.ParseFromString(self._ws.recv(timeout=max(0.1, deadline - time.time())))
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                started = True
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                el = fwd.delta.new_element
                what = el.WhichOneof("type")
                inner = getattr(el, what) if what else None
                wid = getattr(inner, "id", "") if inner is not None else ""
                if wid and "-" in wid:
                    out["ids"][wid.rsplit("-", 1)[1] if wid.startswith("$$ID") else wid] = wid
                if what == "exception":
                    out["exception"] = True
                elif what == "alert":
                    out["texts"].append(el.alert.body)
            elif kind == "script_finished" and started:
                out["seconds"] = time.perf_counter() - t0
                return out
        raise TimeoutError(f"the script run on {page!r} did not finish in {timeout} s")

    def put(self, name: str, data: bytes, file_id: str | None = None, timeout: float = 60.0) -> int:
        """PUT one file as the uploader widget does → the HTTP status (204 kept, 413 too large…)."""
        file_id = file_id or str(uuid.uuid4())
        xsrf = self._http.cookies.get("_streamlit_xsrf")
        r = self._http.put(f"{self.url}/_stcore/upload_file/{self.session_id}/{file_id}",
                           files={"file": (name, data, "application/octet-stream")},
                           headers={"X-Xsrftoken": xsrf} if xsrf else {}, timeout=timeout)
        return r.status_code

    def close(self) -> None:
        try:
            if self._ws is not None:
                self._ws.close()
        finally:
            if self._http is not None:
                self._http.close()


# --------------------------------------------------------------------------- widget states


def upload_state(widget_id: str, session_id: str, files: list[tuple[str, str, int]]):
    """The uploader's widget state after ``files`` [(file_id, name, size)] were PUT, as the browser sends it."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    w = WidgetState(id=widget_id)
    for file_id, name, size in files:
        info = w.file_uploader_state_value.uploaded_file_info.add()
        info.file_id, info.name, info.size = file_id, name, size
        info.file_urls.file_id = file_id
        info.file_urls.upload_url = f"/_stcore/upload_file/{session_id}/{file_id}"
        info.file_urls.delete_url = info.file_urls.upload_url
    return w


def trigger(widget_id: str):
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    return WidgetState(id=widget_id, trigger_value=True)


# --------------------------------------------------------------------------- what visitors send


def make_inputs(cache: Path) -> dict:
    """Photos, zips, bad files and clips for the visitors (clips are cached in ``cache``: the 4K one takes minutes)."""
    from benchmarks.load import photo_variants

    photos = photo_variants(40, seed=28)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, data in enumerate(photos[:8]):
            zf.writestr(f"party/{i:02d}.jpg", data)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("huge.png", b"\0" * (300 * 1024 * 1024))  # 300 MB of zeros in ≈ 300 KB
    rng = random.Random(28)
    bad = [("empty.jpg", b""), ("noise.jpg", bytes(rng.getrandbits(8) for _ in range(50_000))),
           ("notes.png", b"this is not a picture\n" * 100)]
    cache.mkdir(parents=True, exist_ok=True)
    clips = {"4k": cache / "soak_4k_10s.mp4", "long": cache / "soak_720p_60s.mp4"}
    if not clips["4k"].is_file() or not clips["long"].is_file():
        import av
        import numpy as np
        from PIL import Image

        from fer_core.inference.video import clip_from_photo

        photo = np.asarray(Image.open(ROOT / "ui" / "assets" / "astronaut.jpg").convert("RGB"))
        for key, size, seconds, fps in (("4k", (3840, 2160), 10, 30), ("long", (1280, 720), 60, 30)):
            if clips[key].is_file():
                continue
            tmp = clips[key].with_suffix(".part.mp4")
            with av.open(str(tmp), mode="w") as out:
                stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "34"})
                stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
                for rgb in clip_from_photo(photo, seconds=seconds, fps=fps, size=size, zoom=(0.9, 0.7)):
                    for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                        out.mux(packet)
                for packet in stream.encode(None):
                    out.mux(packet)
            tmp.rename(clips[key])
    return {"photos": photos, "zip": zbuf.getvalue(), "bomb": bomb.getvalue(), "bad": bad,
            "clips": {k: v.read_bytes() for k, v in clips.items()},
            "sizes": {"zip": len(zbuf.getvalue()), "bomb": len(bomb.getvalue()),
                      **{f"clip_{k}": v.stat().st_size for k, v in clips.items()}}}


# --------------------------------------------------------------------------- visitors

#: The scripted mix, played in this order by each visitor thread in turn (offset per thread).
MIX = ["photo", "leave", "batch", "photo", "bad", "zip", "video_4k", "photo", "bomb", "leave", "flood", "photo",
       "video_long", "batch", "photo"]


class Log:
    """What visitors did, thread-safe: events and photo answer times."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events: list[dict] = []
        self.answers: list[tuple[float, float]] = []  # (time since start, seconds)

    def event(self, t0: float, kind: str, ok: bool, seconds: float, note: str = "") -> None:
        with self.lock:
            self.events.append({"t": round(time.time() - t0, 1), "kind": kind, "ok": ok,
                                "seconds": round(seconds, 3), "note": note[:200]})


def _upload(s: RawSession, page: str, key: str, files: list[tuple[str, bytes]], extra=None, timeout=300.0) -> dict:
    """Open ``page``, PUT ``files`` into its uploader ``key`` and run the page with them → the run's outcome."""
    first = s.run(page)
    wid = first["ids"].get(key)
    if wid is None:
        raise RuntimeError(f"no uploader {key!r} on {page}")
    sent = []
    for name, data in files:
        fid = str(uuid.uuid4())
        status = s.put(name, data, file_id=fid)
        if status != 204:
            raise RuntimeError(f"PUT {name} → {status}")
        sent.append((fid, name, len(data)))
    state = upload_state(wid, s.session_id, sent)
    out = s.run(page, [state], timeout=timeout)
    out["state"] = state
    return out


def visit(url: str, kind: str, inputs: dict, rng: random.Random, log: Log, t0: float) -> None:
    s = RawSession(url)
    start = time.perf_counter()
    try:
        s.open()
        s.wait_finished()
        note = ""
        if kind == "photo":
            for _ in range(rng.randint(2, 3)):  # a new photo each time, as a visitor trying several
                out = _upload(s, "predict", "predict_upload", [("me.jpg", rng.choice(inputs["photos"]))])
                ok = not out["exception"] and not any("could not" in t for t in out["texts"])
                with log.lock:
                    log.answers.append((time.time() - t0, out["seconds"]))
                log.event(t0, "photo_answer", ok, out["seconds"])
        elif kind == "batch":
            files = [(f"p{i}.jpg", d) for i, d in enumerate(rng.sample(inputs["photos"], 6))]
            out = _upload(s, "predict", "predict_upload", files)
            note = f"{out['seconds']:.1f} s"
        elif kind == "zip":
            out = _upload(s, "predict", "predict_upload", [("party.zip", inputs["zip"])])
        elif kind == "bomb":
            out = _upload(s, "predict", "predict_upload", [("photos.zip", inputs["bomb"])])
            note = "; ".join(out["texts"])[:120]
        elif kind == "bad":
            out = _upload(s, "predict", "predict_upload", [inputs["bad"][rng.randrange(3)]])
            note = "; ".join(out["texts"])[:120]
        elif kind in ("video_4k", "video_long"):
            clip = inputs["clips"]["4k" if kind == "video_4k" else "long"]
            out = _upload(s, "video", "video_upload", [(f"{kind}.mp4", clip)])
            go = out["ids"].get("video_analyse")
            if go is None:
                raise RuntimeError("no Analyse button")
            out = s.run("video", [out["state"], trigger(go)], timeout=600)
            note = f"analysed in {out['seconds']:.1f} s"
        elif kind == "flood":
            s.run("predict")
            codes = [s.put(f"f{i}.jpg", os.urandom(6 * 1024 * 1024)) for i in range(20)]  # 120 MB into one session
            out = {"exception": False, "texts": []}
            note = f"20 × 6 MB PUTs: {sorted(set(codes))}"
        else:  # leave: opened the app, looked, went
            out = {"exception": False, "texts": []}
            time.sleep(rng.uniform(1, 4))
        log.event(t0, kind, not out["exception"], time.perf_counter() - start, note)
    except Exception as exc:  # noqa: BLE001 - a visitor that failed is a result, not the end of the soak
        log.event(t0, kind, False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    finally:
        s.close()


def visitor_loop(url: str, n: int, inputs: dict, until: float, log: Log, t0: float) -> None:
    rng = random.Random(1000 + n)
    i = n * 5  # threads start at different points of the mix
    while time.time() < until:
        visit(url, MIX[i % len(MIX)], inputs, rng, log, t0)
        i += 1
        time.sleep(rng.uniform(1.0, 5.0))  # the next visitor arrives


# --------------------------------------------------------------------------- sampling


class Sampler(threading.Thread):
    """Every ``every`` s: the server tree's RSS and CPU seconds, the health check, the machine's load."""

    def __init__(self, pid: int, url: str, every: float, t0: float):
        super().__init__(daemon=True)
        import psutil

        self.proc, self.url, self.every, self.t0 = psutil.Process(pid), url, every, t0
        self.samples: list[dict] = []
        self.phase = "start"
        self.stop_event = threading.Event()

    def _tree(self):
        procs = [self.proc]
        try:
            procs += self.proc.children(recursive=True)
        except Exception:  # noqa: BLE001
            pass
        rss = cpu = 0.0
        for p in procs:
            try:
                rss += p.memory_info().rss
                t = p.cpu_times()
                cpu += t.user + t.system
            except Exception:  # noqa: BLE001 - a child that just ended
                continue
        return rss / 1e6, cpu

    def run(self) -> None:
        import psutil
        import requests

        psutil.cpu_percent(None)
        while not self.stop_event.is_set():
            rss, cpu = self._tree()
            t = time.perf_counter()
            try:
                ok = requests.get(self.url + "/_stcore/health", timeout=5).text.strip() == "ok"
            except Exception:  # noqa: BLE001
                ok = False
            self.samples.append({"t": round(time.time() - self.t0, 1), "phase": self.phase, "rss_mb": round(rss, 1),
                                 "server_cpu_s": round(cpu, 2), "health_ok": ok,
                                 "health_s": round(time.perf_counter() - t, 3),
                                 "machine_busy_pct": psutil.cpu_percent(None), "load_1m": round(os.getloadavg()[0], 2)})
            self.stop_event.wait(self.every)


# --------------------------------------------------------------------------- the run


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return None


def _p95(xs: list[float]) -> float | None:
    from benchmarks.load import percentile

    return percentile(xs, 95)


def summarize(samples: list[dict], log: Log) -> dict:
    warm = [s["rss_mb"] for s in samples if s["phase"] == "warm"]
    idle = [s for s in samples if s["phase"] == "idle"]
    idle_tail = [s["rss_mb"] for s in idle if s["t"] >= idle[-1]["t"] - 30] if idle else []
    answers = [a for _, a in log.answers]
    by_kind: dict[str, dict] = {}
    for e in log.events:
        k = by_kind.setdefault(e["kind"], {"n": 0, "failed": 0, "seconds": []})
        k["n"] += 1
        k["failed"] += 0 if e["ok"] else 1
        k["seconds"].append(e["seconds"])
    kinds = {k: {"n": v["n"], "failed": v["failed"], "median_s": round(statistics.median(v["seconds"]), 2),
                 "max_s": round(max(v["seconds"]), 2)} for k, v in sorted(by_kind.items())}
    warm_mb = statistics.median(warm) if warm else None
    idle_mb = statistics.median(idle_tail) if idle_tail else None
    out = {
        "warm_rss_mb": None if warm_mb is None else round(warm_mb, 1),
        "peak_rss_mb": round(max(s["rss_mb"] for s in samples), 1),
        "idle_after_rss_mb": None if idle_mb is None else round(idle_mb, 1),
        "idle_over_warm_mb": None if None in (warm_mb, idle_mb) else round(idle_mb - warm_mb, 1),
        "failed_health_checks": sum(1 for s in samples if not s["health_ok"]),
        "health_checks": len(samples),
        "photo_answers": len(answers),
        "photo_answer_p50_s": None if not answers else round(statistics.median(answers), 3),
        "photo_answer_p95_s": None if not answers else round(_p95(answers), 3),
        "photo_answer_max_s": None if not answers else round(max(answers), 3),
        "visits": kinds,
        "server_cpu_s": round(samples[-1]["server_cpu_s"] - samples[0]["server_cpu_s"], 1),
        "machine_busy_pct_mean_soak": round(statistics.mean(s["machine_busy_pct"] for s in samples
                                                            if s["phase"] == "soak") or 0, 1)
        if any(s["phase"] == "soak" for s in samples) else None,
    }
    met = {
        "idle_over_warm_mb": out["idle_over_warm_mb"] is not None and out["idle_over_warm_mb"] <= TARGETS["idle_over_warm_mb"],
        "peak_mb": out["peak_rss_mb"] <= TARGETS["peak_mb"],
        "failed_health_checks": out["failed_health_checks"] <= TARGETS["failed_health_checks"],
        "photo_answer_p95_s": out["photo_answer_p95_s"] is not None and out["photo_answer_p95_s"] <= TARGETS["photo_answer_p95_s"],
    }
    out["by_ten_minutes"] = windows(samples, log)
    out["targets"] = TARGETS
    out["targets_met"] = met
    out["all_targets_met"] = all(met.values())
    return out


def windows(samples: list[dict], log: Log, minutes: float = 10.0) -> list[dict]:
    """Photo answers and the machine's load per ``minutes`` of the soak phase: how answer times follow the load."""
    soak = [s for s in samples if s["phase"] == "soak"]
    if not soak:
        return []
    start, end, out = soak[0]["t"], soak[-1]["t"], []
    lo = start
    while lo < end:
        hi = lo + minutes * 60
        xs = [b for a, b in log.answers if lo <= a < hi]
        ss = [s for s in soak if lo <= s["t"] < hi]
        out.append({"from_min": round((lo - start) / 60, 1), "to_min": round((min(hi, end) - start) / 60, 1),
                    "photo_answers": len(xs), "photo_answer_p95_s": None if not xs else round(_p95(xs), 3),
                    "load_1m_mean": round(statistics.mean(s["load_1m"] for s in ss), 2) if ss else None,
                    "machine_busy_pct_mean": round(statistics.mean(s["machine_busy_pct"] for s in ss), 1) if ss else None,
                    "rss_mb_max": max((s["rss_mb"] for s in ss), default=None)})
        lo = hi
    return out


def resummarize(path: Path, plot_path: Path | None) -> dict:
    """Recompute a soak.json's summary (and plot) from its own samples and answers (no server)."""
    result = json.loads(path.read_text())
    log = Log()
    log.events = result["events"]
    log.answers = [(a["t"], a["seconds"]) for a in result["photo_answers"]]
    result["summary"] = summarize(result["samples"], log)
    path.write_text(json.dumps(result, indent=1) + "\n")
    if plot_path is not None:
        plot(result["samples"], log, result["summary"], plot_path, result["config"]["minutes"])
    return result["summary"]


def plot(samples: list[dict], log: Log, summary: dict, path: Path, minutes: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=[2, 1])
    ax1.plot(t, [s["rss_mb"] for s in samples], color="tab:blue", lw=1.5, label="server RSS (MB)")
    if summary["warm_rss_mb"]:
        ax1.axhline(summary["warm_rss_mb"], color="grey", ls=":", lw=1, label=f"warm {summary['warm_rss_mb']:.0f} MB")
        ax1.axhline(summary["warm_rss_mb"] + TARGETS["idle_over_warm_mb"], color="tab:green", ls="--", lw=1,
                    label="target: warm + 150 MB when idle")
    for phase, color in (("warm", "#eeeeee"), ("idle", "#e8f4e8")):
        ts = [s["t"] / 60 for s in samples if s["phase"] == phase]
        if ts:
            ax1.axvspan(min(ts), max(ts), color=color, zorder=0)
            ax2.axvspan(min(ts), max(ts), color=color, zorder=0)
    bad = [s["t"] / 60 for s in samples if not s["health_ok"]]
    if bad:
        ax1.plot(bad, [summary["peak_rss_mb"]] * len(bad), "rx", label="failed health check")
    ax1.set_ylabel("MB")
    ax1.legend(loc="lower right", fontsize=8)
    ax1.set_title(f"Public server on one core, {minutes:g} min of scripted visitors (benchmarks/soak.py)", fontsize=10)
    ax2.plot([a / 60 for a, _ in log.answers], [b for _, b in log.answers], ".", color="tab:orange", ms=4,
             label="photo answer (s)")
    ax2.axhline(TARGETS["photo_answer_p95_s"], color="tab:red", ls="--", lw=1, label="target p95 1.5 s")
    ax2.set_ylabel("s")
    ax2.set_xlabel("minutes")
    ax2.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the visitor phase")
    ap.add_argument("--visitors", type=int, default=2, help="visitor threads (sessions open at once)")
    ap.add_argument("--warm-s", type=float, default=40.0, help="idle seconds after the warm-up photo")
    ap.add_argument("--idle-s", type=float, default=300.0,
                    help="idle seconds after the soak (past the 120 s session TTL, then two 60 s release-and-trim ticks)")
    ap.add_argument("--sample-s", type=float, default=3.0)
    ap.add_argument("--server-cpu", type=int, default=1, help="core the server is pinned to (taskset)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fer-soak-cache"), help="where built clips are kept")
    ap.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "soak.png")
    ap.add_argument("--note", default="", help="recorded in the json (e.g. what else ran on the machine)")
    ap.add_argument("--resummarize", type=Path, default=None,
                    help="recompute the summary and plot of this soak.json from its samples (no server)")
    args = ap.parse_args(argv)
    if args.resummarize is not None:
        print(json.dumps(resummarize(args.resummarize, args.plot), indent=2))
        return 0

    import tempfile

    from benchmarks.load import Server, machine_info

    client_cpus = set(range(os.cpu_count() or 1)) - {args.server_cpu}
    if client_cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, client_cpus)  # the visitors never share the server's core
    t_build = time.perf_counter()
    inputs = make_inputs(args.cache)
    build_s = time.perf_counter() - t_build
    print(f"inputs ready in {build_s:.0f} s: {inputs['sizes']}", flush=True)
    started = datetime.now(timezone.utc)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        runs = Path(d) / "runs"
        runs.mkdir()
        env = {**os.environ, "FER_PUBLIC": "1", "FER_RUNS_DIR": str(runs), "FER_DATA_DIR": str(Path(d) / "data"),
               "PYTHONUNBUFFERED": "1"}
        server = Server(ROOT / "app.py", env, args.server_cpu, Path(d) / "server.log")
        t0 = time.time()
        log = Log()
        sampler = None
        try:
            server.wait_healthy(180)
            sampler = Sampler(server.proc.pid, server.url, args.sample_s, t0)
            sampler.start()
            sampler.phase = "warmup"
            visit(server.url, "photo", inputs, random.Random(0), Log(), t0)  # models loaded, detectors built
            sampler.phase = "warm"
            time.sleep(args.warm_s)
            sampler.phase = "soak"
            until = time.time() + args.minutes * 60
            threads = [threading.Thread(target=visitor_loop, args=(server.url, n, inputs, until, log, t0))
                       for n in range(args.visitors)]
            for th in threads:
                th.start()
            while any(th.is_alive() for th in threads):
                time.sleep(5)
                done = len(log.events)
                print(f"{(time.time() - t0) / 60:5.1f} min · {done} visits · RSS {sampler.samples[-1]['rss_mb']:.0f} MB",
                      flush=True)
            sampler.phase = "idle"
            time.sleep(args.idle_s)
        finally:
            if sampler is not None:
                sampler.stop_event.set()
                sampler.join(10)
            server.stop()
            server_log = (Path(d) / "server.log").read_text(errors="replace")
    samples = sampler.samples
    summary = summarize(samples, log)
    tracebacks = server_log.count("Traceback")
    result = {
        "what": "a public FER Studio server (FER_PUBLIC=1, bundled models) pinned to one core under a scripted mix of "
                "visitors over the raw Streamlit protocol; RSS/CPU/health sampled, photo answer times recorded",
        "command": "python benchmarks/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "created": started.isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "config": {"minutes": args.minutes, "visitors": args.visitors, "warm_s": args.warm_s, "idle_s": args.idle_s,
                   "sample_s": args.sample_s, "server_cpu": args.server_cpu, "mix": MIX, "input_bytes": inputs["sizes"],
                   "inputs_build_s": round(build_s, 1)},
        "machine": {**machine_info(), "load_avg_start": [round(x, 2) for x in load_start],
                    "load_avg_end": [round(x, 2) for x in os.getloadavg()], "note": args.note},
        "summary": summary,
        "server_log_tracebacks": tracebacks,
        "events": log.events,
        "photo_answers": [{"t": round(a, 1), "seconds": round(b, 3)} for a, b in log.answers],
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    plot(samples, log, summary, args.plot, args.minutes)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out} and {args.plot}")
    return 0 if summary["all_targets_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
