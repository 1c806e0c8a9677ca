"""Mixed-bfloat16 training of scratch models: faster on bf16 CPUs, but what is saved is float32."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from conftest import run_cli  # noqa: E402
from fer_core import list_runs, load_dataset  # noqa: E402
from fer_core.compute.forward import compiled_forward, predict_batches  # noqa: E402
from fer_core.data.preprocess import prepare_images  # noqa: E402
from fer_core.models import create_model  # noqa: E402
from fer_core.compute.precision import as_float32, dtype_policy, resolve_precision  # noqa: E402
from fer_core.compute import precision as precision_mod  # noqa: E402


def test_auto_picks_bfloat16_only_on_cpus_with_native_bf16(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16" and resolve_precision("float32") == "float32"


def test_policy_is_restored_and_float32_copy_matches():
    before = keras.mixed_precision.global_policy().name
    with dtype_policy("bfloat16"):
        m = create_model("baseline", 5, image_size=48)
    assert keras.mixed_precision.global_policy().name == before
    assert m.get_layer("conv1").compute_dtype == "bfloat16"
    assert m.get_layer("probs").compute_dtype == "float32"  # softmax stays float32 while training
    f32 = as_float32(m)
    assert all(layer.compute_dtype == "float32" for layer in f32.layers if layer.weights)
    x = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 3)).astype(np.float32)
    # Same weights: bf16 rounding is the only difference between the two.
    assert np.abs(np.asarray(m(x)) - np.asarray(f32(x))).max() < 5e-2
    for a, b in zip(m.get_weights(), f32.get_weights()):
        assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b)


def test_bfloat16_training_saves_and_evaluates_a_float32_model(tmp_path):
    out = tmp_path / "runs"
    proc = run_cli("--data", "demo", "--demo-per-class", "6", "--demo-size", "48", "--models", "compact",
                   "--epochs", "1", "--batch-size", "16", "--precision", "bfloat16", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = list_runs(out).runs[0]
    metrics = run.metrics
    assert metrics["train_precision"] == "bfloat16" and metrics["config"]["precision"] == "bfloat16"
    model = run.load_model()
    assert {layer.compute_dtype for layer in model.layers if layer.weights} == {"float32"}
    # The reported accuracy is the saved float32 model's, not the bf16 training copy's.
    ds = load_dataset("demo", seed=0, demo_per_class=6, demo_image_size=48)
    x, y = ds.splits[metrics["split"]]
    probs = predict_batches(compiled_forward(model), prepare_images(x, 48, 1), 16)
    assert np.isclose(float(np.mean(probs.argmax(1) == y)), metrics["accuracy"])


def test_unknown_precision_is_a_one_line_error(tmp_path):
    proc = run_cli("--data", "demo", "--models", "baseline", "--precision", "fp8", "--out", str(tmp_path))
    assert proc.returncode == 2 and "invalid choice: 'fp8'" in proc.stderr


def test_bfloat16_feature_pass_is_cached_apart_and_scores_the_saved_float32_model(tmp_path):
    args = ["--data", "demo", "--demo-per-class", "6", "--demo-size", "64", "--image-size", "48", "--models", "vgg19",
            "--epochs", "2", "--weights", "none", "--batch-size", "16"]
    for precision in ("bfloat16", "float32"):
        proc = run_cli(*args, "--precision", precision, "--out", str(tmp_path / precision))
        assert proc.returncode == 0, proc.stderr[-2000:]
    bf16, f32 = (list_runs(tmp_path / p).runs[0] for p in ("bfloat16", "float32"))
    assert bf16.metrics["feature_cache"]["precision"] == "bfloat16" and f32.metrics["feature_cache"]["precision"] == "float32"
    assert bf16.metrics["feature_cache"]["key"] != f32.metrics["feature_cache"]["key"]  # never mixed in the cache
    ds = load_dataset("demo", seed=0, demo_per_class=6, demo_image_size=64)
    x, y = ds.splits["test"]
    probs = predict_batches(compiled_forward(bf16.load_model()), prepare_images(x, 48, 3), 16)
    assert np.isclose(float(np.mean(probs.argmax(1) == y)), bf16.metrics["accuracy"])


def test_tta_flip_run_saves_the_mirror_averaging_model_it_scored(tmp_path):
    proc = run_cli("--data", "demo", "--demo-per-class", "6", "--demo-size", "48", "--models", "compact",
                   "--epochs", "1", "--batch-size", "16", "--tta-flip", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = list_runs(tmp_path).runs[0]
    model = run.load_model()
    assert run.metrics["config"]["tta_flip"] is True and model.get_layer("tta_flip") is not None
    ds = load_dataset("demo", seed=0, demo_per_class=6, demo_image_size=48)
    x, y = ds.splits[run.metrics["split"]]
    probs = predict_batches(compiled_forward(model), prepare_images(x, 48, 1), 16)
    assert np.isclose(float(np.mean(probs.argmax(1) == y)), run.metrics["accuracy"])
    bad = run_cli("--data", "demo", "--models", "baseline", "--tta-flip", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "no mirror test-time augmentation" in bad.stderr


def test_init_from_continues_a_run_and_keeps_its_epochs_in_the_curves(tmp_path):
    common = ["--data", "demo", "--demo-per-class", "6", "--demo-size", "48", "--models", "compact",
              "--batch-size", "16", "--tta-flip"]
    first = run_cli(*common, "--epochs", "2", "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr[-2000:]
    earlier = list_runs(tmp_path / "a").runs[0]
    proc = run_cli(*common, "--epochs", "1", "--init-from", str(earlier.path), "--out", str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = list_runs(tmp_path / "b").runs[0]
    assert run.history["stage"] == [0, 0, 1] and run.history["loss"][:2] == earlier.history["loss"]
    assert run.metrics["init_from"]["run"] == earlier.id and run.metrics["epochs_run"] == 3
    assert run.metrics["best_epoch"] == 3  # the weights are this run's, whatever the earlier epochs scored
    assert np.isclose(run.metrics["train_seconds_total"],
                      run.metrics["train_seconds"] + earlier.metrics["train_seconds"], atol=0.02)
    wrong = run_cli("--data", "demo", "--demo-per-class", "6", "--demo-size", "48", "--models", "baseline",
                    "--image-size", "48", "--epochs", "1", "--init-from", str(earlier.path), "--out", str(tmp_path / "c"))
    errors = [line for line in wrong.stderr.splitlines() if line.startswith("error:")]
    assert wrong.returncode == 2 and len(errors) == 1 and "it is compact" in errors[0]
