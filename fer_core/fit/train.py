"""Training: one :class:`TrainConfig` → one run folder.

Two paths, chosen by the model's kind:

* scratch models (``baseline``) train end to end with ``model.fit`` on
  ``(B, S, S, C)`` uint8 batches, augmented in the input pipeline;
* transfer models run their frozen backbone once per image (through the
  :mod:`~fer_core.fit.features` cache), train the head on ``(B, D)`` features,
  optionally fine-tune the top backbone layers on pixels, and save the full
  model so it predicts from raw pixels. ``fer_compact`` takes this path too:
  its "backbone" is the conv trunk of a trained ``compact`` run (the bundled
  FER2013 model unless ``init_from`` names another), under a new head.

Both end in the same evaluation and the same atomic run folder.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import keras
import numpy as np

from . import checkpoints
from ..data.datasets import Dataset
from ..data.defaults import AUGMENT_MODES, CLASS_WEIGHTS, LR_SCHEDULES
from ..errors import ModelError
from .evaluation import classification_metrics, paper_set_scores
from .app_crops import train_app_crops
from .features import FeatureCache, cache_key, compute_features, weights_digest
from ..compute.forward import compiled_forward, latency_ms, predict_batches
from ..models import create_model, get_spec, split_transfer_model, unfreeze_top
from ..models.from_compact import load_source, source_label, source_record
from ..models.transfer import backbone_layers
from ..compute.precision import PRECISIONS, as_float32, dtype_policy, resolve_precision, with_precision
from ..data.preprocess import prepare_images
from .progress import ProgressCallback
from ..store.runs import RunWriter, TrainLock, init_from_record, new_run_id, save_inference_model  # noqa: F401  (the last two lived here until 0.9)

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
#: ``--augment-mode aligned``: the share of training faces shown as the app's own crop of them
#: (:mod:`fer_core.faces.training_crops`) in each epoch, drawn per face; all then get the photo augmentation.
APP_CROP_SHARE = 0.5


@dataclass
class TrainConfig:
    """Every setting of a run; saved in ``config.json`` so the run can be rebuilt."""

    model: str = "baseline"
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    image_size: int | None = None  # None → the model's default (128)
    weights: str = "imagenet"  # transfer models: imagenet | none | path to a weights file
    seed: int = 0
    patience: int = 5  # early stopping on val_accuracy (best weights restored); 0 = off
    class_weight: str = "none"  # none | balanced (inverse class frequency) | sqrt (its square root: milder)
    augment: bool = False  # flip, small rotation/zoom/contrast
    # resample: every face through the random rotation/zoom/shift (a sub-pixel bilinear resample, i.e. a blur);
    # photo: half the faces stay sharp, and some get what the app's crops get (lower resolution, blur, JPEG)
    augment_mode: str = "resample"
    augment_copies: int = 2  # transfer models: augmented feature copies kept in the cache
    lr_schedule: str = "plateau"  # none | plateau (halve on val_loss plateau) | cosine
    label_smoothing: float = 0.0
    dropout: float = 0.2  # transfer head dropout (baseline keeps the seed's 0.2)
    fine_tune_layers: int = 0  # transfer models: unfreeze the top K backbone layers afterwards
    fine_tune_epochs: int = 5
    fine_tune_learning_rate: float = 1e-5
    # float32 | bfloat16 (mixed: scratch training, backbone feature pass) | auto (bfloat16 on CPUs with native bf16)
    precision: str = "auto"
    tta_flip: bool = False  # models that support it: the saved model averages each image with its mirror
    # scratch models: a run folder whose trained weights start this run (same classes);
    # fer_compact: the compact-like run whose trunk it starts from, any classes (None → the bundled models/compact)
    init_from: str | None = None

    def validate(self) -> None:
        spec = get_spec(self.model)
        checks = [
            (self.epochs >= 1, "epochs must be ≥ 1"),
            (self.batch_size >= 1, "batch size must be ≥ 1"),
            (self.learning_rate > 0, "learning rate must be > 0"),
            (self.patience >= 0, "patience must be ≥ 0"),
            (self.class_weight in CLASS_WEIGHTS, f"class weight must be one of {', '.join(CLASS_WEIGHTS)}"),
            (self.lr_schedule in LR_SCHEDULES, f"lr schedule must be one of {', '.join(LR_SCHEDULES)}"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.augment_copies >= 0, "augment copies must be ≥ 0"),
            (self.augment_mode in AUGMENT_MODES, f"augment mode must be one of {', '.join(AUGMENT_MODES)}"),
            (self.augment_mode != "aligned" or not spec.is_transfer,
             f"{self.model}: augment mode 'aligned' is for models trained on pixels (not a frozen backbone)"),
            (self.fine_tune_layers >= 0, "fine-tune layers must be ≥ 0"),
            (self.fine_tune_layers == 0 or spec.is_transfer, f"{self.model} has no backbone to fine-tune"),
            (not self.tta_flip or spec.supports_tta, f"{self.model} has no mirror test-time augmentation (--tta-flip)"),
            (self.init_from is None or not spec.is_transfer or spec.trunk_from_run,
             f"{self.model}: --init-from continues scratch models only; transfer models start from --weights"),
            (self.image_size is None or self.image_size >= spec.min_image_size,
             f"{self.model} needs an image size of at least {spec.min_image_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ModelError(f"{self.model}: {message}")

    @property
    def uses_app_crops(self) -> bool:
        """Whether training shows the app's own crops of the faces (``--augment --augment-mode aligned``)."""
        return self.augment and self.augment_mode == "aligned"

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# --------------------------------------------------------------------------- helpers

