#!/usr/bin/env python
"""Export benchmark: size, conversion cost and per-face latency of each export format, against the compiled Keras call.

    python benchmarks/export.py                                   # bundled compact and baseline → benchmarks/results/export.json
    python benchmarks/export.py --runs models/compact --repeats 100 --out /tmp/export.json

For each run and each format fer_core.store.export offers here:

- ``size_bytes``: the model file(s) on disk (labels.json excluded);
- ``convert_s``: wall time of ``export_run`` (load, convert, reload, check);
- ``memory``: in a fresh process with TensorFlow imported, how far one ``export_run`` (defaults: 300 check faces
  for int8) raises the peak resident memory (Linux ``clear_refs`` resets the peak): what an export adds to a server;
- ``check``: what export_run measured (float: max |Δp| on random pixels; int8: top-1 agreement and accuracy on
  faces — with ``--data`` FER2013, 200 train faces calibrate and the whole test split checks). int8 three ways:
  ``auto`` (what the CLI and the app do), and each mode forced (``refused`` with the numbers when below the bound);
- ``latency``: median ms of one warm call on 1 face and per face in a batch of 8 (uint8 crops; every exported
  runtime casts them to its float32 input), timed in interleaved rounds with ``compiled_keras``
  (``fer_core.compute.forward.compiled_forward`` traced once for any batch size, as the app's Predictor does) and
  ``compiled_keras_static_shape`` (one trace per batch size: Keras' best case), so machine load hits every
  variant alike; TFLite with 1 thread (the Interpreter's default) and with one per core.

``import_rss_mb``: a fresh process's resident memory after importing TensorFlow and loading the bundled
compact, then after also importing the export packages: what adding them to the deployed app would cost
in memory when they are imported (they are imported only to export).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.npz"


# --------------------------------------------------------------------------- memory

def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def import_rss() -> dict:
    """RSS of a fresh process: TF + the bundled compact loaded, then + the export packages imported."""
    code = (
        "import json, sys; sys.path.insert(0, %r)\n"
        "from benchmarks.export import _status_mb\n"
        "from fer_core import load_run\n"
        "m = load_run(%r).load_model(); import numpy as np; m(np.zeros((1, 48, 48, 1), 'float32'))\n"
        "out = {'tensorflow_and_compact': _status_mb('VmRSS')}\n"
        "for name in ('ai_edge_litert.interpreter', 'onnxruntime', 'tf2onnx'):\n"
        "    try:\n"
        "        __import__(name); out['+ ' + name.split('.')[0]] = _status_mb('VmRSS')\n"
        "    except ImportError:\n"
        "        out['+ ' + name.split('.')[0]] = None\n"
        "print(json.dumps(out))\n"
    ) % (str(ROOT), str(ROOT / "models" / "compact"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return {k: (round(v, 1) if v else v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def export_peak(run: str, fmt: str) -> dict:
    """A fresh process: RSS with TensorFlow imported, then the peak while export_run loads, converts and checks
    ``run`` as ``fmt`` (300 check faces for int8, as the CLI and the app): the memory one export adds to a server."""
    code = (
        "import json, sys, tempfile; sys.path.insert(0, %r)\n"
        "from benchmarks.export import _status_mb, _reset_peak\n"
        "from fer_core._quiet import import_tensorflow_quietly; import_tensorflow_quietly()\n"
        "from fer_core.store import export as ex\n"
        "before = _status_mb('VmRSS'); _reset_peak()\n"
        "with tempfile.TemporaryDirectory() as tmp:\n"
        "    ex.export_run(%r, %r, tmp + '/out')\n"
        "print(json.dumps({'rss_before_mb': before, 'peak_mb': _status_mb('VmHWM')}))\n"
    ) % (str(ROOT), run, fmt)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"rss_before_mb": round(got["rss_before_mb"], 1), "peak_mb": round(got["peak_mb"], 1),
            "growth_mb": round(got["peak_mb"] - got["rss_before_mb"], 1)}


def installed_mb() -> dict:
    """Disk taken by each optional package in this environment's site-packages."""
    import importlib.util

    out = {}
    for module in ("ai_edge_litert", "onnxruntime", "onnx", "tf2onnx"):
        spec = importlib.util.find_spec(module)
        if spec and spec.submodule_search_locations:
            root = Path(list(spec.submodule_search_locations)[0])
            out[module] = round(sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6, 1)
    return out


# --------------------------------------------------------------------------- latency

