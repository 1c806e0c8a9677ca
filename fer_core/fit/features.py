"""Feature cache for frozen backbones: compute once, train heads many times.

A frozen backbone maps each image to the same vector every epoch, so running it
every epoch wastes almost all of training's time. We run it once per
(backbone weights, dataset fingerprint, image size, augmentation) and store the
vectors in ``$FER_CACHE_DIR`` (default ``~/.cache/fer-studio/features``).

With augmentation on, the cache holds K augmented copies of the train split
besides the original (``augment_copies``), and the head trains on all of them;
the augmentation is fixed per copy rather than fresh each epoch, which is the
price of never running the backbone again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..compute.forward import compiled_forward, predict_batches

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("FER_CACHE_DIR") or Path.home() / ".cache" / "fer-studio" / "features")


def weights_digest(model) -> str:
    """Hash of a model's weights: the cache must never mix up two backbones.

    With ``--weights none`` the backbone is random; keying on the actual
    weights (not the seed) makes a stale cache impossible.
    """
    h = hashlib.sha256()
    for w in model.weights:
        h.update(np.ascontiguousarray(np.asarray(w)).data)
    return h.hexdigest()[:16]


def cache_key(*, model_name: str, weights: str, fingerprint: str, image_size: int,
              augment_copies: int, seed: int, precision: str = "float32", augment_mode: str = "resample") -> str:
    parts = [CACHE_VERSION, model_name, weights, fingerprint, image_size, augment_copies, seed, precision]
    if augment_copies and augment_mode != "resample":  # other augmented copies; resample keeps its old keys
        parts.append(augment_mode)
    raw = json.dumps(parts)
    return f"{model_name}-{image_size}-{fingerprint[:8]}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


class FeatureCache:
    """``.npz`` files of features per split; written atomically, read back on a hit."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception:  # a damaged cache file is recomputed, never trusted
            return None

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        p = self.path(key)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, p)
        return p


def compute_features(feature_model, images: np.ndarray, batch_size: int = 32, on_batch=None) -> np.ndarray:
    """uint8 (N, S, S, 3) → float32 (N, D) through the frozen backbone."""
    return predict_batches(compiled_forward(feature_model), images, batch_size, on_batch)
