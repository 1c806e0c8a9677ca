"""Export (fer_core.store.export, python -m training.export): each format reloads in its own runtime and agrees with Keras.

The bundled ``compact`` (48×48 gray, with the FlipConcat/PairMean mirror-TTA layers) goes through every float
format once per module; ``baseline`` (128×128 RGB, smaller) through int8, an ensemble and the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_core.store import export as ex

ROOT = Path(__file__).resolve().parent.parent
COMPACT, BASELINE = ROOT / "models" / "compact", ROOT / "models" / "baseline"
FLOAT_FORMATS = ["keras", "saved_model", "tflite", "onnx"]


def _needs(fmt: str) -> None:
    reason = ex.unavailable_reason(fmt)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def compact_model():
    from fer_core import load_run

    return load_run(COMPACT).load_model()


@pytest.fixture(scope="module")
def compact_exports(tmp_path_factory) -> dict[str, Path]:
    """{format: export folder} of the bundled compact, every float format available here."""
    root = tmp_path_factory.mktemp("exports")
    done = {}
    for fmt in FLOAT_FORMATS:
        if ex.unavailable_reason(fmt) is None:
            done[fmt] = ex.export_run(COMPACT, fmt, root / fmt).dest
    return done


def _random_pixels(shape, n=5, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype(np.float32)  # (n, H, W, C)


def _run_outside_runtime(fmt: str, folder: Path, x: np.ndarray) -> np.ndarray:
    """Probabilities from the export loaded directly in its runtime, not through fer_core."""
    path = folder / json.loads((folder / "labels.json").read_text())["file"]
    if fmt == "saved_model":
        import tensorflow as tf

        fn = tf.saved_model.load(str(path)).signatures["serving_default"]
        return next(iter(fn(tf.constant(x)).values())).numpy()
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path))
        it.resize_tensor_input(0, list(x.shape))
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    import keras

    from fer_core.models import layers  # noqa: F401  the registered TTA layers

    return np.asarray(keras.saving.load_model(path, safe_mode=True)(x, training=False))


@pytest.mark.parametrize("fmt", FLOAT_FORMATS)
def test_float_export_reloads_in_its_runtime_and_agrees(fmt, compact_exports, compact_model):
    _needs(fmt)
    folder = compact_exports[fmt]
    x = _random_pixels((48, 48, 1))
    want = np.asarray(compact_model(x, training=False))  # (5, 7)
    got = _run_outside_runtime(fmt, folder, x)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-4
    labels = json.loads((folder / "labels.json").read_text())
    assert labels["class_names"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert labels["input"]["shape"] == [None, 48, 48, 1] and labels["input"]["color"] == "gray"
    assert labels["input"]["value_range"] == [0, 255] and labels["input"]["dtype"] == "float32"
    assert labels["check"]["max_abs_diff"] <= 1e-4 and labels["quantization"] is None
    assert labels["model"]["mirror_tta"] is True


def test_keras_export_names_its_custom_layers(compact_exports):
    labels = json.loads((compact_exports["keras"] / "labels.json").read_text())
    assert labels["keras_custom_layers"]["classes"] == ["FlipConcat", "PairMean"]
    assert "import fer_layers" in (compact_exports["keras"] / "README.txt").read_text()
    assert (compact_exports["keras"] / "fer_layers.py").is_file()  # what that import finds (run below)


@pytest.mark.parametrize("fmt", ["keras", "onnx", "tflite"])
def test_readme_runs_outside_the_project(fmt, compact_exports, compact_model, tmp_path):
    """The README's snippet, run from the export folder with a face photo and without this project on the path."""
    _needs(fmt)
    from PIL import Image

    folder = compact_exports[fmt]
    face = Image.fromarray(np.random.default_rng(2).integers(0, 256, (60, 60, 3), dtype=np.uint8))
    face.save(folder / "face.jpg")
    code = (folder / "README.txt").read_text().split("\n\n", 1)[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, prob = proc.stdout.split()[-2:]
    x = np.asarray(Image.open(folder / "face.jpg").convert("L").resize((48, 48)), np.float32).reshape(1, 48, 48, 1)
    p = np.asarray(compact_model(x, training=False))[0]
    assert name == ex.load_export(folder)[1]["class_names"][int(p.argmax())]
    assert abs(float(prob) - float(p.max())) <= 1e-4


def _intensity_run(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny run whose model reads a face's mean brightness (7 far-apart levels), and labelled faces for it.

    Its logits are those of a nearest-level classifier, so the right class wins by a wide margin: int8 must agree
    on every face. (The bundled FER2013 models are unsure on drawn demo faces, where the bound is tested below.)
    """
    import shutil

    import keras

    from fer_core.labels import FER2013_7

    levels = np.linspace(0.1, 0.9, 7)  # mean brightness of each class, in [0, 1]
    inputs = keras.Input((16, 16, 1), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)  # (B, 1) mean brightness m
    dense = keras.layers.Dense(7)
    logits = dense(x)  # 40·(2·level·m − level²): the nearest level scores highest
    probs = keras.layers.Softmax(name="probs")(logits)
    model = keras.Model(inputs, probs, name="intensity")
    dense.set_weights([40 * 2 * levels[None, :].astype(np.float32), (-40 * levels ** 2).astype(np.float32)])
    run_dir = tmp_path / "intensity"
    shutil.copytree(BASELINE, run_dir, ignore=shutil.ignore_patterns("model.keras"))
    config = json.loads((run_dir / "config.json").read_text())
    config["model"].update(name="intensity", image_size=16, channels=1)
    (run_dir / "config.json").write_text(json.dumps(config))
    model.save(run_dir / "model.keras")
    rng = np.random.default_rng(0)
    arrays = {"class_names": np.array(FER2013_7)}
    for split, n in (("train", 70), ("validation", 14), ("test", 70)):
        y = np.arange(n) % 7
        base = (levels[y] * 255)[:, None, None, None]
        arrays[f"{split}_images"] = np.clip(base + rng.normal(0, 12, (n, 16, 16, 1)), 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = y
    np.savez(tmp_path / "faces.npz", **arrays)
    return run_dir, tmp_path / "faces.npz"


def test_int8_full_integer_calibrated_on_given_faces_reports_accuracy(tmp_path):
    _needs("tflite_int8")
    run_dir, data = _intensity_run(tmp_path)
    done = ex.export_run(run_dir, "tflite_int8", tmp_path / "int8", data=str(data), check_faces=70,
                         calibration_faces=50)
    quant, check = done.labels["quantization"], done.labels["check"]
    assert quant["mode"] == "full-integer" and quant["activations"] == "int8"
    assert quant["calibration"].startswith("faces (50 train faces calibrate, 70 test faces check)")
    assert check["faces"] == 70 and check["top1_agreement"] == 1.0
    assert check["accuracy"] == {"keras": 1.0, "int8": 1.0}
    runtime, labels = ex.load_export(done.dest)
    assert labels["input"]["shape"] == [None, 16, 16, 1]
    assert runtime(np.full((2, 16, 16, 1), 0.9 * 255)).argmax(1).tolist() == [6, 6]  # brightest level → class 6


def test_int8_of_a_bundled_model_without_its_data(tmp_path):
    """No FER2013 here (as in CI): dynamic-range int8 (no calibration on drawings), checked on 300 demo faces."""
    import shutil

    _needs("tflite_int8")
    run_dir = tmp_path / "baseline"
    shutil.copytree(BASELINE, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["dataset"]["source"] = str(tmp_path / "gone.npz")
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    done = ex.export_run(run_dir, "tflite_int8", tmp_path / "int8")
    quant, check = done.labels["quantization"], done.labels["check"]
    assert quant["mode"] == "dynamic-range" and quant["weights"] == "int8"
    assert check["faces"] == 300 and check["faces_from"].startswith("demo faces") and "accuracy" not in check
    assert check["top1_agreement"] >= 0.98
    assert done.size_bytes < (BASELINE / "model.keras").stat().st_size / 3  # int8 weights: about a quarter


def test_int8_without_the_runs_data_checks_on_demo_faces_uncalibrated(tmp_path):
    import shutil

    from fer_core import load_run

    run_dir = tmp_path / "baseline"
    shutil.copytree(BASELINE, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["dataset"]["source"] = str(tmp_path / "gone.npz")
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    faces = ex.faces_for(load_run(run_dir), (48, 48, 1), check=16)
    assert faces.calib is None and faces.labels is None  # no calibration on faces of another kind
    assert faces.check.shape == (16, 48, 48, 1) and faces.check.dtype == np.uint8
    assert faces.source.startswith("demo faces")


def test_ensemble_of_nested_models_exports(tmp_path):
    """An ensemble run (training.ensemble: members nested in one functional model) converts and agrees."""
    import shutil

    from fer_core import load_run
    from training.ensemble import ensemble_model

    _needs("onnx")
    _needs("tflite")
    run_dir = tmp_path / "baseline_x2"
    shutil.copytree(BASELINE, run_dir)
    members = [load_run(BASELINE).load_model() for _ in range(2)]
    ensemble_model(members, ["member1_baseline", "member2_baseline"], name="baseline_x2").save(run_dir / "model.keras")
    for fmt in ("onnx", "tflite"):
        done = ex.export_run(run_dir, fmt, tmp_path / fmt)
        assert done.labels["check"]["max_abs_diff"] <= 1e-4
        runtime, _ = ex.load_export(done.dest)
        x = _random_pixels((128, 128, 3), n=3)
        want = np.mean([np.asarray(m(x, training=False)) for m in members], axis=0)
        assert np.max(np.abs(runtime(x) - want)) <= 1e-4


# --------------------------------------------------------------------------- refusals

def test_missing_package_is_refused_with_the_reason(monkeypatch, tmp_path, capsys):
    from training.export import main

    monkeypatch.setattr(ex, "_installed", lambda module: module != "onnxruntime")
    reasons = ex.available_formats()
    assert reasons["keras"] is None and reasons["tflite"] is None
    assert reasons["onnx"] == ("onnx needs onnxruntime, which is not installed "
                               "(pip install -r requirements-export.txt)")
    with pytest.raises(ex.ExportError, match="onnxruntime"):
        ex.export_run(COMPACT, "onnx", tmp_path / "x")
    assert main([str(COMPACT), "--format", "onnx", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "onnxruntime" in err and "requirements-export.txt" in err
    assert not (tmp_path / "x").exists()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.export", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("args, says", [
    (["no/such/run", "--format", "onnx", "--out", "OUT"], "run folder does not exist"),
    ([str(COMPACT), "--format", "pb", "--out", "OUT"], "invalid choice: 'pb'"),
    ([str(COMPACT), "--out", "OUT"], "--format"),
])
def test_cli_bad_input_is_one_line_exit_2(args, says, tmp_path):
    proc = _cli(*[str(tmp_path / "out") if a == "OUT" else a for a in args])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and says in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_cli_exports_and_never_overwrites_other_files(tmp_path):
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "mine.txt").write_text("x")
    proc = _cli(str(BASELINE), "--format", "saved_model", "--out", str(keep))
    assert proc.returncode == 2 and "not an empty folder or an earlier export" in proc.stderr
    assert (keep / "mine.txt").read_text() == "x"
    out = tmp_path / "export"
    ex.export_run(BASELINE, "keras", out)  # an earlier export there is replaced
    proc = _cli(str(BASELINE), "--format", "saved_model", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"exported baseline → {out}: saved_model") and proc.stderr == ""
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "labels.json", "saved_model"]
    assert not list(tmp_path.glob(".export-*"))  # no staging folder left behind


def test_export_zip_is_cached_per_run_and_format(tmp_path, monkeypatch):
    import zipfile

    from fer_core import load_run

    monkeypatch.setenv("FER_EXPORT_CACHE", str(tmp_path / "cache"))
    run = load_run(BASELINE)
    assert ex.cached_zip(run, "keras") is None
    path = ex.export_zip(run, "keras")
    assert ex.cached_zip(run, "keras") == path and ex.export_zip(run, "keras") == path
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["baseline_keras/README.txt", "baseline_keras/labels.json",
                                         "baseline_keras/model.keras"]
    assert ex.cached_zip(run, "saved_model") is None
