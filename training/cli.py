"""``python -m training``: train, evaluate and store FER models from the shell.

Examples::

    python -m training --list-models
    python -m training --data demo --models all --epochs 2 --weights none
    python -m training --data ../shared/datasets/fer2013/fer2013.npz --models baseline --epochs 30

Interrupted (Ctrl-C, the Train page's Cancel, SIGTERM), a scratch model keeps its last finished epoch:
the same command run again continues from there (see fer_core/fit/checkpoints.py).

Sweeps: ``--seeds 0,1,2`` trains each model once per seed; ``--engine ray`` runs each (model, seed) as a
Ray task, locally or on a cluster (``--ray-address auto``), and writes the same run folders
(see fer_core/fit/distributed.py). With Ray too, the same command continues an interrupted sweep: the driver
keeps each unfinished run's last checkpoint, shipped from the worker after every epoch.

Exit codes: 0 done, 2 bad input (one-line message on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
    # The defaults live in fer_core.data.defaults so the Train page offers the same ones (issue 11).
    from fer_core.compute.precision import PRECISIONS  # imports TensorFlow only when used
    from fer_core.data import defaults as D

    p = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help="dataset: 'demo' (built-in synthetic faces), an .npz, a folder of .npy "
                                  "files, an image-folder tree, or a FER2013 .csv")
    p.add_argument("--labels", default=None, metavar="ferplus|PATH",
                   help="another label set for the same faces: 'ferplus' = FER2013's faces with the FER+ crowd's "
                        "8-emotion votes (ferplus_votes.npz beside fer2013.npz; trained on the vote distribution, "
                        "scored against the majority), or a path to such a votes file")
    p.add_argument("--models", default="all", help="'all' (the seed's five) or comma-separated ids; see --list-models")
    p.add_argument("--list-models", action="store_true", help="print the registered model ids and exit")
    p.add_argument("--epochs", type=int, default=D.EPOCHS, help="training epochs (head epochs for transfer models)")
    p.add_argument("--batch-size", type=int, default=D.BATCH_SIZE, help="batch size")
    p.add_argument("--learning-rate", type=float, default=D.LEARNING_RATE, help="Adam learning rate")
    p.add_argument("--out", default="runs", help="folder that receives one run folder per model")
    p.add_argument("--weights", default="imagenet",
                   help="transfer backbones: 'imagenet' (Keras cache ~/.keras/models or download), "
                        "'none' (random init), or a path to a local weights file")
    p.add_argument("--image-size", type=int, default=None, help="model input side in pixels (default: 128, the model's default)")
    p.add_argument("--seed", type=int, default=0, help="random seed (data split, init, shuffling)")
    p.add_argument("--seeds", default=None, metavar="S,S,...",
                   help="a sweep: train each model once per seed (init and shuffling); the data split is the first "
                        "seed's, so all repeats share one dataset. Overrides --seed")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="'local': one model after another in this process; 'ray': each (model, seed) as a Ray task "
                        "(frozen backbones' features by Ray Data); needs: pip install -r requirements-ray.txt")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="--engine ray: the cluster to join ('auto' = the one `ray start` runs here, or host:port); "
                        "default: start a local Ray on this machine's cores")
    p.add_argument("--ray-cpus-per-task", type=int, default=1,
                   help="--engine ray: CPUs (TensorFlow threads) per training task and per feature-pass worker")
    p.add_argument("--patience", type=int, default=D.PATIENCE, help="early stopping patience on val_accuracy, best weights restored; 0 = off")
    p.add_argument("--class-weight", choices=D.CLASS_WEIGHTS, default="none",
                   help="'balanced' weights classes by inverse frequency (skewed data such as FER2013); 'sqrt' by its square root")
    p.add_argument("--augment", action="store_true", help="augment training images (flip, small rotation/zoom/contrast)")
    p.add_argument("--augment-mode", choices=D.AUGMENT_MODES, default="resample",
                   help="with --augment: 'resample' turns/zooms/shifts every face (a sub-pixel resample: a blur); "
                        "'photo' keeps half the faces sharp and gives some what photo crops get (fewer pixels, "
                        "blur, JPEG); 'aligned' is 'photo' where half the faces, drawn each epoch, are the app's "
                        "own crop of them (put in a photo, found by YuNet, levelled; cut once, about 0.1 s per "
                        "face per core, then cached). Scratch models only")
    p.add_argument("--augment-copies", type=int, default=2,
                   help="with --augment, frozen backbones cache this many augmented copies of the train split")
    p.add_argument("--lr-schedule", choices=D.LR_SCHEDULES, default="plateau", help="learning-rate schedule")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing of the cross-entropy loss")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout of the transfer models' head")
    p.add_argument("--fine-tune-layers", type=int, default=0,
                   help="transfer models: after the head, unfreeze the top K backbone layers (BatchNorm stays frozen); "
                        "fer_compact: K of its 8 conv layers, 8 = the whole trunk")
    p.add_argument("--fine-tune-epochs", type=int, default=5, help="epochs of the fine-tuning stage")
    p.add_argument("--fine-tune-learning-rate", type=float, default=1e-5, help="learning rate of the fine-tuning stage")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="compute dtype of scratch-model training and of the frozen backbones' feature pass: mixed "
                        "bfloat16 (float32 weights; faster on CPUs with AVX-512 BF16/AMX) or float32; 'auto' picks "
                        "bfloat16 only where the CPU has it natively. Heads, fine-tuning and saved models are float32")
    p.add_argument("--tta-flip", action="store_true",
                   help="compact: the saved model averages each face with its mirror image (test-time "
                        "augmentation inside the graph; twice the compute per face)")
    p.add_argument("--init-from", default=None, metavar="RUN_DIR",
                   help="scratch models: start from the trained weights of this run folder (same model, classes "
                        "and image size) and train another cycle; its epochs are kept at the start of the curves. "
                        "fer_compact: the compact (or fer_compact) run whose conv trunk it starts from, any class "
                        "set (default: the bundled models/compact, trained on FER2013)")
    p.add_argument("--demo-per-class", type=int, default=D.DEMO_PER_CLASS, help="--data demo: images per class")
    p.add_argument("--demo-size", type=int, default=D.DEMO_IMAGE_SIZE, help="--data demo: image side in pixels")
    p.add_argument("--cache-dir", default=None, help="feature cache folder (default $FER_CACHE_DIR or ~/.cache/fer-studio/features)")
    p.add_argument("--progress-file", default=None, help="also append progress events as JSON lines to this file (used by the app)")
    return p


def _terminate(signum, frame):
    # SIGTERM (the app's Cancel button, `kill`) unwinds like Ctrl-C so the
    # temporary run folder is removed and the lock released.
    raise KeyboardInterrupt


def parse_seeds(text: str | None, seed: int) -> list[int]:
    """``--seeds 0,1,2`` → [0, 1, 2]; without it, ``[--seed]``."""
    if text is None:
        return [seed]
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: expected distinct comma-separated integers, e.g. 0,1,2")
    return seeds


def _engine_error(args) -> str | None:
    """Checked before TensorFlow loads: Ray options that cannot work, one line each."""
    if args.engine != "ray":
        return "--ray-address needs --engine ray" if args.ray_address else None
    if args.ray_cpus_per_task < 1:
        return "--ray-cpus-per-task must be ≥ 1"
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return "--engine ray needs Ray, which is not installed here: pip install -r requirements-ray.txt"
    return None


def train_configs(args, names: list[str], seeds: list[int]) -> list:
    """One :class:`fer_core.fit.train.TrainConfig` per (model, seed), model-major, from parsed arguments.

    The one place a command line becomes training settings: the trainer builds
    its runs with it, and a recorded command (``metrics.json: command``) read
    back through :func:`build_parser` and this gives the settings it trained.
    """
    from fer_core.models import get_spec
    from fer_core.fit.train import TrainConfig

    return [TrainConfig(
        model=n, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        image_size=args.image_size, weights=args.weights, seed=seed, patience=args.patience,
        class_weight=args.class_weight, augment=args.augment, augment_mode=args.augment_mode, augment_copies=args.augment_copies,
        lr_schedule=args.lr_schedule, label_smoothing=args.label_smoothing, dropout=args.dropout,
        fine_tune_layers=args.fine_tune_layers if get_spec(n).is_transfer else 0,
        fine_tune_epochs=args.fine_tune_epochs, fine_tune_learning_rate=args.fine_tune_learning_rate,
        precision=args.precision, tta_flip=args.tta_flip, init_from=args.init_from,
    ) for n in names for seed in seeds]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds, args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = _engine_error(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from fer_core.errors import FERError
    from fer_core.models import get_spec, list_models, parse_model_list  # the zoo as data: no TensorFlow yet

    if args.list_models:
        for name in list_models():
            spec = get_spec(name)
            tag = "" if spec.in_all else "  (not in 'all')"
            print(f"{name:<20} {spec.description}{tag}")
        return 0
    if not args.data:
        print("error: --data is required (e.g. --data demo)", file=sys.stderr)
        return 2
    try:
        names = parse_model_list(args.models)  # a mistyped name is told at once, not after TensorFlow's import
    except FERError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from fer_core._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()

    from fer_core.fit.progress import ConsoleProgress, JsonlProgress, MultiProgress

    sinks = [ConsoleProgress()]
    if args.progress_file:
        sinks.append(JsonlProgress(args.progress_file))
    progress = MultiProgress(*sinks)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        from fer_core.data.datasets import load_dataset
        from fer_core.fit.features import FeatureCache
        from fer_core.fit.train import train_models

        if args.demo_per_class < 2 or args.demo_size < 16:
            raise FERError("--demo-per-class must be ≥ 2 and --demo-size ≥ 16")
        configs = train_configs(args, names, seeds)
        for c in configs:
            c.validate()
        # One dataset for the whole sweep (the first seed's split): the repeats differ only in
        # initialisation and shuffling, and share a fingerprint, so Compare groups them.
        ds = load_dataset(args.data, seed=seeds[0], demo_per_class=args.demo_per_class, demo_image_size=args.demo_size,
                          labels=args.labels)
        for w in ds.warnings:
            print(f"warning: {w}", file=sys.stderr)
        command = "python -m training " + shlex.join(argv)
        if args.engine == "ray":
            from fer_core.fit.distributed import train_models_ray

            train_models_ray(ds, configs, args.out, progress=progress, cache=FeatureCache(args.cache_dir),
                             command=command, address=args.ray_address, cpus_per_task=args.ray_cpus_per_task)
        else:
            train_models(ds, configs, args.out, progress=progress, cache=FeatureCache(args.cache_dir), command=command)
    except FERError as exc:
        progress.on_event({"event": "run_end", "status": "failed", "message": str(exc)})
        return 2
    except KeyboardInterrupt as exc:  # a checkpointed training says how far it got and how to go on
        note = getattr(exc, "note", None) or "interrupted; no partial run was kept"
        progress.on_event({"event": "run_end", "status": "cancelled", "message": note})
        return 130
    except MemoryError:
        progress.on_event({"event": "run_end", "status": "failed", "message": "out of memory: lower --batch-size or --image-size"})
        return 2
    except Exception as exc:  # a bug or an environment problem: still one line, details on request
        if os.environ.get("FER_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        progress.on_event({"event": "run_end", "status": "failed",
                           "message": f"unexpected {type(exc).__name__}: {first} (set FER_DEBUG=1 for the traceback)"})
        return 1
    return 0
