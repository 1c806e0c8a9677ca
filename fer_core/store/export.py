"""Taking a trained model away: one run exported as Keras, SavedModel, TFLite (float or int8) or ONNX.

An export is a folder another program can use without this project::

    <out>/model.keras | saved_model/ | model.tflite | model.onnx
    <out>/labels.json   class names in output order, the input (size, channels, colour, dtype,
                        value range, tensor name), quantisation, and how the export was checked
    <out>/README.txt    ten lines of Python that run it on a face crop

Every model carries its preprocessing in the graph, so every format takes what
``model.keras`` takes: raw 0–255 pixels as float32 ``(N, H, W, C)``, NHWC, and
returns probabilities ``(N, classes)``. The int8 TFLite file keeps that float
interface too (it quantises its input itself), so one ``labels.json`` contract
fits all five formats.

Conversion uses Keras 3's own ``model.export`` (``tf_saved_model``, ``litert``,
``onnx`` through tf2onnx). An export is only done when another runtime ran it:
each file is reloaded in its own runtime — ``keras.saving.load_model``
(safe_mode), ``tf.saved_model.load``, ai-edge-litert's ``Interpreter``,
onnxruntime — and compared with the Keras model before the folder is written:
float formats within :data:`FLOAT_TOLERANCE` of every probability on random
pixels, int8 in top-1 agreement ≥ :data:`INT8_AGREEMENT` on faces.

TFLite and ONNX need optional packages (``requirements-export.txt``); a format
whose packages are missing is refused with the reason (:func:`unavailable_reason`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import shutil
import tempfile
import threading
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from ..errors import FERError
from .runs import BUNDLED_DIR, Run, load_run

LABELS_FILE = "labels.json"
README_FILE = "README.txt"
#: A keras export of a model with FER Studio layers ships their module under this name (plain Keras, no
#: other dependency), so ``import fer_layers`` in README.txt registers them before ``load_model``.
LAYERS_FILE = "fer_layers.py"
LABELS_FORMAT = "fer-studio/export/1"
#: Largest allowed |Δp| between a float export and the Keras model, per probability.
FLOAT_TOLERANCE = 1e-4
#: Smallest allowed top-1 agreement between the int8 TFLite model and the Keras model, on faces.
INT8_AGREEMENT = 0.98
CALIBRATION_FACES = 200  # representative dataset of a full-integer int8 model (train split)
CHECK_FACES = 300  # faces the int8 model must agree on (the run's scored split, or demo faces)
EXTRAS_HINT = "pip install -r requirements-export.txt"


class ExportError(FERError):
    """A run cannot be exported in a format (missing package, failed conversion, failed check, bad folder)."""


@dataclass(frozen=True)
class Format:
    """One export format: what it writes, which optional packages it needs, which runtime checks it."""

    id: str
    title: str
    file: str  # in the export folder (a folder for SavedModel)
    needs: tuple[str, ...]  # import names of optional packages
    runtime: str  # distribution that reloads it for the check


FORMATS: dict[str, Format] = {f.id: f for f in (
    Format("keras", "Keras 3 (.keras)", "model.keras", (), "keras"),
    Format("saved_model", "TensorFlow SavedModel", "saved_model", (), "tensorflow"),
    Format("tflite", "TFLite / LiteRT, float32", "model.tflite", ("ai_edge_litert",), "ai-edge-litert"),
    Format("tflite_int8", "TFLite / LiteRT, int8 (about 4× smaller)", "model.tflite", ("ai_edge_litert",),
           "ai-edge-litert"),
    Format("onnx", "ONNX", "model.onnx", ("tf2onnx", "onnx", "onnxruntime"), "onnxruntime"),
)}
#: pip distribution of each optional import name (for messages).
PACKAGES = {"ai_edge_litert": "ai-edge-litert", "tf2onnx": "tf2onnx", "onnx": "onnx", "onnxruntime": "onnxruntime"}


# --------------------------------------------------------------------------- which formats work here

def _installed(module: str) -> bool:
    """Is ``module`` importable? (Looked up without importing it: onnxruntime alone costs ~0.3 s.)"""
    return importlib.util.find_spec(module) is not None


def missing_packages(fmt: str) -> list[str]:
    """pip names of the optional packages ``fmt`` needs that are not installed here."""
    return [PACKAGES[m] for m in FORMATS[fmt].needs if not _installed(m)]


def unavailable_reason(fmt: str) -> str | None:
    """None when ``fmt`` can be exported here, else a one-line reason (unknown format or missing packages)."""
    if fmt not in FORMATS:
        return f"unknown export format '{fmt}' (choose from {', '.join(FORMATS)})"
    missing = missing_packages(fmt)
    if missing:
        return f"{fmt} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed ({EXTRAS_HINT})"
    return None


def available_formats() -> dict[str, str | None]:
    """``{format id: None if it works here, else why not}``, in menu order."""
    return {fmt: unavailable_reason(fmt) for fmt in FORMATS}


# --------------------------------------------------------------------------- what a run takes and returns

def input_shape(run: Run, model) -> tuple[int, int, int]:
    """``(H, W, C)`` the model takes; config.json must say the same (a run is self-describing)."""
    have = tuple(int(d) for d in model.input_shape[1:])
    cfg = run.config.get("model") if isinstance(run.config.get("model"), dict) else {}
    if "image_size" in cfg:
        want = (int(cfg["image_size"]), int(cfg["image_size"]), int(cfg.get("channels", 3)))
        if have != want:
            raise ExportError(f"{run.id}: the model takes {'×'.join(map(str, have))}, config.json says "
                              f"{'×'.join(map(str, want))}")
    if len(have) != 3 or have[2] not in (1, 3):
        raise ExportError(f"{run.id}: cannot export a model taking {have}: expected (H, W, 1 or 3) images")
    return have


def _custom_layers(model) -> list[str]:
    """Registered classes of this project inside ``model`` (nested ensemble members included)."""
    found, stack = set(), [model]
    while stack:
        layer = stack.pop()
        for sub in getattr(layer, "layers", []):
            stack.append(sub)
            if type(sub).__module__.startswith("fer_core"):
                found.add(type(sub).__name__)
    return sorted(found)


def labels_record(run: Run, model, fmt: str, *, names: tuple[str, str], quantization: dict | None,
                  check: dict) -> dict:
    """The ``labels.json`` of an export: everything another program needs to feed it and read it."""
    h, w, c = input_shape(run, model)
    spec = FORMATS[fmt]
    tc = run.config.get("train_config") or run.metrics.get("config") or {}
    record = {
        "format": LABELS_FORMAT,
        "model_format": fmt,
        "file": spec.file,
        "class_names": list(run.metrics["class_names"]),
        "input": {
            "name": names[0], "shape": [None, h, w, c], "layout": "NHWC", "dtype": "float32",
            "height": h, "width": w, "channels": c,
            "color": "gray" if c == 1 else "RGB",
            "value_range": [0, 255],
            "preprocessing": ("none outside the model: a face crop resized to "
                              f"{w}×{h}, raw 0–255 pixel values as float32 (no scaling, no mean subtraction)"
                              + ("; gray = luma 0.299 R + 0.587 G + 0.114 B (PIL's convert('L'))" if c == 1 else "")),
        },
        "output": {"name": names[1], "shape": [None, len(run.metrics["class_names"])],
                   "meaning": "probabilities in class_names order (softmax inside the model; each row sums to 1)"},
        "model": {
            "id": run.model_name, "run": run.id,
            "dataset": run.metrics["dataset"].get("name"), "fingerprint": run.fingerprint,
            "split": run.metrics.get("split", "test"), "accuracy": run.metrics.get("accuracy"),
            "macro_f1": run.metrics.get("macro_f1"),
            "mirror_tta": bool(isinstance(tc, dict) and tc.get("tta_flip")),
            "members": [m.get("run") or m.get("model") for m in run.metrics.get("members", []) if isinstance(m, dict)],
        },
        "quantization": quantization,
        "check": check,
        "exported_with": {p: _version(p) for p in ("tensorflow", "keras", spec.runtime) if _version(p)},
    }
    if fmt == "keras":
        custom = _custom_layers(model)
        if custom:
            record["keras_custom_layers"] = {
                "classes": custom,
                "note": ("model.keras names these registered layers of FER Studio (fer_core/models/layers.py, "
                         "plain Keras ops, no other dependency): import that module before keras.saving.load_model. "
                         "The SavedModel, TFLite and ONNX exports need nothing from this project."),
            }
    return record


def _version(dist: str) -> str | None:
    name = {"tensorflow": "tensorflow-cpu"}.get(dist, dist)
    for candidate in (name, dist):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


# --------------------------------------------------------------------------- faces for int8

@dataclass
class Faces:
    """Faces at the model's input: ``calib`` uint8 (N, H, W, C) or None, ``check`` uint8 (M, H, W, C)."""

    calib: np.ndarray | None
    check: np.ndarray
    labels: np.ndarray | None  # (M,) in the run's class order, when the faces' classes are the run's
    source: str


