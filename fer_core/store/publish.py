"""Publishable runs: run folders small enough for a Git repository (and so Streamlit Community Cloud).

A transfer run stores its whole model, 76–210 MB, almost all of it the frozen
ImageNet backbone that anyone can fetch from Keras. GitHub refuses files over
100 MiB, so such a run cannot ship in a repo as is. Publishing it writes a
**head-only** run instead::

    <dest>/head.weights.h5   the trained head (head_bn, head_dropout, head_dense): a few kB
    <dest>/backbone.json     which backbone: keras.applications class, ImageNet file name,
                             its sha256, image size, classes… (:func:`backbone_reference`)
    <dest>/metrics.json, history.json, config.json   as in every run

:meth:`fer_core.store.runs.Run.load_model` rebuilds the full model from these
(:func:`fer_core.models.head_only.load_head_only`): the
backbone architecture from ``keras.applications`` with the ImageNet file from
Keras' cache (downloaded there once when online), refused unless its sha256 is
the one recorded, then the head weights. No step deserialises code, so the
``safe_mode=True`` guarantee of ``model.keras`` runs holds.

Only runs whose backbone is exactly the public ImageNet file qualify: frozen
(no fine-tuning: fine-tuned layers differ from the file) and trained with
``--weights imagenet``. Every other run is published as a slimmed full model
(architecture + weights, no optimizer state). Either way the published run's
outputs are checked against the original's before anything is replaced.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FERError, ModelError
from .runs import BACKBONE_FILE, FULL_MODEL_FILE, HEAD_FILE, HEAD_ONLY_FORMAT, REPEATS_DIR, Run, load_run

#: GitHub rejects pushes with a file over 100 MiB.
GITHUB_FILE_LIMIT = 100 * 1024 * 1024
FORMAT = HEAD_ONLY_FORMAT  # backbone.json's format; read back by fer_core.store.runs.read_reference
#: Largest allowed difference between the published and the original model's probabilities.
TOLERANCE = 1e-5


class PublishError(FERError):
    """A run cannot be published (too large, disagrees with the original, bad destination)."""


@dataclass
class Published:
    """What :func:`publish_run` wrote."""

    source: Path
    dest: Path
    kind: str  # "head-only" or "full"
    size_bytes: int  # the published model files on disk
    replaced_bytes: int  # the source run's model file(s)
    backbone_file: str | None = None
    backbone_bytes: int | None = None
    max_abs_diff: float = 0.0

    def describe(self) -> str:
        mb = lambda n: f"{n / 1e6:.2f} MB" if n < 1e6 else f"{n / 1e6:.1f} MB"  # noqa: E731
        line = f"published {self.source} → {self.dest}: {self.kind} {mb(self.size_bytes)}"
        if self.kind == "head-only":
            line += f" (+ {self.backbone_file}, {mb(self.backbone_bytes)}, from Keras' cache)"
        check = f"outputs equal, max |Δp| {self.max_abs_diff:.1e}"
        if self.kind == "full":  # the run's own model file, copied: nothing smaller replaced it
            return f"{line} ({check})"
        return f"{line}, instead of {mb(self.replaced_bytes)} ({check})"


# --------------------------------------------------------------------------- which runs qualify

def head_only_reason(run: Run) -> str | None:
    """None when ``run`` can be published head-only, else why it keeps its full model."""
    model = run.config.get("model", {})
    tc = run.config.get("train_config", {})
    if model.get("kind") != "transfer" or not model.get("backbone"):
        return "not a transfer model"
    if str(tc.get("weights", "")).lower() != "imagenet":
        return f"backbone weights '{tc.get('weights')}', not the public ImageNet file"
    if int(tc.get("fine_tune_layers") or 0) != 0:
        return "fine-tuned backbone layers differ from the ImageNet file"
    return None


def _model_files(path: Path) -> list[Path]:
    if (path / FULL_MODEL_FILE).is_file():
        return [path / FULL_MODEL_FILE]
    return [path / HEAD_FILE, path / BACKBONE_FILE]


def model_bytes(path: Path) -> int:
    """Bytes on disk of a run folder's model file(s) (``model.keras``, or head + backbone reference)."""
    return sum(p.stat().st_size for p in _model_files(Path(path)) if p.is_file())


