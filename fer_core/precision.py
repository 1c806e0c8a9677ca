"""Training precision: float32, or mixed bfloat16 where the CPU computes it natively.

Why: convolutions in bfloat16 run about twice as fast as float32 on CPUs with
AVX-512 BF16 or AMX (measured on this project's 2-core machine: the ``compact``
net trains at 395 img/s in mixed bfloat16 against 200 img/s in float32; see
``benchmarks/speed.py``). Mixed precision keeps the weights in float32 and
computes in bfloat16, so the trained weights are ordinary float32 weights.

Saved models are always float32 (:func:`as_float32`): a bundled model must run
on any CPU, and bfloat16 without hardware support is emulated and slow.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16")
_POLICY = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when ``/proc/cpuinfo`` lists AVX-512 BF16 or AMX-BF16 (Linux only; elsewhere False)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str) -> str:
    """``auto`` → ``bfloat16`` on CPUs with native bf16, else ``float32``; others pass through."""
    if name == "auto":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return name


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Build and train models under ``precision`` ("float32" or "bfloat16"); restores the old policy."""
    import keras

    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(_POLICY[precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(old)


def _float32_config(node):
    """A model config with every layer's dtype policy replaced by float32."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and isinstance(node.get("config"), dict):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {k: _float32_config(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_float32_config(v) for v in node]
    return node


def as_float32(model):
    """The same functional model computing in float32, uncompiled, with the same weights.

    Also drops the optimizer (a compiled model's ``.keras`` file would carry
    its slots: three times the weights' size for nothing at inference).
    """
    import keras

    bare = keras.Model.from_config(_float32_config(model.get_config()))
    bare.set_weights(model.get_weights())
    return bare
