"""A tiny model registry (after timm's ``_registry.py``): name → spec → builder.

Each model is one :class:`ModelSpec` registered with :func:`register_model`
(the zoo's are in :mod:`.catalog`); :func:`create_model` looks it up and builds
a Keras model that takes raw 0–255 pixels ``(batch, size, size, channels)`` and
returns class probabilities.

A spec names its builder as ``"module:function"`` and the module is imported
only when a model is built, so listing and validating model names costs no
TensorFlow import (about 6 s): the CLI rejects a mistyped ``--models`` at once
and the app lists the zoo without loading Keras.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ..errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    """What the trainer, the app and Grad-CAM need to know about a model."""

    name: str
    description: str
    #: ``"package.module:function"`` (imported when a model is built) or the function itself;
    #: builder(spec, n_classes, image_size, weights, dropout[, tta_flip=True]) -> keras.Model
    builder: str | Callable
    kind: str  # "scratch": trained end to end; "transfer": frozen backbone (ImageNet, or a trained run's trunk) + head
    default_image_size: int
    channels: int  # 3 = RGB input, 1 = grayscale input
    gradcam_layer: str  # last spatial feature map, for Grad-CAM
    min_image_size: int = 32
    in_all: bool = True  # part of `--models all` (the seed's five)
    backbone: str | None = None  # keras.applications class name (or "compact"), transfer models only
    weights_file: str | None = None  # Keras' ImageNet "notop" file name, transfer models only
    supports_tta: bool = False  # builder takes tta_flip=True (mirror-image test-time augmentation)
    # transfer models whose trunk comes from a trained run folder (--init-from, else a bundled run) instead of
    # --weights: fer_compact
    trunk_from_run: bool = False

    @property
    def is_transfer(self) -> bool:
        return self.kind == "transfer"

    def build_function(self) -> Callable:
        """The builder itself, importing its module (and Keras) on first use."""
        if callable(self.builder):
            return self.builder
        module, _, name = self.builder.partition(":")
        return getattr(importlib.import_module(module), name)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model '{spec.name}' is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(*, only_all: bool = False) -> list[str]:
    """Registered model ids, in registration order (the seed's order)."""
    return [n for n, s in _REGISTRY.items() if s.in_all or not only_all]


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}'; known models: {', '.join(list_models())}") from None


def parse_model_list(text: str) -> list[str]:
    """``"all"`` or ``"id,id"`` → validated list of ids (order kept, duplicates dropped)."""
    if text.strip().lower() == "all":
        return list_models(only_all=True)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ModelError("no model given; use 'all' or a comma-separated list of ids")
    for n in names:
        get_spec(n)
    return list(dict.fromkeys(names))


def create_model(name: str, n_classes: int, *, image_size: int | None = None,
                 weights: str | None = "imagenet", dropout: float = 0.2, tta_flip: bool = False):
    """Build model ``name`` for ``n_classes`` classes (see :class:`ModelSpec`).

    ``tta_flip``: the inference variant that averages each image with its
    mirror image, for models that support it.
    """
    spec = get_spec(name)
    size = image_size or spec.default_image_size
    if size < spec.min_image_size:
        raise ModelError(f"{name}: image size {size} is below its minimum of {spec.min_image_size} px")
    if n_classes < 2:
        raise ModelError(f"{name}: needs at least 2 classes, got {n_classes}")
    if tta_flip:
        if not spec.supports_tta:
            raise ModelError(f"{name}: mirror test-time augmentation is not available for this model")
        return spec.build_function()(spec, n_classes, size, weights, dropout, tta_flip=True)
    return spec.build_function()(spec, n_classes, size, weights, dropout)