# --------------------------------------------------------------------------- head-only format

def backbone_reference(run: Run, model) -> dict:
    """The ``backbone.json`` of ``run``: everything that rebuilds its backbone, plus the file's digest."""
    import keras

    from ..models import get_spec
    from ..models.weights import IMAGENET_ORIGINS, imagenet_file, sha256_file

    cfg = run.config["model"]
    spec = get_spec(cfg["name"])
    path = imagenet_file(spec.name, spec.backbone, spec.weights_file)  # cached, or downloaded once when online
    return {
        "format": FORMAT,
        "model": spec.name,
        "application": spec.backbone,  # keras.applications.<application>(include_top=False, pooling="avg")
        "include_top": False,
        "pooling": "avg",
        "weights": "imagenet",
        "weights_file": spec.weights_file,
        "origin": IMAGENET_ORIGINS.get(spec.backbone, "") + spec.weights_file,
        "sha256": sha256_file(path),
        "weights_bytes": path.stat().st_size,
        "image_size": int(cfg["image_size"]),
        "channels": int(cfg.get("channels", 3)),
        "n_classes": int(run.config.get("n_classes", len(run.metrics["class_names"]))),
        "feature_dim": int(model.get_layer("head_bn").input.shape[-1]),
        "dropout": float(run.config.get("train_config", {}).get("dropout", 0.2)),
        "head_file": HEAD_FILE,
        "keras_version": keras.__version__,
    }


# --------------------------------------------------------------------------- publishing

def publish_run(src: str | Path, dest: str | Path, *, full: bool = False) -> Published:
    """Publish run ``src`` as the run folder ``dest`` (replaced if it is a run folder already).

    Head-only where :func:`head_only_reason` allows and ``full`` is False,
    else a slimmed full model. Refuses a file over GitHub's 100 MiB and a
    published model whose outputs differ from the original's; in both cases
    ``dest`` is left as it was.
    """
    from .._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from .runs import save_inference_model

    run = load_run(src)
    dest = Path(dest)
    if dest.exists() and not _replaceable(dest):
        raise PublishError(f"{dest}: exists and is not a run folder; choose another --name or remove it")
    model = run.load_model()
    replaced = model_bytes(run.path)
    head_only = not full and head_only_reason(run) is None
    with _staging(run, dest) as (staged, metrics):
        if head_only:
            from ..models.transfer import split_transfer_model

            ref = backbone_reference(run, model)
            split_transfer_model(model)[1].save_weights(staged / HEAD_FILE)
            (staged / BACKBONE_FILE).write_text(json.dumps(ref, indent=1))
            metrics.update(backbone_file=ref["weights_file"], backbone_bytes=ref["weights_bytes"])
        else:
            save_inference_model(model, staged / FULL_MODEL_FILE)
            for key in ("backbone_file", "backbone_bytes"):
                metrics.pop(key, None)
        size = model_bytes(staged)
        metrics.update(model_size_bytes=size, full_model_bytes=run.metrics.get("full_model_bytes", replaced))
        _complete_init_from(metrics, run.path.parent)
        (staged / "metrics.json").write_text(json.dumps(metrics, indent=1))
        _check_sizes(staged, run)
        diff = _max_abs_diff(model, load_run(staged).load_model(), run)
        if not diff <= TOLERANCE:
            raise PublishError(f"{run.id}: the published model disagrees with the original (max |Δp| {diff:.2e} > "
                               f"{TOLERANCE:g}); nothing published"
                               + (" (is the cached ImageNet file the one it was trained with?)" if head_only else ""))
    return Published(source=run.path, dest=dest, kind="head-only" if head_only else "full", size_bytes=size,
                     replaced_bytes=replaced, backbone_file=metrics.get("backbone_file"),
                     backbone_bytes=metrics.get("backbone_bytes"), max_abs_diff=diff)


