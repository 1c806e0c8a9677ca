"""``fer_compact``: the convolutional trunk of a trained ``compact`` run + a new head, for any class set.

Why: ImageNet weights may be unreachable (offline machines), and for faces an
in-domain trunk is often the better start anyway. The bundled ``models/compact``
learned FER2013's faces (28,709 of them); its trunk — everything up to global
average pooling — maps a 48×48 gray face to a 256-d expression descriptor that
a new head can read for another class set (the user's own folders, AffectNet's
8 classes with *contempt*, a merged positive/negative set, …).

Graph (one flat Keras model, like the transfer models, so Grad-CAM reaches
``block4b_relu`` by name and the trainer's feature cache and fine-tuning work
unchanged)::

    pixels (B, 48, 48, 1) 0–255 → preprocess [-1, 1] → compact trunk (4 stages of
    conv-bn-relu ×2, frozen) → gap (B, 256) → head_bn → head_dropout → head_dense
    softmax (B, C)

The trunk's weights are copied layer by layer (by name) from the source run's
``model.keras``; a mirror-TTA source has the same layers plus two weightless
ones, so it works as a source too, and so does another ``fer_compact`` run.

BatchNorm: the trunk's BatchNormalization layers are frozen, always — also when
``--fine-tune-layers`` unfreezes convolutions. In Keras 3 a frozen BN layer also
runs in inference mode, i.e. normalises with the moving statistics it learned
on FER2013. That is what we want: (1) the frozen trunk must map a face to the
same vector every epoch, or the trainer's feature cache would be wrong; (2) a
few hundred faces per class give noisy batch statistics, and re-estimating
them would shift every feature under the head that was just trained on them.
FER2013's statistics are in-domain for faces; where a new dataset's pixel
statistics differ (colour photos turned gray, other crops), ``head_bn``
renormalises the pooled features the head sees.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from ..errors import FERError, ModelError
from .compact import WIDTH, compact_trunk
from .registry import ModelSpec
from .transfer import HEAD_LAYERS

#: The trunk a source run must have: compact's conv/BN layers, by name.
TRUNK_LAYERS = tuple(f"block{s}{ab}_{kind}" for s in (1, 2, 3, 4) for ab in "ab" for kind in ("conv", "bn"))
#: Where the trunk comes from unless ``--init-from`` names another run: the bundled FER2013 model.
DEFAULT_SOURCE = Path(__file__).resolve().parent.parent.parent / "models" / "compact"


def load_source(path: str | Path | None, image_size: int | None = None):
    """The source run and its trunk, checked: ``(run, {layer name: weights}, image size, width)``.

    Raises :class:`ModelError` with one line when ``path`` is no run folder,
    not a compact-like model (no ``block1a_conv`` … ``block4b_bn`` trunk or
    not gray), or takes another input size than ``image_size``.
    """
    from ..hooks import load_run

    path = Path(path) if path else DEFAULT_SOURCE
    try:
        run = load_run(path)
    except FERError as exc:
        raise ModelError(f"fer_compact: --init-from {path}: {exc}") from None
    spec = run.config.get("model", {})
    size, channels = spec.get("image_size"), spec.get("channels")
    if channels != 1 or run.model_name not in ("compact", "fer_compact"):
        raise ModelError(f"fer_compact: --init-from {run.id} is a {run.model_name} model "
                         f"({size} px, {channels} channel(s)), not compact-like: it needs a run of compact or "
                         f"fer_compact (48 px gray conv trunk)")
    if image_size is not None and size != image_size:
        raise ModelError(f"fer_compact: --init-from {run.id} takes {size} px faces, this run asks for "
                         f"{image_size} px (leave --image-size out to use {size})")
    model = run.load_model()
    names = {l.name for l in model.layers}
    missing = [n for n in TRUNK_LAYERS if n not in names]
    if missing:
        raise ModelError(f"fer_compact: --init-from {run.id} has no compact trunk (missing layer {missing[0]})")
    trunk = {n: model.get_layer(n).get_weights() for n in TRUNK_LAYERS}  # numpy arrays
    width = int(trunk["block1a_conv"][0].shape[-1])  # kernel (3, 3, 1, w)
    return run, trunk, int(size), width


def source_label(run) -> str:
    """``models/compact`` for the bundled source (the same on every machine), else the path as given."""
    return "models/compact" if run.path.resolve() == DEFAULT_SOURCE.resolve() else str(run.path)


def source_record(run, trunk_state: str) -> dict:
    """What a ``fer_compact`` run records of its source (``metrics.json`` / ``config.json``: ``trunk_from``)."""
    m = run.metrics
    ds = m.get("dataset", {})
    return {"run": run.id, "path": source_label(run), "model": run.model_name,
            "bundled": run.path.resolve() == DEFAULT_SOURCE.resolve(),
            "dataset": {"name": ds.get("name"), "fingerprint": ds.get("fingerprint"),
                        "class_names": ds.get("class_names"), "split_sizes": ds.get("split_sizes")},
            "source_accuracy": m.get("accuracy"), "source_split": m.get("split"), "command": m.get("command"),
            "trunk": trunk_state}


def build_fer_compact(spec: ModelSpec, n_classes: int, image_size: int, weights, dropout: float) -> keras.Model:
    """``weights``: the source run folder (``None``/``"imagenet"`` → the bundled ``models/compact``),
    or ``"none"`` for a random trunk (tests, timing; the trainer never asks for it).
    """
    if weights == "none":
        trunk, width = None, WIDTH
    else:
        source = None if weights in (None, "imagenet") else weights
        _, trunk, _, width = load_source(source, image_size)
    inputs = keras.Input((image_size, image_size, spec.channels), name="pixels")  # raw 0–255 gray
    feats = compact_trunk(inputs, width)  # (B, 8w) = (B, 256); compact's layer names, so weights land by name
    trunk_model = keras.Model(inputs, feats)
    for layer in trunk_model.layers:
        if trunk is not None and layer.name in trunk:
            layer.set_weights(trunk[layer.name])
        layer.trainable = False  # frozen trunk; BatchNorm stays frozen even when fine-tuning (module docstring)
    h = layers.BatchNormalization(name=HEAD_LAYERS[0])(feats)
    h = layers.Dropout(dropout, name=HEAD_LAYERS[1])(h)
    outputs = layers.Dense(n_classes, activation="softmax", name=HEAD_LAYERS[2], dtype="float32")(h)
    return keras.Model(inputs, outputs, name="fer_compact")
