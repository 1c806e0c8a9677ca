"""The four transfer-learning models: a frozen Keras ImageNet backbone + a small head.

Graph (one flat Keras model, so Grad-CAM can reach any backbone layer by name)::

    pixels (B, S, S, 3) 0–255 → preprocess (per backbone) → backbone, include_top=False,
    pooling="avg" → features (B, D) → head_bn → head_dropout → head_dense softmax (B, C)

The backbone is frozen. Its BatchNormalization layers stay frozen even when the
top layers are fine-tuned, which in Keras 3 also keeps them in inference mode:
updating their moving statistics on a small face dataset would wreck the
ImageNet features the head relies on.
"""

from __future__ import annotations

import keras
from keras import layers

from ..errors import ModelError
from .layers import CaffePreprocess, tf_mode_preprocess
from .registry import ModelSpec
from .weights import cached_imagenet_file, resolve_weights

HEAD_LAYERS = ("head_bn", "head_dropout", "head_dense")


def build_transfer(spec: ModelSpec, n_classes: int, image_size: int, weights, dropout: float) -> keras.Model:
    app = getattr(keras.applications, spec.backbone)
    resolved = resolve_weights(spec.name, weights, spec.weights_file)
    if resolved == "imagenet" and (cached := cached_imagenet_file(spec.weights_file)) is not None:
        resolved = str(cached)  # load the cached file as is: Keras would re-download it on an md5 mismatch
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = CaffePreprocess(name="preprocess")(inputs) if spec.backbone == "VGG19" else tf_mode_preprocess()(inputs)
    try:
        backbone = app(include_top=False, weights=resolved, input_tensor=x, pooling="avg")
    except (ValueError, OSError) as exc:
        # A weights file of the wrong architecture or a corrupt download.
        raise ModelError(f"{spec.name}: cannot load weights '{weights}': {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # download failures surface as plain Exception
        if resolved == "imagenet":
            raise ModelError(f"{spec.name}: downloading ImageNet weights failed ({str(exc).splitlines()[0]})") from None
        raise
    for layer in backbone.layers:
        layer.trainable = False
    feats = backbone.output  # (B, D): D = 2048 ResNet50V2/InceptionV3, 1536 IRv2, 512 VGG19
    h = layers.BatchNormalization(name="head_bn")(feats)
    h = layers.Dropout(dropout, name="head_dropout")(h)
    outputs = layers.Dense(n_classes, activation="softmax", name="head_dense")(h)
    return keras.Model(inputs, outputs, name=spec.name)


def split_transfer_model(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(feature extractor pixels → (B, D), head (B, D) → probs) sharing the model's layers.

    Training the head trains the full model's head: the layers are the same
    objects, which is what lets the trainer fit on cached features and then
    save the full model.
    """
    bn = model.get_layer("head_bn")
    features = keras.Model(model.input, bn.input, name=f"{model.name}_features")
    head_in = keras.Input(bn.input.shape[1:], name="features")
    h = head_in
    for name in HEAD_LAYERS:
        h = model.get_layer(name)(h)
    return features, keras.Model(head_in, h, name=f"{model.name}_head")


def backbone_layers(model: keras.Model) -> list:
    """The backbone's layers of a transfer model, in graph order (input/preprocess/head excluded)."""
    skip = {"pixels", "preprocess", *HEAD_LAYERS}
    return [l for l in model.layers if l.name not in skip and not isinstance(l, keras.layers.InputLayer)]


def unfreeze_top(model: keras.Model, k: int) -> int:
    """Make the top ``k`` weighted backbone layers trainable (BatchNorm stays frozen).

    Returns how many layers were unfrozen.
    """
    if k < 0:
        raise ModelError(f"fine-tune layers must be ≥ 0, got {k}")
    weighted = [l for l in backbone_layers(model) if l.weights and not isinstance(l, layers.BatchNormalization)]
    chosen = weighted[-k:] if k else []
    for layer in chosen:
        layer.trainable = True
    return len(chosen)
