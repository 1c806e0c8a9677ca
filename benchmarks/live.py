#!/usr/bin/env python
"""Live benchmark: a camera's 640×480 frames through the Live page's processor, one and two streams at once.

    python benchmarks/live.py                      # 10 minutes per case → benchmarks/results/live.json
    python benchmarks/live.py --seconds 30 --out benchmarks/results/live_short.json   # a look in ~2 minutes

Frames: a 640×480 clip with one face (the project's real astronaut photo,
the view drifting 0–80 px and back every 4 s, so the face moves as a person
in front of a webcam does), offered at a camera's rate (``--camera-fps``,
30) by one feeder thread per stream to that stream's
:class:`fer_core.inference.live.LiveProcessor` — the same object the Live page feeds
from streamlit-webrtc's callback, in the same process as the model
(the bundled default, :data:`fer_core.data.defaults.BUNDLED_PREDICT_DEFAULT`),
one predictor shared by the streams as the app shares it. The transport
(WebRTC, VP8 decode/encode) is not in these figures; the browser test covers
it working.

Per stream: processed frames per second (frames read / wall time), frames
skipped (latest frame wins), and the added latency measured inside the
processor — frame offered → annotated frame ready, which includes waiting in
the one-frame mailbox — p50 and p95 over every frame read. Per case: the
process's CPU seconds per wall second and stream (1.0 = one core busy), the
resident memory (VmRSS) at the start, every 10 % of the run and the end, and
how busy the rest of the machine was (``others_busy_fraction``: 0 idle, 1
every core taken by others — fps and latency depend on it, CPU per frame
much less).

``detect_every``: before the streams, the clip's frames are read in order
(no camera pacing) with k = 1, 2 and 3: CPU ms per frame, and agreement with
k = 1 frame by frame (face found, same top emotion, box IoU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.video import cpu_s, machine_busy_s  # noqa: E402
from fer_core.data.defaults import BUNDLED_PREDICT_DEFAULT  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "live.json"
ASTRONAUT = ROOT / "ui" / "assets" / "astronaut.jpg"
TARGETS = {"one_stream_fps": 15.0, "one_stream_latency_p95_ms": 150.0, "two_streams_fps_each": 8.0}


def clip_frames(n: int = 60) -> list[np.ndarray]:
    """``n`` 640×480 RGB frames (4 s at 15 fps) of the astronaut photo, the view drifting 0..80 px and back."""
    from PIL import Image

    big = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((720, 720)))
    return [np.ascontiguousarray(big[60:540, int(40 * (1 + np.sin(2 * np.pi * i / n))):][:, :640])
            for i in range(n)]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values, q) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def compare_detect_every(predictor, frames, ks=(1, 2, 3), repeats: int = 3) -> dict:
    """Each k over the clip's frames in order (repeated): CPU ms per frame and agreement with k = 1."""
    from fer_core.faces.detect import box_iou
    from fer_core.inference.live import LiveProcessor

    per_k, ref = {}, None
    for k in ks:
        proc = LiveProcessor(predictor, detect_every=k, threaded=False)
        c0, t0 = cpu_s(), time.perf_counter()
        for _ in range(repeats):
            for f in frames:
                proc.offer(f)
        cpu, wall = cpu_s() - c0, time.perf_counter() - t0
        rows = proc.rows()
        by_frame = {r["frame"]: r for r in rows}
        n = len(frames) * repeats
        out = {"cpu_ms_per_frame": round(1000 * cpu / n, 2), "wall_ms_per_frame": round(1000 * wall / n, 2),
               "frames_with_face": sum(r["face_id"] is not None for r in rows) / n}
        if ref is None:
            ref = by_frame
        else:
            pairs = [(ref[i], by_frame[i]) for i in ref if ref[i]["face_id"] is not None and i in by_frame]
            found = [b for a, b in pairs if b["face_id"] is not None]
            out["found_vs_k1"] = round(len(found) / max(1, len(pairs)), 4)
            out["same_top_vs_k1"] = round(sum(a["top"] == b["top"] for a, b in pairs
                                              if b["face_id"] is not None) / max(1, len(found)), 4)
            ious = [box_iou((a["x"], a["y"], a["w"], a["h"]), (b["x"], b["y"], b["w"], b["h"]))
                    for a, b in pairs if b["face_id"] is not None]
            out["box_iou_vs_k1_mean"] = round(float(np.mean(ious)), 3) if ious else None
            out["cpu_speedup_vs_k1"] = round(per_k["1"]["cpu_ms_per_frame"] / out["cpu_ms_per_frame"], 3)
        per_k[str(k)] = out
    return per_k