def _own_dataset(run: Run, data: str | None):
    """The dataset to draw faces from: ``data`` when given, else the run's own if it is on this machine."""
    from ..data.datasets import load_dataset

    spec = data or run.metrics["dataset"].get("source")
    if not spec:
        return None
    if str(spec) == "demo":
        params = run.demo_params() if run.metrics["dataset"].get("source") == "demo" else {}
        ds = load_dataset("demo", **params)
    elif data is not None:
        ds = load_dataset(data)  # DatasetError (one line) for a bad --data
    else:  # the path the trainer was given: relative to where it ran, usually the project root
        found = [p for p in (Path(spec).expanduser(), BUNDLED_DIR.parent / spec) if p.exists()]
        if not found:
            return None
        ds = load_dataset(found[0])
    if data is None and ds.fingerprint != run.fingerprint:
        return None  # the file at that path is no longer the run's data
    return ds


def faces_for(run: Run, shape: tuple[int, int, int], data: str | None = None, *, calib: int = CALIBRATION_FACES,
              check: int = CHECK_FACES, seed: int = 0) -> Faces:
    """Calibration and check faces of the run's own kind.

    The run's dataset (``data``, else the file its metrics name, if present here
    with the same fingerprint): calibration from its train split, the check from
    the split the run was scored on, labelled when its classes are the run's.
    Without it: demo faces for the check only, and no calibration — a model
    trained on photos is not calibrated on drawings.
    """
    from ..data.preprocess import prepare_images

    rng = np.random.default_rng(seed)

    def sample(x, n):  # uint8 (N, h, w, c) → uint8 (min(n, N), H, W, C), seeded
        idx = np.sort(rng.choice(len(x), min(n, len(x)), replace=False))
        return idx, prepare_images(x[idx], shape[0], shape[2])

    ds = _own_dataset(run, data)
    if ds is not None:
        split = run.metrics.get("split", ds.eval_split)
        split = split if split in ds.splits else ds.eval_split
        _, calib_x = sample(ds.splits["train"][0], calib)
        idx, check_x = sample(ds.splits[split][0], check)
        same = list(ds.class_names) == list(run.metrics["class_names"])
        return Faces(calib_x, check_x, ds.splits[split][1][idx] if same else None,
                     f"{ds.name} ({calib_x.shape[0]} train faces calibrate, {check_x.shape[0]} {split} faces check)")
    from ..data.demo import make_demo_arrays

    arrays = make_demo_arrays(per_class=max(2, math.ceil(check / 8)), image_size=128, seed=seed)
    x = np.concatenate([arrays[f"{s}_images"] for s in ("train", "validation", "test")])
    _, check_x = sample(x, check)
    return Faces(None, check_x, None,
                 f"demo faces ({check_x.shape[0]} check; the run's own data is not on this machine, so no calibration)")