class KerasProgress(keras.callbacks.Callback):
    """Bridges ``model.fit`` epochs to progress events."""

    def __init__(self, callback: ProgressCallback, model_name: str, epochs: int, stage: int = 1, epoch_offset: int = 0):
        super().__init__()
        self.cb, self.model_name, self.epochs, self.stage, self.offset = callback, model_name, epochs, stage, epoch_offset

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        self.cb.on_event({"event": "epoch_end", "model": self.model_name, "stage": self.stage,
                          "epoch": self.offset + epoch + 1, "epochs": self.epochs, "logs": logs})


def make_augmenter(seed: int):
    """Small, face-safe augmentations: mirror, ±18° turn, ±10% zoom, ±8% shift, ±10% contrast."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.05, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 2),
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="nearest", seed=seed + 4),
        keras.layers.RandomContrast(0.1, seed=seed + 3),
    ], name="augment")


def make_photo_augmenter(seed: int, sharp_share: float = 0.5, low_res_share: float = 0.3,
                         blur_share: float = 0.2, jpeg_share: float = 0.3):
    """Augmentation that looks like the app's aligned crops: ``(B, S, S, C)`` float 0–255 → same shape.

    Why: :func:`make_augmenter` resamples every face (the random turn, zoom and
    shift are a bilinear sub-pixel resample), so a network trained with it has
    hardly seen a sharp face (the input blur of ``compact_x2_blur`` makes up
    for that at inference). Here a share of the faces keeps only the mirror and
    contrast (sharp), and some get the degradations a face cut from a photo
    gets: fewer pixels (a small face upscaled), a blur, JPEG blocks.
    """
    import tensorflow as tf

    flip = keras.layers.RandomFlip("horizontal", seed=seed)
    geometric = keras.Sequential([
        keras.layers.RandomRotation(0.05, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 2),
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="nearest", seed=seed + 4),
    ])
    contrast = keras.layers.RandomContrast(0.1, seed=seed + 3)
    gen = tf.random.Generator.from_seed(seed + 5)

    def pick(share, shape, a, b):  # per-face choice: a where drawn, else b
        return tf.where(gen.uniform(shape) < share, a, b)

    def augment(x):  # (B, S, S, C) float32 0–255
        b, s = tf.shape(x)[0], tf.shape(x)[1]
        per_face = tf.stack([b, 1, 1, 1])
        f32 = lambda t: tf.cast(t, tf.float32)  # noqa: E731  (Keras layers answer in the bfloat16 policy's dtype)
        x = f32(flip(x, training=True))
        x = pick(sharp_share, per_face, x, f32(geometric(x, training=True)))
        # fewer pixels: down to 50–90 % of the side and back (one size per batch, chosen per face)
        side = tf.cast(tf.cast(s, tf.float32) * gen.uniform([], 0.5, 0.9), tf.int32)
        small = tf.image.resize(tf.image.resize(x, tf.stack([side, side]), antialias=True), tf.stack([s, s]))
        x = pick(low_res_share, per_face, small, x)
        # blur: σ 0.4–1.2 px (one σ per batch), 5×5 separable Gaussian
        sigma = gen.uniform([], 0.4, 1.2)
        taps = tf.exp(-0.5 * tf.square(tf.range(-2.0, 3.0) / sigma))
        taps = taps / tf.reduce_sum(taps)
        c = tf.shape(x)[3]
        kx = tf.tile(tf.reshape(taps, [1, 5, 1, 1]), tf.stack([1, 1, c, 1]))
        ky = tf.tile(tf.reshape(taps, [5, 1, 1, 1]), tf.stack([1, 1, c, 1]))
        padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC")
        blurred = tf.nn.depthwise_conv2d(tf.nn.depthwise_conv2d(padded, kx, [1, 1, 1, 1], "VALID"), ky,
                                         [1, 1, 1, 1], "VALID")
        x = pick(blur_share, per_face, blurred, x)
        # JPEG at quality 30–90 (per face)
        x8 = tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
        jpeg = tf.map_fn(lambda im: tf.image.random_jpeg_quality(im, 30, 90), x8)
        x = pick(jpeg_share, per_face, tf.cast(jpeg, tf.float32), x)
        return f32(contrast(x, training=True))

    return augment


def pipeline_augmenter(cfg: "TrainConfig"):
    """The training augmentation of ``cfg`` as ``f(x) -> x`` on (B, S, S, C) float batches, or None."""
    if not cfg.augment:
        return None
    if cfg.augment_mode in ("photo", "aligned"):  # aligned: the app crops are swapped in first (_image_pipeline)
        return make_photo_augmenter(cfg.seed)
    layers = make_augmenter(cfg.seed)
    return lambda x: layers(x, training=True)


def balanced_class_weights(labels: np.ndarray, n_classes: int, power: float = 1.0) -> dict[int, float]:
    """Inverse-frequency weights (scikit-learn's 'balanced') raised to ``power``; absent classes get 1.

    ``power=0.5`` ("sqrt") lifts rare classes (FER2013's 436 disgust faces)
    without paying as much overall accuracy as full balancing.
    """
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    w = compute_class_weight("balanced", classes=present, y=labels) ** power
    out = {int(c): 1.0 for c in range(n_classes)}
    out.update({int(c): float(v) for c, v in zip(present, w)})
    return out


def _callbacks(cfg: TrainConfig, progress: ProgressCallback, model_name: str, epochs: int, stage: int, offset: int = 0):
    cbs = [KerasProgress(progress, model_name, offset + epochs, stage=stage, epoch_offset=offset)]
    if cfg.patience:
        cbs.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=cfg.patience,
                                                 restore_best_weights=True))
    if cfg.lr_schedule == "plateau":
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                     patience=max(2, cfg.patience // 2 if cfg.patience else 3), min_lr=1e-6))
    return cbs


def _compile(model, cfg: TrainConfig, lr: float, steps: int, epochs: int):
    rate = lr
    if cfg.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps * epochs), alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])


def _image_pipeline(x: np.ndarray, y: np.ndarray, batch: int, *, shuffle_seed: int | None, augmenter=None,
                    alt: np.ndarray | None = None, alt_share: float = APP_CROP_SHARE, alt_seed: int = 0):
    """uint8 (N, S, S, C) + one-hot (N, K) → batched float32 tf.data, augmented in the pipeline.

    ``alt`` (N, S, S, C): another view of each face (the app's crop of it); each
    epoch a fresh ``alt_share`` of the faces, drawn per face, is shown as that view.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y) if alt is None else (x, alt, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    if alt is None:
        ds = ds.batch(batch).map(lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        gen = tf.random.Generator.from_seed(alt_seed)

        def swap(a, c, b):  # (B, S, S, C) ×2 → one view per face
            drawn = gen.uniform(tf.stack([tf.shape(a)[0], 1, 1, 1])) < alt_share
            return tf.cast(tf.where(drawn, c, a), tf.float32), b

        ds = ds.batch(batch).map(swap)  # one map call at a time: the generator's state is not shared
    if augmenter is not None:
        ds = ds.map(lambda a, b: (augmenter(a), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _merge_history(history: dict, new: dict, stage: int) -> None:
    n = len(new.get("loss", []))
    for k in HISTORY_KEYS:
        history.setdefault(k, []).extend(float(v) for v in new.get(k, [np.nan] * n))
    if "learning_rate" in new:
        history.setdefault("learning_rate", []).extend(float(v) for v in new["learning_rate"])
    history.setdefault("stage", []).extend([stage] * n)


def _continue_from(model, cfg: TrainConfig, ds: Dataset, size: int, status):
    """Start ``model`` from the weights of the run ``cfg.init_from``; returns (that run, how).

    ``how``: "continued", "trunk_only" or "widened" (recorded with the run).

    Same model, classes and input: all weights (a second training cycle on top
    of a finished one, a warm restart of the learning-rate schedule, is cheaper
    than one longer run from scratch). ``compact`` on another class set (FER+'s
    8 emotions from the FER2013 model): the conv trunk only, by layer name,
    under a new head that trains with it (``trunk_only``). ``compact_wide`` from
    a ``compact`` run on the same classes: widened (:mod:`..models.widen`), the
    same predictions at the start, so its curves continue the earlier run's.
    """
    from ..models.from_compact import TRUNK_LAYERS
    from ..store.runs import load_run

    earlier = load_run(cfg.init_from)
    want = (cfg.model, list(ds.class_names), size)
    have = (earlier.model_name, list(earlier.metrics["class_names"]), earlier.config.get("model", {}).get("image_size"))
    trunk_only = (want[0] == "compact" and have[0] in ("compact", "fer_compact") and have[2] == want[2]
                  and have[1] != want[1])
    widened = want[0] == "compact_wide" and have[0] == "compact" and have[1:] == want[1:]
    if have != want and not (trunk_only or widened):
        raise ModelError(f"--init-from {earlier.id}: it is {have[0]} on {len(have[1])} classes at {have[2]} px; "
                         f"this run is {want[0]} on {len(want[1])} classes at {want[2]} px")
    source = earlier.load_model()
    if trunk_only:
        for name in TRUNK_LAYERS:
            model.get_layer(name).set_weights(source.get_layer(name).get_weights())
        status(f"starting from the conv trunk of {earlier.id} ({len(have[1])} classes) under a new "
               f"{len(want[1])}-class head")
    elif widened:
        from ..models.widen import widen_into

        widen_into(source, model, seed=cfg.seed)
        status(f"widened from {earlier.id} ({len(earlier.history.get('loss', []))} epochs of compact): "
               "the same predictions at the start")
    else:
        model.set_weights(source.get_weights())  # a mirror-TTA model has the same weights
        status(f"continuing from {earlier.id} ({len(earlier.history.get('loss', []))} epochs)")
    return earlier, "trunk_only" if trunk_only else "widened" if widened else "continued"


def _prepend_history(earlier: dict, history: dict) -> dict:
    """The earlier run's epochs (stage 0) followed by this run's: the curves show the whole training."""
    n = len(earlier.get("loss", []))
    merged = {k: [*earlier.get(k, [np.nan] * n), *history.get(k, [])] for k in HISTORY_KEYS}
    if "learning_rate" in history:
        merged["learning_rate"] = [*earlier.get("learning_rate", [np.nan] * n), *history["learning_rate"]]
    merged["stage"] = [0] * n + list(history.get("stage", []))
    return merged


def _trunk_state(model, cfg: TrainConfig) -> str:
    """How a fer_compact run used its source trunk, in words (recorded with the run)."""
    tuned = [l.name for l in backbone_layers(model) if l.trainable and l.weights]
    if not tuned:
        return "frozen"
    return (f"top {len(tuned)} conv layers fine-tuned ({', '.join(tuned)}) at lr {cfg.fine_tune_learning_rate:g} "
            f"for {cfg.fine_tune_epochs} epochs; BatchNorm frozen")


def with_flip_tta(model, name: str, n_classes: int, image_size: int):
    """The trained ``model`` as its mirror-TTA inference variant: same weights, 2× the compute per image."""
    tta = create_model(name, n_classes, image_size=image_size, weights="none", tta_flip=True)
    tta.set_weights(model.get_weights())
    return tta


# --------------------------------------------------------------------------- one model

def train_one(ds: Dataset, cfg: TrainConfig, out_dir: str | Path, *, progress: ProgressCallback | None = None,
              cache: FeatureCache | None = None, command: str | None = None) -> Path:
    """Train ``cfg.model`` on ``ds``, evaluate, and publish a run folder; returns its path."""
    progress = progress or ProgressCallback()
    cfg.validate()
    spec = get_spec(cfg.model)
    size = cfg.image_size or spec.default_image_size
    source = None
    if spec.trunk_from_run:  # fer_compact: trunk and input size come from the source run, checked up front
        source, _, size, _ = load_source(cfg.init_from, cfg.image_size)
        # --weights does not apply: the recorded weights are the source run (so nothing mistakes it for ImageNet)
        cfg = replace(cfg, weights=source_label(source))
    keras.utils.set_random_seed(cfg.seed)
    t0 = time.time()
    status = lambda msg, final=True: progress.on_event({"event": "status", "model": cfg.model, "message": msg, "final": final})  # noqa: E731

    status(f"preparing images at {size}×{size}×{spec.channels}")
    eval_split = ds.eval_split
    x = {s: prepare_images(xs, size, spec.channels) for s, (xs, _) in ds.splits.items()}  # uint8 (N, S, S, C)
    if cfg.uses_app_crops:  # validate() kept it to models trained on pixels
        x["train_app_crops"] = prepare_images(train_app_crops(ds, status, cache), size, spec.channels)
    y = {s: ys for s, (_, ys) in ds.splits.items()}
    y1h = {s: ds.training_targets(s) for s in ds.splits}  # (N, C): one-hot, or FER+'s vote distributions
    class_weight = (None if cfg.class_weight == "none" else
                    balanced_class_weights(y["train"], ds.n_classes, power=1.0 if cfg.class_weight == "balanced" else 0.5))

    history: dict = {}
    cache_info, earlier, ckpt_dir, resumed, how = None, None, None, None, None
    precision = resolve_precision(cfg.precision)
    if spec.is_transfer:
        model = create_model(cfg.model, ds.n_classes, image_size=size, weights=str(source.path) if source else cfg.weights,
                             dropout=cfg.dropout)
        probs, cache_info = _train_transfer(model, ds, cfg, x, y1h, class_weight, progress, cache or FeatureCache(),
                                            size, status, precision=precision)
        history = cache_info.pop("history")
    else:
        ckpt_dir = checkpoints.checkpoint_dir(out_dir, asdict(cfg), ds.fingerprint)
        with dtype_policy(precision):
            model = create_model(cfg.model, ds.n_classes, image_size=size, weights=cfg.weights, dropout=cfg.dropout)
            earlier, how = _continue_from(model, cfg, ds, size, status) if cfg.init_from else (None, None)
            model, resumed = _train_scratch(model, cfg, x, y1h, class_weight, progress, history, ckpt_dir, status)
        if earlier is not None and how != "trunk_only":  # a trunk from another class set: its curves are another task's
            history = _prepend_history(earlier.history, history)
        model = as_float32(model)  # what is saved is what is evaluated
        if cfg.tta_flip:
            model = with_flip_tta(model, cfg.model, ds.n_classes, size)
        probs = predict_batches(compiled_forward(model), x[eval_split], 128)
    train_seconds = time.time() - t0 + (resumed.seconds if resumed else 0.0)  # + the epochs before an interruption
    trunk_from = None if source is None else source_record(source, _trunk_state(model, cfg))

    status("evaluating")
    metrics = classification_metrics(y[eval_split], probs, ds.class_names)
    if (paper := paper_set_scores(ds, eval_split, probs)) is not None:
        metrics["ferplus_paper"] = paper  # FER+: the paper's test set, beside the plurality accuracy above
    # Best epoch of this run (early stopping restored it); epochs of an --init-from run come first.
    skip = len(earlier.history.get("loss", [])) if earlier is not None and how != "trunk_only" else 0
    own = history.get("val_accuracy", [])[skip:]
    best = skip + int(np.nanargmax(own)) + 1 if own and not np.all(np.isnan(own)) else None
    with RunWriter(out_dir, new_run_id(cfg.model, ds.fingerprint)) as run:
        save_inference_model(model, run.tmp / "model.keras")
        metrics.update({
            "model": cfg.model,
            "split": eval_split,
            "train_seconds": round(train_seconds, 2),  # this run; with --init-from see train_seconds_total
            "params": int(model.count_params()),
            "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            "model_size_bytes": (run.tmp / "model.keras").stat().st_size,
            "latency_ms": round(latency_ms(compiled_forward(model), (size, size, spec.channels)), 2),
            "epochs_run": len(history.get("loss", [])),
            "train_precision": precision,
            "best_epoch": best,
            "dataset": ds.describe(),
            "config": asdict(cfg),
            "feature_cache": cache_info,
            "init_from": None if earlier is None else {**init_from_record(earlier), "trunk_only": how == "trunk_only",
                                                       "widened": how == "widened"},
            "trunk_from": trunk_from,  # fer_compact: the run its trunk came from (id, path, dataset fingerprint)
            "resumed_after_epoch": resumed.epoch if resumed else None,  # continued from an interrupted training's checkpoint
            "command": command,
            "created": time.time(),
        })
        if earlier is not None:
            metrics["train_seconds_total"] = round(train_seconds + metrics["init_from"]["train_seconds"], 2)
        history["best_epoch"] = best
        run.write_json("history.json", history)
        run.write_json("metrics.json", metrics)
        run.write_json("config.json", {
            "train_config": asdict(cfg),
            "model": {"name": spec.name, "kind": spec.kind, "image_size": size, "channels": spec.channels,
                      "gradcam_layer": spec.gradcam_layer, "backbone": spec.backbone,
                      **({"trunk_from": trunk_from} if trunk_from else {})},
            "n_classes": ds.n_classes,
            "class_names": list(ds.class_names),
        })
        path = run.commit()
    if ckpt_dir is not None:
        checkpoints.clear(ckpt_dir)  # the run is published; its checkpoint has done its job
    progress.on_event({"event": "model_end", "model": cfg.model, "seed": cfg.seed, "run_dir": str(path), "split": eval_split,
                       "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "seconds": train_seconds})
    return path


def _train_scratch(model, cfg, x, y1h, class_weight, progress, history, ckpt_dir: Path | None = None, status=None):
    """``model.fit`` on pixels, checkpointed after every epoch; returns (the trained model, the resumed checkpoint or None).

    When ``ckpt_dir`` holds a checkpoint of this very config and dataset (an
    earlier, interrupted run of the same command), the model and optimizer
    are taken from it and training continues after its last epoch.
    ``ckpt_dir=None``: no checkpoints (benchmarks timing the bare epochs).
    """
    augmenter = pipeline_augmenter(cfg)
    train = _image_pipeline(x["train"], y1h["train"], cfg.batch_size, shuffle_seed=cfg.seed, augmenter=augmenter,
                            alt=x.get("train_app_crops"), alt_seed=cfg.seed + 7)  # present only with uses_app_crops
    val = _image_pipeline(x["validation"], y1h["validation"], cfg.batch_size, shuffle_seed=None)
    resumed = checkpoints.find(ckpt_dir) if ckpt_dir is not None else None
    if resumed is not None and resumed.epochs == cfg.epochs:
        model = resumed.load_model()  # compiled, with Adam's moments and the schedule's step count
        if status is not None:
            status(f"resuming after epoch {resumed.epoch}/{cfg.epochs} (checkpoint {ckpt_dir})")
    else:
        resumed = None
        steps = int(np.ceil(len(x["train"]) / cfg.batch_size))
        _compile(model, cfg, cfg.learning_rate, steps, cfg.epochs)
    saver = None if ckpt_dir is None else checkpoints.EpochCheckpoint(
        ckpt_dir, cfg.epochs, resumed.history if resumed else None, resumed.seconds if resumed else 0.0,
        on_saved=getattr(progress, "on_checkpoint", None))  # the Ray engine's sink ships it to the driver
    try:
        fit = model.fit(train, validation_data=val, epochs=cfg.epochs, initial_epoch=resumed.epoch if resumed else 0,
                        class_weight=class_weight, verbose=0, shuffle=False,  # saved before it is reported:
                        callbacks=[*([saver] if saver else []), *_callbacks(cfg, progress, cfg.model, cfg.epochs, stage=1)])
    except KeyboardInterrupt:
        done = len(saver.history.get("loss", [])) if saver else 0
        if done:
            raise checkpoints.TrainingInterrupted(
                f"{cfg.model}: interrupted after epoch {done}/{cfg.epochs}; run the same command again to continue "
                f"from there (checkpoint in {ckpt_dir})") from None
        raise
    if resumed is not None:
        _merge_history(history, resumed.history, stage=1)
    _merge_history(history, fit.history, stage=1)
    return model, resumed


def _train_transfer(model, ds, cfg, x, y1h, class_weight, progress, cache, size, status, precision="float32"):
    """Head on cached features, then optional fine-tuning on pixels. Returns (probs, cache info).

    The one-off feature pass over the train and validation splits runs in
    ``precision`` (a bfloat16 twin of the backbone where that is faster); the
    evaluated split always goes through the float32 backbone that is saved,
    and the head always trains in float32.
    """
    features_model, head = split_transfer_model(model)
    eval_split = ds.eval_split
    copies = cfg.augment_copies if cfg.augment else 0
    key = cache_key(model_name=cfg.model, weights=weights_digest(features_model), fingerprint=ds.fingerprint,
                    image_size=size, augment_copies=copies, seed=cfg.seed, precision=precision,
                    augment_mode=cfg.augment_mode)
    feats = cache.get(key)
    hit = feats is not None
    t_feat = time.time()
    if not hit:
        extractor = features_model if precision == "float32" else with_precision(features_model, precision)
        feats = {}
        total = sum(len(v) for v in x.values()) + copies * len(x["train"])
        done = [0]

        def tick(k, n):
            status(f"computing backbone features {done[0] + k}/{total}", final=False)
            if k == n:
                done[0] += n

        for split, imgs in x.items():
            # The evaluated split goes through the float32 backbone, as in the saved model, so the
            # reported metrics are exactly what the saved model scores.
            ext = features_model if split == eval_split else extractor
            feats[split] = compute_features(ext, imgs, on_batch=tick)  # (N, D) float32
        if copies:
            aug = pipeline_augmenter(cfg)
            train_f = [feats["train"]]
            for c in range(copies):
                import tensorflow as tf

                tf.random.set_seed(cfg.seed + 100 + c)
                augmented = np.concatenate([
                    np.clip(np.rint(np.asarray(aug(x["train"][i:i + 256].astype(np.float32)))), 0, 255).astype(np.uint8)
                    for i in range(0, len(x["train"]), 256)])
                train_f.append(compute_features(extractor, augmented, on_batch=tick))
            feats["train_augmented"] = np.stack(train_f[1:])  # (K, N, D)
        cache.put(key, feats)
    status(f"backbone features {'loaded from cache' if hit else 'computed'} in {time.time() - t_feat:.1f} s")
    info = {"key": key, "hit": hit, "seconds": round(time.time() - t_feat, 2), "augment_copies": copies,
            "precision": precision, "path": str(cache.path(key))}

    train_x, train_y = feats["train"], y1h["train"]
    if copies:
        train_x = np.concatenate([train_x, *feats["train_augmented"]])  # ((K+1)·N, D)
        train_y = np.concatenate([train_y] * (copies + 1))
    import tensorflow as tf

    train = tf.data.Dataset.from_tensor_slices((train_x, train_y)).shuffle(len(train_x), seed=cfg.seed).batch(cfg.batch_size)
    val = tf.data.Dataset.from_tensor_slices((feats["validation"], y1h["validation"])).batch(cfg.batch_size)
    steps = int(np.ceil(len(train_x) / cfg.batch_size))
    _compile(head, cfg, cfg.learning_rate, steps, cfg.epochs)
    history: dict = {}
    fit = head.fit(train, validation_data=val, epochs=cfg.epochs, class_weight=class_weight, verbose=0, shuffle=False,
                   callbacks=_callbacks(cfg, progress, cfg.model, cfg.epochs, stage=1))
    _merge_history(history, fit.history, stage=1)

    if cfg.fine_tune_layers:
        n = unfreeze_top(model, cfg.fine_tune_layers)
        status(f"fine-tuning the top {n} backbone layers at lr {cfg.fine_tune_learning_rate:g}")
        augmenter = pipeline_augmenter(cfg)
        train_px = _image_pipeline(x["train"], y1h["train"], cfg.batch_size, shuffle_seed=cfg.seed, augmenter=augmenter)
        val_px = _image_pipeline(x["validation"], y1h["validation"], cfg.batch_size, shuffle_seed=None)
        offset = len(history["loss"])
        _compile(model, cfg, cfg.fine_tune_learning_rate, len(train_px), cfg.fine_tune_epochs)
        fit = model.fit(train_px, validation_data=val_px, epochs=cfg.fine_tune_epochs, class_weight=class_weight,
                        verbose=0, shuffle=False,
                        callbacks=_callbacks(cfg, progress, cfg.model, cfg.fine_tune_epochs, stage=2, offset=offset))
        _merge_history(history, fit.history, stage=2)
        probs = predict_batches(compiled_forward(model), x[eval_split], 32)
    else:
        probs = predict_batches(compiled_forward(head), feats[eval_split], 256)
    info["history"] = history
    return probs, info


# --------------------------------------------------------------------------- many models

def train_models(ds: Dataset, configs: list[TrainConfig], out_dir: str | Path, *,
                 progress: ProgressCallback | None = None, cache: FeatureCache | None = None,
                 command: str | None = None) -> list[Path]:
    """Train each config in turn under an exclusive lock on ``out_dir``."""
    progress = progress or ProgressCallback()
    for cfg in configs:
        cfg.validate()
    paths = []
    with TrainLock(out_dir):
        progress.on_event({"event": "run_start", "models": [c.model for c in configs], "dataset": ds.describe(),
                           "configs": [asdict(c) for c in configs]})
        for i, cfg in enumerate(configs):
            progress.on_event({"event": "model_start", "model": cfg.model, "seed": cfg.seed, "index": i, "total": len(configs),
                               "epochs": cfg.epochs + (cfg.fine_tune_epochs if cfg.fine_tune_layers else 0)})
            paths.append(train_one(ds, cfg, out_dir, progress=progress, cache=cache, command=command))
        progress.on_event({"event": "run_end", "status": "ok", "message": f"{len(paths)} run(s) written",
                           "run_dirs": [str(p) for p in paths]})
    return paths

