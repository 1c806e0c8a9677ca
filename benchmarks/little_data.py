"""Little data: ``compact`` from scratch vs ``fer_compact`` (the bundled FER2013 trunk + a new head).

The question: with only a few hundred labelled faces per class, does starting
from the bundled ``models/compact`` trunk beat training the same network from
scratch? Each condition trains through the real trainer (``fer_core.fit.train.train_one``)
on a seeded, stratified sample of FER2013's *train* split (``--per-class`` faces
per class), picks nothing on test, and is scored on FER2013's full *test* split
(PrivateTest, 3,589 faces, never used for training or selection):

* ``scratch``: ``compact`` from random weights;
* ``frozen``: ``fer_compact``, trunk frozen, new head on cached trunk features;
* ``fine_tuned``: the same head, then the whole trunk's 8 convolutions fine-tuned
  (BatchNorm frozen) for ``--fine-tune-epochs`` at ``--fine-tune-lr``.

Same epochs, batch size, learning rate, schedule (cosine), label smoothing and
augmentation for all; no early stopping (``patience=0``: every condition trains
its full epochs and keeps its last weights), so nothing is selected on any split.
Validation = ``--val-per-class`` faces per class from PublicTest (only logged).

Caveat, recorded in the JSON: the bundled trunk was trained on the *full*
FER2013 train split (28,709 faces), so it has seen every training face sampled
here (with their labels). Test is still unseen by all conditions; the
comparison is "in-domain pretrained vs from scratch", like ImageNet
pretraining, not "a trunk that never saw FER2013".

A second part checks a different class set (C ≠ 7): FER2013 remapped to 4
classes (positive = happy; surprise; negative = angry + disgust + fear + sad;
neutral), ``--merged-per-class`` faces per merged class, the same three conditions.

    python benchmarks/little_data.py                       # 100 and 300 per class, seed 0
    python benchmarks/little_data.py --per-class 100 --epochs 30 --seeds 0,1

Writes ``benchmarks/results/little_data.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.npz"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "little_data.json"
FER7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: FER2013 label → merged class: positive = happy, surprise, negative = angry+disgust+fear+sad, neutral.
MERGED_NAMES = ("positive", "surprise", "negative", "neutral")
MERGE = np.array([2, 2, 2, 0, 2, 1, 3])


def sample_per_class(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` items of each class (all of a class that has fewer), sorted."""
    picks = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picks.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.concatenate(picks))


def little_dataset(full, per_class: int, val_per_class: int, seed: int, merged: bool = False):
    """A :class:`fer_core.data.datasets.Dataset`: sampled train/validation, the full test split (optionally 4 merged classes)."""
    from fer_core.data.datasets import Dataset

    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", per_class), ("validation", val_per_class), ("test", None)):
        x, y = full.splits[split]
        if merged:
            y = MERGE[y]
        idx = np.arange(len(y)) if n is None else sample_per_class(y, n, rng)
        splits[split] = (x[idx], y[idx].astype(np.int64))
    names = MERGED_NAMES if merged else tuple(full.class_names)
    tag = f"{'merged4' if merged else 'fer2013'}-{per_class}pc-s{seed}"
    return Dataset(name=f"fer2013 little ({tag})", source=f"{full.source} [{tag}]", class_names=names, splits=splits)


def conditions(args) -> dict:
    """Condition name → TrainConfig overrides (everything else shared)."""
    return {
        "scratch": {"model": "compact"},
        "frozen": {"model": "fer_compact", "init_from": args.source},
        "fine_tuned": {"model": "fer_compact", "init_from": args.source, "fine_tune_layers": args.fine_tune_layers,
                       "fine_tune_epochs": args.fine_tune_epochs, "fine_tune_learning_rate": args.fine_tune_lr},
    }


