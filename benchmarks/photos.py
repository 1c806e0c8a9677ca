#!/usr/bin/env python
"""Folders of photos: photos per second, one ``Predictor.predict`` per photo vs the batched path.

    python benchmarks/photos.py                    # 60 photos × 3 rounds → benchmarks/results/photos.json
    python benchmarks/photos.py --photos 20 --rounds 1 --out /tmp/photos.json

The photos are single-face 640×480 JPEGs made from real faces: FER2013 test
faces pasted into synthetic scenes (:mod:`fer_core.faces.scenes`) when
``../shared/datasets/fer2013/fer2013.npz`` is there, else the bundled
``ui/assets/astronaut.jpg`` at 640 px with a different crop and JPEG quality
per photo. The model is the one prediction starts with
(``fer_core.data.defaults.BUNDLED_PREDICT_DEFAULT``).

Both paths run on the same warm :class:`fer_core.inference.predictor.Predictor`, rounds
alternating (sequential, batched, sequential, ...) so the machine's other
load weighs on both alike; the headline is each path's median round. Stage
seconds: the sequential path's from ``PredictionResult.timings``; the batched
path's from :class:`fer_core.inference.batch.BatchReport` (its pool stages run on
``DETECT_WORKERS`` threads at once, so they add up to more than its wall
time). Agreement: the same faces found and max |Δp| between the two paths.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.speed import CpuMeter  # noqa: E402

FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.npz"
TARGET_PHOTOS_PER_S = 10.0


def make_photos(n: int) -> tuple[list[bytes], str]:
    """``n`` single-face 640 px JPEGs and where their faces came from."""
    from PIL import Image

    if FER2013.is_file():
        from fer_core.faces.scenes import SceneConfig, make_scene

        faces = np.load(FER2013)["test_images"]  # (3589, 48, 48) uint8
        config = SceneConfig(scene_sizes=((640, 480),))
        return [make_scene(faces[i], 0, i, config).jpeg for i in range(n)], \
            "FER2013 test faces 0..n-1 pasted into 640×480 scenes (fer_core.faces.scenes, seed 0)"
    base = Image.open(ROOT / "ui" / "assets" / "astronaut.jpg").convert("RGB")  # 512×512, one face
    out = []
    rng = np.random.default_rng(0)
    for i in range(n):
        dx, dy = (int(v) for v in rng.integers(0, 64, 2))
        photo = base.crop((dx, dy, dx + 448, dy + 448)).resize((640, 640), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=int(rng.integers(70, 95)))
        out.append(buf.getvalue())
    return out, "ui/assets/astronaut.jpg, shifted crops resized to 640×640 (FER2013 not available)"


def sequential(predictor, photos: list[bytes]) -> dict:
    """One ``Predictor.predict`` per photo, as a loop over the single-photo API would do."""
    stages = dict.fromkeys(("decode", "detect", "classify"), 0.0)
    per_photo = []
    t0, c0 = time.perf_counter(), time.process_time()
    for data in photos:
        r = predictor.predict(data)
        for k in stages:
            stages[k] += r.timings[k]
        per_photo.append([(f.box, f.ensemble) for f in r.faces])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "photos_per_s": len(photos) / wall, "stage_s": stages, "faces": per_photo}


def batched(predictor, photos: list[bytes], **options) -> dict:
    """The same photos through :func:`fer_core.inference.batch.predict_photos` (uploads in memory)."""
    from fer_core.inference.batch import BatchReport, expand_uploads, predict_photos

    exp = expand_uploads([(f"photo{i:04d}.jpg", p) for i, p in enumerate(photos)])
    report = BatchReport()
    t0, c0 = time.perf_counter(), time.process_time()
    rows = list(predict_photos(exp.sources, predictor, report=report, **options))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    classes = predictor.class_names
    per_photo: dict[str, list] = {}
    for row in rows:
        per_photo.setdefault(row["file"], []).append(((row["x"], row["y"], row["w"], row["h"]),
                                                      np.array([row[c] for c in classes])))
    return {"wall_s": wall, "cpu_s": cpu, "photos_per_s": len(photos) / wall, "stage_s": dict(report.seconds),
            "classify_calls": report.classify_calls,
            "faces": [per_photo[f"photo{i:04d}.jpg"] for i in range(len(photos))],
            "whole_image": report.whole_image}


def agreement(a: list, b: list) -> dict:
    """Same boxes per photo, and the largest probability difference between the two paths."""
    same_boxes = sum([tuple(x[0]) for x in pa] == [tuple(x[0]) for x in pb] for pa, pb in zip(a, b))
    diffs = [float(np.max(np.abs(np.asarray(x[1], np.float64) - np.asarray(y[1], np.float64))))
             for pa, pb in zip(a, b) for x, y in zip(pa, pb)]
    return {"photos_same_boxes": same_boxes, "photos": len(a), "max_abs_prob_diff": max(diffs) if diffs else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "photos.json"))
    args = p.parse_args(argv)

    from fer_core import bundled_runs
    from fer_core.inference.batch import BATCH_FACES, DETECT_WORKERS
    from fer_core.data.defaults import BUNDLED_PREDICT_DEFAULT
    from fer_core.inference.predictor import Predictor

    photos, origin = make_photos(args.photos)
    runs = [r for r in bundled_runs().runs if r.model_name == BUNDLED_PREDICT_DEFAULT]
    t = time.perf_counter()
    predictor = Predictor(runs)
    load_s = time.perf_counter() - t
    for data in photos[:3]:  # warm: the first predictions pay one-off set-up on new shapes
        predictor.predict(data)
    list(batched(predictor, photos[:8])["faces"])

    meter = CpuMeter()
    load_before = os.getloadavg()
    seq_rounds, bat_rounds = [], []
    for _ in range(args.rounds):
        seq_rounds.append(sequential(predictor, photos))
        bat_rounds.append(batched(predictor, photos))
        print(f"round {len(seq_rounds)}: sequential {seq_rounds[-1]['photos_per_s']:.2f} photos/s, "
              f"batched {bat_rounds[-1]['photos_per_s']:.2f} photos/s", file=sys.stderr)
    cpu = meter.stop()
    seq_med = statistics.median(r["photos_per_s"] for r in seq_rounds)
    bat_med = statistics.median(r["photos_per_s"] for r in bat_rounds)

    def stage_split(r: dict) -> dict:
        return {k: round(v / len(photos) * 1000, 2) for k, v in r["stage_s"].items()}

    seq_mid = sorted(seq_rounds, key=lambda r: r["photos_per_s"])[len(seq_rounds) // 2]
    bat_mid = sorted(bat_rounds, key=lambda r: r["photos_per_s"])[len(bat_rounds) // 2]
    results = {
        "what": "photos per second for single-face 640 px photos with the default model: one Predictor.predict "
                "per photo (sequential) vs fer_core.inference.batch.predict_photos (decode+detect on a thread pool, "
                "crops classified in batches while the pool detects the next photos)",
        "command": "python benchmarks/photos.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "photos": {"n": len(photos), "origin": origin,
                   "whole_image": bat_mid["whole_image"]},
        "model": [r.id for r in runs],
        "config": {"detect_workers": DETECT_WORKERS, "batch_faces": BATCH_FACES, "rounds": args.rounds},
        "headline": {
            "sequential_photos_per_s": round(seq_med, 2),
            "batched_photos_per_s": round(bat_med, 2),
            "speedup": round(bat_med / seq_med, 2),
            "target_photos_per_s": TARGET_PHOTOS_PER_S,
            "target_met": bat_med >= TARGET_PHOTOS_PER_S,
        },
        "rounds": {"sequential_photos_per_s": [round(r["photos_per_s"], 2) for r in seq_rounds],
                   "batched_photos_per_s": [round(r["photos_per_s"], 2) for r in bat_rounds]},
        "stage_ms_per_photo": {
            "note": "median round; sequential stages run one after another on one thread; batched read/decode/"
                    "detect/crop are summed over the pool's threads (they overlap each other and classify); "
                    "process_cpu = this process's CPU time per photo (all threads): the work, whatever the "
                    "machine's other load, while wall depends on how much of the 2 cores others leave",
            "sequential": {**stage_split(seq_mid), "wall": round(seq_mid["wall_s"] / len(photos) * 1000, 2),
                           "process_cpu": round(seq_mid["cpu_s"] / len(photos) * 1000, 2)},
            "batched": {**stage_split(bat_mid), "wall": round(bat_mid["wall_s"] / len(photos) * 1000, 2),
                        "process_cpu": round(bat_mid["cpu_s"] / len(photos) * 1000, 2),
                        "classify_calls": bat_mid["classify_calls"]},
        },
        "agreement": agreement(seq_mid["faces"], bat_mid["faces"]),
        "predictor_load_s": round(load_s, 2),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": [round(v, 2) for v in load_before],
                    "loadavg_after": [round(v, 2) for v in os.getloadavg()], **cpu},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    h = results["headline"]
    print(f"sequential {h['sequential_photos_per_s']} photos/s, batched {h['batched_photos_per_s']} photos/s "
          f"(×{h['speedup']}; target {TARGET_PHOTOS_PER_S} {'met' if h['target_met'] else 'NOT met'}); "
          f"others' CPU {cpu.get('others_busy_fraction')} → {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