def publish_metrics(src: str | Path, into: str | Path) -> Path:
    """Ship run ``src`` as a seed repeat without weights: ``<into>/seeds/<run id>/`` with its three JSON files.

    For the other seeds of a bundled model's recipe: Compare and Home then show
    the bundled model's score as mean ± spread over the seeds
    (:mod:`fer_core.store.seeds`) at a few kB per seed instead of a model file each.
    The run must be complete (a model file included), so only finished
    trainings are shipped; an existing repeat of the same id is replaced.
    """
    run = load_run(src)
    dest = Path(into) / REPEATS_DIR / run.id
    with _staging(run, dest) as (staged, metrics):
        metrics["weights_shipped"] = False
        _complete_init_from(metrics, run.path.parent)
        (staged / "metrics.json").write_text(json.dumps(metrics, indent=1))
        load_run(staged, metrics_only=True)  # readable as a repeat before it replaces anything
    return dest


@contextmanager
def _staging(run: Run, dest: Path):
    """A folder beside ``dest`` holding the run's history and config; ``dest`` is replaced by it on success.

    Yields (folder, metrics): the run's metrics with its provenance (the
    training run, also when republishing a published or older "bundled"
    run) for the caller to complete and write. An error inside the block
    leaves ``dest`` as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".publish-") as tmp:
        staged = Path(tmp) / "run"
        staged.mkdir()
        for name in ("history.json", "config.json"):
            shutil.copy2(run.path / name, staged / name)
        yield staged, dict(run.metrics, published_from=run.metrics.get("published_from")
                           or run.metrics.get("bundled_from") or run.id)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staged), dest)


def _replaceable(dest: Path) -> bool:
    """Only an empty folder or a run folder may be overwritten: publishing never deletes anything else."""
    if dest.is_dir() and not any(dest.iterdir()):
        return True
    try:
        load_run(dest)
        return True
    except FERError:
        return False


def _check_sizes(staged: Path, run: Run) -> None:
    for f in staged.iterdir():
        n = f.stat().st_size
        if n > GITHUB_FILE_LIMIT:
            why = head_only_reason(run) or "published with --full"
            raise PublishError(
                f"{run.id}: {f.name} would be {n / 2**20:.0f} MiB, over GitHub's 100 MiB file limit "
                f"(kept as a full model: {why}); nothing published. Hint: track it with Git LFS "
                f"(git lfs track 'models/**/*.keras'), or retrain with --weights imagenet and no fine-tuning "
                f"so it publishes head-only")


def _max_abs_diff(a, b, run: Run) -> float:
    """Largest |Δ probability| of two models on the same random uint8 batch (4, S, S, C)."""
    cfg = run.config["model"]
    size, ch = int(cfg["image_size"]), int(cfg.get("channels", 3))
    x = np.random.default_rng(0).integers(0, 256, (4, size, size, ch)).astype(np.float32)
    pa, pb = np.asarray(a(x, training=False)), np.asarray(b(x, training=False))  # (4, C) each
    if pa.shape != pb.shape:
        raise ModelError(f"{run.id}: published model outputs {pb.shape}, original {pa.shape}")
    return float(np.max(np.abs(pa - pb)))


def with_complete_init_from(run: Run) -> Run:
    """``run`` as read, its ``metrics.init_from`` completed from the earlier run's folder where that is beside it
    (see :func:`_complete_init_from`); the folder on disk is not changed."""
    metrics = copy.deepcopy(run.metrics)
    _complete_init_from(metrics, run.path.parent)
    return dataclasses.replace(run, metrics=metrics)


def _complete_init_from(metrics: dict, runs_dir: Path) -> None:
    """Runs continued with --init-from before the trainer recorded all of the earlier run: read the rest
    from that run's folder (beside this one), so the published run states the whole training time and
    the chain of settings its seed repeats are matched on (:func:`fer_core.store.seeds.start_key`)."""
    init = metrics.get("init_from")
    if not init or (init.get("train_seconds") is not None and "train_config" in init):
        return
    from .runs import init_from_record

    earlier = runs_dir / init["run"]
    if earlier.is_dir():
        init.update({k: v for k, v in init_from_record(load_run(earlier)).items() if init.get(k) is None})
        if "train_seconds_total" not in metrics and init.get("train_seconds") is not None:
            metrics["train_seconds_total"] = round(metrics["train_seconds"] + init["train_seconds"], 2)
