"""Section ``matmul``: this CPU's float32 (and bfloat16) matrix-multiply rate.

It is the reference the ``efficiency`` section reads each model's achieved
GFLOP/s against (the models' own timings come from the prediction process).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def section_matmul(cfg: dict, tmp: Path) -> dict:
    """float32 (and bfloat16) square matmuls through TF — the runtime the models use — and numpy.

    The reference rate is the best float32 rate over the sizes and both libraries: what this CPU
    can sustain on a large GEMM, against which the conv nets' achieved GFLOP/s is read.
    """
    import tensorflow as tf

    out = {"sizes": list(cfg["matmul_sizes"]), "per_size": {},
           "method": "median wall time of warm n×n @ n×n calls over matmul_seconds; GFLOP/s = 2n³/t"}

    @tf.function
    def mm(a, b):
        return tf.reduce_sum(tf.linalg.matmul(a, b)[:1, :1])  # tiny readback, full n³ product

    def rate(fn, n) -> dict:
        fn()
        times, t_end = [], time.perf_counter() + cfg["matmul_seconds"]
        while time.perf_counter() < t_end or len(times) < 3:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        med = float(np.median(times))
        return {"gflops": round(2 * n ** 3 / med / 1e9, 2), "p50_s": med, "calls": len(times)}

    rng = np.random.default_rng(0)
    for n in cfg["matmul_sizes"]:
        a_np = rng.standard_normal((n, n), dtype=np.float32)
        b_np = rng.standard_normal((n, n), dtype=np.float32)
        a, b = tf.constant(a_np), tf.constant(b_np)
        r = {"tf_float32": rate(lambda: mm(a, b).numpy(), n)}
        a16, b16 = tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16)
        try:
            r["tf_bfloat16"] = rate(lambda: mm(a16, b16).numpy(), n)
        except Exception as exc:  # a build without bf16 matmul kernels
            r["tf_bfloat16"] = {"error": str(exc).splitlines()[0][:200]}
        r["numpy_float32"] = rate(lambda: a_np @ b_np, n)
        out["per_size"][str(n)] = r
    f32 = [r[k]["gflops"] for r in out["per_size"].values() for k in ("tf_float32", "numpy_float32")]
    bf16 = [r["tf_bfloat16"].get("gflops", 0) for r in out["per_size"].values()]
    out["matmul_f32_gflops"] = max(f32)
    out["matmul_bf16_gflops"] = max(bf16) or None
    out["reference"] = "matmul_f32_gflops = best float32 rate over sizes, TF and numpy"
    return out
