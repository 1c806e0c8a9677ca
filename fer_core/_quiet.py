"""Import TensorFlow without its native start-up log lines on stderr.

TensorFlow's C++ runtime prints CUDA-probing and oneDNN notices at import,
before ``TF_CPP_MIN_LOG_LEVEL`` takes effect; on a CPU laptop they read like
errors. We silence file descriptor 2 for the import only.
"""

import os


def import_tensorflow_quietly():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        saved = os.dup(2)
    except OSError:  # no stderr fd (some embedded runners)
        import tensorflow as tf
        return tf
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        import keras  # noqa: F401

        # Device discovery prints "failed call to cuInit" on machines without a GPU
        # the first time TF looks for one; look now, while stderr is silenced.
        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    # Retracing notices are about our padded last batches and latency probes: noise for users.
    tf.get_logger().setLevel("ERROR")
    return tf