# --------------------------------------------------------------------------- runtimes

class Runtime:
    """An exported model loaded in its own runtime: ``runtime(x)`` with x (N, H, W, C) 0–255 → (N, classes)."""

    def __init__(self, fn, name: str, input_name: str, output_name: str):
        self._fn, self.name, self.input_name, self.output_name = fn, name, input_name, output_name

    def __call__(self, x) -> np.ndarray:
        return np.asarray(self._fn(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32)


def _keras_runtime(path: Path, threads: int | None = None) -> Runtime:
    import keras

    from ..models import layers  # noqa: F401  registers FlipConcat, PairMean, CaffePreprocess

    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    return Runtime(lambda x: model(x, training=False), f"keras {_version('keras')}",
                   model.inputs[0].name, model.outputs[0].name)


def _saved_model_runtime(path: Path, threads: int | None = None) -> Runtime:
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    (in_name,) = fn.structured_input_signature[1].keys()
    (out_name,) = fn.structured_outputs.keys()
    return Runtime(lambda x: fn(**{in_name: tf.constant(x)})[out_name].numpy(),
                   f"tensorflow {_version('tensorflow')} (tf.saved_model.load, serving_default)", in_name, out_name)


def _tflite_runtime(path: Path, threads: int | None = None) -> Runtime:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)  # None: the Interpreter's default, 1 thread
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    state = {"shape": None}

    def run(x):  # the batch dimension is dynamic: resize once per new batch shape
        if state["shape"] != x.shape:
            interpreter.resize_tensor_input(inp["index"], list(x.shape))
            interpreter.allocate_tensors()
            state["shape"] = x.shape
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"]).copy()

    return Runtime(run, f"ai-edge-litert {_version('ai-edge-litert')} (Interpreter, {threads or 1} thread(s))",
                   inp["name"], out["name"])