def run_condition(ds, name: str, overrides: dict, args, seed: int, out_dir: Path, cache) -> dict:
    from fer_core.fit.train import TrainConfig, train_one

    cfg = TrainConfig(epochs=args.epochs, batch_size=64, learning_rate=args.learning_rate, seed=seed, patience=0,
                      augment=True, lr_schedule="cosine", label_smoothing=0.1, class_weight="none", **overrides)
    t0 = time.time()
    path = train_one(ds, cfg, out_dir, cache=cache)
    wall = time.time() - t0
    m = json.loads((path / "metrics.json").read_text())
    row = {"condition": name, "model": m["model"], "accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4),
           "per_class_f1": {c: round(v["f1"], 3) for c, v in m["per_class"].items()},
           "train_seconds": m["train_seconds"], "wall_seconds": round(wall, 1), "epochs_run": m["epochs_run"],
           "trainable_params": m["trainable_params"], "train_precision": m["train_precision"],
           "trunk": (m.get("trunk_from") or {}).get("trunk", "random init (from scratch)"),
           "dataset_fingerprint": m["dataset"]["fingerprint"], "split_sizes": m["dataset"]["split_sizes"]}
    print(f"  {ds.name:<40} {name:<11} acc {row['accuracy']:.4f}  macro-F1 {row['macro_f1']:.4f}  "
          f"{row['train_seconds']:.0f} s", flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="FER2013 .npz (train/validation/test)")
    p.add_argument("--per-class", default="100,300", help="comma-separated faces per class in train")
    p.add_argument("--epochs", type=int, default=30, help="epochs of every condition (head epochs for fer_compact)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (sampling, initialisation, shuffling)")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--fine-tune-layers", type=int, default=8, help="fine_tuned: top K of the trunk's 8 convs")
    p.add_argument("--fine-tune-epochs", type=int, default=10)
    p.add_argument("--fine-tune-lr", type=float, default=1e-4)
    p.add_argument("--val-per-class", type=int, default=50, help="validation faces per class (from PublicTest; logged only)")
    p.add_argument("--merged-per-class", type=int, default=300, help="4-class remapped part: faces per merged class; 0 = skip")
    p.add_argument("--source", default=str(ROOT / "models" / "compact"), help="run folder whose trunk fer_compact uses")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)

    from fer_core._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fer_core import load_dataset, load_run
    from fer_core.fit.features import FeatureCache

    t_start = time.time()
    full = load_dataset(args.data)
    src = load_run(args.source)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    per_classes = [int(s) for s in args.per_class.split(",") if s.strip()]
    results = {"seven_classes": [], "merged_four_classes": []}
    with tempfile.TemporaryDirectory(prefix="little-data-") as tmp:
        tmp = Path(tmp)
        cache = FeatureCache(tmp / "cache")
        for seed in seeds:
            for n in per_classes:
                ds = little_dataset(full, n, args.val_per_class, seed)
                for name, over in conditions(args).items():
                    results["seven_classes"].append({"per_class": n, "seed": seed,
                                                     **run_condition(ds, name, over, args, seed, tmp / "runs", cache)})
            if args.merged_per_class:
                ds = little_dataset(full, args.merged_per_class, args.val_per_class, seed, merged=True)
                for name, over in conditions(args).items():
                    results["merged_four_classes"].append({"per_class": args.merged_per_class, "seed": seed,
                                                           **run_condition(ds, name, over, args, seed, tmp / "runs", cache)})

    def summary(rows):
        out = {}
        for r in rows:
            out.setdefault(f"{r['per_class']}/{r['condition']}", []).append(r)
        return {k: {"accuracy_mean": round(float(np.mean([r["accuracy"] for r in v])), 4),
                    "macro_f1_mean": round(float(np.mean([r["macro_f1"] for r in v])), 4),
                    "accuracy_std": round(float(np.std([r["accuracy"] for r in v])), 4),
                    "seeds": len(v), "train_seconds_mean": round(float(np.mean([r["train_seconds"] for r in v])), 1)}
                for k, v in out.items()}

    import tensorflow as tf

    doc = {
        "benchmark": "little_data",
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "total_seconds": round(time.time() - t_start, 1),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_avg_at_end": os.getloadavg(), "tensorflow": tf.__version__},
        "command": "python benchmarks/little_data.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": {"per_class": per_classes, "epochs": args.epochs, "seeds": seeds, "batch_size": 64,
                   "learning_rate": args.learning_rate, "lr_schedule": "cosine", "label_smoothing": 0.1,
                   "augment": True, "patience": 0, "class_weight": "none", "val_per_class": args.val_per_class,
                   "fine_tune_layers": args.fine_tune_layers, "fine_tune_epochs": args.fine_tune_epochs,
                   "fine_tune_learning_rate": args.fine_tune_lr, "merged_per_class": args.merged_per_class,
                   "merged_classes": {"positive": ["happy"], "surprise": ["surprise"],
                                      "negative": ["angry", "disgust", "fear", "sad"], "neutral": ["neutral"]}},
        "dataset": {"path": args.data, "fingerprint": full.fingerprint, "split_sizes": full.describe()["split_sizes"],
                    "train_from": "train (Training)", "validation_from": "validation (PublicTest), logged only",
                    "evaluated_on": "test (PrivateTest), all faces"},
        "source": {"run": src.id, "path": args.source, "dataset_fingerprint": src.fingerprint,
                   "test_accuracy": src.metrics["accuracy"], "trained_on": src.metrics["dataset"]["split_sizes"]},
        "caveat": ("The source trunk (bundled models/compact) was trained on the full FER2013 train split, so it has "
                   "seen every training face sampled here; test (PrivateTest) is unseen by all conditions. This "
                   "measures in-domain pretraining (like ImageNet pretraining), not a trunk new to FER2013."),
        "seven_classes": results["seven_classes"],
        "merged_four_classes": results["merged_four_classes"],
        "summary": {"seven_classes": summary(results["seven_classes"]),
                    "merged_four_classes": summary(results["merged_four_classes"])},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out} ({doc['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
