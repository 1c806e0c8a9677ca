#!/usr/bin/env python
"""Scaling out with Ray: a small seed sweep and the frozen-backbone feature pass, local vs 1 and 2 Ray workers.

    python benchmarks/scaling.py                       # → benchmarks/results/scaling.json (about 6 minutes on 2 cores)
    python benchmarks/scaling.py --quick --out /tmp/scaling.json

Every measurement runs in a fresh Python process (TensorFlow, Ray and Keras state
start cold each time, as for a user), one after another:

* **sweep**: ``python -m training``'s ``main`` on a small sweep (demo faces,
  ``baseline,compact`` × seeds 0,1) with ``--engine local``, and with
  ``--engine ray`` on a local Ray of 1 and of 2 CPUs (one task per CPU, one
  TensorFlow thread per task). Wall time of the sweep itself; Ray's start-up
  and the imports are reported apart. The runs of each engine are compared
  per (model, seed): same metrics is the determinism claim.
* **features**: a ``resnet50v2`` backbone (``--weights none``: ImageNet
  weights cannot be downloaded here; the compute is the same) at 128 px over
  768 demo faces, by ``compute_features`` (the local path, TensorFlow on all
  cores) and by :func:`fer_core.fit.distributed.feature_pass` with 1 and 2 Ray
  Data actors (1 CPU each). Each actor records its batches (start, end,
  images), so start-up (Ray Data planning, actor processes importing
  TensorFlow, loading the backbone) and compute are reported apart: the
  per-worker rate is images / busy seconds. A cluster of N machines of C
  cores is projected from those.

Other jobs may share the machine: the load average is recorded before and
after each measurement, and the JSON says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SWEEP = ["--data", "demo", "--demo-per-class", "20", "--demo-size", "48", "--image-size", "48", "--epochs", "3",
         "--patience", "0", "--models", "baseline,compact", "--seeds", "0,1"]
BACKBONE, FEATURE_SIZE = "resnet50v2", 128
FER2013_IMAGES = 35887


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _init_ray(workers: int) -> float:
    import logging

    import ray

    t = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    return time.perf_counter() - t


# --------------------------------------------------------------------------- one measurement (child process)

def one_sweep(engine: str, workers: int, out: str) -> dict:
    t0 = time.perf_counter()
    from fer_core._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from training.cli import main

    rec = {"engine": engine, "workers": workers if engine == "ray" else None, "import_seconds": time.perf_counter() - t0}
    args = [*SWEEP, "--out", out]
    if engine == "ray":
        rec["ray_init_seconds"] = _init_ray(workers)
        args += ["--engine", "ray"]
    load0, t = _load(), time.perf_counter()
    code = main(args)
    rec.update(sweep_seconds=time.perf_counter() - t, exit_code=code, load_before=load0, load_after=_load())
    return rec


def one_features(path: str, workers: int, n: int) -> dict:
    t0 = time.perf_counter()
    from fer_core._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import numpy as np

    from fer_core.fit import distributed
    from fer_core.data.datasets import load_dataset
    from fer_core.fit.features import compute_features
    from fer_core.models import create_model, split_transfer_model
    from fer_core.data.preprocess import prepare_images

    ds = load_dataset("demo", seed=0, demo_per_class=max(2, -(-n // 8)), demo_image_size=64)
    images = prepare_images(ds.splits["train"][0], FEATURE_SIZE, 3)
    images = np.concatenate([images] * (-(-n // len(images))))[:n]
    keras.utils.set_random_seed(0)
    features_model, _ = split_transfer_model(create_model(BACKBONE, ds.n_classes, image_size=FEATURE_SIZE,
                                                          weights="none"))
    rec = {"path": path, "workers": workers if path == "ray" else None, "images": n,
           "setup_seconds": time.perf_counter() - t0}
    if path == "ray":
        log = Path(os.environ["SCALING_FEATURES_OUT"]).with_suffix(".batches")
        log.write_text("")

        class TimedActor(distributed.BackboneActor):
            """Records each batch's (worker pid, start, end, images): per-worker compute apart from start-up."""

            def __call__(self, batch):
                start = time.time()
                out = super().__call__(batch)
                with open(log, "a") as f:
                    f.write(json.dumps([os.getpid(), start, time.time(), len(batch["data"])]) + "\n")
                return out

        distributed.BackboneActor = TimedActor  # defined in __main__: shipped to the actors by value
        rec["ray_init_seconds"] = _init_ray(workers)
        load0, t = _load(), time.time()
        got, _ = distributed.feature_pass(features_model, {"train": images}, workers=workers)
        end = time.time()
        feats = got["train"]
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        per = {}
        for pid, a, b, k in rows:
            per.setdefault(pid, [0, 0.0])
            per[pid][0] += k
            per[pid][1] += b - a
        first = min(r[1] for r in rows)
        rec.update(seconds=end - t, start_up_seconds=first - t, compute_window_seconds=max(r[2] for r in rows) - first,
                   per_worker=[{"images": k, "busy_seconds": s, "images_per_second": k / s} for k, s in per.values()])
    else:
        load0, t = _load(), time.time()
        feats = compute_features(features_model, images)
        rec.update(seconds=time.time() - t, start_up_seconds=0.0, compute_window_seconds=time.time() - t)
    rec.update(load_before=load0, load_after=_load())
    np.save(os.environ["SCALING_FEATURES_OUT"], feats[:64])  # the parent checks ray against local
    return rec


