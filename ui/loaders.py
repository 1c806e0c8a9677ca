"""Cached readers over :mod:`fer_core`: the only place pages get runs, datasets and models from.

- Run listings and dataset reports are small, plain data → ``st.cache_data``,
  keyed by a cheap *signature* of the folder (names and modification times),
  so a new, deleted or hand-edited run shows up on the next rerun.
- Datasets (large arrays, read-only) and predictors (Keras models) are shared
  objects → ``st.cache_resource``: each loads once per process.

Many visitors at once (issue 10 §3): everything shared here is safe to use
from several sessions' threads (:class:`fer_core.inference.predictor.Predictor` is
thread-safe), a new session does no model work, and the per-rerun costs that
grew with the number of sessions are removed — see :func:`_serving_process`.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from fer_core import FERError, Run, RunListing, list_runs
from fer_core.data import defaults
from fer_core.store.runs import BUNDLED_DIR

from . import settings

# --------------------------------------------------------------------------- serving process


def _serving_process() -> None:
    """Process-wide settings for serving many sessions; runs once, when the pages first import this module.

    Streamlit ends EVERY script run with ``keras.backend.clear_session()``
    once Keras is imported (``script_runner._clean_problem_modules``, meant
    for apps that build models per run). With TensorFlow loaded that is a
    full ``gc.collect()`` over ~400k objects (0.5–1 s of CPU holding the GIL)
    plus a flush of TF's eager kernel cache that other sessions are using, on
    every rerun of every session. This app never builds Keras models in a
    script run (they live in the shared predictor), so the Keras part is
    skipped; the matplotlib part Streamlit also does there is kept.
    """
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # pragma: no cover - Streamlit moved it; nothing to undo then
        return
    original = getattr(script_runner, "_clean_problem_modules", None)
    if original is None or getattr(original, "_fer_keeps_keras", False):
        return

    def clean_problem_modules_but_keras() -> None:
        import sys

        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            try:
                plt.close("all")
            except Exception:  # noqa: BLE001, S110 - as Streamlit: never crash a run over it
                pass

    clean_problem_modules_but_keras._fer_keeps_keras = True
    script_runner._clean_problem_modules = clean_problem_modules_but_keras


def settle_heap() -> None:
    """Move every object alive now out of the garbage collector's sight (``gc.freeze``).

    Called after the models are loaded: TensorFlow, Keras, the models and the
    page modules are ~400k long-lived objects that every full collection
    would walk again — Streamlit runs one after each script run
    (``runner.postScriptGC``) and Python starts more as sessions allocate —
    0.5–1 s of GIL-holding CPU each on this machine, ~0 ms once frozen.
    Frozen objects are still freed by reference counting; only reference
    cycles among them would be kept, and these objects live as long as the
    process anyway.
    """
    gc.collect()
    gc.freeze()


def _time_script_runs() -> None:
    """With ``$FER_TIMING_LOG`` set (benchmarks/load.py), log every script run's duration there.

    Diagnostics only, off by default: the load benchmark needs the server's
    own view (how long each session's script ran, cleanup included) next to
    what the browsers saw, to tell a slow server from slow browsers.
    """
    if not os.environ.get("FER_TIMING_LOG"):
        return
    try:
        from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    except ImportError:  # pragma: no cover
        return
    original = ScriptRunner._run_script
    if getattr(original, "_fer_timed", False):
        return
    from fer_core.inference.predictor import log_timing

    def timed_run_script(self, rerun_data):
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return original(self, rerun_data)
        finally:
            log_timing("script_run", total=time.perf_counter() - t0, cpu=time.thread_time() - c0,
                       page=str(getattr(rerun_data, "page_script_hash", "") or "")[:12])

    timed_run_script._fer_timed = True
    ScriptRunner._run_script = timed_run_script


_serving_process()
_time_script_runs()

# --------------------------------------------------------------------------- runs


def _folder_signature(root: Path) -> tuple:
    """(name, mtime) of every run folder and of the files a hand edit would touch."""
    if not root.is_dir():
        return ()
    sig = []
    for child in sorted(root.iterdir()):
        if not child.is_dir():
            continue
        entry = [child.name, child.stat().st_mtime_ns]
        for name in ("metrics.json", "history.json", "config.json", "model.keras"):
            try:
                entry.append((child / name).stat().st_mtime_ns)
            except OSError:
                entry.append(None)
        sig.append(tuple(entry))
    return tuple(sig)


@st.cache_data(show_spinner=False, max_entries=16)
def _cached_listing(runs_root: str, bundled_root: str, sig: tuple) -> RunListing:
    return list_runs(runs_root, bundled_roots=(bundled_root,))


#: Seconds a folder signature is reused: every session's every rerun asks for the listing,
#: so with many visitors the run folders are stat'ed at most once per this interval
#: instead of once per rerun; a new or edited run still shows up on the next rerun after it.
SIGNATURE_TTL_S = 1.0
_SIGNATURES: dict[tuple[str, str], tuple[float, tuple]] = {}
_SIGNATURES_LOCK = threading.Lock()


def _recent_signature(runs_root: Path, bundled_root: Path) -> tuple:
    key = (str(runs_root), str(bundled_root))
    now = time.monotonic()
    with _SIGNATURES_LOCK:
        hit = _SIGNATURES.get(key)
        if hit is not None and now - hit[0] < SIGNATURE_TTL_S:
            return hit[1]
    sig = (_folder_signature(runs_root), _folder_signature(bundled_root))
    with _SIGNATURES_LOCK:
        _SIGNATURES[key] = (now, sig)
    return sig


def run_listing(runs_root: Path | None = None) -> RunListing:
    """Every complete run (user runs + bundled ones); broken folders become warnings."""
    runs_root = Path(runs_root or settings.runs_dir())
    sig = _recent_signature(runs_root, BUNDLED_DIR)
    return _cached_listing(str(runs_root), str(BUNDLED_DIR), sig)


@dataclass(frozen=True)
class DatasetGroup:
    """Runs that saw exactly the same data (same fingerprint)."""

    fingerprint: str
    name: str
    source: str
    runs: tuple[Run, ...]  # each model's newest run
    #: the other runs of this data (a model trained again, other seeds or settings): registry order, newest first
    older: tuple[Run, ...] = ()

    @property
    def bundled(self) -> bool:
        return all(r.bundled for r in self.runs)

    @property
    def bundled_tag(self) -> str:
        """'bundled, trained on FER2013': models/ holds whatever was published there, so name its dataset."""
        names = {"fer2013": "FER2013", "fer2013+ferplus": "FER2013 with the FER+ crowd's labels"}
        return f"bundled, trained on {names.get(self.name.lower(), self.name)}"

    @property
    def label(self) -> str:
        tag = f" · {self.bundled_tag}" if self.bundled else ""
        sizes = self.runs[0].metrics["dataset"].get("split_sizes", {})
        total = sum(sizes.values())
        n = f", {total:,} images" if total else ""
        return f"{self.name} ({self.fingerprint[:8]}{n}){tag}"

    @property
    def class_names(self) -> list[str]:
        return list(self.runs[0].metrics["class_names"])

    def run(self, run_id: str) -> Run:
        return next(r for r in self.runs if r.id == run_id)


def dataset_groups(listing: RunListing, registry_order: list[str] | None = None) -> list[DatasetGroup]:
    """Runs grouped by dataset fingerprint; one run per model (its newest), models in registry order.

    The user's own datasets come first (newest first), bundled ones after, so a
    page opens on what the user trained last. A model's earlier runs are kept in
    ``older`` (Predict offers them on request).
    """
    order = {name: i for i, name in enumerate(model_names() if registry_order is None else registry_order)}
    groups = []
    for fp, runs in listing.by_dataset().items():
        newest: dict[str, Run] = {}
        older: list[Run] = []
        for r in sorted(runs, key=lambda r: r.metrics.get("created", 0), reverse=True):
            if r.model_name in newest:
                older.append(r)
            else:
                newest[r.model_name] = r
        rank = lambda r: (order.get(r.model_name, len(order)), r.model_name)  # noqa: E731  registry order
        ordered = sorted(newest.values(), key=rank)
        first = ordered[0]
        groups.append(DatasetGroup(fingerprint=fp, name=first.dataset_name,
                                   source=str(first.metrics["dataset"].get("source", first.dataset_name)),
                                   runs=tuple(ordered), older=tuple(sorted(older, key=rank))))
    # stable: keeps newest-first within each kind; among the bundled, the one holding Predict's default first
    return sorted(groups, key=lambda g: (g.bundled, g.bundled and BUNDLED_PREDICT_DEFAULT not in
                                         {r.model_name for r in g.runs}))


#: The model Predict starts with on the bundled FER2013 runs (one value shared with ``python -m predict``,
#: in fer_core.data.defaults). The others stay one click away in the picker.
BUNDLED_PREDICT_DEFAULT = defaults.BUNDLED_PREDICT_DEFAULT


#: Where ``python benchmarks/fer2013.py`` writes its results; its ``pipeline`` section scores each
#: bundled model on FER2013 test faces pasted into photos, through this app's detector and crop.
FER2013_RESULTS = settings.ROOT / "benchmarks" / "results" / "fer2013.json"


@st.cache_data(show_spinner=False)
def _photo_scores(path: str, mtime: int) -> dict:
    import json

    try:
        data = json.loads(Path(path).read_text())
        pipe = data["pipeline"]
        models = pipe["predict"]["models"]
        return {"fingerprint": pipe["config"]["dataset_fingerprint"], "n": int(pipe["config"]["n"]),
                "accuracy": {m: float(v["accuracy"]) for m, v in models.items()}}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def photo_scores(group: DatasetGroup) -> dict[str, float]:
    """Model id (and ``ensemble``) → accuracy on photos of the benchmark, for the bundled runs it measured; else {}."""
    if not group.bundled:
        return {}
    scores = _photo_scores(str(FER2013_RESULTS), _mtime(str(FER2013_RESULTS)))
    if not scores or scores["fingerprint"] != group.fingerprint:
        return {}
    return dict(scores["accuracy"], n=scores["n"])


def default_predict_models(group: DatasetGroup) -> list[str]:
    """Models Predict preselects: :data:`BUNDLED_PREDICT_DEFAULT` on the bundled runs, else every model of the dataset."""
    names = [r.model_name for r in group.runs]
    if group.bundled and BUNDLED_PREDICT_DEFAULT in names:
        return [BUNDLED_PREDICT_DEFAULT]
    return names


# --------------------------------------------------------------------------- model registry


@st.cache_resource(show_spinner=False)
def _catalog() -> dict[str, dict]:
    from fer_core.models import get_spec, list_models  # the zoo as data: no TensorFlow import

    return {n: {"description": get_spec(n).description, "kind": get_spec(n).kind,
                "default_image_size": get_spec(n).default_image_size, "min_image_size": get_spec(n).min_image_size,
                "in_all": get_spec(n).in_all, "weights_file": get_spec(n).weights_file}
            for n in list_models()}


def model_catalog() -> dict[str, dict]:
    """Registered models (id → description, kind, sizes), registry order."""
    return _catalog()


def model_names(*, only_all: bool = True) -> list[str]:
    return [n for n, s in _catalog().items() if s["in_all"] or not only_all]


# --------------------------------------------------------------------------- datasets


def dataset_candidates(root: Path | None = None, max_depth: int = 3) -> list[str]:
    """Datasets under the data root, as paths relative to it: .npz/.csv files and dataset folders."""
    from fer_core.data.datasets import IMAGE_SUFFIXES

    root = Path(root or settings.data_root())
    if not root.is_dir():
        return []
    found = []

    def looks_like_dataset(d: Path) -> bool:
        try:
            children = [c for c in d.iterdir() if not c.name.startswith(".")]
        except OSError:
            return False
        if any(c.suffix == ".npy" for c in children):
            return True
        subdirs = [c for c in children if c.is_dir()]
        if any(c.name.lower() == "train" for c in subdirs):
            return True
        if len(subdirs) >= 2 and all(any(f.suffix.lower() in IMAGE_SUFFIXES for f in s.iterdir()) for s in subdirs[:8]):
            return True
        return False

    def walk(d: Path, depth: int) -> None:
        try:
            entries = sorted(c for c in d.iterdir() if not c.name.startswith("."))
        except OSError:
            return
        for c in entries:
            if c.is_file() and c.suffix.lower() in (".npz", ".csv"):
                found.append(c.relative_to(root).as_posix())
            elif c.is_dir():
                if looks_like_dataset(c):
                    found.append(c.relative_to(root).as_posix() + "/")
                elif depth < max_depth:
                    walk(c, depth + 1)

    walk(root, 1)
    return found


def _mtime(spec: str) -> int:
    try:
        return os.stat(spec).st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=3)
def _dataset(spec: str, demo_per_class: int, demo_image_size: int, seed: int, mtime: int, labels: str | None = None):
    from fer_core import load_dataset

    return load_dataset(spec, seed=seed, demo_per_class=demo_per_class, demo_image_size=demo_image_size,
                        labels=labels)


def load_dataset_cached(spec: str, *, demo_per_class: int = 200, demo_image_size: int = 128, seed: int = 0,
                        labels: str | None = None):
    """A :class:`fer_core.Dataset`, loaded once per process per (spec, parameters, labels, file version)."""
    return _dataset(spec, demo_per_class, demo_image_size, seed, _mtime(spec), labels)


@st.cache_data(show_spinner="Checking splits and duplicates…", max_entries=8)
def _report(spec: str, demo_per_class: int, demo_image_size: int, seed: int, mtime: int,
            labels: str | None = None) -> dict:
    from fer_core import dataset_report

    return dataset_report(_dataset(spec, demo_per_class, demo_image_size, seed, mtime, labels))


def dataset_report_cached(spec: str, *, demo_per_class: int = 200, demo_image_size: int = 128, seed: int = 0,
                          labels: str | None = None) -> dict:
    return _report(spec, demo_per_class, demo_image_size, seed, _mtime(spec), labels)


@st.cache_data(show_spinner="Comparing the labels with the FER+ crowd…", max_entries=4)
def _crowd(spec: str, mtime: int) -> dict | None:
    from fer_core.data.ferplus import crowd_agreement

    return crowd_agreement(_dataset(spec, 200, 128, 0, mtime))


def crowd_agreement_cached(spec: str) -> dict | None:
    """Where a FER2013 file's labels and the FER+ crowd agree (None without a votes file beside it)."""
    return _crowd(spec, _mtime(spec)) if has_crowd_votes(spec) else None


def has_crowd_votes(spec: str) -> bool:
    """Whether FER+ votes (``ferplus_votes.npz``) sit beside this dataset file."""
    from fer_core.data.ferplus import VOTES_FILE

    return spec != "demo" and Path(spec).is_file() and (Path(spec).parent / VOTES_FILE).is_file()


# --------------------------------------------------------------------------- prediction


# Predictors are built on one background worker so the app can start loading the
# models as soon as it opens (prewarm), and the Predict page later just waits
# for that same build instead of starting a second one.
_BUILDS: dict[tuple, Future] = {}
_BUILDS_LOCK = threading.Lock()
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fer-predictor")


def _build_predictor(run_paths: tuple[str, ...]):
    from fer_core import load_run
    from fer_core.inference.predictor import Predictor

    runs = [load_run(p, bundled=Path(p).parent.resolve() == BUNDLED_DIR.resolve()) for p in run_paths]
    predictor = Predictor(runs)  # also builds and warms the face detectors
    settle_heap()
    return predictor


def _build_key(runs) -> tuple:
    paths = tuple(str(r.path) for r in runs)
    return paths, tuple(_mtime(str(Path(p) / "model.keras")) for p in paths)


def _submit(key: tuple) -> Future:
    with _BUILDS_LOCK:
        fut = _BUILDS.get(key)
        if fut is None:
            fut = _BUILDS[key] = _EXECUTOR.submit(_build_predictor, key[0])
            done = [k for k, f in _BUILDS.items() if f.done()]
            for k in done[: max(0, len(_BUILDS) - 4)]:  # keep at most 4 predictors alive
                _BUILDS.pop(k, None)
        return fut


_PREWARMED: set = set()


def prewarm(listing: RunListing, fingerprint: str | None) -> None:
    """Start loading the predictor of one dataset's runs in the background; returns at once.

    Everything slow (TensorFlow import, registry, model loading) happens off the
    script thread. Once per (runs folder state, dataset). Off when ``FER_PREWARM=0``
    (tests, or machines where idle memory matters).
    """
    if not listing.runs or os.environ.get("FER_PREWARM", "1") == "0":
        return
    token = (tuple(sorted(str(r.path) for r in listing.runs)), fingerprint)
    with _BUILDS_LOCK:
        if token in _PREWARMED:
            return
        _PREWARMED.add(token)

    def task():
        try:
            from fer_core._quiet import import_tensorflow_quietly

            import_tensorflow_quietly()
            from fer_core.models import list_models

            groups = dataset_groups(listing, list_models(only_all=True))
            group = next((g for g in groups if g.fingerprint == fingerprint), groups[0])
            chosen = default_predict_models(group)  # what the Predict page will ask for first
            _submit(_build_key([r for r in group.runs if r.model_name in chosen]))
        except Exception:  # noqa: BLE001 - best effort; the Predict page reports real errors
            pass

    threading.Thread(target=task, name="fer-prewarm", daemon=True).start()


@st.cache_resource(show_spinner="Loading the models (once per app process)…", max_entries=4)
def _predictor(run_paths: tuple[str, ...], sig: tuple):
    key = (run_paths, sig)
    try:
        return _submit(key).result()
    except BaseException:
        with _BUILDS_LOCK:  # a failed build is retried on the next request
            _BUILDS.pop(key, None)
        raise


def predictor_for(runs) -> object:
    """A :class:`fer_core.inference.predictor.Predictor` over ``runs``, loaded once per process.

    Raises :class:`fer_core.FERError` with a one-line message when a model cannot
    be loaded (e.g. a ``.keras`` file that needs unsafe deserialization).
    """
    paths, sig = _build_key(runs)
    try:
        return _predictor(paths, sig)
    except FERError:
        raise
    except Exception as exc:  # last resort: never a traceback in the page
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FERError(f"cannot load the models: {first}") from None


def imagenet_weights_cached(model_names_: list[str]) -> dict[str, bool]:
    """Per transfer model: is its ImageNet weights file in Keras' cache (so offline training works)?"""
    from fer_core.models.weights import keras_cache_dir

    cat = model_catalog()
    folder = keras_cache_dir()
    return {n: (folder / cat[n]["weights_file"]).is_file() for n in model_names_
            if n in cat and cat[n]["kind"] == "transfer" and cat[n].get("weights_file")}
