"""Rebuild a published head-only transfer model (the model half of :mod:`fer_core.store.publish`'s format).

A head-only run folder holds ``head.weights.h5`` (the trained head) and
``backbone.json`` (which ``keras.applications`` backbone and which ImageNet
file, by sha256). :meth:`fer_core.store.runs.Run.load_model` reads and checks
``backbone.json`` (:func:`fer_core.store.runs.read_reference`) and calls
:func:`load_head_only` here with it; this module knows models, not run folders,
so the run store imports it and never the other way round.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import RunStoreError
from .registry import create_model, get_spec
from .transfer import split_transfer_model
from .weights import verified_imagenet_file


def load_head_only(ref: dict, head_path: Path, run_id: str):
    """Rebuild a head-only run's full model: pixels (B, S, S, 3) 0–255 → probabilities (B, C).

    ``ref``: the run's checked ``backbone.json``; ``head_path``: its
    ``head.weights.h5``. Backbone = ``keras.applications.<application>`` with
    the verified ImageNet file; head = ``head_path``. Both are weights only
    (HDF5), no code.
    """
    spec = get_spec(ref["model"])
    if spec.backbone != ref["application"] or spec.weights_file != ref["weights_file"]:
        raise RunStoreError(f"{run_id}: backbone.json names {ref['application']} / {ref['weights_file']}, "
                            f"but model '{spec.name}' is built on {spec.backbone} / {spec.weights_file}")
    path = verified_imagenet_file(spec.name, spec.backbone, spec.weights_file, ref["sha256"])
    model = create_model(spec.name, int(ref["n_classes"]), image_size=int(ref["image_size"]), weights=str(path),
                         dropout=float(ref.get("dropout", 0.2)))
    _, head = split_transfer_model(model)  # (B, D) → (B, C), the same layer objects as the model's head
    try:
        head.load_weights(head_path)
    except Exception as exc:  # noqa: BLE001 - h5py/keras raise many types for a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunStoreError(f"{head_path}: cannot load the head weights ({first})") from None
    return model
