#!/usr/bin/env python
"""FER Studio speed benchmark: training, prediction, memory and the levers that move them.

    python benchmarks/speed.py            # full   → benchmarks/results/speed.json
    python benchmarks/speed.py --quick    # < 3 min → benchmarks/results/speed_quick.json
    python benchmarks/speed.py --smoke    # seconds, for tests → benchmarks/results/speed_smoke.json
    python benchmarks/speed.py --skip train_all_five,levers --out /tmp/s.json

Sections (each one's JSON says what was measured and what was derived):

1. ``feature_cache``: frozen-backbone training through the engine's two real
   code paths on the same data, head and epochs: the plain ``model.fit``
   through the backbone every epoch (``fer_core.train._train_scratch`` on the
   transfer model) against the feature cache (``fer_core.train._train_transfer``).
   The cached path is measured at the full head epochs (one-time feature
   extraction included); the plain path is measured for a few epochs and
   extrapolated to the same epoch count (labelled). A smaller set trains both
   paths for the full epochs to compare validation accuracy.
2. ``prediction``: in a fresh process, ``Predictor(runs).predict(jpeg bytes)``
   on 1920×1080 photos with 1 and 4 composited demo faces (decode + EXIF
   orientation + detection + crops + all models + ensemble), warm p50/p95;
   per model single-image latency and batch throughput; the cold first
   prediction including model loading.
3. ``train_all_five``: ``python -m training`` as a user runs it, wall time.
4. ``efficiency``: each model's forward GFLOP/s against this CPU's measured
   float32 matrix-multiply rate (``matmul``).
5. ``memory``: resident memory of the prediction process with all models loaded.
6. ``precision``: float32 against mixed bfloat16 for scratch training and for
   the frozen backbones' feature pass, with accuracy and agreement.
7. ``levers``: batch size, static vs dynamic batch shape, XLA (``jit_compile``),
   bfloat16, face batching, detection size (``model_levers``, in the prediction
   process); threads and oneDNN settings (``runtime_levers``, one fresh process
   each); tf.data prefetch/caching (``tfdata_levers``); ONNX Runtime when
   installed. Every lever reports agreement with the default path's
   probabilities (max |Δp| ≤ 1e-2 and same top class on ≥ 99 %).

Ratios are always measured side by side in one run. Absolute times move with
the machine and its load: the JSON records the CPU, and how busy the machine
was with other work during each section (``cpu.others_busy_fraction``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SCHEMA_VERSION = 1
FIVE = ("baseline", "resnet50v2", "inception_resnet_v2", "inception_v3", "vgg19")
BACKBONES = FIVE[1:]
SEED_SET_IMAGES = 5856  # the seed's data set size; 8 demo classes × 732
SECTIONS = ("matmul", "train_all_five", "feature_cache", "prediction", "memory", "efficiency",
            "model_levers", "runtime_levers", "tfdata_levers", "precision")
SKIPPABLE = SECTIONS[1:] + ("levers",)  # "levers" = all three lever sections
AGREE_MAX_ABS = 1e-2
AGREE_TOP1 = 0.99

#: Fresh-process runtime settings compared side by side (threads must be set before TF starts).
RUNTIME_CONFIGS = {
    "default": {},
    "intra1_inter1": {"intra": 1, "inter": 1},
    "intra2_inter1": {"intra": 2, "inter": 1},
    "intra4_inter2": {"intra": 4, "inter": 2},  # oversubscribed on 2 cores
    "onednn_off": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
    # float32 storage, bf16 arithmetic inside oneDNN (AVX512-BF16); TF's and oneDNN's own switch.
    "onednn_fpmath_bf16": {"env": {"TF_SET_ONEDNN_FPMATH_MODE": "BF16", "ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}},
}

MODES = {
    "full": dict(
        image_size=128, models=FIVE, backbones=BACKBONES,
        fc_per_class=200, fc_plain_epochs=3, head_epochs=10, fc_acc_per_class=24, fc_acc_backbones=BACKBONES,
        train_per_class=732, train_epochs=10,
        matmul_sizes=(1024, 2048, 4096), matmul_seconds=2.0,
        latency_reps=30, throughput_batch=64, throughput_reps=4, e2e_warmup=3, e2e_reps=30, photo_tries=12,
        detect_sides=(1920, 960, 640, 480), detect_reps=5,
        agree_per_class=16, lever_models=FIVE, lever_variants=("xla", "bfloat16", "bfloat16_xla"),
        lever_batches=(1, 8, 32, 64, 128), lever_reps=20, lever_batch_reps=3,
        runtime_configs=tuple(RUNTIME_CONFIGS), runtime_models=FIVE, runtime_repeat_default=True,
        tfdata_per_class=100, tfdata_epochs=3, tfdata_head_n=4000, tfdata_rounds=3,
        precision_scratch_models=("baseline", "compact"), precision_per_class=200, precision_epochs=8,
        precision_batch_reps=4,
    ),
    "quick": dict(  # the same sections at small sizes, under 3 min on 2 idle cores. Most of the time is
                    # TensorFlow building and tracing networks (it does not shrink with the data), so the
                    # per-backbone sections (feature cache, bf16 feature pass) take one backbone, not four.
        image_size=96, models=FIVE, backbones=("resnet50v2",),
        fc_per_class=8, fc_plain_epochs=2, head_epochs=10, fc_acc_per_class=4, fc_acc_backbones=("resnet50v2",),
        train_per_class=8, train_epochs=3,
        matmul_sizes=(2048,), matmul_seconds=1.0,
        latency_reps=6, throughput_batch=16, throughput_reps=2, e2e_warmup=1, e2e_reps=6, photo_tries=8,
        detect_sides=(1920, 640), detect_reps=2,
        agree_per_class=4, lever_models=("resnet50v2",), lever_variants=("xla", "bfloat16"),
        lever_batches=(1, 16), lever_reps=5, lever_batch_reps=1,
        runtime_configs=("default", "onednn_fpmath_bf16"), runtime_models=("resnet50v2",),
        tfdata_per_class=8, tfdata_epochs=2, tfdata_head_n=1000, tfdata_rounds=2,
        precision_scratch_models=("baseline",), precision_per_class=8, precision_epochs=2, precision_batch_reps=1,
    ),
    "smoke": dict(
        image_size=48, models=("baseline", "vgg19"), backbones=("vgg19",),
        fc_per_class=3, fc_plain_epochs=2, head_epochs=2, fc_acc_per_class=3, fc_acc_backbones=("vgg19",),
        train_per_class=3, train_epochs=1,
        matmul_sizes=(256,), matmul_seconds=0.1,
        latency_reps=2, throughput_batch=4, throughput_reps=1, e2e_warmup=1, e2e_reps=2, photo_tries=1,
        detect_sides=(640,), detect_reps=1,
        agree_per_class=1, lever_models=("baseline",), lever_variants=("xla", "bfloat16", "bfloat16_xla"),
        lever_batches=(1, 4), lever_reps=2, lever_batch_reps=1,
        runtime_configs=("default",), runtime_models=("baseline",),
        tfdata_per_class=3, tfdata_epochs=1, tfdata_head_n=64, tfdata_rounds=1,
        precision_scratch_models=("baseline",), precision_per_class=3, precision_epochs=1, precision_batch_reps=1,
    ),
}

TARGETS = {  # headline key → (comparison, value); checked in full mode only
    "feature_cache_speedup": (">=", 8.0),
    "predict_e2e_p95_s": ("<=", 1.0),
    "train_all_five_s": ("<=", 900.0),
}


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
    for pkg in ("tensorflow", "keras", "numpy", "mtcnn", "pillow", "onnxruntime", "tf2onnx"):
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


# =========================================================================== 4a. matmul rate

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


# =========================================================================== 3. train all five (CLI)

def _cli_train(cfg: dict, tmp: Path, tag: str, per_class: int, epochs: int, models: tuple[str, ...]) -> dict:
    out, cache, prog = tmp / f"runs_{tag}", tmp / f"cache_{tag}", tmp / f"{tag}.jsonl"
    size = cfg["image_size"]
    cmd = [sys.executable, "-m", "training", "--data", "demo", "--demo-per-class", str(per_class),
           "--epochs", str(epochs), "--weights", "none", "--out", str(out), "--cache-dir", str(cache),
           "--progress-file", str(prog)]
    if tuple(models) != FIVE:
        cmd += ["--models", ",".join(models)]
    if size != 128:
        cmd += ["--demo-size", str(size), "--image-size", str(size)]
    env = {**os.environ, "FER_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    launched = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"training CLI exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    from fer_core.progress import read_events
    from fer_core.runs import list_runs

    events = read_events(prog)
    start = next((e for e in events if e.get("event") == "run_start"), None)
    listing = list_runs(out)
    per_model = {}
    for run in listing.runs:
        m = run.metrics
        fc = m.get("feature_cache") or {}
        per_model[run.model_name] = {
            "train_seconds": m.get("train_seconds"), "feature_seconds": fc.get("seconds"),
            "epochs_run": m.get("epochs_run"), "test_accuracy": m.get("accuracy"),
            "latency_ms": m.get("latency_ms"), "model_size_mb": round(m.get("model_size_bytes", 0) / 2 ** 20, 1),
            "params": m.get("params"), "run_dir": str(run.path)}
    n_images = sum(start["dataset"]["split_sizes"].values()) if start else per_class * 8
    return {"command": "python -m training " + " ".join(cmd[3:]), "wall_s": wall,
            "startup_and_data_s": (start["time"] - launched) if start else None,
            "images": n_images, "image_size": size, "epochs": epochs, "models": list(models),
            "per_model": per_model, "runs_dir": str(out)}


def section_train_all_five(cfg: dict, tmp: Path, mode: str) -> dict:
    res = _cli_train(cfg, tmp, "train5", cfg["train_per_class"], cfg["train_epochs"], cfg["models"])
    res["measured"] = "wall_s: subprocess wall time of the CLI (import, demo data generation, all models, saving)"
    res["train_all_five_s"] = res["wall_s"]
    if res["images"] != SEED_SET_IMAGES:
        res["note"] = (f"measured on {res['images']} images, not the seed-sized {SEED_SET_IMAGES}: not comparable "
                       "with the target; efficiency.derived_backbone_pass_s_at_5856 estimates the dominant part")
    return res


# =========================================================================== 1. feature cache vs plain fit

class _Clock:
    """A ProgressCallback-compatible recorder of epoch ends and final status messages."""

    def __init__(self):
        self.t0 = self.t_end = None
        self.epoch_ends: list[float] = []
        self.statuses: list[tuple[float, str]] = []

    def on_event(self, e: dict) -> None:
        if e.get("event") == "epoch_end":
            self.epoch_ends.append(time.perf_counter())

    def status(self, msg: str, final: bool = True) -> None:
        if final:
            self.statuses.append((time.perf_counter(), msg))


def _prepare(ds, size: int):
    from fer_core.preprocess import prepare_images
    from fer_core.train import _one_hot

    x = {s: prepare_images(xs, size, 3) for s, (xs, _) in ds.splits.items()}
    y1h = {s: _one_hot(ys, ds.n_classes) for s, (_, ys) in ds.splits.items()}
    return x, y1h


def _both_paths(name: str, ds, x, y1h, size: int, plain_epochs: int, head_epochs: int, cache_root: Path,
                seed: int = 0) -> dict:
    """One model, same init: cached path (head_epochs) first, then plain fit (plain_epochs).

    Cached first so any warm-up one path leaves behind favours the plain path:
    the ratio errs low.
    """
    import keras

    from fer_core.features import FeatureCache
    from fer_core.models import create_model
    from fer_core.inference import compiled_forward, predict_batches
    from fer_core.train import TrainConfig, _train_scratch, _train_transfer

    keras.utils.set_random_seed(seed)
    model = create_model(name, ds.n_classes, image_size=size, weights="none")
    init = model.get_weights()
    ev = ds.eval_split
    y_eval = ds.splits[ev][1]
    n_val = len(ds.splits["validation"][1])

    # (b) feature cache, real code path: key, digest, extraction, cache write, head fit, eval
    keras.utils.set_random_seed(seed)
    c = _Clock()
    # float32 on both paths: this section isolates the cache; bfloat16 is measured in section "precision"
    cfg_c = TrainConfig(model=name, epochs=head_epochs, weights="none", patience=0, image_size=size, seed=seed,
                        precision="float32")
    c.t0 = time.perf_counter()
    probs_c, info = _train_transfer(model, ds, cfg_c, x, y1h, None, c, FeatureCache(cache_root / f"{name}-{n_val}"),
                                    size, c.status)
    c.t_end = time.perf_counter()
    feat_done = next((t for t, m in c.statuses if m.startswith("backbone features")), c.t0)
    cached_hist = info["history"]
    head_epoch_s = np.diff([feat_done, *c.epoch_ends]).tolist()
    cached = {
        "epochs": head_epochs, "cache_hit": bool(info["hit"]), "total_s": c.t_end - c.t0,
        "feature_extraction_s": feat_done - c.t0, "head_epoch_s": head_epoch_s,
        "eval_and_rest_s": c.t_end - (c.epoch_ends[-1] if c.epoch_ends else feat_done),
        "val_accuracy": [float(v) for v in cached_hist.get("val_accuracy", [])],
        "eval_accuracy": float(np.mean(probs_c.argmax(1) == y_eval)),
    }

    # (a) plain model.fit through the frozen backbone every epoch
    model.set_weights(init)
    keras.utils.set_random_seed(seed)
    p = _Clock()
    cfg_p = TrainConfig(model=name, epochs=plain_epochs, weights="none", patience=0, image_size=size, seed=seed,
                        precision="float32")
    history: dict = {}
    p.t0 = time.perf_counter()
    model, _ = _train_scratch(model, cfg_p, x, y1h, None, p, history)  # no checkpoints: bare epochs
    probs_p = predict_batches(compiled_forward(model), x[ev], 128)
    p.t_end = time.perf_counter()
    epoch_s = np.diff([p.t0, *p.epoch_ends]).tolist()
    tail = p.t_end - p.epoch_ends[-1]
    steady = float(np.median(epoch_s[1:])) if len(epoch_s) > 1 else float(epoch_s[0])
    plain = {
        "epochs_measured": plain_epochs, "total_measured_s": p.t_end - p.t0, "epoch_s": epoch_s,
        "first_epoch_s": epoch_s[0], "steady_epoch_s": steady, "eval_and_rest_s": tail,
        "val_accuracy": [float(v) for v in history.get("val_accuracy", [])],
        "eval_accuracy": float(np.mean(probs_p.argmax(1) == y_eval)),
    }
    if plain_epochs < head_epochs:
        plain[f"total_{head_epochs}_epochs_s_extrapolated"] = epoch_s[0] + (head_epochs - 1) * steady + tail
        plain["extrapolation"] = (f"first epoch (incl. pipeline, compile, tracing) + {head_epochs - 1} × median of "
                                  f"epochs 2..{plain_epochs} + eval pass; derived, not measured")
        plain_total = plain[f"total_{head_epochs}_epochs_s_extrapolated"]
    else:
        plain_total = plain["total_measured_s"]
    k = min(len(plain["val_accuracy"]), len(cached["val_accuracy"]))
    res = {"plain_fit": plain, "feature_cache": cached,
           "plain_total_s_at_head_epochs": plain_total,
           "speedup": plain_total / cached["total_s"],
           "val_accuracy_max_abs_diff_same_epochs": (float(np.max(np.abs(np.subtract(
               plain["val_accuracy"][:k], cached["val_accuracy"][:k])))) if k else None),
           "compared_epochs": k, "n_val": n_val, "params": int(model.count_params())}
    del model
    keras.backend.clear_session()
    gc.collect()
    return res


def section_feature_cache(cfg: dict, tmp: Path) -> dict:
    from fer_core.data import load_dataset

    size, H = cfg["image_size"], cfg["head_epochs"]
    ds = load_dataset("demo", demo_per_class=cfg["fc_per_class"], demo_image_size=size)
    x, y1h = _prepare(ds, size)
    out = {"data": {"demo_per_class": cfg["fc_per_class"], "image_size": size,
                    "split_sizes": {s: int(len(v[1])) for s, v in ds.splits.items()}},
           "head_epochs": H, "plain_epochs_measured": cfg["fc_plain_epochs"],
           "code_paths": {"plain": "fer_core.train._train_scratch(transfer model): model.fit on pixels, frozen backbone",
                          "cached": "fer_core.train._train_transfer: FeatureCache + head fit on features"},
           "settings": "weights=none, patience=0 (exactly the epochs asked), plateau LR schedule, batch 64, seed 0",
           "per_backbone": {}}
    for name in cfg["backbones"]:
        out["per_backbone"][name] = _both_paths(name, ds, x, y1h, size, cfg["fc_plain_epochs"], H, tmp / "fc_cache")
    per = out["per_backbone"]
    plain_sum = sum(r["plain_total_s_at_head_epochs"] for r in per.values())
    cached_sum = sum(r["feature_cache"]["total_s"] for r in per.values())
    out["feature_cache_speedup"] = plain_sum / cached_sum
    out["feature_cache_speedup_definition"] = (f"Σ plain time at {H} epochs (extrapolated from the measured epochs) / "
                                               f"Σ cached time at {H} epochs (measured), over the backbones")
    out["speedup_per_backbone"] = {k: r["speedup"] for k, r in per.items()}

    # Accuracy: both paths for the full head epochs on a smaller set.
    acc = {"data": {"demo_per_class": cfg["fc_acc_per_class"]}, "epochs": H, "per_backbone": {}}
    ds_a = load_dataset("demo", demo_per_class=cfg["fc_acc_per_class"], demo_image_size=size, seed=1)
    xa, ya = _prepare(ds_a, size)
    acc["data"]["split_sizes"] = {s: int(len(v[1])) for s, v in ds_a.splits.items()}
    for name in cfg["fc_acc_backbones"]:
        r = _both_paths(name, ds_a, xa, ya, size, H, H, tmp / "fc_cache_acc")
        va_p, va_c = r["plain_fit"]["val_accuracy"][-1], r["feature_cache"]["val_accuracy"][-1]
        n = r["n_val"]
        pbar = (va_p + va_c) / 2
        noise = 2 * np.sqrt(2 * max(pbar * (1 - pbar), 1.0 / n) / n)  # ≈95 % band of a difference of two accuracies
        acc["per_backbone"][name] = {
            "plain_final_val_accuracy": va_p, "cached_final_val_accuracy": va_c, "diff": va_c - va_p,
            "noise_band_95": float(noise), "within_noise": bool(abs(va_c - va_p) <= noise),
            "plain_eval_accuracy": r["plain_fit"]["eval_accuracy"], "cached_eval_accuracy": r["feature_cache"]["eval_accuracy"],
            "val_accuracy_curves": {"plain": r["plain_fit"]["val_accuracy"], "cached": r["feature_cache"]["val_accuracy"]},
            "max_abs_epoch_diff": r["val_accuracy_max_abs_diff_same_epochs"],
            "timing_measured_s": {"plain": r["plain_fit"]["total_measured_s"], "cached": r["feature_cache"]["total_s"]},
            "speedup_measured_at_full_epochs": r["speedup"], "n_val": n}
    acc["noise_band_definition"] = "2·sqrt(2·p(1−p)/n_val), p = mean of the two final val accuracies (p(1−p) ≥ 1/n)"
    acc["all_within_noise"] = all(v["within_noise"] for v in acc["per_backbone"].values())
    out["accuracy_check"] = acc
    return out


# =========================================================================== photos + agreement inputs

def _background(width: int, height: int, rng) -> np.ndarray:
    from PIL import Image

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([120 + 60 * xx / width, 130 + 40 * yy / height, 140 - 30 * xx / width], -1)
    low = rng.random((max(2, height // 32), max(2, width // 32))) * 255
    noise = np.asarray(Image.fromarray(low.astype(np.uint8)).resize((width, height), Image.BICUBIC), np.float32)
    return np.clip(base + 0.25 * (noise - 128)[..., None], 0, 255).astype(np.uint8)


def _paste(img: np.ndarray, tile: np.ndarray, x0: int, y0: int) -> None:
    """Blend a square face tile into img through a feathered ellipse (no hard square edges)."""
    from PIL import Image, ImageDraw, ImageFilter

    s = tile.shape[0]
    m = Image.new("L", (s, s), 0)
    ImageDraw.Draw(m).ellipse([s * 0.08, s * 0.02, s * 0.92, s * 0.98], fill=255)
    a = np.asarray(m.filter(ImageFilter.GaussianBlur(s / 40)), np.float32)[..., None] / 255
    region = img[y0:y0 + s, x0:x0 + s].astype(np.float32)
    img[y0:y0 + s, x0:x0 + s] = np.clip(tile * a + region * (1 - a), 0, 255).astype(np.uint8)


def make_photo(n_faces: int, *, width: int = 1920, height: int = 1080, tries: int = 8, seed: int = 0) -> dict:
    """A 1920×1080 JPEG (stored sideways with EXIF orientation 6) with n demo faces at photo-like sizes.

    MTCNN finds only some cartoon faces, so each slot keeps the first drawn
    face (up to ``tries`` candidates) that the app's own detector finds alone
    on the background; the JSON records how many were tried and found.
    """
    import io

    from PIL import Image

    from fer_core.demo import draw_face
    from fer_core.faces import detect_faces

    rng = np.random.default_rng(seed)
    bg = _background(width, height, rng)
    tile = 440 if n_faces == 1 else min(340, width // (n_faces + 1))  # face ≈ 55 % of the tile: 240 / 190 px
    xs = np.linspace(0, width, n_faces + 2)[1:-1]
    img = bg.copy()
    slots = []
    for i, cx in enumerate(xs):
        x0 = int(np.clip(cx - tile / 2, 0, width - tile))
        y0 = int(np.clip(height * (0.45 + 0.06 * ((i % 2) - 0.5)) - tile / 2, 0, height - tile))
        chosen, found, tried = None, None, 0
        for k in range(tries):
            tried += 1
            face = draw_face(np.random.default_rng(seed * 1000 + i * 100 + k), (i + k) % 8, tile)
            chosen = face
            if tries == 1:
                break  # no choice to make: skip the probe
            probe = bg.copy()
            _paste(probe, face, x0, y0)
            hits = [f for f in detect_faces(probe) if x0 - tile / 4 <= f.box[0] + f.box[2] / 2 <= x0 + tile * 1.25]
            found = bool(hits)
            if hits:
                break
        _paste(img, chosen, x0, y0)
        slots.append({"box": [x0, y0, tile, tile], "candidates_tried": tried, "detected_alone": found})
    upright = Image.fromarray(img)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # sideways, as phones store portrait-held shots
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    from fer_core.images import open_image

    decoded = open_image(buf.getvalue())  # the app's decoder applies the EXIF rotation
    if decoded.size != (width, height):
        raise RuntimeError(f"EXIF orientation not applied: decoded {decoded.size}, expected {(width, height)}")
    return {"jpeg": buf.getvalue(), "faces_placed": n_faces, "tile_px": tile, "slots": slots,
            "size": [width, height], "jpeg_bytes": len(buf.getvalue()), "exif_orientation": 6}


def agreement_images(cfg: dict) -> np.ndarray:
    from fer_core.demo import make_demo_arrays

    a = make_demo_arrays(per_class=cfg["agree_per_class"], image_size=128, seed=7)
    return np.concatenate([a["train_images"], a["validation_images"], a["test_images"]])


# =========================================================================== 2/4/5. prediction worker

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


def _model_inputs(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    from fer_core.preprocess import prepare_images

    return prepare_images(images, size, channels)


def _tile_to(x: np.ndarray, n: int) -> np.ndarray:
    reps = int(np.ceil(n / len(x)))
    return np.concatenate([x] * reps)[:n] if reps > 1 else x[:n]


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
    from fer_core.inference import compiled_forward

    for run in pred.runs:
        model = run.load_model()
        shape = model.input_shape
        fwd = compiled_forward(model)
        _trace_generic(fwd, int(shape[1]), int(shape[3]))
        out.append({"name": run.model_name, "run": run, "model": model, "forward": fwd,
                    "size": int(shape[1]), "channels": int(shape[3]), "source": "reloaded"})
    return out


def _trace_generic(forward, size: int, channels: int) -> None:
    """Trace for an unknown batch size, as the Predictor does."""
    import tensorflow as tf

    forward.get_concrete_function(tf.TensorSpec((None, size, size, channels), tf.uint8))


def _forward_probs(forward, x: np.ndarray, batch: int = 32) -> np.ndarray:
    from fer_core.inference import predict_batches

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
    from fer_core.inference import compiled_forward

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


def worker_predict(spec: dict) -> dict:
    """Fresh process: cold start, memory, warm end-to-end, per-model speed, model levers."""
    res = {"rss_at_start": rss_mb()}
    t0 = time.perf_counter()
    from fer_core._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fer_core.faces import detect_faces
    from fer_core.images import open_image
    from fer_core.predict import Predictor
    from fer_core.runs import load_run

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
                   "note": "Predictor(runs) loads every model.keras, traces and warms each forward pass and MTCNN; "
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
                                     "default": 640, "note": "MTCNN on a copy whose longer side is ≤ max_side"}
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


def worker_runtime(spec: dict) -> dict:
    """Fresh process under one threads/oneDNN setting: per-model latency, throughput, probabilities."""
    t0 = time.perf_counter()
    from fer_core._quiet import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    if spec.get("intra") is not None:
        tf.config.threading.set_intra_op_parallelism_threads(int(spec["intra"]))
    if spec.get("inter") is not None:
        tf.config.threading.set_inter_op_parallelism_threads(int(spec["inter"]))
    from fer_core.inference import compiled_forward
    from fer_core.runs import load_run

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


def _run_worker(kind: str, spec: dict, tmp: Path, env: dict | None = None, tag: str = "") -> dict:
    spec_path, out_path = tmp / f"worker_{kind}{tag}.json", tmp / f"worker_{kind}{tag}.out.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", kind, "--_spec", str(spec_path),
           "--_out", str(out_path)]
    spec = {**spec, "launched_at": time.time(), "tmp": str(tmp)}  # cold timings count from here
    spec_path.write_text(json.dumps(spec, default=_json_default))
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                          capture_output=True, text=True)
    if proc.returncode != 0 or not out_path.is_file():
        raise RuntimeError(f"{kind} worker{tag} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return json.loads(out_path.read_text())


# =========================================================================== runtime levers (threads, oneDNN)

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


# =========================================================================== tf.data levers

def _steady(per_variant: dict, base: str) -> None:
    """Fill the steady epoch times of each variant (every round's epochs after its first) and speed-ups vs ``base``.

    ``speedup`` compares the best steady epochs: with bimodal epoch times the median
    flips with the mode count, the minimum is what the pipeline can do.
    ``speedup_median`` is kept beside it.
    """
    for v in per_variant.values():
        steady = [t for ep in v["epoch_s"] for t in (ep[1:] if len(ep) > 1 else ep)]
        v["steady_epoch_s"] = float(np.median(steady))
        v["best_epoch_s"] = float(min(steady))
        v["steady_epoch_range_s"] = [float(min(steady)), float(max(steady))]
    b = per_variant[base]
    for v in per_variant.values():
        v["speedup"] = b["best_epoch_s"] / v["best_epoch_s"]
        v["speedup_median"] = b["steady_epoch_s"] / v["steady_epoch_s"]


def section_tfdata_levers(cfg: dict, tmp: Path) -> dict:
    import keras
    import tensorflow as tf

    from fer_core.data import load_dataset
    from fer_core.inference import compiled_forward, predict_batches
    from fer_core.models import create_model
    from fer_core.train import TrainConfig, _compile, _image_pipeline

    size, E = cfg["image_size"], cfg["tfdata_epochs"]
    ds = load_dataset("demo", demo_per_class=cfg["tfdata_per_class"], demo_image_size=size, seed=2)
    x, y1h = _prepare(ds, size)
    B = 64

    class EpochTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.t.append(time.perf_counter())

    def no_prefetch(xs, ys, shuffle):
        d = tf.data.Dataset.from_tensor_slices((xs, ys))
        if shuffle:
            d = d.shuffle(len(xs), seed=0, reshuffle_each_iteration=True)
        return d.batch(B).map(lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE)

    def pre_cast(xs, ys, shuffle):  # float32 copy made once (4× the memory), nothing to map per epoch
        d = tf.data.Dataset.from_tensor_slices((xs.astype(np.float32), ys))
        if shuffle:
            d = d.shuffle(len(xs), seed=0, reshuffle_each_iteration=True)
        return d.batch(B).prefetch(tf.data.AUTOTUNE)

    variants = {
        "current_prefetch_autotune": lambda xs, ys, sh: _image_pipeline(xs, ys, B, shuffle_seed=0 if sh else None),
        "no_prefetch": no_prefetch,
        "pre_cast_float32_cached": pre_cast,
    }
    # Variants are interleaved over rounds (A B C A B C ...) and compared on their best steady
    # epoch (see _steady): on 2 cores single epochs are bimodal (the same epoch takes ~1× or
    # ~1.7× depending on how TF's and tf.data's threads land), so one run per variant can show
    # a "speed-up" that is only which mode it fell into.
    R = cfg["tfdata_rounds"]
    scratch = {"model": "baseline", "epochs": E, "rounds": R, "train_images": int(len(x["train"])), "per_variant": {}}
    ref = None
    for r in range(R):
        for name, build in variants.items():
            keras.utils.set_random_seed(0)
            model = create_model("baseline", ds.n_classes, image_size=size)
            train, val = build(x["train"], y1h["train"], True), build(x["validation"], y1h["validation"], False)
            _compile(model, TrainConfig(model="baseline"), 1e-3, 1, E)
            cb = EpochTimes()
            model.fit(train, validation_data=val, epochs=E, verbose=0, shuffle=False, callbacks=[cb])
            ep = np.diff(cb.t).tolist()
            v = scratch["per_variant"].setdefault(name, {"epoch_s": []})
            v["epoch_s"].append(ep)
            if r == 0:
                probs = predict_batches(compiled_forward(model), x["validation"], 64)
                ref = probs if ref is None else ref
                v["agreement"] = agreement(probs, ref)
            del model
            keras.backend.clear_session()
    _steady(scratch["per_variant"], "current_prefetch_autotune")

    # Head on cached features: the engine's pipeline has no prefetch; try adding it (and .cache()).
    rng = np.random.default_rng(0)
    n, d = cfg["tfdata_head_n"], 2048
    feats = rng.standard_normal((n, d)).astype(np.float32)
    labels = (feats @ rng.standard_normal((d, ds.n_classes)).astype(np.float32)).argmax(1)
    onehot = np.eye(ds.n_classes, dtype=np.float32)[labels]
    head_variants = {
        "current_no_prefetch": lambda: tf.data.Dataset.from_tensor_slices((feats, onehot)).shuffle(n, seed=0).batch(B),
        "prefetch": lambda: tf.data.Dataset.from_tensor_slices((feats, onehot)).shuffle(n, seed=0).batch(B)
        .prefetch(tf.data.AUTOTUNE),
        "cache_prefetch": lambda: tf.data.Dataset.from_tensor_slices((feats, onehot)).cache().shuffle(n, seed=0)
        .batch(B).prefetch(tf.data.AUTOTUNE),
    }
    head = {"features": f"synthetic float32 ({n}, {d}), learnable labels", "epochs": cfg["head_epochs"], "rounds": R,
            "per_variant": {}}
    href = None
    for r in range(R):
        for name, build in head_variants.items():
            keras.utils.set_random_seed(0)
            inp = keras.Input((d,))
            h = keras.layers.BatchNormalization()(inp)
            h = keras.layers.Dropout(0.2)(h)
            hm = keras.Model(inp, keras.layers.Dense(ds.n_classes, activation="softmax")(h))
            _compile(hm, TrainConfig(model="baseline"), 1e-3, 1, cfg["head_epochs"])
            cb = EpochTimes()
            hm.fit(build(), epochs=cfg["head_epochs"], verbose=0, shuffle=False, callbacks=[cb])
            v = head["per_variant"].setdefault(name, {"epoch_s": []})
            v["epoch_s"].append(np.diff(cb.t).tolist())
            if r == 0:
                probs = predict_batches(compiled_forward(hm), feats[:256], 256)
                href = probs if href is None else href
                v["agreement"] = agreement(probs, href)
            del hm
            keras.backend.clear_session()
    _steady(head["per_variant"], "current_no_prefetch")
    return {"scratch_pixels": scratch, "head_on_features": head,
            "note": "agreement compares each variant's trained model with the first variant's (same seed, same order)"}


# =========================================================================== precision

def section_precision(cfg: dict, tmp: Path) -> dict:
    """float32 vs mixed bfloat16, through the engine's own code, side by side.

    * scratch training (``baseline`` at the run's size, ``compact`` at 48 px):
      same init, data, order and epochs in both precisions; epoch time and
      validation/test accuracy (the bf16-trained weights are evaluated through
      their float32 copy, as the trainer saves them);
    * the frozen backbones' one-off feature pass: images/s of the float32
      backbone and of its bfloat16 twin (``fer_core.precision.with_precision``),
      timed alternately; then a head trained on the bf16 features (as the
      trainer does) is applied to bf16 and to float32 features of the eval
      images (the saved float32 model): the agreement of those probabilities.
    """
    import keras

    from fer_core.data import load_dataset
    from fer_core.inference import compiled_forward, predict_batches
    from fer_core.models import create_model, split_transfer_model
    from fer_core.precision import as_float32, cpu_has_native_bf16, dtype_policy, resolve_precision, with_precision
    from fer_core.train import TrainConfig, _compile, _image_pipeline, _train_scratch

    out = {"cpu_has_native_bf16": cpu_has_native_bf16(), "auto_resolves_to": resolve_precision("auto"),
           "scratch": {}, "feature_pass": {}}
    E = cfg["precision_epochs"]

    class _Epochs:
        def __init__(self):
            self.t = []

        def on_event(self, e):
            if e.get("event") == "epoch_end":
                self.t.append(time.perf_counter())

    for name in cfg["precision_scratch_models"]:
        size = cfg["image_size"] if name == "baseline" else 48
        ds = load_dataset("demo", demo_per_class=cfg["precision_per_class"], demo_image_size=size, seed=3)
        channels = 1 if name == "compact" else 3
        from fer_core.preprocess import prepare_images
        from fer_core.train import _one_hot

        x = {s: prepare_images(xs, size, channels) for s, (xs, _) in ds.splits.items()}
        y1h = {s: _one_hot(ys, ds.n_classes) for s, (_, ys) in ds.splits.items()}
        keras.utils.set_random_seed(0)
        init = create_model(name, ds.n_classes, image_size=size).get_weights()
        row = {"image_size": size, "train_images": int(len(x["train"])), "epochs": E, "per_precision": {}}
        for precision in ("float32", "bfloat16"):
            keras.utils.set_random_seed(0)
            with dtype_policy(precision):
                model = create_model(name, ds.n_classes, image_size=size)
                model.set_weights(init)
                clock, history = _Epochs(), {}
                c = TrainConfig(model=name, epochs=E, patience=0, seed=0, precision=precision)
                t0 = time.perf_counter()
                model, _ = _train_scratch(model, c, x, y1h, None, clock, history)
            saved = as_float32(model)
            probs = predict_batches(compiled_forward(saved), x[ds.eval_split], 64)
            ep = np.diff([t0, *clock.t]).tolist()
            steady = float(np.median(ep[1:])) if len(ep) > 1 else float(ep[0])
            row["per_precision"][precision] = {
                "epoch_s": ep, "steady_epoch_s": steady, "train_imgs_per_s": len(x["train"]) / steady,
                "val_accuracy": [float(v) for v in history.get("val_accuracy", [])],
                "eval_accuracy": float(np.mean(probs.argmax(1) == ds.splits[ds.eval_split][1])),
                "eval_split": ds.eval_split}
            del model, saved
            keras.backend.clear_session()
            gc.collect()
        f32, b16 = row["per_precision"]["float32"], row["per_precision"]["bfloat16"]
        row["speedup"] = f32["steady_epoch_s"] / b16["steady_epoch_s"]
        row["eval_accuracy_diff"] = b16["eval_accuracy"] - f32["eval_accuracy"]
        out["scratch"][name] = row

    size = cfg["image_size"]
    ds = load_dataset("demo", demo_per_class=cfg["precision_per_class"], demo_image_size=size, seed=4)
    x, y1h = _prepare(ds, size)
    B = 32
    for name in cfg["backbones"]:
        keras.utils.set_random_seed(0)
        model = create_model(name, ds.n_classes, image_size=size, weights="none")
        feats32, head = split_transfer_model(model)
        feats16 = with_precision(feats32, "bfloat16")
        f32, f16 = compiled_forward(feats32), compiled_forward(feats16)
        probe = _tile_to(x["train"], B)
        timing = _paired(f32, f16, probe, 1, B, cfg["precision_batch_reps"])
        # The trainer's way: head trained on bf16 features of train/validation ...
        tr16 = predict_batches(f16, x["train"], B)
        va16 = predict_batches(f16, x["validation"], B)
        _compile(head, TrainConfig(model=name), 1e-3, 1, cfg["head_epochs"])
        import tensorflow as tf

        head.fit(tf.data.Dataset.from_tensor_slices((tr16, y1h["train"])).shuffle(len(tr16), seed=0).batch(64),
                 validation_data=(va16, y1h["validation"]), epochs=cfg["head_epochs"], verbose=0, shuffle=False)
        # ... applied to the eval images' bf16 features and to their float32 features (the saved model's)
        ev = x[ds.eval_split]
        h = compiled_forward(head)
        p16 = predict_batches(h, predict_batches(f16, ev, B), 64)
        p32 = predict_batches(h, predict_batches(f32, ev, B), 64)
        out["feature_pass"][name] = {
            "batch": B, "float32_imgs_per_s": timing["reference_batch_imgs_per_s"],
            "bfloat16_imgs_per_s": timing[f"batch_imgs_per_s"], "speedup": timing[f"speedup_batch{B}"],
            "agreement_head_on_bf16_vs_float32_features": agreement(p16, p32),
            "eval_images": int(len(ev))}
        del model, feats32, feats16, head
        keras.backend.clear_session()
        gc.collect()
    sp = [v["speedup"] for v in out["feature_pass"].values()]
    out["note"] = ("weights=none backbones: speed does not depend on the weights; agreement is measured on a head "
                   "trained on bf16 features (what the trainer does), applied to float32 features (what the saved "
                   "model computes)")
    out["feature_pass_speedup_geomean"] = float(np.exp(np.mean(np.log(sp)))) if sp else None
    return out


# =========================================================================== main

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
            from fer_core.runs import list_runs

            listing = list_runs(runs_dir)
            by_model = {r.model_name: r for r in sorted(listing.runs, key=lambda r: r.metrics.get("created", 0))}
            run_paths = [str(by_model[m].path) for m in cfg["models"] if m in by_model]
            np.save(images_path, agreement_images(cfg))

        if run_paths and not {"prediction", "memory", "efficiency", "model_levers"} <= args.skip:
            def predict_section():
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
                        "do_prediction": "prediction" not in args.skip, "do_efficiency": "efficiency" not in args.skip,
                        "do_levers": "model_levers" not in args.skip}
                r = _run_worker("predict", spec, tmp)
                r["photos"] = meta
                r["models"] = [Path(p).name for p in run_paths]
                return r

            pw = section("prediction_process", predict_section)
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
                notes.append(f"{key}: MTCNN found {e['faces_detected']} of {e['faces_in_photo']} cartoon faces"
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
                    "(TensorFlow, MTCNN, all models loaded and warm); the Streamlit server adds its own",
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


if __name__ == "__main__":
    sys.exit(main())
