"""The app's crops of a training set, cut once per face and cached: what ``--augment-mode aligned`` trains on.

:func:`fer_core.faces.training_crops.app_crops` does the cutting (a synthetic
photo, YuNet, the aligned crop); this module decides what is already cut.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ..data.datasets import Dataset
from ..data.preprocess import to_channels
from .features import FeatureCache


def train_app_crops(ds: Dataset, status=None, cache: FeatureCache | None = None) -> np.ndarray:
    """The app's crop of every training face (:func:`fer_core.faces.training_crops.app_crops`), cached on disk.

    Cutting them takes about 0.1 s per face per core (a scene, YuNet, the
    aligned crop; FER2013's 28,709 training faces: 1,512 s on 2 cores), so
    each face is cut once, on every core, and kept beside the feature cache
    under its pixels' key: a later training set that shares faces (FER2013
    and its FER+ subset) cuts only the faces not cut before.
    """
    from ..faces import training_crops as tc

    images = np.ascontiguousarray(to_channels(ds.splits["train"][0], 1))  # (N, S, S, 1): colour faces as gray
    keys = np.array([tc.face_key(f[..., 0]) for f in images], np.uint64)
    cache = cache or FeatureCache()
    prefix = f"app-crops-v{tc.VERSION}-seed{tc.TRAIN_SCENE_SEED}-{images.shape[1]}px"
    known: dict[int, tuple[np.ndarray, bool]] = {}
    for path in sorted(cache.root.glob(f"{prefix}-*.npz")) if cache.root.is_dir() else []:
        hit = cache.get(path.stem)
        if hit is not None and {"keys", "crops", "found"} <= set(hit):
            known.update({int(k): (c, bool(f)) for k, c, f in zip(hit["keys"], hit["crops"], hit["found"])})
    todo = np.array([i for i, k in enumerate(keys) if int(k) not in known], int)
    if len(todo):
        if status is not None:
            status(f"cutting the app's crops of {len(todo):,} of {len(images):,} training faces (once; cached in "
                   f"{cache.root})", final=False)
        crops, found = tc.app_crops(images[todo], keys[todo], workers=os.cpu_count() or 1,
                                    on_chunk=None if status is None else
                                    lambda done, n: status(f"app crops: {done:,}/{n:,}", final=False))
        known.update({int(keys[i]): (c, bool(f)) for i, c, f in zip(todo, crops, found)})
    crops = np.stack([known[int(k)][0] for k in keys])  # (N, S, S, 1), in the training set's order
    found = np.array([known[int(k)][1] for k in keys])
    if len(todo):
        cache.put(f"{prefix}-{hashlib.sha256(keys.tobytes()).hexdigest()[:16]}",
                  {"keys": keys, "crops": crops, "found": found})
    if status is not None:
        status(f"app crops: YuNet found {found.mean():.1%} of the training faces (the rest keep their own crop)")
    return crops
