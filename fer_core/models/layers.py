"""Preprocessing layers that live inside the saved models.

Keeping preprocessing in the graph means a saved ``model.keras`` takes raw
0–255 pixels, so the app can never feed a model the wrong scale. Custom layers
are registered so ``keras.saving.load_model(..., safe_mode=True)`` rebuilds
them without any Python lambda.
"""

import math

import keras
from keras import ops

# ImageNet channel means (BGR) used by the "caffe" preprocessing of VGG19.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="fer_core")
class CaffePreprocess(keras.layers.Layer):
    """RGB 0–255 → BGR minus ImageNet means: ``vgg19.preprocess_input`` as a layer."""

    def call(self, x):  # (B, H, W, 3) RGB → (B, H, W, 3) BGR, mean-centred
        x = ops.flip(x, axis=-1)
        return x - ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=x.dtype)


def tf_mode_preprocess():
    """0–255 → [-1, 1]: ``preprocess_input`` of ResNetV2 and the Inceptions."""
    return keras.layers.Rescaling(scale=1.0 / 127.5, offset=-1.0, name="preprocess")


@keras.saving.register_keras_serializable(package="fer_core")
class FlipConcat(keras.layers.Layer):
    """Test-time augmentation, first half: each image and its mirror image in one batch.

    (B, H, W, C) → (2B, H, W, C): rows [0, B) are the inputs, rows [B, 2B) their
    left-right mirrors. Running both through the network as one batch keeps
    the graph flat (Grad-CAM still reaches every layer by name) and costs one
    call instead of two.
    """

    def call(self, x):
        return ops.concatenate([x, ops.flip(x, axis=2)], axis=0)


@keras.saving.register_keras_serializable(package="fer_core")
class PairMean(keras.layers.Layer):
    """Test-time augmentation, second half: (2B, K) → (B, K), the mean of each image's two rows."""

    def call(self, p):
        half = ops.shape(p)[0] // 2
        return (p[:half] + p[half:]) / 2.0


@keras.saving.register_keras_serializable(package="fer_core")
class GaussianSmooth(keras.layers.Layer):
    """A fixed Gaussian blur of ``sigma`` pixels: (B, H, W, C) → (B, H, W, C), edges repeated.

    Why: ``--augment`` turns, zooms and shifts every training face with
    bilinear resampling, and each resample at a random sub-pixel offset blurs
    it a little. A network trained that way has hardly ever seen a sharp face,
    and the raw test faces are sharp: on FER2013 the four ``compact`` seeds
    score 2.6–3.0 points higher on validation crops when the input is blurred
    by σ 0.6 px first (``benchmarks/ensemble_select.py --smooth``). Photo crops
    are softer already (antialiased resize), so the bundled ensemble's σ 0.5 was
    chosen on crops and photos together (``--photos``). Putting the blur inside
    the saved model means every caller (app, CLI, exports) feeds the network the
    same input. Separable, no trainable weights.
    """

    def __init__(self, sigma: float, **kwargs):
        super().__init__(**kwargs)
        if not sigma > 0:
            raise ValueError(f"GaussianSmooth: sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)
        self.radius = max(1, math.ceil(3 * self.sigma))
        taps = [math.exp(-0.5 * (i / self.sigma) ** 2) for i in range(-self.radius, self.radius + 1)]
        self.taps = [t / sum(taps) for t in taps]  # (2r+1,), sums to 1: a flat image stays flat

    def _edge_pad(self, x, axis: int):
        """Repeat the first and last row (axis 1) or column (axis 2) ``radius`` times."""
        first = ops.repeat(x[_span(axis, 0, 1)], self.radius, axis=axis)
        last = ops.repeat(x[_span(axis, -1, None)], self.radius, axis=axis)
        return ops.concatenate([first, x, last], axis=axis)

    def call(self, x):  # (B, H, W, C)
        for axis in (1, 2):  # rows, then columns: two 1-D passes
            size = ops.shape(x)[axis]
            padded = self._edge_pad(x, axis)  # (B, H+2r, W, C) or (B, H, W+2r, C)
            out = 0.0
            for i, t in enumerate(self.taps):
                out = out + t * padded[_span(axis, i, i + size)]
            x = out
        return x

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


def _span(axis: int, start, stop) -> tuple:
    """Index that slices ``start:stop`` along ``axis`` and keeps every axis before it whole."""
    return (slice(None),) * axis + (slice(start, stop),)
