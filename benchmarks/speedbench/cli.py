"""FER Studio speed benchmark: training, prediction, memory and the levers that move them.

The command line (``python benchmarks/speed.py``): runs the sections in order,
writes the JSON after each one (a crash keeps what was measured), checks the
targets and prints a summary table. ``--_worker`` runs one of the fresh worker
processes the prediction and runtime-lever sections start.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from .common import AGREE_MAX_ABS, AGREE_TOP1, ROOT, CpuMeter, load_avg, machine_info, write_json
from .feature_cache import section_feature_cache
from .inputs import agreement_images
from .matmul import section_matmul
from .modes import MODES, SCHEMA_VERSION, SKIPPABLE, TARGETS
from .precision import section_precision
from .prediction import _split_prediction, section_prediction_process, worker_predict
from .runtime_levers import section_runtime_levers, worker_runtime
from .tfdata_levers import section_tfdata_levers
from .train_all_five import _cli_train, section_train_all_five


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="same measurements on smaller sizes and one backbone for the "
                                                        "per-backbone sections (under 3 min on 2 idle cores)")
    g.add_argument("--smoke", action="store_true", help="minimal sizes, seconds; checks that every path runs")
    p.add_argument("--skip", default="", help=f"comma-separated sections to skip: {', '.join(SKIPPABLE)}")
    p.add_argument("--only", default="", help="comma-separated sections to run (the rest are skipped; matmul always runs)")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/speed[_quick|_smoke].json)")
    p.add_argument("--runs", default=None, help="use the runs in this folder for prediction/memory/levers "
                                               "(default: the runs train_all_five just trained)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (runs, caches, photos)")
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_spec", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    bad = skip - set(SKIPPABLE)
    if bad:
        p.error(f"unknown section(s) in --skip: {', '.join(sorted(bad))}; known: {', '.join(SKIPPABLE)}")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if only - set(SKIPPABLE):
        p.error(f"unknown section(s) in --only: {', '.join(sorted(only - set(SKIPPABLE)))}; known: {', '.join(SKIPPABLE)}")
    if only:
        if "levers" in only:
            only |= {"model_levers", "runtime_levers", "tfdata_levers"}
        skip |= set(SKIPPABLE) - only - {"levers"}
    if "levers" in skip:
        skip |= {"model_levers", "runtime_levers", "tfdata_levers"}
    args.skip = skip
    return args


def main(argv=None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args._worker:
        spec = json.loads(Path(args._spec).read_text())
        fn = {"predict": worker_predict, "runtime": worker_runtime}[args._worker]
        write_json(Path(args._out), fn(spec))
        return 0

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    cfg = MODES[mode]
    out_path = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / (
        "speed.json" if mode == "full" else f"speed_{mode}.json")
    t_start = time.perf_counter()
    meter_all = CpuMeter()
    results: dict = {
        "schema_version": SCHEMA_VERSION, "mode": mode, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python benchmarks/speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(), "load_avg_start": load_avg(), "sizes": cfg, "skipped": sorted(args.skip),
        "feature_cache_speedup": None, "predict_e2e_p50_s": None, "predict_e2e_p95_s": None,
        "predict_e2e_4faces_p50_s": None, "predict_e2e_4faces_p95_s": None, "cold_first_prediction_s": None,
        "train_all_five_s": None, "rss_all_five_mb": None, "matmul_f32_gflops": None,
        "sections": {}, "errors": {},
        "conventions": {
            "percentiles": "numpy linear-interpolation percentiles of the listed repetitions",
            "warm": "after warm-up calls in the same process; 'cold' = fresh process",
            "measured_vs_derived": "keys containing 'extrapolated' or 'derived' are computed, not measured; "
                                   "everything else is a wall-clock measurement",
            "flops": "2 × multiply-adds of Conv2D + Dense layers per image (BN, activations, pooling excluded)",
            "agreement": f"max |Δp| ≤ {AGREE_MAX_ABS} and same top class on ≥ {AGREE_TOP1:.0%} of the inputs",
            "others_busy_fraction": "CPU time used by OTHER processes during a section / (cores × wall); "
                                    "above ~0.1 the absolute numbers (and ratios, less so) are unreliable",
        },
    }
    tmp = Path(tempfile.mkdtemp(prefix="fer-speed-"))
    if args.keep_tmp:
        results["tmp_dir"] = str(tmp)

    def section(name: str, fn):
        print(f"[speed] {name} …", file=sys.stderr, flush=True)
        meter = CpuMeter()
        try:
            val = fn()
        except Exception as exc:
            results["errors"][name] = f"{type(exc).__name__}: {exc}"[-2000:]
            results["sections"][name] = {"error": results["errors"][name],
                                         "traceback": traceback.format_exc()[-3000:], "cpu": meter.stop()}
            print(f"[speed] {name} FAILED: {results['errors'][name][:500]}", file=sys.stderr, flush=True)
            val = None
        else:
            val["cpu"] = meter.stop()
            results["sections"][name] = val
            print(f"[speed] {name} done in {val['cpu']['wall_s']:.1f} s", file=sys.stderr, flush=True)
        write_json(out_path, results)
        return val

    try:
        from fer_core._quiet import import_tensorflow_quietly

        t = time.perf_counter()
        tf = import_tensorflow_quietly()
        results["machine"]["tf_import_s"] = time.perf_counter() - t
        results["machine"]["tf_threads_default"] = {
            "intra": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter": tf.config.threading.get_inter_op_parallelism_threads(), "note": "0 = TF picks (≈ cores)"}

        mm = section("matmul", lambda: section_matmul(cfg, tmp))
        if mm:
            results["matmul_f32_gflops"] = mm["matmul_f32_gflops"]

        runs_dir = None
        if "train_all_five" not in args.skip:
            tr = section("train_all_five", lambda: section_train_all_five(cfg, tmp, mode))
            if tr:
                results["train_all_five_s"] = tr["train_all_five_s"]
                runs_dir = None if args.runs else tr["runs_dir"]
        needs_runs = not {"prediction", "memory", "efficiency", "model_levers", "runtime_levers"} <= args.skip
        if args.runs:
            runs_dir = args.runs
            results["runs_source"] = {"kind": "--runs", "path": str(args.runs)}
        elif runs_dir:
            results["runs_source"] = {"kind": "train_all_five", "path": runs_dir}
        elif needs_runs:
            tiny = section("runs_for_prediction", lambda: _cli_train(cfg, tmp, "tiny", 3, 1, cfg["models"]))
            runs_dir = tiny and tiny["runs_dir"]
            results["runs_source"] = {"kind": "tiny CLI runs (3 images/class, 1 epoch); timings valid, "
                                              "agreement on barely-trained heads", "path": runs_dir}

        if "feature_cache" not in args.skip:
            fc = section("feature_cache", lambda: section_feature_cache(cfg, tmp))
            if fc:
                results["feature_cache_speedup"] = fc["feature_cache_speedup"]

        run_paths, images_path = [], tmp / "agree_images.npy"
        if runs_dir and needs_runs:
            from fer_core.store.runs import list_runs

            listing = list_runs(runs_dir)
            by_model = {r.model_name: r for r in sorted(listing.runs, key=lambda r: r.metrics.get("created", 0))}
            run_paths = [str(by_model[m].path) for m in cfg["models"] if m in by_model]
            np.save(images_path, agreement_images(cfg))

        if run_paths and not {"prediction", "memory", "efficiency", "model_levers"} <= args.skip:
            pw = section("prediction_process",
                         lambda: section_prediction_process(cfg, tmp, run_paths, images_path, args.skip))
            if pw:
                try:
                    _split_prediction(pw, results, args.skip, cfg)
                except Exception as exc:  # keep the raw worker output rather than lose it
                    results["errors"]["prediction_process"] = f"filing results failed: {type(exc).__name__}: {exc}"
                    results["sections"]["prediction_process"] = pw

        if run_paths and "runtime_levers" not in args.skip:
            section("runtime_levers", lambda: section_runtime_levers(cfg, tmp, run_paths, images_path))
        if "tfdata_levers" not in args.skip:
            section("tfdata_levers", lambda: section_tfdata_levers(cfg, tmp))
        if "precision" not in args.skip:
            pr = section("precision", lambda: section_precision(cfg, tmp))
            if pr:
                results["bf16_train_speedup"] = {k: v["speedup"] for k, v in pr["scratch"].items()}
                results["bf16_feature_pass_speedup"] = {k: v["speedup"] for k, v in pr["feature_pass"].items()}
    finally:
        results["elapsed_s"] = time.perf_counter() - t_start
        results["load_avg_end"] = load_avg()
        results["cpu"] = meter_all.stop()
        if mode == "quick" and results["elapsed_s"] > 180:
            results.setdefault("warnings", []).append(f"quick mode took {results['elapsed_s']:.0f} s (> 180 s)")
        busy = results["cpu"].get("others_busy_fraction")
        if busy is not None and busy > 0.1:
            results.setdefault("warnings", []).append(
                f"other processes used {busy:.0%} of the CPU during this run: absolute times are inflated")
        results["targets"] = _targets(results, mode)
        write_json(out_path, results)
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print_table(results, out_path)
    return 1 if results["errors"] else 0

def _targets(results: dict, mode: str) -> dict:
    out = {}
    for key, (op, target) in TARGETS.items():
        v = results.get(key)
        met = None if v is None else (v >= target if op == ">=" else v <= target)
        out[key] = {"target": f"{op} {target:g}", "value": v, "met": met, "applies": mode == "full"}
    return out


def print_table(results: dict, out_path: Path) -> None:
    m = results["machine"]
    lines = [f"FER Studio speed ({results['mode']}) — {m.get('cpu_model')}, {m.get('usable_cpus')} CPUs, "
             f"TF {m['packages'].get('tensorflow')}; others' CPU use {results['cpu'].get('others_busy_fraction')}; "
             f"{results['elapsed_s']:.0f} s → {out_path}"]

    def fmt(v, unit=""):
        return "—" if v is None else (f"{v:.3g}{unit}" if isinstance(v, float) else f"{v}{unit}")

    rows = [("feature_cache_speedup", results["feature_cache_speedup"], "×"),
            ("predict_e2e_p50_s", results["predict_e2e_p50_s"], " s"),
            ("predict_e2e_p95_s", results["predict_e2e_p95_s"], " s"),
            ("predict_e2e_4faces_p95_s", results["predict_e2e_4faces_p95_s"], " s"),
            ("cold_first_prediction_s", results["cold_first_prediction_s"], " s"),
            ("train_all_five_s", results["train_all_five_s"], " s"),
            ("rss_all_five_mb", results["rss_all_five_mb"], " MB"),
            ("matmul_f32_gflops", results["matmul_f32_gflops"], "")]
    lines.append(f"{'metric':<28}{'value':>12}  target")
    for key, v, unit in rows:
        t = results["targets"].get(key)
        tgt = f"{t['target']}  {'ok' if t['met'] else 'MISSED' if t['met'] is False else ''}" if t else ""
        lines.append(f"{key:<28}{fmt(v, unit):>12}  {tgt}")
    secs = results["sections"]
    per = (secs.get("prediction") or {}).get("per_model") or {}
    eff = (secs.get("efficiency") or {}).get("per_model") or {}
    if per:
        lines.append(f"{'model':<22}{'p50 ms':>8}{'p95 ms':>8}{'img/s':>8}{'GFLOP':>7}{'eff':>6}")
        for k, v in per.items():
            e = eff.get(k, {}).get("fraction_of_matmul_f32")
            lines.append(f"{k:<22}{v['single_p50_ms']:>8.1f}{v['single_p95_ms']:>8.1f}{v['batch_imgs_per_s']:>8.1f}"
                         f"{v['gflops_per_image']:>7.2f}{fmt(e):>6}")
    prec = secs.get("precision") or {}
    for k, v in (prec.get("scratch") or {}).items():
        a, b = v["per_precision"]["float32"], v["per_precision"]["bfloat16"]
        lines.append(f"bf16 training {k}: ×{v['speedup']:.2f} ({a['train_imgs_per_s']:.0f} → {b['train_imgs_per_s']:.0f} img/s), "
                     f"{a['eval_split']} accuracy {a['eval_accuracy']:.3f} → {b['eval_accuracy']:.3f}")
    for k, v in (prec.get("feature_pass") or {}).items():
        ag = v["agreement_head_on_bf16_vs_float32_features"]
        lines.append(f"bf16 feature pass {k}: ×{v['speedup']:.2f} ({v['float32_imgs_per_s']:.1f} → "
                     f"{v['bfloat16_imgs_per_s']:.1f} img/s), max |Δp| {ag['max_abs_diff']:.2g}, "
                     f"top-1 agreement {ag['top1_agreement']:.1%}")
    lev = (secs.get("model_levers") or {}).get("per_model") or {}
    for k, v in lev.items():
        bits = []
        for name in ("xla", "bfloat16", "bfloat16_xla", "static_batch_shape"):
            r = v.get(name) or {}
            if "speedup_batch32" in r:
                ok = r.get("agreement", {}).get("ok")
                bits.append(f"{name} ×{r['speedup_batch32']:.2f}{'' if ok else ' (disagrees)'}")
        if bits:
            lines.append(f"levers {k}: " + ", ".join(bits))
    if results["errors"]:
        lines.append("errors: " + "; ".join(f"{k}: {v[:160]}" for k, v in results["errors"].items()))
    for w in results.get("warnings", []):
        lines.append(f"warning: {w}")
    print("\n".join(lines))
