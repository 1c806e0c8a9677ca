"""Sections ``prediction``, ``memory``, ``efficiency`` and ``model_levers``: one fresh process.

``Predictor(runs).predict(jpeg bytes)`` on 1920×1080 photos with 1 and 4
composited demo faces (decode + EXIF orientation + detection + crops + all
models + ensemble), warm p50/p95; per model single-image latency and batch
throughput; the cold first prediction including model loading. The same
process records its resident memory with all models loaded, each model's
forward GFLOP/s (read against ``matmul``) and the model levers; its output is
then filed under each section's own name.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np

from .common import BACKBONES, SEED_SET_IMAGES, _run_worker, rss_mb, stats, time_calls
from .forward import _measure_forward, _model_inputs, _tile_to, _trace_generic
from .inputs import make_photo
from .model_levers import _model_levers, _onnx_lever


def model_flops(model) -> dict:
    """Forward FLOPs per image: 2 × multiply-adds of Conv2D and Dense layers (BN, activations, pooling excluded)."""
    import keras

    total, counted, skipped = 0, 0, 0
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
            continue
        try:
            if isinstance(layer, keras.layers.Conv2D):
                kh, kw, cin, cout = (int(v) for v in layer.kernel.shape)
                _, h, w, _ = layer.output.shape
                total += 2 * int(h) * int(w) * kh * kw * cin * cout
                counted += 1
            elif isinstance(layer, keras.layers.Dense):
                fan_in, units = (int(v) for v in layer.kernel.shape)
                positions = int(np.prod([int(d) for d in layer.output.shape[1:-1]])) if len(layer.output.shape) > 2 else 1
                total += 2 * fan_in * units * positions
                counted += 1
        except Exception:
            skipped += 1
    return {"gflops_per_image": total / 1e9, "layers_counted": counted, "layers_uncounted": skipped}


def _predictor_models(pred) -> list[dict]:
    """The Predictor's own loaded models and compiled forwards (what users get); reload if its internals moved."""
    out = []
    for m in getattr(pred, "_loaded", None) or []:
        try:
            out.append({"name": m.run.model_name, "run": m.run, "model": m.model, "forward": m.forward,
                        "size": int(m.image_size), "channels": int(m.channels), "source": "predictor"})
        except AttributeError:
            out = []
            break
    if out:
        return out
    from fer_core.compute.forward import compiled_forward

    for run in pred.runs:
        model = run.load_model()
        shape = model.input_shape
        fwd = compiled_forward(model)
        _trace_generic(fwd, int(shape[1]), int(shape[3]))
        out.append({"name": run.model_name, "run": run, "model": model, "forward": fwd,
                    "size": int(shape[1]), "channels": int(shape[3]), "source": "reloaded"})
    return out