def _onnx_runtime(path: Path, threads: int | None = None) -> Runtime:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads:
        options.intra_op_num_threads = threads  # default: one per core
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    in_name, out_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    return Runtime(lambda x: session.run([out_name], {in_name: x})[0], f"onnxruntime {_version('onnxruntime')}",
                   in_name, out_name)


_RUNTIMES = {"keras": _keras_runtime, "saved_model": _saved_model_runtime, "tflite": _tflite_runtime,
             "tflite_int8": _tflite_runtime, "onnx": _onnx_runtime}


def load_export(folder: str | Path, *, threads: int | None = None) -> tuple[Runtime, dict]:
    """An export folder's model in its own runtime, and its ``labels.json``.

    ``threads``: the TFLite Interpreter's (default 1) or onnxruntime's (default one per core) thread count;
    Keras and SavedModel run on TensorFlow's own pool.
    """
    folder = Path(folder)
    try:
        labels = json.loads((folder / LABELS_FILE).read_text())
        fmt = labels["model_format"]
        loader = _RUNTIMES[fmt]
    except (OSError, ValueError, KeyError, TypeError):
        raise ExportError(f"{folder}: not an export folder (no valid {LABELS_FILE})") from None
    reason = unavailable_reason(fmt)
    if reason:
        raise ExportError(reason)
    return loader(folder / labels["file"], threads), labels


# --------------------------------------------------------------------------- conversion

#: One conversion at a time per process: each holds a traced copy of the graph (memory), and the
#: native log lines of converters and runtimes are silenced by redirecting the process's stdout/stderr.
_CONVERT_LOCK = threading.Lock()


