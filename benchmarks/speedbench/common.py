"""Shared by every section: constants, timing and statistics, agreement of probabilities,
the CPU meter, machine information, JSON writing, and fresh worker processes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "speed.py"  # what worker processes run (``--_worker``)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIVE = ("baseline", "resnet50v2", "inception_resnet_v2", "inception_v3", "vgg19")
BACKBONES = FIVE[1:]
SEED_SET_IMAGES = 5856  # the seed's data set size; 8 demo classes × 732
AGREE_MAX_ABS = 1e-2
AGREE_TOP1 = 0.99


# =========================================================================== small utilities

def stats(times: list[float]) -> dict:
    a = np.asarray(times, dtype=np.float64)
    return {"n": int(a.size), "p50_s": float(np.percentile(a, 50)), "p95_s": float(np.percentile(a, 95)),
            "mean_s": float(a.mean()), "min_s": float(a.min()), "max_s": float(a.max())}


def time_calls(fn, reps: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(max(1, reps)):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def agreement(p: np.ndarray, ref: np.ndarray) -> dict:
    """Max |Δp| and top-class agreement; flips where the reference's top two are within
    ``AGREE_MAX_ABS`` (near ties, common with barely trained heads) are counted apart."""
    p, ref = np.asarray(p, np.float64), np.asarray(ref, np.float64)
    if not p.size:
        return {"n": 0, "max_abs_diff": 0.0, "top1_agreement": 1.0, "flips_on_near_ties": 0, "ok": True,
                "ok_excluding_near_ties": True}
    max_abs = float(np.max(np.abs(p - ref)))
    same = p.argmax(-1) == ref.argmax(-1)
    top2 = np.sort(ref, axis=-1)[:, -2:]
    near_tie = (top2[:, 1] - top2[:, 0]) < AGREE_MAX_ABS
    decisive = ~near_tie
    top1_decisive = float(np.mean(same[decisive])) if decisive.any() else 1.0
    return {"n": int(len(p)), "max_abs_diff": max_abs, "top1_agreement": float(np.mean(same)),
            "flips_on_near_ties": int(np.sum(~same & near_tie)), "near_ties": int(near_tie.sum()),
            "ok": bool(max_abs <= AGREE_MAX_ABS and np.mean(same) >= AGREE_TOP1),
            "ok_excluding_near_ties": bool(max_abs <= AGREE_MAX_ABS and top1_decisive >= AGREE_TOP1)}


def rss_mb() -> dict:
    """VmRSS (now) and VmHWM (peak) of this process in MiB, from /proc (no psutil needed)."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, val = line.split(":", 1)
                out["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = round(int(val.split()[0]) / 1024, 1)
    except OSError:
        import resource

        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _proc_stat_busy() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
    try:
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        v = [int(x) for x in parts]
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)  # user nice system irq softirq steal
        return busy / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class CpuMeter:
    """How busy the machine was with OTHER work while a section ran (0 = idle, 1 = all cores)."""

    def __init__(self):
        self.wall0, self.busy0, self.own0 = time.perf_counter(), _proc_stat_busy(), _own_cpu()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall0
        busy1, own = _proc_stat_busy(), _own_cpu() - self.own0
        ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        out = {"wall_s": round(wall, 3), "own_cpu_s": round(own, 3)}
        if busy1 is not None and self.busy0 is not None and wall > 0:
            others = max(0.0, (busy1 - self.busy0) - own)
            out["others_busy_fraction"] = round(min(1.0, others / (os.cpu_count() * wall)), 3)
        out["cpus"] = ncpu
        return out


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (Path, tuple, set)):
        return str(o) if isinstance(o, Path) else list(o)
    return str(o)


# =========================================================================== machine

def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        first = text.split("\n\n")[0]
        fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in first.splitlines())}
        info["cpu_model"] = fields.get("model name")
        info["cpu_vendor"] = fields.get("vendor_id")
        info["cpu_family_model"] = f"{fields.get('cpu family')}/{fields.get('model')}"
        flags = set(fields.get("flags", "").split())
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")) or f in ("hypervisor",))
        cores = {ln.split(":")[1].strip() for ln in text.splitlines() if ln.startswith("core id")}
        info["physical_cores"] = len(cores) or None
    except OSError:
        info["cpu_model"] = platform.processor() or None
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()
        total = next(int(ln.split()[1]) for ln in mem if ln.startswith("MemTotal"))
        info["memory_total_gb"] = round(total / 1024 ** 2, 1)
    except (OSError, StopIteration):
        pass
    from importlib import metadata

    info["packages"] = {}
    for pkg in ("tensorflow", "keras", "numpy", "opencv-python-headless", "pillow", "onnxruntime", "tf2onnx"):
        # TensorFlow installs as the CPU-only wheel on Linux x86_64 (requirements.txt): same module, other dist name.
        for dist in (pkg, "tensorflow-cpu") if pkg == "tensorflow" else (pkg,):
            try:
                info["packages"][pkg] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                info["packages"][pkg] = None
    info["env"] = {k: os.environ[k] for k in ("TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                               "TF_NUM_INTEROP_THREADS", "TF_SET_ONEDNN_FPMATH_MODE",
                                               "ONEDNN_DEFAULT_FPMATH_MODE") if k in os.environ}
    return info


def load_avg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


# =========================================================================== shared by the training sections

def _prepare(ds, size: int):
    from fer_core.data.preprocess import prepare_images

    x = {s: prepare_images(xs, size, 3) for s, (xs, _) in ds.splits.items()}
    y1h = {s: ds.training_targets(s) for s in ds.splits}
    return x, y1h


# =========================================================================== fresh worker processes

def _run_worker(kind: str, spec: dict, tmp: Path, env: dict | None = None, tag: str = "") -> dict:
    spec_path, out_path = tmp / f"worker_{kind}{tag}.json", tmp / f"worker_{kind}{tag}.out.json"
    cmd = [sys.executable, str(SCRIPT), "--_worker", kind, "--_spec", str(spec_path), "--_out", str(out_path)]
    spec = {**spec, "launched_at": time.time(), "tmp": str(tmp)}  # cold timings count from here
    spec_path.write_text(json.dumps(spec, default=_json_default))
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                          capture_output=True, text=True)
    if proc.returncode != 0 or not out_path.is_file():
        raise RuntimeError(f"{kind} worker{tag} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return json.loads(out_path.read_text())
