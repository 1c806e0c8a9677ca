"""compute: running Keras models fast and in the right precision, without importing TensorFlow up front.

``forward`` (a compiled ``tf.function`` per model instead of ``model.predict``, batched
prediction, latency) and ``precision`` (float32 / bfloat16 policies; models saved in
float32).  Imports nothing in fer_core; the store, fit and inference rooms use it.
"""
