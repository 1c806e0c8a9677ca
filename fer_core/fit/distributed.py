"""The Ray engine: a sweep's (model, seed) runs as Ray tasks, the frozen-backbone feature pass as a Ray Data job.

Why Ray and not Keras' own multi-worker training: Keras 3 multi-worker data
parallelism on the TensorFlow backend is broken upstream (keras-team/keras#20585),
``keras.distribution`` is JAX-only and Horovod is unmaintained. A sweep is
embarrassingly parallel anyway — every (model, seed) is an independent training —
so each is one Ray task running exactly the single-process training of the
``local`` engine (:func:`fer_core.fit.train.train_one`).

What it assumes of a cluster: the nodes run the same requirements; nothing else.
In particular no filesystem is shared. A task trains into a temporary folder on
its own node and returns the finished run folder's files as bytes; the driver
publishes them under ``--out`` with the same atomic :class:`~fer_core.store.runs.RunWriter`
as a local run. The dataset travels through Ray's object store, and ``fer_core``
itself through the job's ``py_modules`` when the driver connects to a cluster.

Progress: tasks push their events into a :class:`ray.util.queue.Queue`; the
driver forwards them in task order (the events of run *i* live, those of later
runs as soon as run *i* has ended), so the CLI bar and the ``--progress-file``
JSON lines keep the one-model-at-a-time shape the Train page follows.

Interruption: Ctrl-C (or SIGTERM) cancels the unfinished tasks (``ray.cancel``);
runs already published stay, nothing half-written is left. Epoch checkpoints
(:mod:`fer_core.fit.checkpoints`) are written in the task's temporary folder and,
after every epoch, shipped through the queue to the driver, which keeps them
under ``--out/.checkpoints/`` exactly where a local run keeps its own. The same
command run again sends each unfinished run's checkpoint with its task, which
continues after that epoch, on whichever node it lands (no shared filesystem).

The feature pass (:func:`feature_pass`) is Ray Data's batch-inference pattern:
images are sharded to actors that each load the backbone once, and the result
is the very cache file the local path writes (same key, same arrays up to float
rounding), so head training and the app do not change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import FERError

RAY_PIP = "pip install -r requirements-ray.txt"


def import_ray():
    """``ray``, or a one-line :class:`FERError` naming the pip command (the app's requirements carry no Ray)."""
    try:
        import ray
    except ImportError:
        raise FERError(f"--engine ray needs Ray, which is not installed here: {RAY_PIP}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None):
    """Connect to ``address`` (``auto``, ``ray://…``, ``host:port``) or start a local Ray; shut down what we started.

    An already initialised Ray (a notebook, the tests) is used as it is and left running.
    """
    import signal
    import threading

    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        if address:
            # Nodes of a real cluster need not hold this checkout: ship fer_core with the job.
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False,
                     runtime_env={"py_modules": [str(Path(__file__).resolve().parent.parent)]})
        else:
            ray.init(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise FERError(f"--ray-address {address or '(local)'}: cannot start or reach Ray ({first})") from None
    for sig, handler in handlers.items():  # ray.init installs its own SIGTERM handler (it aborts): ours unwinds
        signal.signal(sig, handler)
    try:
        yield ray
    finally:
        ray.shutdown()


def limit_threads(n: int) -> None:
    """Give TensorFlow as many threads as Ray gave this worker CPUs (else every worker would take every core)."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # a reused worker process already ran TensorFlow: keep its setting
        tf.config.threading.set_intra_op_parallelism_threads(max(1, int(n)))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, int(n)))


def _assigned_cpus(default: int = 1) -> int:
    import ray

    return int(ray.get_runtime_context().get_assigned_resources().get("CPU", default) or default)


# --------------------------------------------------------------------------- one task

class QueueProgress:
    """A task's progress sink: tags each event with the task's index and pushes it into the driver's queue.

    ``model_end`` is kept back: its ``run_dir`` is a temporary folder on the
    worker; the driver sends its own once it has published the run.
    """

    def __init__(self, queue, index: int):
        self.queue, self.index, self.model_end = queue, index, None

    def on_event(self, event: dict) -> None:
        if event.get("event") == "model_end":
            self.model_end = event
            return
        self.queue.put((self.index, event))

    def on_checkpoint(self, folder: Path, epoch: int) -> None:
        """An epoch's checkpoint is complete on this worker: send its files to the driver (before the epoch's event)."""
        from .checkpoints import pack

        self.queue.put((self.index, {"event": CHECKPOINT_EVENT, "epoch": epoch, "files": pack(folder)}))


#: Queue items that carry a checkpoint's files to the driver; never forwarded as progress.
CHECKPOINT_EVENT = "_checkpoint"


def train_task(ds, cfg: dict, command: str | None, queue, index: int, features: dict | None,
               checkpoint: dict | None = None) -> dict:
    """One (model, seed) on a Ray worker: ``train_one`` into a temporary folder; returns the run's files as bytes.

    ``features``: ``{"key", "arrays"}`` computed by the driver's Ray Data pass,
    put into a private cache so ``train_one`` finds them. Without them a frozen
    backbone uses this node's own feature cache (``$FER_CACHE_DIR``).
    ``checkpoint``: an interrupted earlier run's checkpoint files (from the
    driver's ``--out``), put where ``train_one`` looks, so it continues from there.
    """
    import ray

    limit_threads(_assigned_cpus())
    import keras

    from . import checkpoints
    from .features import FeatureCache
    from .train import TrainConfig, train_one

    keras.backend.clear_session()  # a reused worker: no layers or graphs of the previous task
    _remove_orphans()
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-"))
    try:
        cache = FeatureCache(work / "features") if features else FeatureCache()
        if features:
            cache.put(features["key"], features["arrays"])
        config = TrainConfig.from_dict(cfg)
        if checkpoint:
            checkpoints.unpack(checkpoints.checkpoint_dir(work / "runs", asdict(config), ds.fingerprint), checkpoint)
        sink = QueueProgress(queue, index)
        path = train_one(ds, config, work / "runs", progress=sink, cache=cache, command=command)
        files = {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
        return {"run_id": path.name, "files": files, "model_end": sink.model_end,
                "node": ray.get_runtime_context().get_node_id(), "workdir": str(work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


WORK_PREFIX = "fer-ray-"


def _remove_orphans() -> None:
    """Delete this node's task folders whose worker process is gone (a task killed by a forced cancel)."""
    import re

    for d in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        m = re.match(rf"{WORK_PREFIX}(\d+)-", d.name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def publish(out_dir: str | Path, result: dict, feature_info: dict | None = None) -> Path:
    """Write a task's run folder under ``out_dir`` (atomically, as a local run is written)."""
    import json

    from ..store.runs import RunWriter

    files = dict(result["files"])
    if feature_info:  # the feature pass ran here, on the driver's cache: say so in metrics.json
        metrics = json.loads(files["metrics.json"])
        metrics["feature_cache"] = {**(metrics.get("feature_cache") or {}), **feature_info}
        files["metrics.json"] = json.dumps(metrics, indent=1).encode()
    with RunWriter(out_dir, result["run_id"]) as run:
        for name, data in files.items():
            target = run.tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return run.commit()


# --------------------------------------------------------------------------- progress in task order

class _Forwarder:
    """Forwards task events in task order: run i's events live, later runs' events once run i has ended."""

    def __init__(self, progress, configs):
        self.progress, self.configs = progress, configs
        self.buffers: dict[int, list] = {i: [] for i in range(len(configs))}
        self.ends: dict[int, dict] = {}  # index → the driver's model_end event (run published)
        self.current = 0
        self._start(0)

    def _start(self, i: int) -> None:
        if i < len(self.configs):
            c = self.configs[i]
            self.progress.on_event({"event": "model_start", "model": c.model, "seed": c.seed, "index": i,
                                    "total": len(self.configs),
                                    "epochs": c.epochs + (c.fine_tune_epochs if c.fine_tune_layers else 0)})

    def feed(self, items) -> None:
        for i, event in items:
            self.buffers[i].append({**event, "seed": self.configs[i].seed})
        self._flush()

    def finished(self, i: int, end_event: dict) -> None:
        self.ends[i] = end_event
        self._flush()

    def _flush(self) -> None:
        while self.current < len(self.configs):
            i = self.current
            for e in self.buffers[i]:
                self.progress.on_event(e)
            self.buffers[i] = []
            if i not in self.ends:
                return
            self.progress.on_event(self.ends[i])
            self.current += 1
            self._start(self.current)


# --------------------------------------------------------------------------- the sweep

def train_models_ray(ds, configs, out_dir: str | Path, *, progress=None, cache=None, command: str | None = None,
                     address: str | None = None, cpus_per_task: int = 1) -> list[Path]:
    """:func:`fer_core.fit.train.train_models` with one Ray task per config; the driver writes every run folder.

    Frozen transfer backbones first get their feature cache from :func:`feature_pass`
    (on the driver's cache), shipped to the tasks with the work.
    """
    from . import checkpoints
    from .progress import ProgressCallback
    from ..store.runs import TrainLock

    progress = progress or ProgressCallback()
    for cfg in configs:
        cfg.validate()
    paths: dict[int, Path] = {}
    with TrainLock(out_dir), ray_session(address) as ray:
        from ray.util.queue import Queue

        progress.on_event({"event": "run_start", "models": [c.model for c in configs], "dataset": ds.describe(),
                           "configs": [asdict(c) for c in configs], "engine": "ray"})
        shipped, infos = _precompute_features(ray, ds, configs, cache, progress, cpus_per_task)
        queue = Queue(actor_options={"num_cpus": 0})
        task = ray.remote(train_task).options(num_cpus=cpus_per_task, max_retries=0)
        ds_ref = ray.put(ds)
        # Where each run keeps its checkpoint here, as a local run would; an interrupted earlier run's goes with its task.
        ckpt_dirs = [checkpoints.checkpoint_dir(out_dir, asdict(c), ds.fingerprint) for c in configs]
        resume = [checkpoints.pack(d) if checkpoints.find(d) is not None else None for d in ckpt_dirs]
        refs = [task.remote(ds_ref, asdict(c), command, queue, i, shipped.get(i), resume[i]) for i, c in enumerate(configs)]
        index = {r: i for i, r in enumerate(refs)}
        forwarder = _Forwarder(progress, configs)
        pending = list(refs)

        def receive() -> None:
            """Store shipped checkpoints (in queue order, so before their epoch's event), forward the rest."""
            events = []
            for i, event in _drain(queue):
                if event.get("event") == CHECKPOINT_EVENT:
                    checkpoints.unpack(ckpt_dirs[i], event["files"])
                else:
                    events.append((i, event))
            forwarder.feed(events)

        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.25)
                receive()  # a finished task's events are all in the queue already
                for ref in done:
                    i = index[ref]
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the task's own error, as the local engine raises it
                        raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from None
                    paths[i] = publish(out_dir, result, infos.get(i))
                    checkpoints.clear(ckpt_dirs[i])  # the run is published; its checkpoint has done its job
                    end = dict(result["model_end"] or {"event": "model_end", "model": configs[i].model})
                    end.update(run_dir=str(paths[i]), seed=configs[i].seed, node=result["node"], worker_dir=result["workdir"])
                    forwarder.finished(i, end)
        except BaseException as exc:  # Ctrl-C, SIGTERM or a failed task: stop the rest, keep what is published
            with contextlib.suppress(Exception):
                receive()  # the last checkpoints already shipped: the same command continues from them
            _cancel(ray, pending)
            kept = [f"{configs[i].model} seed {configs[i].seed} after epoch {ck.epoch}/{ck.epochs}"
                    for i, d in enumerate(ckpt_dirs) if i not in paths and (ck := checkpoints.find(d)) is not None]
            if isinstance(exc, KeyboardInterrupt) and kept:
                raise checkpoints.TrainingInterrupted(
                    f"interrupted; checkpoints kept for {', '.join(kept)}: run the same command again to continue "
                    f"(in {Path(out_dir) / checkpoints.CHECKPOINTS})") from None
            raise
        finally:
            with contextlib.suppress(Exception):
                queue.shutdown()
        ordered = [paths[i] for i in range(len(configs))]
        progress.on_event({"event": "run_end", "status": "ok", "message": f"{len(ordered)} run(s) written",
                           "run_dirs": [str(p) for p in ordered]})
    return ordered


def _cancel(ray, refs, grace: float = 5.0) -> None:
    """Cancel tasks: first as a KeyboardInterrupt inside each (it removes its folder), then by force."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    with contextlib.suppress(Exception):
        _, refs = ray.wait(list(refs), num_returns=len(refs), timeout=grace)
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def _drain(queue) -> list:
    n = queue.qsize()
    return queue.get_nowait_batch(n) if n else []


def _precompute_features(ray, ds, configs, cache, progress, cpus_per_task: int):
    """Feature caches of the frozen ImageNet-style backbones, by Ray Data; → ({index: ref}, {index: info}).

    Only plain frozen backbones without ``--augment`` (the common case) are
    precomputed; ``fer_compact`` and augmented copies are computed inside their
    task on its node, exactly as the local engine does.
    """
    from .features import FeatureCache
    from ..models import get_spec

    cache = cache or FeatureCache()
    shipped, infos = {}, {}
    for i, cfg in enumerate(configs):
        spec = get_spec(cfg.model)
        if not spec.is_transfer or spec.trunk_from_run or cfg.augment:
            continue
        t0 = time.time()
        key, arrays, hit, workers = feature_cache_ray(ds, cfg, cache, progress=progress, cpus_per_worker=cpus_per_task)
        shipped[i] = ray.put({"key": key, "arrays": arrays})
        infos[i] = {"key": key, "hit": hit, "path": str(cache.path(key)), "seconds": round(time.time() - t0, 2),
                    "engine": "ray", "workers": workers}
    return shipped, infos


def feature_cache_ray(ds, cfg, cache, *, progress=None, workers: int | None = None, cpus_per_worker: int = 1):
    """The feature cache entry ``train_one`` would compute for ``cfg`` (no augmentation), computed by Ray Data.

    Same key as :func:`fer_core.fit.train._train_transfer` (the backbone is built
    under the same seed, so its weights digest is the same), same arrays: the
    evaluated split through the float32 backbone, the others in ``precision``.
    Returns (key, arrays, cache hit, workers used).
    """
    import keras

    from .features import cache_key, weights_digest
    from ..models import create_model, get_spec, split_transfer_model
    from ..compute.precision import resolve_precision
    from ..data.preprocess import prepare_images

    spec = get_spec(cfg.model)
    size = cfg.image_size or spec.default_image_size
    keras.utils.set_random_seed(cfg.seed)  # as train_one does before building the model
    model = create_model(cfg.model, ds.n_classes, image_size=size, weights=cfg.weights, dropout=cfg.dropout)
    features_model, _ = split_transfer_model(model)
    precision = resolve_precision(cfg.precision)
    key = cache_key(model_name=cfg.model, weights=weights_digest(features_model), fingerprint=ds.fingerprint,
                    image_size=size, augment_copies=0, seed=cfg.seed, precision=precision)
    found = cache.get(key)
    if found is not None:
        return key, found, True, 0
    splits = {s: prepare_images(xs, size, spec.channels) for s, (xs, _) in ds.splits.items()}
    status = None
    if progress is not None:
        status = lambda msg: progress.on_event({"event": "status", "model": cfg.model, "message": msg, "final": False})  # noqa: E731
    arrays, workers = feature_pass(features_model, splits, precision={s: ("float32" if s == ds.eval_split else precision)
                                                                       for s in splits},
                                   workers=workers, cpus_per_worker=cpus_per_worker, on_status=status)
    cache.put(key, arrays)
    return key, arrays, False, workers


# --------------------------------------------------------------------------- the feature pass

class BackboneActor:
    """Ray Data batch-inference actor: loads the backbone once, then maps batches of uint8 images to features."""

    def __init__(self, model_ref: list, precisions: list[str]):
        import ray

        limit_threads(_assigned_cpus())
        import keras

        from ..models import layers  # noqa: F401  registers the preprocessing layers for deserialisation
        from ..compute.forward import compiled_forward
        from ..compute.precision import with_precision

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "backbone.keras"
            path.write_bytes(ray.get(model_ref[0]))  # in a list: Ray Data passes it on unresolved
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        self.forward = {p: compiled_forward(model if p == "float32" else with_precision(model, p)) for p in precisions}
        self.precisions = precisions

    def __call__(self, batch: dict) -> dict:
        x, which = batch["data"], batch["precision"]
        out = None
        for k, p in enumerate(self.precisions):
            rows = np.flatnonzero(which == k)
            if len(rows):
                f = np.asarray(self.forward[p](x[rows]), dtype=np.float32)
                if out is None:
                    out = np.empty((len(x), f.shape[1]), np.float32)
                out[rows] = f
        return {"features": out}


def feature_pass(features_model, splits: dict, *, precision: dict | None = None, workers: int | None = None,
                 cpus_per_worker: int = 1, batch_size: int = 32, on_status=None) -> tuple[dict, int]:
    """uint8 images per split → float32 features per split, computed by ``workers`` Ray Data actors.

    The images are cut into blocks (4 per worker, at most 1024 images each) so
    every actor gets work; order is preserved. ``precision`` maps a split to
    the dtype its features are computed in (default float32). Needs Ray to be
    initialised. Returns (features per split, workers used).
    """
    import ray
    from ray.data.block import BlockAccessor
    from ray.data.context import DataContext

    precision = precision or {}
    names = sorted(set(precision.get(s, "float32") for s in splits))
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "backbone.keras"
        features_model.save(path)
        model_ref = [ray.put(path.read_bytes())]  # by reference: the backbone is not pickled into the job
    total = sum(len(v) for v in splits.values())
    step = int(min(1024, max(batch_size, np.ceil(total / (4 * workers)))))
    blocks = []
    for s, imgs in splits.items():
        code = names.index(precision.get(s, "float32"))
        for i in range(0, len(imgs), step):
            part = np.ascontiguousarray(imgs[i:i + step])
            blocks.append(BlockAccessor.batch_to_block({"data": part, "precision": np.full(len(part), code, np.int8)}))
    ctx = DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    ctx.execution_options.preserve_order, ctx.enable_progress_bars = True, False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        data = ray.data.from_blocks(blocks).map_batches(
            BackboneActor, fn_constructor_kwargs={"model_ref": model_ref, "precisions": names},
            batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus_per_worker,
            batch_format="numpy")
        outs, done = [], 0
        for batch in data.iter_batches(batch_size=None, batch_format="numpy"):
            outs.append(batch["features"])
            done += len(batch["features"])
            if on_status:
                on_status(f"computing backbone features {done}/{total} on {workers} Ray worker(s)")
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
    flat = np.concatenate(outs).astype(np.float32)
    if len(flat) != total:
        raise FERError(f"feature pass returned {len(flat)} rows for {total} images")
    result, start = {}, 0
    for s, imgs in splits.items():
        result[s] = flat[start:start + len(imgs)]
        start += len(imgs)
    return result, workers
