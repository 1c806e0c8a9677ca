"""Preprocessing layers that live inside the saved models.

Keeping preprocessing in the graph means a saved ``model.keras`` takes raw
0–255 pixels, so the app can never feed a model the wrong scale. Custom layers
are registered so ``keras.saving.load_model(..., safe_mode=True)`` rebuilds
them without any Python lambda.
"""

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
