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
