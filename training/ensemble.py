"""``python -m training.ensemble``: save the mean of several finished runs as ONE run folder.

    python -m training.ensemble runs/fer2013/<compact run A> runs/fer2013/<compact run B> \\
        --data ../shared/datasets/fer2013/fer2013.npz --out runs/fer2013
    python -m training.ensemble RUN_DIR RUN_DIR --data demo --out runs --name compact_x3
    python -m training.ensemble RUN_DIR --smooth 0.5 --data demo --out runs     # one run, blurred: compact_blur

The members must share their class names (same order), dataset fingerprint,
evaluated split and input shape. The saved ``model.keras`` is one Keras
functional model: one input (raw 0–255 pixels, the members' shared shape), each
member's model nested under a unique name (each carries its own preprocessing
and, for ``--tta-flip`` runs, its mirror averaging), and ``keras.layers.Average``
of their probabilities. One run with ``--smooth`` is allowed: that run behind the
input blur (a network trained with ``--augment`` reads sharp faces better so).
It loads with ``safe_mode=True`` like every run; before anything is written it
is reloaded and must give the mean of the members' probabilities on random
pixels (max difference ≤ 1e-5). Then it is scored on the split the members were
scored on, and written as a normal run folder (atomic), which
``python -m training.publish`` can copy into ``models/``.

Exit codes: 0 done, 2 bad input (one-line message on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Largest allowed |Δ probability| between the saved ensemble and the mean of its members.
TOLERANCE = 1e-5
DEFAULT_NAME = "ensemble"
KIND = "ensemble"  # config.json model.kind
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.ensemble", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="two or more finished run folders (one with --smooth: that run behind the blur)")
    p.add_argument("--data", required=True,
                   help="the dataset the members were trained on ('demo' rebuilds the members' demo data); "
                        "its fingerprint must be theirs")
    p.add_argument("--out", required=True, help="folder that receives the ensemble's run folder")
    p.add_argument("--name", default=None,
                   help="model id of the ensemble in the app (metrics.json 'model'; the run folder is "
                        "<time>_<name>_<fingerprint>); the app shows one run per id and dataset. Default: "
                        "<model>_ensemble when all members are one model (e.g. compact_ensemble), else ensemble; "
                        "<model>_blur for one run with --smooth")
    p.add_argument("--smooth", type=float, default=0.0, metavar="SIGMA",
                   help="blur the input by a Gaussian of SIGMA pixels before the members (0: off). Members "
                        "trained with --augment saw faces blurred by its bilinear resampling; choose SIGMA on "
                        "validation with benchmarks/ensemble_select.py --smooth")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the data split / demo data (default: the first member's training seed)")
    return p


def _terminate(signum, frame):
    raise KeyboardInterrupt  # unwinds RunWriter: no half-written folder


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    from fer_core.errors import FERError

    if _main_thread():  # main() called from a test's worker thread cannot set handlers
        signal.signal(signal.SIGTERM, _terminate)
    try:
        runs = check_members(args.runs, smooth=args.smooth)  # cheap checks first: no TensorFlow import for bad input
        args.name = args.name or default_name(runs, smooth=args.smooth)
        if not _NAME.match(args.name):
            raise FERError(f"--name '{args.name}': use letters, digits, '_', '-' or '.' (at most 64)")
        command = "python -m training.ensemble " + shlex.join(argv)
        if not 0 <= args.smooth <= 3:
            raise FERError(f"--smooth {args.smooth:g}: give a blur between 0 (off) and 3 pixels")
        build_ensemble_run(runs, args.data, args.out, name=args.name, seed=args.seed, smooth=args.smooth,
                           command=command)
    except FERError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no partial run was kept", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug or an environment problem: still one line, details on request
        if os.environ.get("FER_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"error: unexpected {type(exc).__name__}: {first} (set FER_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# --------------------------------------------------------------------------- checks

def check_members(paths: list[str], *, smooth: float = 0.0) -> list:
    """Load the member run folders and check they can be averaged; :class:`FERError` says why not.

    One folder is enough with ``smooth`` > 0 (the run behind the blur); without, it would be a copy of the run.
    """
    from fer_core.errors import FERError
    from fer_core.store.runs import load_run

    if len(paths) < (1 if smooth else 2):
        raise FERError("an ensemble needs at least two run folders (or one with --smooth SIGMA: that run "
                       "behind an input blur)")
    seen: dict[Path, str] = {}
    for p in paths:
        real = Path(p).resolve()
        if real in seen:
            raise FERError(f"{p}: given twice (as {seen[real]}); an ensemble of a run with itself is that run")
        seen[real] = p
    runs = [load_run(p) for p in paths]  # RunStoreError (a FERError) for a missing or broken folder
    first = runs[0]
    for run in runs:
        model = run.config.get("model")
        if not isinstance(model, dict) or "image_size" not in model:
            raise FERError(f"{run.id}: config.json names no model input size (model.image_size)")
        if run.head_only:
            raise FERError(f"{run.id}: a head-only published run; ensemble the training run it was published "
                           f"from ({run.metrics.get('published_from', 'see metrics.json published_from')})")
    for run in runs[1:]:
        if list(run.metrics["class_names"]) != list(first.metrics["class_names"]):
            raise FERError(f"runs '{first.id}' and '{run.id}' predict different classes "
                           f"({', '.join(first.metrics['class_names'])} vs {', '.join(run.metrics['class_names'])})")
        if run.fingerprint != first.fingerprint:
            raise FERError(f"runs '{first.id}' and '{run.id}' were trained on different data (dataset "
                           f"fingerprint {first.fingerprint} vs {run.fingerprint})")
        if _shape(run) != _shape(first):
            raise FERError(f"runs '{first.id}' and '{run.id}' take different inputs "
                           f"({'×'.join(map(str, _shape(first)))} vs {'×'.join(map(str, _shape(run)))})")
        if run.metrics.get("split", "test") != first.metrics.get("split", "test"):
            raise FERError(f"runs '{first.id}' and '{run.id}' were scored on different splits "
                           f"({first.metrics.get('split', 'test')} vs {run.metrics.get('split', 'test')})")
    return runs


def default_name(runs, *, smooth: float = 0.0) -> str:
    """``compact_ensemble`` for members of one model, else ``ensemble``; ``compact_blur`` for one blurred run.

    Not plain ``ensemble`` when it can be more precise: the FER2013 benchmark's ``ensemble`` is the
    app's mean of the bundled compact and baseline, and the app shows one run per model id.
    """
    names = {r.model_name for r in runs}
    if len(runs) == 1 and smooth:
        return f"{names.pop()}_blur"
    return f"{names.pop()}_{DEFAULT_NAME}" if len(names) == 1 else DEFAULT_NAME


def _shape(run) -> tuple[int, int, int]:
    m = run.config["model"]
    return int(m["image_size"]), int(m["image_size"]), int(m.get("channels", 3))


def _member_seed(run) -> int:
    cfg = run.config.get("train_config") or run.metrics.get("config") or {}
    return int(cfg.get("seed", 0)) if isinstance(cfg, dict) else 0


# --------------------------------------------------------------------------- model

def ensemble_model(models: list, names: list[str], *, name: str = DEFAULT_NAME, smooth: float = 0.0):
    """One functional model: shared input → [blur] → every member (nested, renamed ``names``) → mean of probabilities.

    ``smooth`` > 0: the raw pixels pass through :class:`~fer_core.models.layers.GaussianSmooth`
    of that sigma first (once, shared by all members).
    """
    import keras

    from fer_core.models.layers import GaussianSmooth

    shape = tuple(models[0].input_shape[1:])
    inputs = keras.Input(shape=shape, name="pixels")  # (B, S, S, C) raw 0–255
    x = GaussianSmooth(smooth, name="input_smooth")(inputs) if smooth else inputs  # same shape
    outs = []
    for model, member_name in zip(models, names):
        model.name = member_name  # nested models are layers of the ensemble: their names must be unique
        outs.append(model(x))
    if len(outs) == 1:  # one blurred run: Average needs two inputs; the same float32 probabilities, same name
        probs = keras.layers.Activation("linear", name="ensemble_mean", dtype="float32")(outs[0])
    else:
        probs = keras.layers.Average(name="ensemble_mean", dtype="float32")(outs)
    return keras.Model(inputs, probs, name=name)


def member_names(runs) -> list[str]:
    return [f"member{i}_{re.sub(r'[^A-Za-z0-9_]+', '_', r.model_name)}" for i, r in enumerate(runs, 1)]


def max_abs_diff_to_mean(ensemble, models, shape, seed: int = 0, smooth: float = 0.0) -> float:
    """Largest |Δp| between ``ensemble`` and the mean of ``models`` on one random uint8 batch (4, *shape).

    With ``smooth``, the members get the batch blurred by :func:`scipy.ndimage.gaussian_filter`
    (an independent implementation of the blur the ensemble holds).
    """
    x = np.random.default_rng(seed).integers(0, 256, (4, *shape)).astype(np.float32)
    seen = _reference_blur(x, smooth) if smooth else x  # what the members should receive
    want = np.mean([np.asarray(m(seen, training=False)) for m in models], axis=0)
    got = np.asarray(ensemble(x, training=False))
    if got.shape != want.shape:
        return float("inf")
    return float(np.max(np.abs(got - want)))


def _reference_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """(B, H, W, C) → same: SciPy's Gaussian over H and W, edges repeated, cut where GaussianSmooth cuts."""
    from scipy.ndimage import gaussian_filter

    from fer_core.models.layers import GaussianSmooth

    radius = GaussianSmooth(sigma).radius
    return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=radius / sigma).astype(np.float32)


