"""Mixed-bfloat16 training of scratch models: faster on bf16 CPUs, but what is saved is float32."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from conftest import run_cli  # noqa: E402
from fer_core import list_runs, load_dataset  # noqa: E402
from fer_core.inference import compiled_forward, predict_batches  # noqa: E402
from fer_core.preprocess import prepare_images  # noqa: E402
from fer_core.models import create_model  # noqa: E402
from fer_core.precision import as_float32, dtype_policy, resolve_precision  # noqa: E402
from fer_core import precision as precision_mod  # noqa: E402


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
