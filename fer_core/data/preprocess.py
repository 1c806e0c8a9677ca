"""Bringing stored images to a model's input size and channel count.

Datasets keep their native size (FER2013: 48×48 gray); each model sees
``(size, size, channels)`` uint8. Resizing happens once per training run, in
chunks, so a 128×128 RGB copy of FER2013 (1.4 GB uint8) never exists as float.
"""

from __future__ import annotations

import numpy as np


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """(N, H, W, C) → (N, H, W, channels); gray→RGB repeats, RGB→gray uses luma."""
    if x.shape[-1] == channels:
        return x
    if channels == 3:
        return np.repeat(x, 3, axis=-1)
    luma = x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]


def prepare_images(x: np.ndarray, size: int, channels: int, chunk: int = 2048) -> np.ndarray:
    """uint8 (N, H, W, C) → uint8 (N, size, size, channels), bilinear with antialiasing."""
    x = to_channels(x, channels)
    if x.shape[1:3] == (size, size):
        return x
    import tensorflow as tf

    out = np.empty((len(x), size, size, channels), dtype=np.uint8)
    for i in range(0, len(x), chunk):
        part = tf.image.resize(x[i:i + chunk], (size, size), antialias=True)  # float32
        out[i:i + chunk] = np.clip(np.rint(part.numpy()), 0, 255).astype(np.uint8)
    return out
