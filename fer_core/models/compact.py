"""``compact``: a small VGG-style CNN designed for FER, trained from scratch.

Why this shape: FER2013 faces are 48×48 gray, so the net works at that size
(no upsampling to 128 px RGB, which costs 21× the pixels for no information).
Four stages of two 3×3 conv–BatchNorm–ReLU layers double the width as they
halve the resolution (48→24→12→6), then global average pooling and a dropout
softmax head. BatchNorm lets it train fast at a high learning rate; global
pooling keeps the parameter count (and the bundled file) small.

Graph: pixels (B, 48, 48, 1) 0–255 → [-1, 1] → 4 × (conv-bn-relu ×2, pool) →
GAP (B, 8w) → dropout → dense softmax (B, C).
"""

import keras
from keras import layers

from .layers import FlipConcat, PairMean
from .registry import ModelSpec

#: Base width of the first stage; stages use w, 2w, 4w, 8w filters.
WIDTH = 32
#: ``compact_wide``: twice the filters (4× the compute and weights), the width of the
#: VGG-style nets that lead FER2013 at 48 px; started from a trained ``compact`` by widening.
WIDE_WIDTH = 64


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def compact_trunk(pixels, width: int = WIDTH):
    """Raw pixels (B, S, S, 1) 0–255 → pooled features (B, 8w): preprocessing and the conv trunk.

    Shared with ``fer_compact`` (:mod:`.from_compact`), which reuses a trained
    trunk under these same layer names.
    """
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(pixels)
    for stage, mult in enumerate((1, 2, 4, 8), start=1):
        x = _conv_bn_relu(x, width * mult, f"block{stage}a")
        x = _conv_bn_relu(x, width * mult, f"block{stage}b")  # block4b_relu: Grad-CAM layer
        if stage < 4:
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)  # S → S/2
            x = layers.Dropout(0.1 * stage, name=f"drop{stage}")(x)
    return layers.GlobalAveragePooling2D(name="gap")(x)  # (B, 8w)


def build_compact(spec: ModelSpec, n_classes: int, image_size: int, weights, dropout: float,
                  width: int = WIDTH, tta_flip: bool = False) -> keras.Model:
    """``tta_flip=True``: the inference model that averages each face with its mirror image.

    Same layers and weights as the training model (the two TTA layers have
    none), so a trained model's weights load into it unchanged.
    """
    del weights  # trained from scratch
    inputs = keras.Input((image_size, image_size, spec.channels), name="pixels")  # raw 0–255 gray
    x = FlipConcat(name="tta_flip")(inputs) if tta_flip else inputs  # (2B, S, S, 1) with TTA
    x = compact_trunk(x, width)  # (B, 8w)
    x = layers.Dropout(max(dropout, 0.4), name="head_dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(x)
    if tta_flip:
        outputs = PairMean(name="tta_mean", dtype="float32")(outputs)  # (2B, C) → (B, C)
    return keras.Model(inputs, outputs, name=spec.name)


def build_compact_wide(spec: ModelSpec, n_classes: int, image_size: int, weights, dropout: float,
                       tta_flip: bool = False) -> keras.Model:
    """``compact_wide``: :func:`build_compact` at :data:`WIDE_WIDTH`."""
    return build_compact(spec, n_classes, image_size, weights, dropout, width=WIDE_WIDTH, tta_flip=tta_flip)
