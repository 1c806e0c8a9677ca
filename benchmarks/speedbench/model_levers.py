"""Section ``model_levers``, measured inside the prediction process on the Predictor's own
loaded models: batch size, static vs dynamic batch shape, XLA (``jit_compile``), bfloat16,
and ONNX Runtime when installed.

Every lever reports agreement with the default path's probabilities
(max |Δp| ≤ 1e-2 and same top class on ≥ 99 %).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .common import agreement, stats, time_calls
from .forward import _forward_probs, _measure_forward, _paired, _tile_to


def _bf16_copy(m: dict):
    """The same architecture built under Keras' mixed_bfloat16 policy, with the run's weights."""
    import keras

    from fer_core.models import create_model

    conf = m["run"].config
    name = conf.get("model", {}).get("name", m["name"])
    n_classes = int(conf.get("n_classes") or m["model"].output_shape[-1])
    dropout = float(conf.get("train_config", {}).get("dropout", 0.2))
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model16 = create_model(name, n_classes, image_size=m["size"], weights="none", dropout=dropout)
    finally:
        keras.config.set_dtype_policy(old)
    model16.set_weights(m["model"].get_weights())
    return model16


def _model_levers(m: dict, x: np.ndarray, spec: dict) -> dict:
    """Batch size, static shapes, XLA, bfloat16 (and both) for one loaded model, with agreement."""
    from fer_core.compute.forward import compiled_forward

    reps, breps = spec["lever_reps"], spec["lever_batch_reps"]
    fwd = m["forward"]
    ref = _forward_probs(fwd, x, 32)
    base = _measure_forward(fwd, x, reps, 32, breps)
    out = {"reference": {"path": "Predictor's compiled_forward, traced for any batch size; probabilities at batch 32",
                         **base}}

    # batch size: throughput curve; outputs at batch 1 vs the reference
    curve = {}
    for bs in spec["lever_batches"]:
        xb = _tile_to(x, bs)
        t = stats(time_calls(lambda: np.asarray(fwd(xb)), breps if bs > 1 else reps, warmup=1))
        curve[str(bs)] = {"imgs_per_s": bs / t["p50_s"], "p50_s": t["p50_s"]}
    single_probs = np.concatenate([np.asarray(fwd(x[i:i + 1]), np.float32) for i in range(len(x))])
    out["batch_size"] = {"imgs_per_s": curve, "agreement_batch1_vs_32": agreement(single_probs, ref),
                         "best_batch": max(curve, key=lambda k: curve[k]["imgs_per_s"])}

    # static shapes: functions only ever called with (1, S, S, C), resp. (32, S, S, C)
    s1, s32 = compiled_forward(m["model"]), compiled_forward(m["model"])
    xb32 = _tile_to(x, 32)
    per_shape = lambda a: np.asarray(s1(a) if len(a) == 1 else s32(a))  # noqa: E731
    out["static_batch_shape"] = {**_paired(fwd, per_shape, x, reps, 32, breps),
                                 "agreement": agreement(_forward_probs(s32, x, 32), ref)}

    def variant(model, jit: bool) -> dict:
        f = compiled_forward(model, jit_compile=jit)
        t = time.perf_counter()
        np.asarray(f(x[:1]))
        c1 = time.perf_counter() - t
        t = time.perf_counter()
        np.asarray(f(xb32))
        c32 = time.perf_counter() - t
        r = _paired(fwd, f, x, reps, 32, breps)
        r["first_call_s"] = {"batch1": c1, "batch32": c32}
        r["agreement"] = agreement(_forward_probs(f, x, 32), ref)
        return r

    bf16: list = []

    def bf16_model():
        if not bf16:
            t = time.perf_counter()
            bf16.append(_bf16_copy(m))
            out["bfloat16_build_s"] = time.perf_counter() - t
        return bf16[0]

    for key, fn in (("xla", lambda: variant(m["model"], True)),
                    ("bfloat16", lambda: variant(bf16_model(), False)),
                    ("bfloat16_xla", lambda: variant(bf16_model(), True))):
        if key not in spec["lever_variants"]:
            continue
        try:
            out[key] = fn()
        except Exception as exc:
            out[key] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
    bf16.clear()
    return out


def _onnx_lever(m: dict, x: np.ndarray, spec: dict, tmp: Path) -> dict:
    import importlib.util

    missing = [p for p in ("onnxruntime", "tf2onnx") if importlib.util.find_spec(p) is None]
    if missing:
        return {"status": "skipped", "reason": f"not installed: {', '.join(missing)} (optional; evaluate in a "
                                                 "separate venv before adding the dependency)"}
    import onnxruntime as ort

    path = tmp / f"{m['name']}.onnx"
    t = time.perf_counter()
    m["model"].export(str(path), format="onnx", verbose=False)
    export_s = time.perf_counter() - t
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    run = lambda a: sess.run(None, {iname: a.astype(np.float32)})[0]  # noqa: E731
    ref = _forward_probs(m["forward"], x, 32)
    probs = np.concatenate([run(x[i:i + 32]) for i in range(0, len(x), 32)])
    r = _measure_forward(lambda a: run(np.asarray(a)), x, spec["lever_reps"], 32, spec["lever_batch_reps"])
    r.update({"status": "measured", "export_s": export_s, "agreement": agreement(probs, ref)})
    return r