def worker_predict(spec: dict) -> dict:
    """Fresh process: cold start, memory, warm end-to-end, per-model speed, model levers."""
    res = {"rss_at_start": rss_mb()}
    t0 = time.perf_counter()
    from fer_core._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fer_core.faces.detect import DETECT_SIDE, detect_faces
    from fer_core.data.images import open_image
    from fer_core.inference.predictor import Predictor
    from fer_core.store.runs import load_run

    t_import = time.perf_counter() - t0
    res["rss_after_import"] = rss_mb()
    runs = [load_run(p) for p in spec["runs"]]
    photos = {k: Path(v).read_bytes() for k, v in spec["photos"].items()}
    images = np.load(spec["agree_images"])

    t1 = time.perf_counter()
    pred = Predictor(runs)
    t2 = time.perf_counter()
    first = pred.predict(photos["one_face"])
    t3 = time.perf_counter()
    res["cold"] = {"tf_import_s": t_import, "predictor_init_s": t2 - t1, "first_predict_s": t3 - t2,
                   "cold_first_prediction_s": t3 - t1,
                   "process_start_to_first_prediction_s": time.time() - spec["launched_at"],
                   "first_predict_faces": len(first.faces),
                   "note": "Predictor(runs) loads every model.keras, traces and warms each forward pass and the detector; "
                           "model files were just written, so they come from the OS page cache"}
    res["rss_after_first_prediction"] = rss_mb()

    if spec["do_prediction"]:
        e2e = {}
        for key, data in photos.items():
            times, parts = [], {"decode": [], "detect": [], "classify": []}
            last = None
            for _ in range(spec["e2e_warmup"]):
                pred.predict(data)
            for _ in range(spec["e2e_reps"]):
                t = time.perf_counter()
                last = pred.predict(data)
                times.append(time.perf_counter() - t)
                for k in parts:
                    if k in (getattr(last, "timings", None) or {}):
                        parts[k].append(last.timings[k])
            whole = bool(getattr(last, "whole_image", False))
            e2e[key] = {**stats(times), "faces_in_photo": spec["faces_in_photo"][key],
                        "faces_detected": 0 if whole else len(last.faces), "whole_image_fallback": whole,
                        "stage_p50_s": {k: float(np.median(v)) for k, v in parts.items() if v}}
        res["e2e"] = e2e
        res["rss_after_warm_e2e"] = rss_mb()

    models = _predictor_models(pred) if (spec["do_prediction"] or spec["do_efficiency"] or spec["do_levers"]) else []
    if spec["do_prediction"] or spec["do_efficiency"]:
        per_model = {}
        for m in models:
            x = _model_inputs(images, m["size"], m["channels"])
            r = _measure_forward(m["forward"], x, spec["latency_reps"], spec["throughput_batch"], spec["throughput_reps"])
            r.update(model_flops(m["model"]))
            r.update({"image_size": m["size"], "channels": m["channels"], "params": int(m["model"].count_params()),
                      "source": m["source"]})
            per_model[m["name"]] = r
        res["per_model"] = per_model

    if spec["do_levers"]:
        levers = {}
        rgb = np.asarray(open_image(photos["one_face"]).convert("RGB"))  # upright, as the Predictor sees it
        det = {}
        for side in spec["detect_sides"]:
            found = []
            t = stats(time_calls(lambda: found.append(len(detect_faces(rgb, max_side=side))), spec["detect_reps"], 1))
            det[str(side)] = {"p50_s": t["p50_s"], "faces_detected": found[-1]}
        levers["detect_max_side"] = {"photo": "one_face 1920×1080", "per_max_side": det,
                                     "default": DETECT_SIDE, "note": "the detector on a copy whose longer side is ≤ max_side"}
        crops = [_tile_to(images, 4)[i] for i in range(4)]
        looped = stats(time_calls(lambda: [pred.predict_faces([c]) for c in crops], spec["lever_reps"], 1))
        batched = stats(time_calls(lambda: pred.predict_faces(crops), spec["lever_reps"], 1))
        levers["face_batching"] = {"faces": 4, "one_call_per_face_p50_s": looped["p50_s"],
                                   "batched_p50_s": batched["p50_s"], "speedup": looped["p50_s"] / batched["p50_s"],
                                   "note": "all five models; Predictor.predict_faces with 1 crop × 4 vs 4 crops once"}
        per = {}
        for m in models:
            if m["name"] not in spec["lever_models"]:
                continue
            x = _model_inputs(images, m["size"], m["channels"])
            per[m["name"]] = _model_levers(m, x, spec)
            try:
                per[m["name"]]["onnxruntime"] = _onnx_lever(m, x, spec, Path(spec["tmp"]))
            except Exception as exc:
                per[m["name"]]["onnxruntime"] = {"status": "error", "reason": str(exc).splitlines()[0][:300]}
            gc.collect()
        levers["per_model"] = per
        res["levers"] = levers
    res["rss_at_end"] = rss_mb()
    return res


def section_prediction_process(cfg: dict, tmp: Path, run_paths: list[str], images_path: Path, skip: set) -> dict:
    """The photos, then ``worker_predict`` in a fresh process; ``_split_prediction`` files its output."""
    photos, meta = {}, {}
    for key, n in (("one_face", 1), ("four_faces", 4)):
        ph = make_photo(n, tries=cfg["photo_tries"], seed=n)
        (tmp / f"{key}.jpg").write_bytes(ph.pop("jpeg"))
        photos[key], meta[key] = str(tmp / f"{key}.jpg"), ph
    spec = {**{k: cfg[k] for k in ("latency_reps", "throughput_batch", "throughput_reps", "e2e_warmup",
                                   "e2e_reps", "detect_sides", "detect_reps", "lever_models",
                                   "lever_variants", "lever_batches", "lever_reps", "lever_batch_reps")},
            "runs": run_paths, "photos": photos, "agree_images": str(images_path),
            "faces_in_photo": {"one_face": 1, "four_faces": 4},
            "do_prediction": "prediction" not in skip, "do_efficiency": "efficiency" not in skip,
            "do_levers": "model_levers" not in skip}
    r = _run_worker("predict", spec, tmp)
    r["photos"] = meta
    r["models"] = [Path(p).name for p in run_paths]
    return r


