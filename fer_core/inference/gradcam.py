"""Grad-CAM: which pixels pushed a model towards a class.

Follows keras-io's ``examples/vision/grad_cam.py``: a second model maps the
input to (last spatial feature map, predictions); the gradient of the class
score with respect to that feature map, averaged over space, weights its
channels; their ReLU'd sum is the heatmap. The model-specific part (which
layer) comes from the run's ``config.json`` ("gradcam_layer"), so this works
for the baseline and for the transfer models alike: those are one flat Keras
graph, so ``get_layer`` reaches a backbone layer directly. Preprocessing lives
inside every model, so the heatmap is computed on raw 0–255 pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def gradcam_model(model, layer_name: str):
    """keras.Model: pixels (1, S, S, C) → [feature map (1, h, w, K), probs (1, n_classes)]."""
    import keras

    from ..errors import ModelError

    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        raise ModelError(f"model '{model.name}' has no layer '{layer_name}' for Grad-CAM") from None
    return keras.Model(model.inputs, [layer.output, model.output])


def gradcam_heatmap(grad_model, image_uint8: np.ndarray, class_index: int) -> np.ndarray:
    """Heatmap (S, S) float32 in [0, 1] for one image (S, S, C) uint8 and a built grad model."""
    import tensorflow as tf

    x = tf.convert_to_tensor(image_uint8[None].astype(np.float32))  # (1, S, S, C)
    with tf.GradientTape() as tape:
        fmap, probs = grad_model(x, training=False)  # (1 or 2, h, w, K), (1, n)
        score = probs[:, class_index]
    grads = tape.gradient(score, fmap)  # like fmap
    if grads is None:  # the class does not depend on this layer (should not happen)
        return np.zeros(image_uint8.shape[:2], np.float32)
    # Row 0 is the image itself; a model with mirror test-time augmentation also
    # carries the mirrored copy in row 1 of its feature maps, which the map must not mix in.
    weights = tf.reduce_mean(grads[0], axis=(0, 1))  # (K,) channel importance
    cam = tf.nn.relu(tf.reduce_sum(fmap[0] * weights, axis=-1)).numpy()  # (h, w)
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else np.zeros_like(cam)
    return resize_heatmap(cam.astype(np.float32), image_uint8.shape[:2])


def gradcam(model, layer_name: str, image_uint8: np.ndarray, class_index: int) -> np.ndarray:
    """Grad-CAM heatmap (S, S) float32 in [0, 1] of ``model`` for ``class_index``.

    ``image_uint8``: one model input (S, S, C), raw 0–255 pixels.
    """
    return gradcam_heatmap(gradcam_model(model, layer_name), image_uint8, class_index)


def resize_heatmap(heat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) float → (H, W) float32 in [0, 1], bilinear."""
    H, W = shape
    if heat.shape == (H, W):
        return np.clip(heat, 0, 1).astype(np.float32)
    img = Image.fromarray(np.ascontiguousarray(heat, dtype=np.float32)).resize((W, H), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(img, dtype=np.float32), 0, 1)


def jet(values: np.ndarray) -> np.ndarray:
    """Jet-like colormap: values in [0, 1] (any shape) → uint8 RGB (..., 3).

    Blue (cold) → cyan → yellow → red (hot), the usual Grad-CAM look, as
    piecewise-linear ramps so matplotlib is not needed.
    """
    v = np.clip(values, 0, 1)[..., None]
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return np.rint(np.concatenate([r, g, b], axis=-1) * 255).astype(np.uint8)


def overlay(image_uint8: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a coloured heatmap over an image → (H, W, 3) uint8 RGB.

    The heatmap is resized to the image, so a (S, S) map can be shown on the
    full-resolution face crop; gray images are shown in RGB.
    """
    img = np.asarray(image_uint8)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    colours = jet(resize_heatmap(heatmap, img.shape[:2])).astype(np.float32)
    out = (1 - alpha) * img.astype(np.float32) + alpha * colours
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
