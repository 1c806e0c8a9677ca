"""The seed's baseline CNN, exactly its stack.

Conv2D(64) → pool 4×4 → Conv2D(32) → pool 2×2 → Conv2D(16) → Flatten →
Dense(64) → Dropout(0.2) → Dense(n_classes, softmax).

Pooling: the seed writes "AvgMaxPool", which names no Keras layer. We use
**max** pooling: after a ReLU convolution it keeps the strongest local
response (the usual choice in Keras' own CNN examples), where average pooling
would dilute small features such as a mouth corner over a 4×4 window.
Convolutions are Keras' defaults (3×3, stride 1, "valid" padding) with ReLU.
"""

import keras
from keras import layers

from .registry import ModelSpec


def build_baseline(spec: ModelSpec, n_classes: int, image_size: int, weights, dropout: float) -> keras.Model:
    del weights  # trained from scratch; dropout is fixed at the seed's 0.2
    inputs = keras.Input((image_size, image_size, spec.channels), name="pixels")  # raw 0–255
    x = layers.Rescaling(1.0 / 255, name="preprocess")(inputs)
    x = layers.Conv2D(64, 3, activation="relu", name="conv1")(x)  # (S-2, S-2, 64)
    x = layers.MaxPooling2D(4, name="pool1")(x)  # (≈S/4, ≈S/4, 64)
    x = layers.Conv2D(32, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(16, 3, activation="relu", name="conv3")(x)  # Grad-CAM layer
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    # float32 softmax even when the convolutions train in mixed bfloat16
    outputs = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="baseline")