def _split_prediction(pw: dict, results: dict, skip: set, cfg: dict) -> None:
    """The prediction process measured several sections at once; file each under its own name."""
    cpu = pw.pop("cpu", None)
    secs = results["sections"]
    secs.pop("prediction_process", None)
    if "prediction" not in skip and "e2e" in pw:
        secs["prediction"] = {"e2e": pw["e2e"], "cold": pw["cold"], "per_model": pw.get("per_model"),
                              "photos": pw["photos"], "models": pw["models"], "process_cpu": cpu}
        one, four = pw["e2e"]["one_face"], pw["e2e"]["four_faces"]
        results["predict_e2e_p50_s"], results["predict_e2e_p95_s"] = one["p50_s"], one["p95_s"]
        results["predict_e2e_4faces_p50_s"], results["predict_e2e_4faces_p95_s"] = four["p50_s"], four["p95_s"]
        results["cold_first_prediction_s"] = pw["cold"]["cold_first_prediction_s"]
        notes = []
        for key, e in pw["e2e"].items():
            if e["faces_detected"] < e["faces_in_photo"]:
                notes.append(f"{key}: the detector found {e['faces_detected']} of {e['faces_in_photo']} cartoon faces"
                             + (" (whole-image fallback: one crop classified)" if e["whole_image_fallback"] else ""))
        secs["prediction"]["detection_notes"] = notes or ["every composited face was detected"]
    if "memory" not in skip:
        rss = pw.get("rss_after_warm_e2e") or pw["rss_after_first_prediction"]
        secs["memory"] = {
            "rss_mb": {k: pw.get(k) for k in ("rss_at_start", "rss_after_import", "rss_after_first_prediction",
                                              "rss_after_warm_e2e")},
            "rss_all_five_mb": rss.get("rss_mb"), "peak_rss_mb": rss.get("peak_rss_mb"),
            "models": pw["models"],
            "what": "resident memory of a fresh Python process running Predictor(runs) on the 1920×1080 photos "
                    "(TensorFlow, YuNet, all models loaded and warm); the Streamlit server adds its own",
            "free_tier_reference_gb": [1.0, 2.7]}
        results["rss_all_five_mb"] = rss.get("rss_mb")
    if "efficiency" not in skip and pw.get("per_model"):
        peak = results.get("matmul_f32_gflops")
        eff = {}
        for name, m in pw["per_model"].items():
            achieved = m["gflops_per_image"] * m["batch_imgs_per_s"]
            eff[name] = {"gflops_per_image": m["gflops_per_image"], "batch": m["batch"],
                         "imgs_per_s": m["batch_imgs_per_s"], "achieved_gflops": achieved,
                         "fraction_of_matmul_f32": (achieved / peak) if peak else None,
                         "is_backbone": name in BACKBONES}
        secs["efficiency"] = {"per_model": eff, "matmul_f32_gflops": peak,
                              "definition": "achieved = analytic GFLOP/image × measured images/s at the batch shown "
                                            "(whole model: the head adds < 0.01 %); fraction = achieved / the "
                                            "measured float32 matmul rate"}
        results["backbone_efficiency"] = {k: v["fraction_of_matmul_f32"] for k, v in eff.items() if v["is_backbone"]}
        one_pass = {k: SEED_SET_IMAGES / v["imgs_per_s"] for k, v in eff.items() if v["is_backbone"]}
        secs["efficiency"]["derived_backbone_pass_s_at_5856"] = {
            "per_backbone": one_pass, "total": sum(one_pass.values()),
            "note": f"derived: {SEED_SET_IMAGES} / measured images/s (batch {cfg['throughput_batch']}, image size "
                    f"{cfg['image_size']}) — the one backbone pass that dominates train_all_five"}
    if "model_levers" not in skip and "levers" in pw:
        secs["model_levers"] = pw["levers"]
