"""Fast forward passes: a ``tf.function`` per model instead of ``model.predict``.

``model.predict`` rebuilds its data pipeline on every call (≈225 ms of overhead
for one image on this CPU against ≈25 ms for a compiled call), so neither the
trainer nor the app uses it.
"""

from __future__ import annotations

import time

import numpy as np


def compiled_forward(model, *, jit_compile: bool = False):
    """A ``tf.function`` computing ``model(x, training=False)``; retraces only per batch shape.

    ``jit_compile=True`` compiles the graph with XLA (one compilation per
    distinct input shape). Off by default: ``benchmarks/speed.py`` measures
    it side by side (latency, throughput, compile time, agreement) before it
    may become a default.
    """
    import tensorflow as tf

    @tf.function(reduce_retracing=True, jit_compile=jit_compile)
    def forward(x):
        return model(tf.cast(x, tf.float32), training=False)

    return forward


#: The batch sizes a serving forward pass is ever called with (:func:`run_bucketed`).
BATCH_BUCKETS = (1, 2, 4, 8)


def bucket_size(n: int, buckets: tuple[int, ...] = BATCH_BUCKETS) -> int:
    """The smallest bucket holding ``n`` rows (the largest bucket for more: the caller splits)."""
    return next((b for b in buckets if b >= n), buckets[-1])


def run_bucketed(forward, x: np.ndarray, buckets: tuple[int, ...] = BATCH_BUCKETS) -> np.ndarray:
    """``forward`` on ``x`` (N, ...) → (N, ...) float32, every call padded to a batch size of ``buckets``.

    Why: oneDNN sets up, and TensorFlow keeps for the life of the process, the
    kernels and buffers of every input shape a model meets, in proportion to
    the batch size. A server whose micro-batcher joins visitors' faces into
    batches of any size from 1 to 64 grew until it had met them all: with
    ``compact_x2_blur`` here, batches of 1…40 faces added 108 MB that never came
    back (powers of two up to 64 still 116 MB; issue 28's idle memory). Calls
    of at most 8 rows, padded to 1, 2, 4 or 8, added 11 MB in all, and cost
    the same per face (7.6 ms/face at 8 against 7.5 at 32 on one core).
    Rows past ``buckets[-1]`` go in chunks of it.
    """
    n = len(x)
    top = buckets[-1]
    if n > top:
        return np.concatenate([run_bucketed(forward, x[i:i + top], buckets) for i in range(0, n, top)])
    b = bucket_size(n, buckets)
    if b != n:
        x = np.concatenate([x, np.zeros((b - n, *x.shape[1:]), x.dtype)])  # (b, ...): padding rows, cut below
    return np.asarray(forward(x), dtype=np.float32)[:n]


def predict_batches(forward, x: np.ndarray, batch_size: int = 64, on_batch=None) -> np.ndarray:
    """Run ``forward`` over ``x`` in batches → stacked float32 numpy output.

    The last partial batch is padded to ``batch_size`` so the function is
    traced once, not once per leftover size.
    """
    outs = []
    n = len(x)
    for i in range(0, n, batch_size):
        part = x[i:i + batch_size]
        k = len(part)
        if k < batch_size and n > batch_size:
            part = np.concatenate([part, np.repeat(part[-1:], batch_size - k, axis=0)])
        outs.append(np.asarray(forward(part))[:k])
        if on_batch is not None:
            on_batch(min(i + batch_size, n), n)
    return np.concatenate(outs).astype(np.float32)


def latency_ms(forward, shape: tuple[int, int, int], repeats: int = 10, warmup: int = 2) -> float:
    """Median wall time (ms) of one warm single-image call of ``forward`` on uint8 ``(1, *shape)``."""
    x = np.zeros((1, *shape), np.uint8)
    for _ in range(warmup):
        np.asarray(forward(x))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.asarray(forward(x))
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)