def interleaved_latency(fns: dict, x1: np.ndarray, x8: np.ndarray, repeats: int) -> dict:
    """Median ms per call on 1 face and per face on 8, every variant timed in turn within each round."""
    for fn in fns.values():  # warm: traces, allocations, the Interpreter's resize
        for _ in range(3):
            fn(x1), fn(x8)
    times = {name: {"b1": [], "b8": []} for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn(x1)
            t1 = time.perf_counter()
            fn(x8)
            t8 = time.perf_counter()
            times[name]["b1"].append(t1 - t)
            times[name]["b8"].append(t8 - t1)
    return {name: {"batch1_ms": round(float(np.median(t["b1"])) * 1000, 3),
                   "batch1_p90_ms": round(float(np.percentile(t["b1"], 90)) * 1000, 3),
                   "batch8_ms_per_face": round(float(np.median(t["b8"])) * 1000 / 8, 3)}
            for name, t in times.items()}


# --------------------------------------------------------------------------- one run

def bench_run(path: Path, data: str | None, repeats: int, tmp: Path) -> dict:
    from fer_core import load_run
    from fer_core.store import export as ex
    from fer_core.compute.forward import compiled_forward

    run = load_run(path)
    model = run.load_model()
    shape = ex.input_shape(run, model)
    import tensorflow as tf

    forward = compiled_forward(model)  # as the app's Predictor: one trace for any batch size, uint8 in
    forward.get_concrete_function(tf.TensorSpec((None, *shape), tf.uint8))
    static = {1: compiled_forward(model), 8: compiled_forward(model)}  # best case: one static shape each
    result = {"run": run.id, "input": list(shape), "keras_file_bytes": run.model_path.stat().st_size, "formats": {}}
    runtimes = {"compiled_keras": lambda x: np.asarray(forward(x)),
                "compiled_keras_static_shape": lambda x: np.asarray(static[len(x)](x))}
    for fmt, why in ex.available_formats().items():
        if why:
            result["formats"][fmt] = {"skipped": why}
            continue
        modes = ["auto"] if fmt != "tflite_int8" else ["auto", "full-integer", "dynamic-range"]
        for mode in modes:
            key = fmt if mode == "auto" else f"{fmt}_{mode}"
            t = time.perf_counter()
            check_faces = 100_000 if data else ex.CHECK_FACES  # with FER2013: its whole test split
            try:
                done = ex.export_run(run, fmt, tmp / f"{run.id}-{key}", data=data, check_faces=check_faces,
                                     int8_mode=mode)
            except ex.ExportError as exc:  # e.g. full-integer below the agreement bound: record why
                result["formats"][key] = {"refused": str(exc), "convert_s": round(time.perf_counter() - t, 2)}
                continue
            seconds = time.perf_counter() - t
            entry = {"size_bytes": done.size_bytes, "convert_s": round(seconds, 2),
                     "quantization": done.labels["quantization"], "check": done.labels["check"]}
            if mode == "auto":
                entry["memory"] = export_peak(str(path), fmt)
            result["formats"][key] = entry
            if fmt in ("tflite", "tflite_int8"):
                for threads in (1, os.cpu_count() or 1):
                    runtimes[f"{key}/{threads}t"] = ex.load_export(done.dest, threads=threads)[0]
            elif fmt != "keras":  # model.keras is the file compiled_keras already runs
                runtimes[key] = ex.load_export(done.dest)[0]
    rng = np.random.default_rng(0)
    x8 = rng.integers(0, 256, (8, *shape)).astype(np.uint8)  # (8, H, W, C) raw pixels, as the app's crops
    latency = interleaved_latency(runtimes, x8[:1], x8, repeats)
    base = latency["compiled_keras"]
    for name, lat in latency.items():
        lat["speedup_batch1_vs_compiled_keras"] = round(base["batch1_ms"] / lat["batch1_ms"], 2)
        lat["speedup_batch8_vs_compiled_keras"] = round(base["batch8_ms_per_face"] / lat["batch8_ms_per_face"], 2)
    result["latency"] = latency
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", default=[str(ROOT / "models" / "compact"), str(ROOT / "models" / "baseline")])
    p.add_argument("--data", default=str(FER2013) if FER2013.is_file() else None,
                   help="int8 calibration and check faces (default: FER2013 when it is here)")
    p.add_argument("--repeats", type=int, default=200, help="timing rounds per variant")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "export.json"))
    args = p.parse_args(argv)

    from benchmarks.machine import cpu_model
    from fer_core._quiet import import_tensorflow_quietly
    from fer_core.store.export import _version

    import_tensorflow_quietly()
    started = time.time()
    load_before = os.getloadavg()
    result = {
        "what": __doc__.split("\n\n")[0],
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_before": [round(v, 2) for v in load_before]},
        "versions": {d: _version(d) for d in ("tensorflow", "keras", "ai-edge-litert", "onnxruntime", "tf2onnx", "onnx")},
        "int8_faces": args.data or "the run's own data if here, else demo faces",
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.runs:
            name = Path(path).name
            print(f"{name} …", flush=True)
            result["runs"][name] = bench_run(Path(path), args.data, args.repeats, Path(tmp))
            for fmt, e in result["runs"][name]["formats"].items():
                if "skipped" in e or "refused" in e:
                    print(f"  {fmt}: {e.get('skipped') or e.get('refused')}")
                    continue
                c = e["check"]
                how = (f"agreement {c['top1_agreement']:.2%} on {c['faces']} faces"
                       + (f", accuracy {c['accuracy']['int8']:.4f} vs keras {c['accuracy']['keras']:.4f}"
                          if "accuracy" in c else "")
                       if "top1_agreement" in c else f"max |Δp| {c['max_abs_diff']:.1e}")
                mem = e.get("memory", {}).get("growth_mb", "–")
                print(f"  {fmt}: {e['size_bytes'] / 1e6:.2f} MB, {e['convert_s']} s, fresh-process peak +{mem} MB, {how}")
            for rt, lat in result["runs"][name]["latency"].items():
                print(f"  {rt}: {lat['batch1_ms']} ms/face alone, {lat['batch8_ms_per_face']} ms/face in 8 "
                      f"(×{lat['speedup_batch1_vs_compiled_keras']} / ×{lat['speedup_batch8_vs_compiled_keras']} vs compiled Keras)")
    result["import_rss_mb"] = import_rss()
    result["installed_mb"] = installed_mb()
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    result["seconds"] = round(time.time() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"import RSS: {result['import_rss_mb']}\ninstalled: {result['installed_mb']}\n→ {out} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