@contextlib.contextmanager
def _native_output_silenced():
    """TFLite's converter, tf2onnx and the runtimes print native log lines that read like errors; hide them."""
    saved = []
    try:
        sink = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
            os.dup2(sink, fd)
        os.close(sink)
    except OSError:
        pass
    try:
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def _convert(model, path: Path, fmt: str, **kwargs) -> None:
    """``model.export`` to ``path`` (Keras' format name for ours); a failure becomes one line."""
    keras_format = {"saved_model": "tf_saved_model", "tflite": "litert", "tflite_int8": "litert",
                    "onnx": "onnx"}[fmt]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Keras' numpy-2 patch of tf2onnx touches np.object
            model.export(str(path), format=keras_format, verbose=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - converter errors are long; the first line says what failed
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise ExportError(f"{fmt}: conversion failed ({first[:300]})") from None


def _builtins_only():
    """TFLite's own kernels only: Keras also allows TF "Flex" ops, which ai-edge-litert cannot run."""
    import tensorflow as tf

    return {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}


def _write_model(model, run: Run, fmt: str, dest: Path) -> None:
    """The float formats: write ``FORMATS[fmt].file`` into ``dest``."""
    target = dest / FORMATS[fmt].file
    if fmt == "keras":
        if run.model_path.is_file():
            shutil.copy2(run.model_path, target)  # already float32, no optimizer state (fer_core.fit.train)
        else:  # a head-only published run: the rebuilt full model
            from .runs import save_inference_model

            save_inference_model(model, target)
    elif fmt == "tflite":
        _convert(model, target, fmt, target_spec=_builtins_only())
    else:
        _convert(model, target, fmt)


def _reference(forward, x: np.ndarray) -> np.ndarray:
    from ..compute.forward import predict_batches

    return predict_batches(forward, x, batch_size=64)  # (N, classes) float32


def _check_float(model, runtime: Runtime, shape: tuple[int, int, int]) -> dict:
    """max |Δp| between the export and the Keras model on 8 seeded random images, as a batch and one by one."""
    x = np.random.default_rng(0).integers(0, 256, (8, *shape)).astype(np.float32)  # (8, H, W, C)
    want = np.asarray(model(x, training=False))  # (8, classes)
    got = runtime(x)
    one = runtime(x[:1])  # batch 1 too: the exported batch dimension must be dynamic
    if got.shape != want.shape or one.shape != want[:1].shape:
        raise ExportError(f"the export returns {got.shape}, the Keras model {want.shape}")
    diff = float(max(np.max(np.abs(got - want)), np.max(np.abs(one - want[:1]))))
    if not diff <= FLOAT_TOLERANCE:
        raise ExportError(f"the export disagrees with the Keras model (max |Δp| {diff:.2e} > {FLOAT_TOLERANCE:g}); "
                          "nothing written")
    return {"runtime": runtime.name, "inputs": "8 seeded random 0–255 images, as one batch and one alone",
            "max_abs_diff": diff, "bound": FLOAT_TOLERANCE}


INT8_MODES = ("auto", "full-integer", "dynamic-range")


def _write_int8(model, dest: Path, faces: Faces, forward, mode: str = "auto") -> tuple[dict, dict]:
    """Quantise to int8 TFLite: full-integer when there are calibration faces, else (or if that disagrees) dynamic-range.

    Full-integer: weights and activations int8, calibrated on the run's own
    train faces (the ``representative_dataset``); the file keeps float32 input
    and output, quantising inside. Dynamic-range: int8 weights, float
    activations; needs no calibration. With ``mode="auto"`` the first whose top-1
    agreement with the Keras model on the check faces reaches :data:`INT8_AGREEMENT`
    is kept; ``"full-integer"`` or ``"dynamic-range"`` tries only that one.
    """
    import tensorflow as tf

    target = dest / FORMATS["tflite_int8"].file
    want = _reference(forward, faces.check)  # (M, classes), the Keras model
    tried = []
    if mode == "full-integer" and faces.calib is None:
        raise ExportError("full-integer int8 calibrates on faces of the run's own kind, and its dataset is not on this "
                          "machine: pass --data PATH, or use dynamic-range")
    modes = {"auto": (["full-integer"] if faces.calib is not None else []) + ["dynamic-range"],
             "full-integer": ["full-integer"], "dynamic-range": ["dynamic-range"]}[mode]
    for mode in modes:
        kwargs = {"optimizations": [tf.lite.Optimize.DEFAULT]}
        if mode == "full-integer":
            calib = faces.calib.astype(np.float32)  # (N, H, W, C), raw 0–255
            kwargs["representative_dataset"] = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
            kwargs["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
        else:
            kwargs["target_spec"] = _builtins_only()
        _convert(model, target, "tflite_int8", **kwargs)
        runtime = _tflite_runtime(target)
        got = _reference(runtime, faces.check)
        agreement = float(np.mean(got.argmax(1) == want.argmax(1)))
        tried.append(f"{mode} {agreement:.1%}")
        if agreement >= INT8_AGREEMENT:
            break
    else:
        raise ExportError(f"int8 agrees with the Keras model on too few faces ({', '.join(tried)} of "
                          f"{len(faces.check)}; need {INT8_AGREEMENT:.0%}): export tflite (float) instead")
    quant = {"mode": mode,
             "weights": "int8", "activations": "int8" if mode == "full-integer" else "float32 (quantised per call)",
             "interface": "float32 input and output (the model quantises its input itself)",
             "calibration": faces.source if mode == "full-integer" else "none (dynamic-range needs none)"}
    if len(tried) > 1:
        quant["tried"] = tried
    check = {"runtime": runtime.name, "faces": int(len(faces.check)), "faces_from": faces.source,
             "top1_agreement": agreement, "bound": INT8_AGREEMENT,
             "max_abs_diff": float(np.max(np.abs(got - want)))}
    if faces.labels is not None:
        check["accuracy"] = {"keras": float(np.mean(want.argmax(1) == faces.labels)),
                             "int8": float(np.mean(got.argmax(1) == faces.labels))}
    return quant, check


# --------------------------------------------------------------------------- one export

@dataclass
class Exported:
    """What :func:`export_run` wrote."""

    run_id: str
    fmt: str
    dest: Path
    size_bytes: int  # the model file(s), labels.json excluded
    seconds: float
    labels: dict = field(repr=False, default_factory=dict)

    def describe(self) -> str:
        check = self.labels.get("check", {})
        if "top1_agreement" in check:
            how = (f"{self.labels['quantization']['mode']} int8, agrees with Keras on {check['top1_agreement']:.1%} "
                   f"of {check['faces']} faces")
            if "accuracy" in check:
                how += f" (accuracy {check['accuracy']['int8']:.1%} vs {check['accuracy']['keras']:.1%})"
        else:
            how = f"max |Δp| {check.get('max_abs_diff', 0):.1e} vs Keras"
        return (f"exported {self.run_id} → {self.dest}: {self.fmt} {_mb(self.size_bytes)}, checked in "
                f"{check.get('runtime', '?').split(' (')[0]}: {how} ({self.seconds:.1f} s)")


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n < 10e6 else f"{n / 1e6:.1f} MB"


def _bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _replaceable(out: Path) -> bool:
    """Only a missing or empty folder, or an earlier export, may be written over: exporting deletes nothing else."""
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    if not any(out.iterdir()):
        return True
    try:
        return json.loads((out / LABELS_FILE).read_text()).get("format") == LABELS_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def export_run(run: Run | str | Path, fmt: str, out: str | Path, *, data: str | None = None,
               check_faces: int = CHECK_FACES, calibration_faces: int = CALIBRATION_FACES,
               int8_mode: str = "auto") -> Exported:
    """Export ``run``'s model as ``fmt`` into the folder ``out`` (model + labels.json + README.txt), checked.

    The model is loaded with :meth:`Run.load_model` (safe_mode; head-only
    published runs are rebuilt), converted, reloaded in the format's own
    runtime and compared with the Keras model; only then is ``out`` written
    (replacing an earlier export there). ``data`` names the faces for int8
    (:func:`faces_for`), ``int8_mode`` its quantisation (:data:`INT8_MODES`, see
    :func:`_write_int8`). :class:`ExportError` (one line) says what went wrong.
    """
    reason = unavailable_reason(fmt)
    if reason:
        raise ExportError(reason)
    if int8_mode not in INT8_MODES:
        raise ExportError(f"unknown int8 mode '{int8_mode}' (choose from {', '.join(INT8_MODES)})")
    run = run if isinstance(run, Run) else load_run(run)
    out = Path(out)
    if not _replaceable(out):
        raise ExportError(f"{out}: exists and is not an empty folder or an earlier export; choose another --out")
    from .._quiet import import_tensorflow_quietly
    from ..compute.forward import compiled_forward

    import_tensorflow_quietly()
    start = time.perf_counter()
    model = run.load_model()
    shape = input_shape(run, model)
    model(np.zeros((1, *shape), np.float32), training=False)  # Keras' ONNX export wants a model that has been called
    faces = faces_for(run, shape, data, calib=calibration_faces, check=check_faces) if fmt == "tflite_int8" else None
    out.parent.mkdir(parents=True, exist_ok=True)
    with _CONVERT_LOCK, _native_output_silenced(), tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        stage = Path(tmp) / "export"
        stage.mkdir()
        if fmt == "tflite_int8":
            quant, check = _write_int8(model, stage, faces, compiled_forward(model), int8_mode)
        else:
            _write_model(model, run, fmt, stage)
            quant, check = None, None
        try:
            runtime = _RUNTIMES[fmt](stage / FORMATS[fmt].file)
        except Exception as exc:  # noqa: BLE001 - a file its own runtime cannot load is a failed export
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise ExportError(f"{fmt}: {FORMATS[fmt].runtime} cannot load the exported file ({first[:300]})") from None
        check = check or _check_float(model, runtime, shape)
        labels = labels_record(run, model, fmt, names=(runtime.input_name, runtime.output_name),
                               quantization=quant, check=check)
        (stage / LABELS_FILE).write_text(json.dumps(labels, indent=1, ensure_ascii=False))
        (stage / README_FILE).write_text(readme_text(labels))
        if "keras_custom_layers" in labels:  # the module README.txt imports: model.keras names its layers
            shutil.copy2(Path(__file__).parent.parent / "models" / "layers.py", stage / LAYERS_FILE)
        size = _bytes(stage / FORMATS[fmt].file)
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(stage), out)
    return Exported(run.id, fmt, out, size, time.perf_counter() - start, labels)


# --------------------------------------------------------------------------- README and zip

_LOAD_SNIPPETS = {
    "keras": ("import keras\nmodel = keras.saving.load_model(\"model.keras\")\n"
              "p = model(x, training=False).numpy()[0]"),
    "saved_model": ("import tensorflow as tf\nfn = tf.saved_model.load(\"saved_model\").signatures[\"serving_default\"]\n"
                    "p = fn(**{meta[\"input\"][\"name\"]: tf.constant(x)})[meta[\"output\"][\"name\"]].numpy()[0]"),
    "tflite": ("from ai_edge_litert.interpreter import Interpreter  # or tf.lite.Interpreter\n"
               "it = Interpreter(model_path=\"model.tflite\")\n"
               "it.resize_tensor_input(0, x.shape); it.allocate_tensors()  # the batch dimension is dynamic\n"
               "it.set_tensor(it.get_input_details()[0][\"index\"], x); it.invoke()\n"
               "p = it.get_tensor(it.get_output_details()[0][\"index\"])[0]"),
    "onnx": ("import onnxruntime as ort\nsession = ort.InferenceSession(\"model.onnx\")\n"
             "p = session.run(None, {session.get_inputs()[0].name: x})[0][0]"),
}
_LOAD_SNIPPETS["tflite_int8"] = _LOAD_SNIPPETS["tflite"]


def readme_text(labels: dict) -> str:
    """How to run the export on one face crop, in a few lines of Python (PIL + numpy + the format's runtime)."""
    i = labels["input"]
    mode = "L" if i["channels"] == 1 else "RGB"
    return (
        f"{labels['model']['id']} from FER Studio, exported as {labels['model_format']} ({labels['file']}).\n"
        f"Input: {i['height']}×{i['width']} {i['color']} face crops, raw 0–255 float32, shape (N, {i['height']}, "
        f"{i['width']}, {i['channels']}). Output: probabilities over labels.json's class_names.\n\n"
        "import json, numpy as np\nfrom PIL import Image\n"
        "meta = json.load(open(\"labels.json\"))\n"
        f"face = Image.open(\"face.jpg\").convert(\"{mode}\").resize(({i['width']}, {i['height']}))\n"
        f"x = np.asarray(face, np.float32).reshape(1, {i['height']}, {i['width']}, {i['channels']})  "
        "# raw 0–255, no scaling\n"
        + ("import fer_layers  # a copy of FER Studio's fer_core/models/layers.py: registers "
           f"{', '.join(labels['keras_custom_layers']['classes'])}\n" if "keras_custom_layers" in labels else "")
        + f"{_LOAD_SNIPPETS[labels['model_format']]}\n"
        "print(meta[\"class_names\"][int(p.argmax())], float(p.max()))\n"
    )


def zip_folder(folder: str | Path) -> bytes:
    """The export folder as a zip, its files under one top-level folder named like it."""
    import io

    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, Path(folder.name) / path.relative_to(folder))
    return buf.getvalue()


