"""Timing a model's forward pass: inputs, single-image latency, batch throughput, and
reference-vs-variant pairs timed alternately. Used by the prediction and runtime worker
processes, the model levers and the precision section."""

from __future__ import annotations

import time

import numpy as np

from .common import stats, time_calls


def _model_inputs(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    from fer_core.data.preprocess import prepare_images

    return prepare_images(images, size, channels)


def _tile_to(x: np.ndarray, n: int) -> np.ndarray:
    reps = int(np.ceil(n / len(x)))
    return np.concatenate([x] * reps)[:n] if reps > 1 else x[:n]


def _trace_generic(forward, size: int, channels: int) -> None:
    """Trace for an unknown batch size, as the Predictor does."""
    import tensorflow as tf

    forward.get_concrete_function(tf.TensorSpec((None, size, size, channels), tf.uint8))


def _forward_probs(forward, x: np.ndarray, batch: int = 32) -> np.ndarray:
    from fer_core.compute.forward import predict_batches

    return predict_batches(forward, x, batch)


def _paired(ref_fn, var_fn, x: np.ndarray, reps: int, batch: int, batch_reps: int) -> dict:
    """Reference and variant timed alternately (ABBA), so load drift hits both alike."""
    one, xb = x[:1], _tile_to(x, batch)
    for f in (ref_fn, var_fn):
        np.asarray(f(one))
        np.asarray(f(one))
        np.asarray(f(xb))

    def rounds(arg, n):
        a, b = [], []
        for i in range(max(1, n)):
            for f, sink in ((ref_fn, a), (var_fn, b)) if i % 2 == 0 else ((var_fn, b), (ref_fn, a)):
                t = time.perf_counter()
                np.asarray(f(arg))
                sink.append(time.perf_counter() - t)
        return np.asarray(a), np.asarray(b)

    rs, vs = rounds(one, reps)
    rb, vb = rounds(xb, batch_reps)
    return {"single_p50_ms": float(np.median(vs)) * 1e3, "single_p95_ms": float(np.percentile(vs, 95)) * 1e3,
            "batch": batch, "batch_imgs_per_s": batch / float(np.median(vb)),
            "reference_single_p50_ms": float(np.median(rs)) * 1e3,
            "reference_batch_imgs_per_s": batch / float(np.median(rb)),
            "speedup_single": float(np.median(rs) / np.median(vs)),
            f"speedup_batch{batch}": float(np.median(rb) / np.median(vb))}


def _measure_forward(forward, x: np.ndarray, reps: int, batch: int, batch_reps: int) -> dict:
    one = x[:1]
    single = stats(time_calls(lambda: np.asarray(forward(one)), reps, warmup=2))
    xb = _tile_to(x, batch)
    bt = stats(time_calls(lambda: np.asarray(forward(xb)), batch_reps, warmup=1))
    return {"single_p50_ms": single["p50_s"] * 1e3, "single_p95_ms": single["p95_s"] * 1e3,
            "batch": batch, "batch_imgs_per_s": batch / bt["p50_s"]}