def run_streams(predictor, frames, n_streams: int, seconds: float, camera_fps: float, detect_every: int) -> dict:
    """``n_streams`` processors fed at ``camera_fps`` for ``seconds``; fps, latency, CPU and RSS."""
    from fer_core.inference.live import LiveProcessor

    latencies = [[] for _ in range(n_streams)]
    procs = [LiveProcessor(predictor, detect_every=detect_every,
                           on_processed=lambda lat, nf, i=i: latencies[i].append(lat))
             for i in range(n_streams)]
    stop = threading.Event()
    offered = [0] * n_streams

    def feed(i: int) -> None:
        period, t_next, j = 1.0 / camera_fps, time.perf_counter(), i * 7  # streams out of step
        while not stop.is_set():
            procs[i].offer(frames[j % len(frames)])
            offered[i] += 1
            j += 1
            t_next += period
            delay = t_next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                t_next = time.perf_counter()  # fell behind: the camera does not queue either

    rss = [round(rss_mb(), 1)]
    feeders = [threading.Thread(target=feed, args=(i,), daemon=True) for i in range(n_streams)]
    t0, c0, m0 = time.perf_counter(), cpu_s(), machine_busy_s()
    for t in feeders:
        t.start()
    for tenth in range(1, 11):
        while time.perf_counter() - t0 < seconds * tenth / 10:
            time.sleep(0.05)
        rss.append(round(rss_mb(), 1))
    stop.set()
    for t in feeders:
        t.join()
    for p in procs:
        p.wait_idle(10)
    wall = time.perf_counter() - t0
    cpu = cpu_s() - c0
    others = (machine_busy_s() - m0 - cpu) / ((os.cpu_count() or 1) * wall)
    streams = []
    for p, lat in zip(procs, latencies):
        s = p.status()
        ms = np.asarray(lat) * 1000
        streams.append({"fps": round(s.frames_processed / wall, 2), "frames_offered": s.frames_in,
                        "frames_read": s.frames_processed, "frames_skipped": s.frames_dropped,
                        "latency_p50_ms": pct(ms, 50), "latency_p95_ms": pct(ms, 95), "latency_max_ms": pct(ms, 100),
                        "rows": s.rows, "faces_last_frame": len(s.faces), "errors": p.error})
        p.close()
    return {"streams": n_streams, "seconds": round(wall, 1), "camera_fps": camera_fps, "detect_every": detect_every,
            "per_stream": streams, "fps_each_min": min(s["fps"] for s in streams),
            "cpu_cores_per_stream": round(cpu / wall / n_streams, 3),
            "cpu_ms_per_frame": round(1000 * cpu / max(1, sum(s["frames_read"] for s in streams)), 2),
            "rss_mb_by_tenth": rss, "rss_growth_mb": round(rss[-1] - rss[1], 1),
            "others_busy_fraction": round(max(0.0, others), 2)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600, help="seconds per case (default 600: 10 minutes)")
    ap.add_argument("--camera-fps", type=float, default=30)
    ap.add_argument("--streams", default="1,2", help="cases: concurrent streams, comma-separated")
    ap.add_argument("--detect-every", type=int, default=None, help="k for the streams (default: fer_core.inference.live's)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--label", default=None, help="a note stored with the results (e.g. 'short run')")
    args = ap.parse_args(argv)

    from fer_core import load_run
    from fer_core.inference.live import DEFAULT_DETECT_EVERY
    from fer_core.inference.predictor import Predictor
    from fer_core.store.runs import BUNDLED_DIR

    k = args.detect_every or DEFAULT_DETECT_EVERY
    t = time.perf_counter()
    predictor = Predictor([load_run(BUNDLED_DIR / BUNDLED_PREDICT_DEFAULT, bundled=True)])
    load_s = time.perf_counter() - t
    frames = clip_frames()
    print(f"model {BUNDLED_PREDICT_DEFAULT} loaded in {load_s:.1f} s; comparing detect_every …", flush=True)
    per_k = compare_detect_every(predictor, frames)
    print(json.dumps(per_k), flush=True)
    run_streams(predictor, frames, 1, min(5.0, args.seconds), args.camera_fps, k)  # warm-up, not recorded
    cases = {}
    for n in (int(v) for v in args.streams.split(",")):
        print(f"{n} stream(s), {args.seconds:g} s …", flush=True)
        cases[str(n)] = run_streams(predictor, frames, n, args.seconds, args.camera_fps, k)
        print(json.dumps({key: v for key, v in cases[str(n)].items() if key != "rss_mb_by_tenth"}), flush=True)
    predictor.close()
    headline = {}
    if "1" in cases:
        one = cases["1"]["per_stream"][0]
        headline.update(one_stream_fps=one["fps"], one_stream_latency_p50_ms=one["latency_p50_ms"],
                        one_stream_latency_p95_ms=one["latency_p95_ms"],
                        one_stream_cpu_cores=cases["1"]["cpu_cores_per_stream"])
    if "2" in cases:
        headline.update(two_streams_fps_each=cases["2"]["fps_each_min"],
                        two_streams_latency_p95_ms=max(s["latency_p95_ms"] or 0 for s in cases["2"]["per_stream"]),
                        two_streams_cpu_cores_per_stream=cases["2"]["cpu_cores_per_stream"])
    met = {}
    if "one_stream_fps" in headline:
        met["one_stream_fps"] = headline["one_stream_fps"] >= TARGETS["one_stream_fps"]
        met["one_stream_latency_p95_ms"] = (headline["one_stream_latency_p95_ms"] or 1e9) <= TARGETS["one_stream_latency_p95_ms"]
    if "two_streams_fps_each" in headline:
        met["two_streams_fps_each"] = headline["two_streams_fps_each"] >= TARGETS["two_streams_fps_each"]
    result = {
        "what": "Live page's processor (fer_core.inference.live) fed 640x480 frames with one face at a camera's rate, in-process",
        "label": args.label, "command": "python benchmarks/live.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()}, "model": BUNDLED_PREDICT_DEFAULT,
        "model_load_s": round(load_s, 1), "detect_every_streams": k, "headline": headline, "targets": TARGETS,
        "targets_met": met, "detect_every": per_k, "cases": cases,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(headline), json.dumps(met))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
