"""The run store: one self-describing folder per trained model.

Layout of ``<runs>/<run_id>/``::

    model.keras    full model, raw 0–255 pixels in, probabilities out; or, in a
                   published frozen-ImageNet transfer run (fer_core.store.publish),
    head.weights.h5 + backbone.json   the head's weights and which ImageNet
                   backbone file (sha256) rebuilds the rest
    config.json    TrainConfig + model spec: enough to rebuild the model
    history.json   per-epoch loss, accuracy, val_loss, val_accuracy (+ stage)
    metrics.json   accuracy, macro_f1, loss, confusion_matrix, per_class, ...

A run is written under ``.tmp-<run_id>`` and renamed when complete, so an
interrupted or killed trainer never leaves a folder that looks finished.
Readers skip anything incomplete or hand-broken with a warning.

**Seed repeats without weights** (``<runs>/seeds/<run_id>/``): the same three
JSON files and no model. They exist so a deployment can show how much a
model's score moves between seeds (mean ± spread in Compare and Home,
:mod:`fer_core.store.seeds`) without shipping every seed's weights: the bundled
model keeps its weights in ``models/<name>/`` and its other seeds ship as
metrics only (``python -m training.publish --metrics-only``). They are read
into :attr:`RunListing.repeats`, never into :attr:`RunListing.runs`, so nothing
that loads a model (Predict, Video, Export, the CLIs) ever sees them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import hooks
from ..errors import RunStoreError

FULL_MODEL_FILE = "model.keras"
HEAD_FILE = "head.weights.h5"  # published head-only runs: the head's weights (fer_core.store.publish)
BACKBONE_FILE = "backbone.json"  # ... and the backbone they sit on (keras.applications class, ImageNet file, sha256)
#: ``backbone.json``'s format, written by :func:`fer_core.store.publish.backbone_reference`.
HEAD_ONLY_FORMAT = "fer-studio/head-only/1"
#: A run holds these and a model: model.keras, or head.weights.h5 + backbone.json.
REQUIRED_FILES = ("metrics.json", "history.json", "config.json")
REQUIRED_METRICS = ("model", "accuracy", "macro_f1", "confusion_matrix", "class_names", "dataset")
TMP_PREFIX = ".tmp-"
LOCK_NAME = ".train.lock"
#: Bundled runs shipped with the project (trained on FER2013).
BUNDLED_DIR = Path(__file__).resolve().parent.parent.parent / "models"
#: Inside a runs root: the folder of seed repeats shipped as metrics only (see the module docstring).
REPEATS_DIR = "seeds"


@dataclass
class Run:
    """A finished run folder, read eagerly except for the model itself."""

    path: Path
    metrics: dict
    history: dict
    config: dict
    bundled: bool = False
    #: A seed repeat shipped without its weights (``<runs>/seeds/``): scores and curves only.
    metrics_only: bool = False

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def model_name(self) -> str:
        return self.metrics["model"]

    def demo_params(self) -> dict:
        """Arguments of ``load_dataset("demo", ...)`` that rebuild the demo data this run was trained on.

        Read from its dataset description (split sizes, classes, image side)
        and the seed that drew them (``data_seed``; runs from before it was
        recorded: the training seed), so a demo run can be re-scored or shown
        with its own faces without storing them.
        """
        desc = self.metrics["dataset"]
        total = sum(desc.get("split_sizes", {}).values())
        n = max(1, len(desc.get("class_names", [])) or 8)
        shape = desc.get("image_shape") or [128]
        cfg = self.metrics.get("config") or {}
        seed = desc.get("data_seed", cfg.get("seed", 0) if isinstance(cfg, dict) else 0)
        return {"demo_per_class": max(2, total // n), "demo_image_size": int(shape[0]), "seed": int(seed)}

    @property
    def fingerprint(self) -> str:
        return self.metrics["dataset"]["fingerprint"]

    @property
    def dataset_name(self) -> str:
        return self.metrics["dataset"].get("name", self.fingerprint)

    @property
    def model_path(self) -> Path:
        """``model.keras`` (absent in a head-only run: see :attr:`head_only`)."""
        return self.path / FULL_MODEL_FILE

    @property
    def head_only(self) -> bool:
        """A published run that stores only its head; :meth:`load_model` rebuilds the backbone."""
        return not self.model_path.is_file() and (self.path / BACKBONE_FILE).is_file()

    @property
    def ensemble_members(self) -> list[dict] | None:
        """The members named in ``config.json`` of a run built by ``python -m training.ensemble``, else None."""
        model = self.config.get("model")
        if not isinstance(model, dict) or model.get("kind") != "ensemble":
            return None
        return [m for m in model.get("members") or [] if isinstance(m, dict)]

    @property
    def input_smooth_sigma(self) -> float:
        """σ (px) of the input blur ``training.ensemble --smooth`` put in front of an ensemble's members; 0: none."""
        model = self.config.get("model")
        return float(model.get("input_smooth_sigma") or 0) if isinstance(model, dict) else 0.0

    @property
    def random_backbone(self) -> bool:
        """True for a transfer model whose backbone kept random weights (``--weights none``).

        Offline, ImageNet weights cannot be fetched and the trainer falls back to
        random backbones; their heads then score near chance whatever the
        architecture, so every page that shows such a run's numbers labels it
        (``ui.tables.model_label``) rather than let it read as a verdict on the model.
        A trunk copied from a trained run (``fer_compact``'s ``trunk_from``) is not random.
        Read from the run's own files only: no model registry, no TensorFlow.
        """
        model = self.config.get("model")
        model = model if isinstance(model, dict) else {}
        train_config = self.config.get("train_config") or self.metrics.get("config") or {}
        if not isinstance(train_config, dict) or model.get("kind") != "transfer":
            return False
        if model.get("trunk_from") or self.metrics.get("trunk_from"):
            return False
        return str(train_config.get("weights", "imagenet")).lower() == "none"

    def load_model(self):
        """The full Keras model, loaded without running any code from the run folder.

        ``model.keras`` is loaded with ``safe_mode=True``; a head-only run is
        rebuilt from ``keras.applications``, the ImageNet file in Keras' cache
        (sha256-checked) and its head weights (:func:`fer_core.models.head_only.load_head_only`).
        """
        if self.metrics_only:
            raise RunStoreError(f"{self.id}: a seed repeat shipped without its weights (metrics and curves only); "
                                "it cannot predict")
        import keras

        from ..models import layers  # noqa: F401  registers FER Studio's Keras layers for deserialisation

        if self.head_only:
            from ..errors import FERError
            from ..models.head_only import load_head_only

            try:
                return load_head_only(read_reference(self.path), self.path / HEAD_FILE, self.id)
            except FERError:
                raise
            except Exception as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise RunStoreError(f"{self.path}: cannot rebuild the published model ({first})") from None
        try:
            return keras.saving.load_model(self.model_path, compile=False, safe_mode=True)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RunStoreError(f"{self.model_path}: cannot load model safely ({first})") from None


