"""Section ``train_all_five``: ``python -m training`` as a user runs it, wall time.

The CLI runs as a subprocess (import, demo data generation, all models, saving);
the same helper trains the tiny runs the prediction sections use when neither
``--runs`` nor this section provides any.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .common import FIVE, ROOT, SEED_SET_IMAGES


def _cli_train(cfg: dict, tmp: Path, tag: str, per_class: int, epochs: int, models: tuple[str, ...]) -> dict:
    out, cache, prog = tmp / f"runs_{tag}", tmp / f"cache_{tag}", tmp / f"{tag}.jsonl"
    size = cfg["image_size"]
    cmd = [sys.executable, "-m", "training", "--data", "demo", "--demo-per-class", str(per_class),
           "--epochs", str(epochs), "--weights", "none", "--out", str(out), "--cache-dir", str(cache),
           "--progress-file", str(prog)]
    if tuple(models) != FIVE:
        cmd += ["--models", ",".join(models)]
    if size != 128:
        cmd += ["--demo-size", str(size), "--image-size", str(size)]
    env = {**os.environ, "FER_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    launched = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"training CLI exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    from fer_core.fit.progress import read_events
    from fer_core.store.runs import list_runs

    events = read_events(prog)
    start = next((e for e in events if e.get("event") == "run_start"), None)
    listing = list_runs(out)
    per_model = {}
    for run in listing.runs:
        m = run.metrics
        fc = m.get("feature_cache") or {}
        per_model[run.model_name] = {
            "train_seconds": m.get("train_seconds"), "feature_seconds": fc.get("seconds"),
            "epochs_run": m.get("epochs_run"), "test_accuracy": m.get("accuracy"),
            "latency_ms": m.get("latency_ms"), "model_size_mb": round(m.get("model_size_bytes", 0) / 2 ** 20, 1),
            "params": m.get("params"), "run_dir": str(run.path)}
    n_images = sum(start["dataset"]["split_sizes"].values()) if start else per_class * 8
    return {"command": "python -m training " + " ".join(cmd[3:]), "wall_s": wall,
            "startup_and_data_s": (start["time"] - launched) if start else None,
            "images": n_images, "image_size": size, "epochs": epochs, "models": list(models),
            "per_model": per_model, "runs_dir": str(out)}


def section_train_all_five(cfg: dict, tmp: Path, mode: str) -> dict:
    res = _cli_train(cfg, tmp, "train5", cfg["train_per_class"], cfg["train_epochs"], cfg["models"])
    res["measured"] = "wall_s: subprocess wall time of the CLI (import, demo data generation, all models, saving)"
    res["train_all_five_s"] = res["wall_s"]
    if res["images"] != SEED_SET_IMAGES:
        res["note"] = (f"measured on {res['images']} images, not the seed-sized {SEED_SET_IMAGES}: not comparable "
                       "with the target; efficiency.derived_backbone_pass_s_at_5856 estimates the dominant part")
    return res