# --------------------------------------------------------------------------- the command

def build_ensemble_run(runs, data: str, out: str | Path, *, name: str | None = None, seed: int | None = None,
                       smooth: float = 0.0, command: str | None = None, echo=print) -> Path:
    """Build, verify, score and write the ensemble of ``runs`` (checked by :func:`check_members`); its path.

    ``smooth``: sigma (pixels) of the input blur in front of the members, 0 for none.
    """
    from fer_core._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fer_core.data.datasets import load_dataset
    from fer_core.errors import DatasetError, FERError
    from fer_core.fit.evaluation import classification_metrics, paper_set_scores
    from fer_core.compute.forward import compiled_forward, latency_ms, predict_batches
    from fer_core.data.preprocess import prepare_images
    from fer_core.store.runs import FULL_MODEL_FILE, Run, RunWriter, load_run, new_run_id

    first = runs[0]
    name = name or default_name(runs)
    split = first.metrics.get("split", "test")
    shape = _shape(first)
    seed = _member_seed(first) if seed is None else seed
    demo = {k: v for k, v in first.demo_params().items() if k != "seed"} if str(data) == "demo" else {}
    labels = first.metrics.get("dataset", {}).get("labels")  # e.g. "ferplus": the members' label set
    ds = load_dataset(data, seed=seed, labels=labels, **demo)
    for w in ds.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if ds.fingerprint != first.fingerprint:
        hint = (f" (rebuilt with {demo['demo_per_class']} per class, {demo['demo_image_size']} px, seed {seed}; "
                "try --seed)" if demo else "")
        raise DatasetError(f"{data}: dataset fingerprint {ds.fingerprint} is not the members' {first.fingerprint}"
                           f"{hint}")
    if split not in ds.splits:
        raise DatasetError(f"{data}: has no '{split}' split, the one the members were scored on")

    models = [r.load_model() for r in runs]
    for run, model in zip(runs, models):
        have = tuple(int(d) for d in model.input_shape[1:])
        if have != shape:
            raise FERError(f"{run.id}: model.keras takes {'×'.join(map(str, have))}, config.json says "
                           f"{'×'.join(map(str, shape))}")
    ensemble = ensemble_model(models, member_names(runs), name=name, smooth=smooth)

    xs, ys = ds.splits[split]
    x = prepare_images(xs, shape[0], shape[2])  # uint8 (N, S, S, C), as the trainer scored the members
    with RunWriter(out, new_run_id(name, ds.fingerprint)) as writer:
        path = writer.tmp / FULL_MODEL_FILE
        ensemble.save(path)
        # What is checked, scored and timed is the saved file, loaded the way the app loads it.
        loaded = Run(path=writer.tmp, metrics={}, history={}, config={}).load_model()
        diff = max_abs_diff_to_mean(loaded, models, shape, smooth=smooth)
        if not diff <= TOLERANCE:
            raise FERError(f"the saved ensemble disagrees with the mean of its members (max |Δp| {diff:.2e} > "
                           f"{TOLERANCE:g}); nothing written")
        forward = compiled_forward(loaded)
        probs = predict_batches(forward, x, 128)
        metrics = classification_metrics(ys, probs, ds.class_names)
        if (paper := paper_set_scores(ds, split, probs)) is not None:
            metrics["ferplus_paper"] = paper
        size = path.stat().st_size
        ms = round(latency_ms(forward, shape), 2)
        members = [_member_record(r) for r in runs]
        metrics.update({
            "model": name,
            "kind": KIND,
            "split": split,
            "members": members,
            "ensemble_check": {"max_abs_diff": diff, "tolerance": TOLERANCE},
            # An ensemble is not trained; its cost is its members' training (for the leaderboard's column).
            "train_seconds": round(sum(float(m["train_seconds"] or 0) for m in members), 2),
            "params": int(loaded.count_params()),
            "trainable_params": int(loaded.count_params()),
            "model_size_bytes": size,
            "latency_ms": ms,
            "epochs_run": None,
            "best_epoch": None,
            "dataset": dict(first.metrics["dataset"]),
            "config": {"seed": seed, "members": [r.id for r in runs], "smooth": smooth},
            "command": command,
            "created": time.time(),
        })
        writer.write_json("metrics.json", metrics)
        # No epochs of its own: empty curves (Compare draws none), the members' best epochs for reference.
        writer.write_json("history.json", {
            "loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "best_epoch": None,
            "members": {r.id: {"epochs": len(r.history.get("loss") or []), "best_epoch": r.history.get("best_epoch")}
                        for r in runs},
        })
        writer.write_json("config.json", {
            "model": {"name": name, "kind": KIND, "image_size": shape[0], "channels": shape[2],
                      "gradcam_layer": None,  # the members' layers are nested: Grad-CAM says it is unavailable
                      "backbone": None,
                      "input_smooth_sigma": smooth,  # 0: none
                      "members": [{"run": r.id, "model": r.model_name, "layer": n,
                                   "gradcam_layer": (r.config.get("model") or {}).get("gradcam_layer")}
                                  for r, n in zip(runs, member_names(runs))]},
            "n_classes": len(ds.class_names),
            "class_names": list(ds.class_names),
        })
        load_run(writer.tmp)  # the folder reads as a run before it is published
        final = writer.commit()
    _report(runs, metrics, split, final, echo)
    return final