def read_reference(run_path: Path) -> dict:
    """A head-only run's ``backbone.json``, checked: every field the rebuild needs, this version's format."""
    try:
        ref = json.loads((run_path / BACKBONE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise RunStoreError(f"{run_path.name}: '{BACKBONE_FILE}' is not valid JSON ({exc})") from None
    need = ("format", "model", "application", "weights_file", "sha256", "image_size", "n_classes")
    missing = [k for k in need if k not in ref] if isinstance(ref, dict) else list(need)
    if missing:
        raise RunStoreError(f"{run_path.name}: '{BACKBONE_FILE}' lacks {', '.join(missing)}")
    if ref["format"] != HEAD_ONLY_FORMAT:
        raise RunStoreError(f"{run_path.name}: '{BACKBONE_FILE}' has format '{ref['format']}', "
                            f"this version reads '{HEAD_ONLY_FORMAT}'")
    return ref


@dataclass
class RunListing:
    runs: list[Run] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Seed repeats without weights (``<root>/seeds/``): only for grouping by seed, never to predict with.
    repeats: list[Run] = field(default_factory=list)

    @property
    def seed_pool(self) -> list[Run]:
        """Every run a model's seed group may draw from: the runs with weights and the metrics-only repeats."""
        return self.runs + self.repeats

    def by_dataset(self) -> dict[str, list[Run]]:
        """Runs grouped by dataset fingerprint, newest dataset first, models in registry order."""
        groups: dict[str, list[Run]] = {}
        for run in sorted(self.runs, key=lambda r: r.metrics.get("created", 0), reverse=True):
            groups.setdefault(run.fingerprint, []).append(run)
        return groups


def _read_json(path: Path) -> dict:
    with path.open() as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def load_run(path: str | Path, *, bundled: bool = False, metrics_only: bool = False) -> Run:
    """Read a run folder; :class:`RunStoreError` says what is missing or broken.

    ``metrics_only``: a seed repeat without weights (no model file is required, none is loaded).
    """
    path = Path(path)
    if not path.is_dir():
        raise RunStoreError(f"{path}: run folder does not exist")
    for name in REQUIRED_FILES + (() if metrics_only else _model_files(path)):
        if not (path / name).is_file():
            raise RunStoreError(f"{path.name}: incomplete run, '{name}' is missing")
    parsed = {}
    for name in ("metrics.json", "history.json", "config.json"):
        try:
            parsed[name] = _read_json(path / name)
        except (ValueError, OSError) as exc:
            raise RunStoreError(f"{path.name}: '{name}' is not valid JSON ({exc})") from None
    metrics = parsed["metrics.json"]
    missing = [k for k in REQUIRED_METRICS if k not in metrics]
    if missing:
        raise RunStoreError(f"{path.name}: metrics.json lacks {', '.join(missing)}")
    if not isinstance(metrics["dataset"], dict) or "fingerprint" not in metrics["dataset"]:
        raise RunStoreError(f"{path.name}: metrics.json 'dataset' has no fingerprint")
    n = len(metrics["class_names"])
    cm = metrics["confusion_matrix"]
    if not (isinstance(cm, list) and len(cm) == n and all(isinstance(r, list) and len(r) == n for r in cm)):
        raise RunStoreError(f"{path.name}: confusion_matrix is not {n}×{n}")
    return Run(path=path, metrics=metrics, history=parsed["history.json"], config=parsed["config.json"], bundled=bundled,
               metrics_only=metrics_only)


def _model_files(path: Path) -> tuple[str, ...]:
    """The model files a run folder must hold: head + backbone reference once it has the reference, else model.keras."""
    if not (path / FULL_MODEL_FILE).is_file() and (path / BACKBONE_FILE).is_file():
        return (HEAD_FILE, BACKBONE_FILE)
    return (FULL_MODEL_FILE,)


#: How deep below a root :func:`list_runs` looks for folders of runs (``--out runs/experiment`` is one level).
MAX_NESTING = 2


def list_runs(*roots: str | Path, bundled_roots: tuple = ()) -> RunListing:
    """Every complete run under ``roots`` (and ``bundled_roots``); broken ones become warnings.

    A root's ``seeds/`` folder holds metrics-only seed repeats: they go to
    :attr:`RunListing.repeats`. A subfolder that holds runs instead of being one
    (``python -m training --out runs/experiment``) is read like a root, up to
    :data:`MAX_NESTING` levels down; a folder with nothing but dot-entries (a
    training that has not finished its first run: ``.train.lock``,
    ``.checkpoints/``) is no run yet and no warning.
    """
    listing = RunListing()
    for root, bundled in [(r, False) for r in roots] + [(r, True) for r in bundled_roots]:
        _read_root(Path(root), listing, bundled=bundled, depth=0)
    return listing


def _read_root(root: Path, listing: RunListing, *, bundled: bool, depth: int) -> None:
    _read_runs(root, listing, bundled=bundled, depth=depth)
    _read_runs(root / REPEATS_DIR, listing, bundled=bundled, depth=depth, metrics_only=True)


def _folder_kind(folder: Path) -> str:
    """``"runs"``: a folder of runs (none of a run's files, visible subfolders); ``"not started"``: only
    dot-entries (a lock, checkpoints, a run being written), a training's output folder with no run yet;
    else ``"run"``."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return "run"  # load_run says what is wrong
    if all(e.name.startswith(".") for e in entries):
        return "not started"
    names = {e.name for e in entries}
    if not any(n in names for n in REQUIRED_FILES) and any(e.is_dir() and not e.name.startswith(".") for e in entries):
        return "runs"
    return "run"


def _read_runs(root: Path, listing: RunListing, *, bundled: bool, depth: int, metrics_only: bool = False) -> None:
    if not root.is_dir():
        return
    into = listing.repeats if metrics_only else listing.runs
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith(".") or (child.name == REPEATS_DIR and not metrics_only):
            continue  # .tmp-* (in progress / interrupted), .cache, ...; seeds/ is read on its own
        kind = "run" if metrics_only else _folder_kind(child)
        if kind == "runs" and depth < MAX_NESTING:
            _read_root(child, listing, bundled=bundled, depth=depth + 1)
            continue
        if kind == "not started":
            continue
        try:
            into.append(load_run(child, bundled=bundled, metrics_only=metrics_only))
        except RunStoreError as exc:
            listing.warnings.append(f"skipped {'seed repeat' if metrics_only else 'run'} {exc}")


def bundled_runs() -> RunListing:
    """The runs shipped in ``models/`` (trained on FER2013)."""
    return list_runs(bundled_roots=(BUNDLED_DIR,))


# --------------------------------------------------------------------------- writing

def new_run_id(model: str, fingerprint: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}_{model}_{fingerprint[:8]}"


class RunWriter:
    """Writes a run into ``.tmp-<id>`` and publishes it by one atomic rename.

    Use as a context manager: on any exception (Ctrl-C included) the temporary
    folder is removed and nothing half-finished is left behind.
    """

    def __init__(self, out_dir: str | Path, run_id: str):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        base, k = run_id, 1
        while (self.out_dir / run_id).exists() or (self.out_dir / f"{TMP_PREFIX}{run_id}").exists():
            k += 1
            run_id = f"{base}-{k}"
        self.run_id = run_id
        self.tmp = self.out_dir / f"{TMP_PREFIX}{run_id}"
        self.final = self.out_dir / run_id

    def __enter__(self) -> "RunWriter":
        self.tmp.mkdir()
        return self

    def write_json(self, name: str, data: dict) -> None:
        with (self.tmp / name).open("w") as f:
            json.dump(data, f, indent=1)

    def commit(self) -> Path:
        missing = [n for n in REQUIRED_FILES + _model_files(self.tmp) if not (self.tmp / n).is_file()]
        if missing:
            raise RunStoreError(f"{self.tmp}: cannot finish run, missing {', '.join(missing)}")
        os.replace(self.tmp, self.final)
        return self.final

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)


class TrainLock:
    """Exclusive lock on an output folder: two trainers never write into it at once.

    A ``flock`` dies with its process, so a killed trainer never leaves a stale lock.
    """

    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / LOCK_NAME
        self._fd = None

    def __enter__(self) -> "TrainLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunStoreError(f"{self.path.parent}: another training process (pid {holder}) is writing here; "
                                "wait for it to finish or cancel it") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def is_locked(out_dir: str | Path) -> bool:
    """True while some process holds :class:`TrainLock` on ``out_dir``."""
    return lock_held(Path(out_dir) / LOCK_NAME)


def lock_held(path: Path) -> bool:
    """True while some process holds an exclusive flock on ``path`` (probed without waiting)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def init_from_record(earlier) -> dict:
    """What a continued run records of the run it started from (``metrics.json: init_from``).

    Its ``train_config`` and its own ``init_from`` record too, so the whole chain
    of settings is known without the earlier folders: two chains of the same
    recipe with other seeds then read as seed repeats (:func:`fer_core.store.seeds.setting_key`).
    """
    m = earlier.metrics
    cfg = earlier.config.get("train_config") if isinstance(earlier.config, dict) else None
    return {"run": earlier.id, "epochs": len(earlier.history.get("loss", [])), "command": m.get("command"),
            "train_seconds": m.get("train_seconds_total", m.get("train_seconds")),
            "train_config": cfg if isinstance(cfg, dict) else None, "init_from": m.get("init_from")}


def save_inference_model(model, path: Path) -> None:
    """Save architecture + weights only, in float32 (see :func:`~fer_core.compute.precision.as_float32`)."""
    from ..compute.precision import as_float32

    as_float32(model).save(path)


# fer_core.models.from_compact builds a model from another run's trunk; it reaches load_run through
# this hook instead of importing the run store (which imports the models: no import circle).
hooks.set_run_loader(load_run)
