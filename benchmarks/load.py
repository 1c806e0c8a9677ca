"""Many visitors at once: real browsers against ``streamlit run app.py``, and the in-process levers.

Why: one warm visitor gets an answer in a fraction of a second, but eight
visitors opening Predict together used to wait 40–50 s for a usable page.
This harness measures what N simultaneous visitors see, next to the FLOOR:
a minimal Streamlit page (an uploader and ``st.image``) under the same
harness, i.e. what Streamlit itself costs on this machine.

    python benchmarks/load.py                 # N = 1, 4, 8, 16 (16 only if 8 held) → results/load.json
    python benchmarks/load.py --sessions 1,4,8                 # chosen N values
    python benchmarks/load.py --quick         # N = 1, 2 → results/load_quick.json
    python benchmarks/load.py --levers        # in-process lever table only → the `levers` key of load.json
    python benchmarks/load.py --levers --lever-only "pool of 2"   # re-measure some levers, keep the rest
    python benchmarks/load.py --runs runs/    # also the user's runs (default: only the bundled models/)

Browser part: the servers run on CPU 0 (``taskset``), the harness, its
Playwright driver and one headless Chromium (N contexts) on CPU 1, so the
server's cost is not hidden by the browsers'. The app and the floor servers
are both up; for each N the app round and the floor round run back to back,
so the machine's load at that moment weighs on both. A warm-up visit per
server comes first (``cold_first_visit``: the app loads its models then).
Per round the servers' and the browsers' CPU seconds are recorded next to
the wall time: CPU far below wall means waiting (other processes, the
browsers), not work. Each session opens /predict,
waits until the page is usable (the file input exists and Streamlit's
``stApp`` reports ``data-test-script-state="notRunning"``), uploads its own
variant of the bundled real photo and waits for the answer ("Face 1: …").
The server appends one JSON line per prediction to ``$FER_TIMING_LOG``
(:mod:`fer_core.inference.predictor`); the harness polls the server's RSS from /proc.

Lever part (``--levers``): K threads × photos straight on the shared
``Predictor`` (no browser), one configuration at a time, p50/p95 latency and
throughput; TF thread counts need a fresh process each, so those run as
subprocesses of this script (``--lever-child``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PHOTO = ROOT / "ui" / "assets" / "astronaut.jpg"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FULL_SESSIONS = (1, 4, 8, 16)
QUICK_SESSIONS = (1, 2)
OPTIONAL_SESSIONS = {16}  # run only when the previous round had no errors
#: selectors: the uploader's input, and Streamlit's own "script finished" flag on the app root
FILE_INPUT = "input[type=file]"
SCRIPT_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ANSWER_TEXT = re.compile(r"Face 1: ")  # the Predict page's per-face line, after the classification
FLOOR_ANSWER = '[data-testid="stImage"] img'
ERROR_SELECTORS = '[data-testid="stAlertContentError"], [data-testid="stException"]'

#: Targets at N = TARGET_SESSIONS (8; issue 10 §3), on this machine with the server on one core.
TARGETS = {"success_rate": 1.0, "page_ready_vs_floor": 1.5, "answer_over_floor_s": 2.0,
           "server_predict_p95_s": 2.0, "server_rss_peak_mb": 2500, "warm_single_answer_s": 1.0}

FLOOR_APP = '''\
"""Load-test floor: the least a Streamlit upload page can cost (written by benchmarks/load.py)."""
import streamlit as st

st.title("Floor")
up = st.file_uploader("Photo", type=["jpg", "jpeg", "png"])
if up is not None:
    st.image(up.getvalue(), caption=up.name)
'''

REQUIRED_KEYS = {"sessions": int, "success_rate": float, "page_ready_p95_s": float, "answer_p95_s": float,
                 "floor_page_ready_p95_s": float, "floor_answer_p95_s": float, "server_predict_p95_s": float,
                 "server_rss_peak_mb": float, "per_n": dict, "floor_per_n": dict, "machine": dict,
                 "command": str, "created": str}


# --------------------------------------------------------------------------- pure helpers


def percentile(values, q: float) -> float | None:
    """The q-th percentile (0–100) with linear interpolation (numpy's default); None when empty."""
    xs = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(values) -> dict:
    """{n, p50, p95, max, mean} of a list of seconds (None entries = failed, not counted)."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}
    return {"n": len(xs), "p50": _r(percentile(xs, 50)), "p95": _r(percentile(xs, 95)), "max": _r(max(xs)),
            "mean": _r(sum(xs) / len(xs))}


def _r(x, nd: int = 3):
    return None if x is None else round(float(x), nd)


def photo_variants(n: int, source: Path = PHOTO, seed: int = 0) -> list[bytes]:
    """``n`` different JPEGs derived from the real photo; the face stays whole and findable.

    Each variant combines a mirror flip, a crop that keeps the face (the
    astronaut's face sits in the upper middle of the 512×512 original), a
    rescale (0.8–1.6×, like phone photos of different sizes), a small colour
    and brightness shift and a JPEG quality, so every session uploads
    different bytes (nothing can be served from a cache keyed by content)
    and the detector still finds the face.
    """
    import numpy as np
    from PIL import Image, ImageOps

    base = Image.open(source).convert("RGB")  # (512, 512)
    W, H = base.size
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    i = 0
    while len(out) < n:
        img = ImageOps.mirror(base) if i % 2 else base
        # crop: trim up to 12 % from the left/right/bottom and 6 % from the top (face at y≈0.1–0.5·H)
        l, r = rng.uniform(0, 0.12, 2) * W
        t, b = rng.uniform(0, 0.06) * H, rng.uniform(0, 0.12) * H
        img = img.crop((int(l), int(t), int(W - r), int(H - b)))
        scale = float(rng.uniform(0.8, 1.6))
        img = img.resize((max(64, round(img.width * scale)), max(64, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
        a = np.asarray(img, np.float32)  # (h, w, 3)
        gain = rng.uniform(0.9, 1.1, 3) * rng.uniform(0.9, 1.1)  # per channel × brightness
        a = np.clip(a * gain + rng.uniform(-8, 8), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=int(rng.integers(80, 96)))
        data = buf.getvalue()
        if data not in seen:
            seen.add(data)
            out.append(data)
        i += 1
    return out


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cores": os.cpu_count(),
            "cpu": cpu_model(), "load_avg": [round(x, 2) for x in os.getloadavg()],
            "taskset": shutil.which("taskset") is not None}
    try:
        import streamlit

        info["streamlit"] = streamlit.__version__
    except Exception:  # noqa: BLE001
        pass
    return info


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        parts = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)


def validate(result: dict) -> list[str]:
    """Problems with a load.json result (missing keys, wrong types); [] when it is complete."""
    problems = []
    for key, typ in REQUIRED_KEYS.items():
        if key not in result:
            problems.append(f"missing key {key!r}")
        elif result[key] is not None and not isinstance(result[key], (int, float) if typ is float else typ):
            problems.append(f"{key!r} should be {typ.__name__}, is {type(result[key]).__name__}")
    for n, detail in (result.get("per_n") or {}).items():
        for key in ("sessions", "ok", "page_ready_s", "answer_s", "errors"):
            if key not in detail:
                problems.append(f"per_n[{n}] lacks {key!r}")
    return problems


def round_summary(sessions: list[dict], wall_s: float) -> dict:
    """One round of N sessions → counts, page-ready and answer percentiles, error texts."""
    ok = [s for s in sessions if s.get("ok")]
    return {
        "sessions": len(sessions), "ok": len(ok), "success_rate": _r(len(ok) / len(sessions) if sessions else 0.0),
        "page_ready_s": summarize([s.get("page_ready_s") for s in sessions]),
        "answer_s": summarize([s.get("answer_s") for s in ok]),
        "answer_done_s": summarize([s.get("answer_done_s") for s in ok]),
        "errors": [s["error"] for s in sessions if s.get("error")][:10],
        "wall_s": _r(wall_s),
    }


def server_times(log: Path, since: float, until: float) -> dict:
    """Server-side prediction times (lines of $FER_TIMING_LOG written in [since, until])."""
    rows = [r for r in _rows(log) if r.get("event") == "predict" and since <= r.get("t", 0) <= until]
    out = {"predictions": len(rows)}
    for key in ("total", "detect", "classify", "decode"):
        vals = [r.get(key) for r in rows if r.get(key) is not None]
        if vals:
            out[key + "_s"] = summarize(vals)
    runs = [r for r in _rows(log) if r.get("event") == "script_run" and since <= r.get("t", 0) <= until]
    if runs:  # ui/loaders.py logs each script run (wall and the script thread's own CPU)
        out["script_runs"] = len(runs)
        out["script_run_s"] = summarize([r.get("total") for r in runs])
        out["script_run_cpu_s"] = summarize([r.get("cpu") for r in runs])
    return out


def _rows(log: Path) -> list[dict]:
    rows = []
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``streamlit run <script>`` on a free port, pinned to one CPU, with an RSS poller."""

    def __init__(self, script: Path, env: dict, cpu: int | None, log_path: Path, cwd: Path = ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(self.port),
               "--browser.gatherUsageStats", "false"]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.rss_peak_mb = 0.0
        self.rss_now_mb = 0.0
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_rss, daemon=True)
        self._poller.start()

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"streamlit not healthy after {timeout} s; see {self.log.name}")

    def reset_peak(self) -> None:
        self.rss_peak_mb = self.rss_now_mb

    def _poll_rss(self) -> None:
        while not self._stop.is_set():
            mb = tree_rss_mb(self.proc.pid)
            self.rss_now_mb = mb
            self.rss_peak_mb = max(self.rss_peak_mb, mb)
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, incl. reaped children) used so far by ``pid`` and its descendants.

    Per round, the server's CPU time next to its wall time tells whether the
    server was busy (its own cost) or starved/waiting (other processes, the browsers).
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for p in _descendants(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            continue
    return total / tick


def tree_rss_mb(pid: int) -> float:
    """Resident memory (MB) of ``pid`` and all its descendants (``taskset`` execs, so pid is the server)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


# --------------------------------------------------------------------------- browser sessions


async def one_session(browser, url: str, photo: bytes, name: str, *, floor: bool, timeout_s: float,
                      start: asyncio.Event) -> dict:
    """One visitor: open the page, wait until usable, upload, wait for the answer → timings."""
    res: dict = {"ok": False, "page_ready_s": None, "answer_s": None, "answer_done_s": None, "error": None}
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    ms = timeout_s * 1000
    try:
        await start.wait()
        t0 = time.perf_counter()
        await page.goto(url, wait_until="commit", timeout=ms)
        await page.wait_for_selector(FILE_INPUT, state="attached", timeout=ms)
        await page.wait_for_selector(SCRIPT_IDLE, state="attached", timeout=ms)
        res["page_ready_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        await page.set_input_files(FILE_INPUT, files=[{"name": name, "mimeType": "image/jpeg", "buffer": photo}])
        if floor:
            await page.wait_for_selector(FLOOR_ANSWER, state="visible", timeout=ms)
        else:
            await page.get_by_text(ANSWER_TEXT).first.wait_for(state="visible", timeout=ms)
        res["answer_s"] = time.perf_counter() - t1
        await page.wait_for_selector(SCRIPT_IDLE, state="attached", timeout=ms)
        res["answer_done_s"] = time.perf_counter() - t1
        n_err = await page.locator(ERROR_SELECTORS).count()
        if n_err:
            res["error"] = "page shows an error: " + (await page.locator(ERROR_SELECTORS).first.inner_text())[:200]
        else:
            res["ok"] = True
            if not floor:
                res["whole_image"] = await page.get_by_text("No face found").count() > 0
    except Exception as exc:  # noqa: BLE001 - a failed session is a data point, not a crash
        res["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    finally:
        await ctx.close()
    return res


async def run_round(browser, url: str, photos: list[bytes], *, floor: bool, timeout_s: float) -> tuple[list[dict], float]:
    """N sessions released together (contexts are created first, then one start signal)."""
    start = asyncio.Event()
    tasks = [asyncio.create_task(one_session(browser, url, p, f"visitor{i}.jpg", floor=floor, timeout_s=timeout_s,
                                             start=start)) for i, p in enumerate(photos)]
    await asyncio.sleep(0.5)  # let every context open before the start signal
    t = time.perf_counter()
    start.set()
    done = await asyncio.wait_for(asyncio.gather(*tasks), timeout=timeout_s * 3 + 30)
    return list(done), time.perf_counter() - t


async def measure_round(browser, server: Server, path: str, photos: list[bytes], *, floor: bool, timeout_s: float,
                        timing_log: Path | None) -> dict:
    """One round of len(photos) simultaneous visitors against ``server`` → its summary."""
    await asyncio.sleep(2.0)  # let the last round's sessions close on the servers
    server.reset_peak()
    busy0, tot0 = cpu_times()
    srv0, me0 = tree_cpu_s(server.proc.pid), tree_cpu_s(os.getpid())
    t_start = time.time()
    sessions, wall = await run_round(browser, server.url + path, photos, floor=floor, timeout_s=timeout_s)
    t_end = time.time()
    busy1, tot1 = cpu_times()
    summary = round_summary(sessions, wall)
    summary["server_cpu_s"] = _r(tree_cpu_s(server.proc.pid) - srv0, 2)
    summary["browser_cpu_s"] = _r(tree_cpu_s(os.getpid()) - me0, 2)  # harness + driver + Chromium
    summary["rss_peak_mb"] = _r(server.rss_peak_mb, 1)
    summary["machine_busy_fraction"] = _r((busy1 - busy0) / (tot1 - tot0)) if tot1 > tot0 else None
    summary["load_avg_1min"] = round(os.getloadavg()[0], 2)
    summary["sessions_detail"] = [{k: _r(v) if isinstance(v, float) else v for k, v in s.items()} for s in sessions]
    if timing_log:
        summary["server"] = server_times(timing_log, t_start, t_end)
    n = len(photos)
    print(f"  {'floor' if floor else 'app'} N={n}: ok {summary['ok']}/{n} · page ready p95 "
          f"{summary['page_ready_s']['p95']} s · answer p95 {summary['answer_s']['p95']} s · "
          f"RSS peak {summary['rss_peak_mb']} MB · CPU s server {summary['server_cpu_s']} / browsers "
          f"{summary['browser_cpu_s']} in {summary['wall_s']} s · load {summary['load_avg_1min']}"
          + (f" · script runs {summary['server'].get('script_runs')}, p95 "
             f"{summary['server'].get('script_run_s', {}).get('p95')} s" if timing_log else ""), flush=True)
    return summary


async def drive(targets: dict, counts: list[int], photos: list[bytes], *, timeout_s: float, warm_photo: bytes) -> dict:
    """A warm-up visit per server (``cold_first_visit``), then per N one round on each server in turn.

    ``targets``: name → (server, path, floor, timing_log). App and floor
    rounds of the same N run back to back, so a change in the machine's load
    during the run hits both alike (both servers stay up; the idle one costs
    nothing). One Chromium, one context per visitor.
    """
    from playwright.async_api import async_playwright

    out: dict = {name: {"rounds": {}} for name in targets}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name, (server, path, floor, timing_log) in targets.items():
                t = time.time()
                first, _ = await run_round(browser, server.url + path, [warm_photo], floor=floor,
                                           timeout_s=max(timeout_s, 180))
                out[name]["cold_first_visit"] = {k: _r(v) if isinstance(v, float) else v for k, v in first[0].items()}
                out[name]["rss_after_warmup_mb"] = _r(server.rss_now_mb, 1)
                if timing_log:
                    out[name]["cold_first_visit"]["server"] = server_times(timing_log, t, time.time())
            prev_ok = True
            for n in counts:
                for name, (server, path, floor, timing_log) in targets.items():
                    if n in OPTIONAL_SESSIONS and not prev_ok:
                        out[name]["rounds"][str(n)] = {"skipped": "the previous round had failures"}
                        continue
                    summary = await measure_round(browser, server, path, photos[:n], floor=floor, timeout_s=timeout_s,
                                                  timing_log=timing_log)
                    out[name]["rounds"][str(n)] = summary
                prev_ok = all(out[name]["rounds"][str(n)].get("ok") == n for name in targets)
        finally:
            await browser.close()
    for name, (server, *_rest) in targets.items():
        out[name]["rss_peak_mb"] = _r(max([server.rss_peak_mb] + [r.get("rss_peak_mb") or 0
                                                                  for r in out[name]["rounds"].values()]), 1)
    return out


def pin_self(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def browser_part(args, counts: list[int]) -> dict:
    """Both servers (app and floor) under the same harness; returns the result dict."""
    cores = os.cpu_count() or 1
    pinned = cores >= 2 and shutil.which("taskset") is not None and not args.no_pin
    server_cpu, browser_cpu = (0, 1) if pinned else (None, None)
    print("pinning: " + (f"server on CPU {server_cpu} (taskset -c {server_cpu}), harness + Playwright + Chromium "
                         f"on CPU {browser_cpu}" if pinned else "none (fewer than 2 CPUs, no taskset, or --no-pin)"),
          flush=True)
    photos = photo_variants(max(counts) + 1)
    warm_photo, photos = photos[0], photos[1:]
    work = Path(tempfile.mkdtemp(prefix="fer-load-"))
    runs_dir = Path(args.runs).resolve() if args.runs else work / "runs-empty"
    runs_dir.mkdir(parents=True, exist_ok=True)
    (work / "data").mkdir()
    timing_log = work / "timing.jsonl"
    env = {**os.environ, "FER_RUNS_DIR": str(runs_dir), "FER_DATA_DIR": str(work / "data"),
           "FER_TIMING_LOG": str(timing_log), "TF_CPP_MIN_LOG_LEVEL": "2"}
    saved_affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pin_self(browser_cpu)
    try:
        return _servers(args, counts, env, server_cpu, browser_cpu, photos, warm_photo, work, runs_dir, timing_log)
    finally:
        if saved_affinity:
            os.sched_setaffinity(0, saved_affinity)  # a caller (pytest) keeps its CPUs


def _servers(args, counts, env, server_cpu, browser_cpu, photos, warm_photo, work, runs_dir, timing_log) -> dict:
    result: dict = {"pinning": {"server_cpu": server_cpu, "browser_cpu": browser_cpu}, "runs_dir": str(runs_dir)}
    print(f"app: streamlit run app.py (FER_RUNS_DIR={runs_dir})" +
          ("" if args.no_floor else "; floor: a minimal uploader + st.image page, rounds interleaved"), flush=True)
    servers = {"app": Server(ROOT / "app.py", env, server_cpu, work / "app.log")}
    if not args.no_floor:
        floor_script = work / "floor_app.py"
        floor_script.write_text(FLOOR_APP)
        servers["floor"] = Server(floor_script, {**env, "FER_TIMING_LOG": ""}, server_cpu, work / "floor.log", cwd=work)
    try:
        for server in servers.values():
            server.wait_healthy()
        targets = {"app": (servers["app"], "/predict", False, timing_log)}
        if "floor" in servers:
            targets["floor"] = (servers["floor"], "/", True, None)
        result.update(asyncio.run(drive(targets, counts, photos, timeout_s=args.timeout, warm_photo=warm_photo)))
    finally:
        for server in servers.values():
            server.stop()
    result["work_dir"] = str(work)
    return result


#: The N the issue's targets are stated for. Larger N (16 "if it holds") is recorded in per_n and
#: summarised under ``beyond_targets``, not judged against targets written for 8 visitors.
TARGET_SESSIONS = 8


def headline(raw: dict, counts: list[int]) -> dict:
    """The top-level keys of load.json: at N = 8 (the targets' N) when it ran, else the largest N that ran."""
    app_rounds = raw.get("app", {}).get("rounds", {})
    floor_rounds = raw.get("floor", {}).get("rounds", {})
    ran = [n for n in counts if "skipped" not in app_rounds.get(str(n), {"skipped": 1})]
    n = TARGET_SESSIONS if TARGET_SESSIONS in ran else (max(ran) if ran else 0)
    a, f = app_rounds.get(str(n), {}), floor_rounds.get(str(n), {})
    server = a.get("server", {})
    out = {
        "sessions": n,
        "success_rate": a.get("success_rate"),
        "page_ready_p95_s": (a.get("page_ready_s") or {}).get("p95"),
        "answer_p95_s": (a.get("answer_s") or {}).get("p95"),
        "floor_page_ready_p95_s": (f.get("page_ready_s") or {}).get("p95"),
        "floor_answer_p95_s": (f.get("answer_s") or {}).get("p95"),
        "server_predict_p95_s": (server.get("total_s") or {}).get("p95"),
        "server_rss_peak_mb": max([r.get("rss_peak_mb") or 0 for r in app_rounds.values()]
                                  + [raw.get("app", {}).get("rss_peak_mb") or 0]),
        "warm_single_answer_p95_s": (app_rounds.get("1", {}).get("answer_s") or {}).get("p95"),
        "per_n": app_rounds, "floor_per_n": floor_rounds,
    }
    out["targets"] = check_targets(out)
    beyond = {}
    for m in (m for m in ran if m > n):
        am, fm = app_rounds.get(str(m), {}), floor_rounds.get(str(m), {})
        beyond[str(m)] = {"success_rate": am.get("success_rate"),
                          "page_ready_p95_s": (am.get("page_ready_s") or {}).get("p95"),
                          "floor_page_ready_p95_s": (fm.get("page_ready_s") or {}).get("p95"),
                          "answer_p95_s": (am.get("answer_s") or {}).get("p95"),
                          "floor_answer_p95_s": (fm.get("answer_s") or {}).get("p95"),
                          "server_predict_p95_s": ((am.get("server") or {}).get("total_s") or {}).get("p95")}
    out["largest_sessions_run"] = max(ran) if ran else 0
    out["beyond_targets"] = beyond
    return out


def check_targets(h: dict) -> dict:
    """Each target → {value, limit, met}; ``met`` is None when a value is missing."""
    def t(value, limit, ok):
        return {"value": value, "limit": limit, "met": None if value is None or limit is None else bool(ok(value, limit))}

    fp, fa = h.get("floor_page_ready_p95_s"), h.get("floor_answer_p95_s")
    return {
        "success_rate": t(h.get("success_rate"), TARGETS["success_rate"], lambda v, lim: v >= lim),
        "page_ready_p95_s": t(h.get("page_ready_p95_s"), None if fp is None else _r(TARGETS["page_ready_vs_floor"] * fp),
                              lambda v, lim: v <= lim),
        "answer_p95_s": t(h.get("answer_p95_s"), None if fa is None else _r(fa + TARGETS["answer_over_floor_s"]),
                          lambda v, lim: v <= lim),
        "server_predict_p95_s": t(h.get("server_predict_p95_s"), TARGETS["server_predict_p95_s"], lambda v, lim: v <= lim),
        "server_rss_peak_mb": t(h.get("server_rss_peak_mb"), TARGETS["server_rss_peak_mb"], lambda v, lim: v <= lim),
        "warm_single_answer_s": t(h.get("warm_single_answer_p95_s"), TARGETS["warm_single_answer_s"],
                                  lambda v, lim: v <= lim),
    }


# --------------------------------------------------------------------------- in-process levers


LEVERS = {
    # name → options of one fresh process: batching (Predictor), detectors (YuNet pool size). The MTCNN-era
    # levers (eager vs compiled stages, one global lock) went with MTCNN; their results stay in load.json's history.
    "pool of 1 detector, no batching": {"batching": False, "detectors": 1},
    "pool of 2 detectors, no batching": {"batching": False, "detectors": 2},
    "1 detector, micro-batcher": {"batching": True, "detectors": 1},
    "default: pool of 2, micro-batcher": {"batching": True, "detectors": 2},
}
#: TF thread pools on the default configuration (TF's own default: intra = inter = the CPUs it may use).
CLASSIFY_LEVER = "micro-batcher, classification only (8 threads x 1 face per call)"
THREAD_LEVERS = {"TF threads intra 1 / inter 1": (1, 1), "TF threads intra 2 / inter 2": (2, 2),
                 "TF threads intra 1 / inter 2": (1, 2)}


def gc_lever() -> dict:
    """What a full ``gc.collect()`` costs in a serving process, before and after ``gc.freeze()``.

    Streamlit runs one after every script run (``runner.postScriptGC``) and, via
    ``keras.backend.clear_session``, a second one (switched off by ui/loaders.py).
    """
    import gc

    import keras
    import pandas  # noqa: F401  what the pages import
    import plotly.graph_objects  # noqa: F401
    import streamlit  # noqa: F401

    def timed(fn, k=3):
        ts = []
        for _ in range(k):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return _r(min(ts), 4), _r(max(ts), 4)

    out = {"objects_tracked": len(gc.get_objects())}
    out["gc_collect_s_min_max"] = timed(gc.collect)
    out["keras_clear_session_s_min_max"] = timed(keras.backend.clear_session)
    gc.freeze()
    out["after_freeze_gc_collect_s_min_max"] = timed(gc.collect)
    out["after_freeze_keras_clear_session_s_min_max"] = timed(keras.backend.clear_session)
    return out


def classify_lever(runs: list[str], threads: int, per_thread: int = 25, rounds: int = 3) -> dict:
    """Classification alone (no detection): ``threads`` threads × one face per call, batcher off vs on.

    With the default compact model a photo's CPU goes mostly to detection, so
    the micro-batcher's effect on the whole photo is small; this isolates it.
    Rounds alternate off/on; per face: wall ms and this process's CPU ms.
    """
    import numpy as np

    from fer_core import load_run
    from fer_core.inference.predictor import Predictor

    bundled = (ROOT / "models").resolve()
    loaded = [load_run(p, bundled=Path(p).resolve().parent == bundled) for p in runs]
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(threads)]  # (96, 96, 3) each
    preds = {"off": Predictor(loaded, batching=False), "on": Predictor(loaded, batching=True)}
    out: dict = {"per_face_ms_wall_cpu": {"off": [], "on": []}}
    for _ in range(rounds):
        for key, p in preds.items():
            barrier = threading.Barrier(threads)

            def visitor(i, p=p, barrier=barrier):
                barrier.wait()
                for _ in range(per_thread):
                    p.predict_faces([crops[i]])

            from concurrent.futures import ThreadPoolExecutor

            t, c = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(threads) as ex:
                list(ex.map(visitor, range(threads)))
            n = threads * per_thread
            out["per_face_ms_wall_cpu"][key].append([_r((time.perf_counter() - t) * 1000 / n, 2),
                                                     _r((time.process_time() - c) * 1000 / n, 2)])
    out["batcher_calls_requests"] = [(m.batcher.calls, m.batcher.requests) for m in preds["on"]._loaded]
    for p in preds.values():
        p.close()
    cpu = {k: min(v[1] for v in vals) for k, vals in out["per_face_ms_wall_cpu"].items()}
    out["cpu_ms_per_face_min"] = cpu
    out["cpu_saving"] = _r(1 - cpu["on"] / cpu["off"]) if cpu["off"] else None
    return out


def lever_child(opts: dict, threads: int, photos_per_thread: int, runs: list[str]) -> dict:
    """In this process: build the Predictor with ``opts`` and hammer it from ``threads`` threads."""
    if opts.get("classify_only"):
        return {"classify_only": classify_lever(runs, threads)}
    from concurrent.futures import ThreadPoolExecutor

    from fer_core import load_run
    from fer_core.faces import detect as faces
    from fer_core.inference.predictor import Predictor

    if "intra" in opts:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(opts["intra"])
        tf.config.threading.set_inter_op_parallelism_threads(opts["inter"])
    faces.configure_detectors(opts.get("detectors", 2))
    bundled = (ROOT / "models").resolve()
    predictor = Predictor([load_run(p, bundled=Path(p).resolve().parent == bundled) for p in runs],
                          batching=opts.get("batching", True))
    photos = photo_variants(threads * photos_per_thread, seed=1)
    for p in photos[:2]:
        predictor.predict(p)  # warm: every pyramid size of these photos
    out = {}
    for k in sorted({1, threads}):
        lat: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(k)

        def visitor(i):
            barrier.wait()
            for j in range(photos_per_thread):
                t = time.perf_counter()
                predictor.predict(photos[(i * photos_per_thread + j) % len(photos)])
                with lock:
                    lat.append(time.perf_counter() - t)

        t0, c0 = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(k) as ex:
            list(ex.map(visitor, range(k)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        # CPU seconds per photo: what the work costs, much less sensitive than wall time to
        # other processes sharing the core (they stretch the wall, not this process's CPU time)
        out[f"threads_{k}"] = {"latency_s": summarize(lat), "throughput_photos_per_s": _r(len(lat) / wall, 2),
                               "wall_s": _r(wall), "cpu_s_per_photo": _r(cpu / len(lat), 4)}
    out["batcher_calls_requests"] = [(m.batcher.calls, m.batcher.requests) for m in predictor._loaded
                                     if m.batcher is not None]
    predictor.close()
    if opts.get("gc"):
        out["gc"] = gc_lever()
    return out


def levers_part(args) -> dict:
    """Every lever in a fresh pinned subprocess (TF threads only take effect before TF starts).

    The configurations are interleaved over ``--lever-rounds`` rounds, so a
    change in the machine's load hits all of them alike; per configuration
    the round with the lowest p95 at K threads is the headline (``best``),
    every round is kept.
    """
    runs = [str(ROOT / "models" / name) for name in args.lever_models.split(",")]
    configs = dict(LEVERS)
    configs["default + gc.freeze measurement"] = {"batching": True, "detectors": 2, "compiled": True, "gc": True}
    for name, (intra, inter) in THREAD_LEVERS.items():
        configs[name] = {"batching": True, "detectors": 2, "compiled": True, "intra": intra, "inter": inter}
    configs[CLASSIFY_LEVER] = {"classify_only": True}
    if args.lever_only:
        configs = {n: o for n, o in configs.items() if args.lever_only.lower() in n.lower()}
    cpu = 0 if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") and not args.no_pin else None
    k = args.lever_threads
    out = {"setup": {"threads": k, "photos_per_thread": args.lever_photos, "models": runs, "rounds": args.lever_rounds,
                     "pinned_cpu": cpu, "load_avg_before": [round(x, 2) for x in os.getloadavg()]},
           "results": {name: {"options": opts, "rounds": []} for name, opts in configs.items()}}
    for rnd in range(args.lever_rounds):
        for name, opts in configs.items():
            cmd = [sys.executable, __file__, "--lever-child", json.dumps({"opts": opts, "threads": k,
                                                                          "photos": args.lever_photos, "runs": runs})]
            if cpu is not None:
                cmd = ["taskset", "-c", str(cpu)] + cmd
            busy0, tot0 = cpu_times()
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                                  timeout=900)
            busy1, tot1 = cpu_times()
            entry = out["results"][name]
            if proc.returncode != 0:
                entry["rounds"].append({"error": (proc.stderr.strip().splitlines() or ["?"])[-1]})
                print(f"  lever round {rnd} {name}: FAILED {entry['rounds'][-1]['error']}", flush=True)
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res["machine_busy_fraction"] = _r((busy1 - busy0) / (tot1 - tot0)) if tot1 > tot0 else None
            res["load_avg"] = round(os.getloadavg()[0], 2)
            entry["rounds"].append(res)
            if "classify_only" in res:
                print(f"  lever round {rnd} {name}: {json.dumps(res['classify_only'])}", flush=True)
                continue
            kk = res.get(f"threads_{k}", {})
            print(f"  lever round {rnd} {name}: 1 thread p50 {res.get('threads_1', {}).get('latency_s', {}).get('p50')} s"
                  f" · {k} threads p50 {kk.get('latency_s', {}).get('p50')} s, p95 {kk.get('latency_s', {}).get('p95')} s,"
                  f" {kk.get('throughput_photos_per_s')} photos/s, {kk.get('cpu_s_per_photo')} CPU s/photo"
                  f" (load {res['load_avg']})", flush=True)
    for entry in out["results"].values():
        lever_best(entry, k)
    out["setup"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def lever_best(entry: dict, k: int) -> dict:
    """Headline of one configuration over its rounds: the round with the lowest p95 at k threads,
    and the lowest CPU seconds per photo of any round (``entry["best"]``, also returned)."""
    ok = [r for r in entry.get("rounds", []) if f"threads_{k}" in r]
    if not ok:
        return {}
    best = min(ok, key=lambda r: r[f"threads_{k}"]["latency_s"]["p95"] or 1e9)
    cpu = [r[f"threads_{k}"].get("cpu_s_per_photo") for r in ok if r[f"threads_{k}"].get("cpu_s_per_photo")]
    entry["best"] = {"single_p50_s": min(r.get("threads_1", {}).get("latency_s", {}).get("p50") or 1e9 for r in ok),
                     f"threads_{k}_p50_s": best[f"threads_{k}"]["latency_s"]["p50"],
                     f"threads_{k}_p95_s": best[f"threads_{k}"]["latency_s"]["p95"],
                     "throughput_photos_per_s": max(r[f"threads_{k}"]["throughput_photos_per_s"] for r in ok),
                     "cpu_s_per_photo_min": min(cpu) if cpu else None,
                     "batcher_calls_requests": best.get("batcher_calls_requests")}
    if any("gc" in r for r in ok):
        entry["best"]["gc"] = next(r["gc"] for r in ok if "gc" in r)
    return entry["best"]


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 1, 2 only → results/load_quick.json")
    ap.add_argument("--sessions", default=None, help="comma-separated N values (default 1,4,8,16)")
    ap.add_argument("--runs", default=None, help="runs folder for the app (default: an empty one: bundled models only)")
    ap.add_argument("--out", default=None, help="result file (default results/load.json, or load_quick.json)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per session step")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor page")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and browsers to separate CPUs")
    ap.add_argument("--levers", action="store_true", help="only the in-process lever table (into the `levers` key)")
    ap.add_argument("--with-levers", action="store_true", help="browser rounds and the lever table")
    ap.add_argument("--lever-threads", type=int, default=8)
    ap.add_argument("--lever-photos", type=int, default=4, help="photos per thread in the lever table")
    ap.add_argument("--lever-models", default="compact", help="bundled models the lever table loads")
    ap.add_argument("--lever-rounds", type=int, default=2, help="interleaved rounds over the configurations")
    ap.add_argument("--lever-only", default=None, help="only the lever configurations whose name contains this")
    ap.add_argument("--lever-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.lever_child:
        spec = json.loads(args.lever_child)
        print(json.dumps(lever_child(spec["opts"], spec["threads"], spec["photos"], spec["runs"])))
        return 0

    out_path = Path(args.out) if args.out else RESULTS / ("load_quick.json" if args.quick else "load.json")
    previous = json.loads(out_path.read_text()) if out_path.is_file() else {}
    command = "python benchmarks/load.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {"created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": command.strip(),
              "machine": machine_info()}
    if args.levers:
        part = levers_part(args)
        if args.lever_only and "levers" in previous:  # a subset re-measured: keep the others
            merged = dict(previous["levers"])
            merged["results"] = {**previous["levers"].get("results", {}), **part["results"]}
            merged.setdefault("partial_updates", []).append({"command": result["command"], "created": result["created"],
                                                             "only": args.lever_only, "setup": part["setup"]})
            result = {**previous, "levers": merged}
        else:
            result = {**previous, "levers": {**part, "created": result["created"], "command": result["command"],
                                             "machine": result["machine"]}}
    else:
        counts = [int(x) for x in args.sessions.split(",")] if args.sessions else list(
            QUICK_SESSIONS if args.quick else FULL_SESSIONS)
        raw = browser_part(args, counts)
        result.update(headline(raw, counts))
        result["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        result["cold_first_visit"] = raw.get("app", {}).get("cold_first_visit")
        result["floor_cold_first_visit"] = raw.get("floor", {}).get("cold_first_visit")
        result["rss_after_warmup_mb"] = raw.get("app", {}).get("rss_after_warmup_mb")
        result["pinning"] = raw["pinning"]
        result["runs_dir"] = raw["runs_dir"]
        if args.with_levers:
            result["levers"] = levers_part(args)
        elif "levers" in previous:
            result["levers"] = previous["levers"]  # measured separately (--levers); kept
        problems = validate(result)
        if problems:
            print("result incomplete: " + "; ".join(problems), flush=True)
        print(json.dumps({k: result.get(k) for k in list(REQUIRED_KEYS)[:8]}, indent=1))
        for name, t in result["targets"].items():
            print(f"  target {name}: {t['value']} vs {t['limit']} → {'met' if t['met'] else 'NOT met' if t['met'] is False else '?'}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