# --------------------------------------------------------------------------- a cache of zipped exports (the app)

MAX_CACHED = 16  # zips kept; the oldest go first


def export_cache_dir() -> Path:
    """Where zipped exports are kept: ``$FER_EXPORT_CACHE`` (default ``~/.cache/fer-studio/exports``)."""
    return Path(os.environ.get("FER_EXPORT_CACHE") or Path.home() / ".cache" / "fer-studio" / "exports")


def _cache_path(run: Run, fmt: str, root: Path) -> Path:
    """One zip per (run folder, its model files' size and time, format): a retrained or republished run misses."""
    import hashlib

    files = [run.model_path] if run.model_path.is_file() else sorted(run.path.glob("*.h5")) + [run.path / "backbone.json"]
    stamp = [str(run.path.resolve())] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files
                                         if p.is_file()]
    digest = hashlib.sha256("|".join(stamp).encode()).hexdigest()[:12]
    return root / f"{run.id}-{digest}" / f"{fmt}.zip"


def cached_zip(run: Run, fmt: str, root: str | Path | None = None) -> Path | None:
    """The zip of an earlier export of ``run`` as ``fmt``, if there is one (costs a stat, converts nothing)."""
    path = _cache_path(run, fmt, Path(root) if root else export_cache_dir())
    return path if path.is_file() else None


def export_zip(run: Run, fmt: str, root: str | Path | None = None, **kwargs) -> Path:
    """The export of ``run`` as ``fmt``, zipped: from the cache, else exported (:func:`export_run`) and kept there."""
    root = Path(root) if root else export_cache_dir()
    path = _cache_path(run, fmt, root)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".zip-") as tmp:
        done = export_run(run, fmt, Path(tmp) / f"{run.id}_{fmt}", **kwargs)
        part = Path(tmp) / "export.zip"
        part.write_bytes(zip_folder(done.dest))
        os.replace(part, path)
    _prune(root)
    return path


def _prune(root: Path, keep: int = MAX_CACHED) -> None:
    zips = sorted(root.glob("*/*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in zips[keep:]:
        old.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            old.parent.rmdir()  # only once empty
