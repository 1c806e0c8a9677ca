"""Training precision: float32, or mixed bfloat16 where the CPU computes it natively.

Why: convolutions in bfloat16 run up to about twice as fast as float32 on CPUs
with AVX-512 BF16 or AMX (``benchmarks/speed.py``, section ``precision``,
measures it side by side). Mixed precision keeps the weights in float32 and
computes in bfloat16, so the trained weights are ordinary float32 weights.
It applies to the scratch models' training and to the frozen backbones'
one-off feature pass; the heads train on float32 features either way.

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


def _policy_config(node, policy: str):
    """A model config with every layer's dtype policy replaced by ``policy``."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and isinstance(node.get("config"), dict):
            return {**node, "config": {**node["config"], "name": policy}}
        return {k: _policy_config(v, policy) for k, v in node.items()}
    if isinstance(node, list):
        return [_policy_config(v, policy) for v in node]
    return node


def with_precision(model, precision: str):
    """The same functional model computing in ``precision`` (every layer), uncompiled, with the same weights.

    Used to run a frozen backbone's feature pass in bfloat16 and to turn a
    model trained in mixed precision back into float32 for saving.
    """
    import keras

    bare = keras.Model.from_config(_policy_config(model.get_config(), _POLICY[precision]))
    bare.set_weights(model.get_weights())
    return bare


def as_float32(model):
    """``model`` computing in float32, uncompiled: what every saved ``model.keras`` holds.

    Also drops the optimizer (a compiled model's ``.keras`` file would carry
    its slots: three times the weights' size for nothing at inference).
    """
    return with_precision(model, "float32")
