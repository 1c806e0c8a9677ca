"""Section ``runtime_levers``: TF intra/inter-op threads and oneDNN settings.

Threads must be set before TensorFlow starts, so each setting runs in its own
fresh process (``worker_runtime``), one after another; agreement is against the
``default`` process's probabilities.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .common import _run_worker, agreement
from .forward import _forward_probs, _measure_forward, _model_inputs, _trace_generic
from .modes import RUNTIME_CONFIGS


def worker_runtime(spec: dict) -> dict:
    """Fresh process under one threads/oneDNN setting: per-model latency, throughput, probabilities."""
    t0 = time.perf_counter()
    from fer_core._quiet import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    if spec.get("intra") is not None:
        tf.config.threading.set_intra_op_parallelism_threads(int(spec["intra"]))
    if spec.get("inter") is not None:
        tf.config.threading.set_inter_op_parallelism_threads(int(spec["inter"]))
    from fer_core.compute.forward import compiled_forward
    from fer_core.store.runs import load_run

    images = np.load(spec["agree_images"])
    out = {"tf_import_s": time.perf_counter() - t0, "per_model": {}}
    probs = {}
    for path in spec["runs"]:
        run = load_run(path)
        if run.model_name not in spec["models"]:
            continue
        model = run.load_model()
        size, ch = int(model.input_shape[1]), int(model.input_shape[3])
        fwd = compiled_forward(model)
        _trace_generic(fwd, size, ch)
        x = _model_inputs(images, size, ch)
        r = _measure_forward(fwd, x, spec["reps"], 32, spec["batch_reps"])
        probs[run.model_name] = _forward_probs(fwd, x, 32)
        out["per_model"][run.model_name] = r
    np.savez(spec["probs_out"], **probs)
    out["threads"] = {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                      "inter": tf.config.threading.get_inter_op_parallelism_threads()}
    return out


def section_runtime_levers(cfg: dict, tmp: Path, runs: list[str], images_path: Path) -> dict:
    configs = {k: RUNTIME_CONFIGS[k] for k in cfg["runtime_configs"]}
    if "default" not in configs:
        configs = {"default": {}, **configs}
    order = list(configs)
    if cfg.get("runtime_repeat_default") and len(order) > 2:
        order.append("default_repeat")  # same as 'default', run last: shows the drift between processes
        configs = {**configs, "default_repeat": {}}
    out = {"models": list(cfg["runtime_models"]), "configs": configs, "per_config": {},
           "reference": "the 'default' process (TF's own thread pools, oneDNN on); batch 32 probabilities",
           "note": "one fresh process per setting, run one after another (not interleaved)"}
    probs = {}
    for name in order:
        c = configs[name]
        spec = {"runs": runs, "models": list(cfg["runtime_models"]), "agree_images": str(images_path),
                "reps": cfg["lever_reps"], "batch_reps": cfg["lever_batch_reps"],
                "intra": c.get("intra"), "inter": c.get("inter"), "probs_out": str(tmp / f"probs_{name}.npz")}
        try:
            r = _run_worker("runtime", spec, tmp, env=c.get("env"), tag=f"_{name}")
        except Exception as exc:
            out["per_config"][name] = {"error": str(exc)[-600:]}
            continue
        with np.load(spec["probs_out"]) as z:
            probs[name] = {k: z[k] for k in z.files}
        out["per_config"][name] = r
    ref = out["per_config"].get("default", {}).get("per_model", {})
    for name, r in out["per_config"].items():
        for model, pm in r.get("per_model", {}).items():
            if model in ref:
                pm["speedup_single"] = ref[model]["single_p50_ms"] / pm["single_p50_ms"]
                pm["speedup_batch32"] = pm["batch_imgs_per_s"] / ref[model]["batch_imgs_per_s"]
            if "default" in probs and model in probs.get(name, {}):
                pm["agreement"] = agreement(probs[name][model], probs["default"][model])
    return out