# --------------------------------------------------------------------------- the parent

def _child(*args: str, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {}), "CI": "true"}, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"measurement {args} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def _runs(out: Path) -> dict:
    found = {}
    for p in out.iterdir():
        if p.is_dir() and not p.name.startswith("."):
            m = json.loads((p / "metrics.json").read_text())
            h = json.loads((p / "history.json").read_text())
            found[f"{m['model']}/seed{m['config']['seed']}"] = {"accuracy": m["accuracy"], "loss": m["loss"],
                                                                "confusion_matrix": m["confusion_matrix"],
                                                                "history": {k: h[k] for k in ("loss", "val_loss")}}
    return found


def _compare(a: dict, b: dict) -> dict:
    diffs = {}
    for key in sorted(a):
        x, y = a[key], b[key]
        hist = max(abs(u - v) for k in x["history"] for u, v in zip(x["history"][k], y["history"][k]))
        diffs[key] = {"max_abs_diff_test_loss": abs(x["loss"] - y["loss"]), "max_abs_diff_history_loss": hist,
                      "same_accuracy": x["accuracy"] == y["accuracy"],
                      "same_confusion_matrix": x["confusion_matrix"] == y["confusion_matrix"]}
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling.json"))
    ap.add_argument("--quick", action="store_true", help="smaller feature batches (a smoke run, not for the record)")
    ap.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        kind, *rest = args.one
        rec = one_sweep(rest[0], int(rest[1]), rest[2]) if kind == "sweep" else one_features(rest[0], int(rest[1]), int(rest[2]))
        print(json.dumps(rec))
        return 0

    import numpy as np

    from benchmarks.machine import cpu_model

    n_images = 96 if args.quick else 768
    result = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                          "load_average_at_start": _load(),
                          "note": "a shared machine: other jobs ran while measuring; see load_before/load_after "
                                  "(1, 5, 15-minute load averages) of every measurement"},
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sweeps, runs = [], {}
        for engine, workers in (("local", 0), ("ray", 1), ("ray", 2)):
            out = tmp / f"sweep-{engine}-{workers}"
            rec = _child("sweep", engine, str(workers), str(out))
            name = "local" if engine == "local" else f"ray_{workers}"
            runs[name] = _runs(out)
            sweeps.append(rec)
            print(f"sweep {name}: {rec['sweep_seconds']:.1f} s (load {rec['load_before']})", file=sys.stderr)
        result["sweep"] = {
            "args": " ".join(SWEEP), "runs": 4, "measurements": sweeps,
            "same_seed_local_vs_ray": {name: _compare(runs["local"], runs[name]) for name in ("ray_1", "ray_2")},
        }
        feats, passes = {}, []
        for path, workers in (("local", 0), ("ray", 1), ("ray", 2)):
            f = tmp / f"f-{path}-{workers}.npy"
            rec = _child("features", path, str(workers), str(n_images), env={"SCALING_FEATURES_OUT": str(f)})
            rec["images_per_second"] = n_images / rec["seconds"]
            rec["images_per_second_compute_window"] = n_images / rec["compute_window_seconds"]
            rec["max_abs_diff_vs_local"] = float(np.abs(np.load(f) - feats["local"]).max()) if feats else 0.0
            feats[path if path == "local" else f"ray_{workers}"] = np.load(f)
            passes.append(rec)
            print(f"features {path} {workers}: {n_images} images in {rec['seconds']:.1f} s "
                  f"(compute window {rec['compute_window_seconds']:.1f} s)", file=sys.stderr)
    local, one, two = passes
    r1 = one["per_worker"][0]["images_per_second"]
    fixed = max(one["start_up_seconds"], two["start_up_seconds"])
    result["features"] = {
        "backbone": f"{BACKBONE} (--weights none) at {FEATURE_SIZE} px, float32", "images": n_images,
        "measurements": passes,
        "summary": {
            "local_images_per_second": local["images_per_second"],
            "ray_1_worker_images_per_second_incl_start_up": one["images_per_second"],
            "ray_1_worker_images_per_second_compute": one["images_per_second_compute_window"],
            "ray_2_workers_images_per_second_incl_start_up": two["images_per_second"],
            "ray_2_workers_images_per_second_compute": two["images_per_second_compute_window"],
            "two_worker_speedup_compute": two["images_per_second_compute_window"] / one["images_per_second_compute_window"],
            "start_up_seconds_1_worker": one["start_up_seconds"], "start_up_seconds_2_workers": two["start_up_seconds"],
            "features_equal_to_local": all(p["max_abs_diff_vs_local"] <= 1e-5 for p in passes),
        },
        "cluster_projection": {
            "per_worker_images_per_second": r1, "fixed_seconds": fixed,
            "formula": "seconds ≈ fixed + images / (machines × cores × per_worker)",
            "fer2013_seconds": {f"{m} machines × {c} cores": fixed + FER2013_IMAGES / (m * c * r1)
                                for m, c in ((1, 2), (4, 8), (16, 8))},
            "caveat": "per-worker rate from the 1-worker run's busy time on this shared machine; start-up is the "
                      "time to the first batch (Ray Data planning, actor processes importing TensorFlow, loading "
                      "the backbone, tracing); moving images and features over a real network is not measured",
        },
    }
    result["load_average_at_end"] = _load()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