def _member_record(run) -> dict:
    """What the ensemble keeps of a member; ``setting`` and ``seed`` let the ensemble's seed repeats group
    (:func:`fer_core.store.seeds.setting`) where the members themselves are not shipped."""
    from fer_core.store import seeds
    from fer_core.store.publish import with_complete_init_from

    m = run.metrics
    return {"run": run.id, "path": str(run.path), "model": run.model_name,
            "setting": seeds.setting(with_complete_init_from(run)), "seed": seeds.seed_of(run),
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"], "latency_ms": m.get("latency_ms"), "params": m.get("params"),
            "model_size_bytes": m.get("model_size_bytes"),
            "train_seconds": m.get("train_seconds_total", m.get("train_seconds")),
            "command": m.get("command"),
            "published_from": m.get("published_from") or m.get("bundled_from")}


def _report(runs, metrics: dict, split: str, path: Path, echo) -> None:
    n = metrics.get("n_samples", 0)
    width = max(len(r.id) for r in runs)
    blur = metrics["config"].get("smooth") or 0
    single = len(runs) == 1  # training.ensemble RUN --smooth: one run behind the blur
    echo(f"ensemble of {len(runs)} run{'' if single else 's'} on {metrics['dataset'].get('name', '?')} ({split} split, {n:,} images; "
         "members as recorded in their metrics.json" + (f"; input blurred, σ = {blur:g} px" if blur else "") + "):")
    for r in runs:
        echo(f"  {r.id:<{width}}  accuracy {r.metrics['accuracy']:.4f}  macro-F1 {r.metrics['macro_f1']:.4f}"
             + (f"  {r.metrics['latency_ms']:.2f} ms/face" if r.metrics.get("latency_ms") is not None else ""))
    best = max(float(r.metrics["accuracy"]) for r in runs)
    label = metrics["model"] if DEFAULT_NAME in metrics["model"] or single else f"ensemble ({metrics['model']})"
    echo(f"  {label:<{width}}  accuracy {metrics['accuracy']:.4f}  "
         f"macro-F1 {metrics['macro_f1']:.4f}  {metrics['latency_ms']:.2f} ms/face  "
         f"({100 * (metrics['accuracy'] - best):+.1f} pt vs "
         + ("the run without the blur)" if single else "the best member)"))
    echo(f"model.keras {metrics['model_size_bytes'] / 1e6:.1f} MB, {metrics['params']:,} params, "
         f"{metrics['latency_ms']:.2f} ms/face (median of warm single-face calls)")
    echo(f"saved {path}")


if __name__ == "__main__":
    sys.exit(main())
