"""``fer_compact``: a trained compact trunk + a new head for another class set (tiny data, seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from fer_core import load_dataset, load_run
from fer_core.data.datasets import Dataset
from fer_core.errors import ModelError
from fer_core.models.from_compact import DEFAULT_SOURCE, TRUNK_LAYERS
from fer_core.fit.train import TrainConfig, train_one

TINY = dict(epochs=1, batch_size=16, patience=0, precision="float32")


def _three_classes(ds: Dataset) -> Dataset:
    """The demo set cut to its first 3 classes: a different class set than the 8-class source."""
    splits = {}
    for s, (x, y) in ds.splits.items():
        keep = y < 3
        splits[s] = (x[keep], y[keep])
    return Dataset(name="demo3", source="demo[:3]", class_names=ds.class_names[:3], splits=splits)


@pytest.fixture(scope="module")
def demo48():
    return load_dataset("demo", demo_per_class=6, demo_image_size=48)  # 8 classes, (N, 48, 48, 3)


@pytest.fixture(scope="module")
def source_run(demo48, tmp_path_factory):
    """A tiny compact run (1 epoch on 8-class demo faces at 48 px): the trunk to start from."""
    out = tmp_path_factory.mktemp("source")
    return load_run(train_one(demo48, TrainConfig(model="compact", **TINY), out))


def _trunk(model) -> dict:
    return {n: model.get_layer(n).get_weights() for n in TRUNK_LAYERS}


def test_frozen_trunk_new_head_for_three_classes(demo48, source_run, tmp_path):
    ds3 = _three_classes(demo48)
    run = load_run(train_one(ds3, TrainConfig(model="fer_compact", init_from=str(source_run.path), epochs=2,
                                              batch_size=8, patience=0), tmp_path))
    model = run.load_model()  # the normal path of the app, Predict and Compare (safe_mode)
    assert model.input_shape == (None, 48, 48, 1)
    assert model.get_layer("head_dense").get_weights()[0].shape == (256, 3)  # GAP (B, 256) → 3 classes
    before, after = _trunk(source_run.load_model()), _trunk(model)
    for name in TRUNK_LAYERS:  # frozen: every trunk weight, BN moving statistics included, is the source's
        for a, b in zip(before[name], after[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    probs = model(np.zeros((2, 48, 48, 1), np.float32)).numpy()
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    # Traceable: which run the trunk came from, on what data, and how it was used.
    src = run.metrics["trunk_from"]
    assert src["run"] == source_run.id and src["dataset"]["fingerprint"] == source_run.fingerprint
    assert src["trunk"] == "frozen" and src["model"] == "compact"
    assert run.config["model"]["trunk_from"]["run"] == source_run.id
    assert run.config["train_config"]["weights"] == str(source_run.path)  # not "imagenet": --weights does not apply
    assert run.metrics["class_names"] == list(ds3.class_names) and run.metrics["trainable_params"] == 2 * 256 + 256 * 3 + 3


def test_fine_tuning_moves_the_top_convs_only_and_keeps_batchnorm(demo48, source_run, tmp_path):
    run = load_run(train_one(demo48, TrainConfig(model="fer_compact", init_from=str(source_run.path),
                                                 fine_tune_layers=2, fine_tune_epochs=1,
                                                 fine_tune_learning_rate=1e-3, **TINY), tmp_path))
    before, after = _trunk(source_run.load_model()), _trunk(run.load_model())
    changed = {n for n in TRUNK_LAYERS if any(not np.array_equal(a, b) for a, b in zip(before[n], after[n]))}
    assert changed == {"block4a_conv", "block4b_conv"}  # top 2 of the 8 convs; every BN layer untouched
    assert run.metrics["trunk_from"]["trunk"].startswith("top 2 conv layers fine-tuned")
    assert run.metrics["model"] == "fer_compact" and len(run.history["loss"]) == 2  # head epoch + fine-tune epoch


def test_default_source_is_the_bundled_compact():
    if not (DEFAULT_SOURCE / "model.keras").is_file():
        pytest.skip("bundled models/compact absent")
    from fer_core.models import create_model

    model = create_model("fer_compact", 8, weights=None)  # AffectNet's 8 classes, contempt included
    bundled = load_run(DEFAULT_SOURCE).load_model()
    for name in ("block1a_conv", "block4b_bn"):
        for a, b in zip(bundled.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert model.output_shape == (None, 8)


def test_wrong_source_model_or_size_is_one_clear_error(demo48, source_run, tmp_path):
    baseline = train_one(demo48, TrainConfig(model="baseline", image_size=36, **TINY), tmp_path / "b")
    with pytest.raises(ModelError, match=r"is a baseline model .*not compact-like"):
        train_one(demo48, TrainConfig(model="fer_compact", init_from=str(baseline), **TINY), tmp_path)
    with pytest.raises(ModelError, match=r"takes 48 px faces, this run asks for 64 px"):
        train_one(demo48, TrainConfig(model="fer_compact", init_from=str(source_run.path), image_size=64, **TINY), tmp_path)
    with pytest.raises(ModelError, match=r"run folder does not exist"):
        train_one(demo48, TrainConfig(model="fer_compact", init_from=str(tmp_path / "nope"), **TINY), tmp_path)
    # compact continues a run at its own input size only.
    with pytest.raises(ModelError, match=r"at 48 px; this run is compact on .* at 64 px"):
        train_one(demo48, TrainConfig(model="compact", init_from=str(source_run.path), image_size=64, **TINY), tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_cli_wrong_source_is_one_line_exit_2(demo48, tmp_path):
    bad = tmp_path / "not_a_run"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({}))
    proc = run_cli("--data", "demo", "--demo-per-class", "3", "--demo-size", "48", "--epochs", "1",
                   "--models", "fer_compact", "--init-from", str(bad), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: fer_compact: --init-from") and "incomplete run" in last


def test_compact_on_another_class_set_starts_from_the_trunk_only(demo48, source_run, tmp_path):
    """FER+'s 8 emotions from a 7-class FER2013 run: trunk copied by name, a new head, its own curves."""
    three = _three_classes(demo48)
    cfg = TrainConfig(model="compact", init_from=str(source_run.path), **{**TINY, "learning_rate": 1e-12})
    run = load_run(train_one(three, cfg, tmp_path))
    assert run.metrics["init_from"]["trunk_only"] is True
    assert len(run.history["loss"]) == cfg.epochs  # the source's epochs (another task) are not prepended
    src, new = source_run.load_model(), run.load_model()
    assert new.output_shape == (None, 3)
    for a, b in zip(src.get_layer("block1a_conv").get_weights(), new.get_layer("block1a_conv").get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)  # a vanishing learning rate keeps the copied trunk


def test_compact_wide_starts_as_its_widened_source_and_trains_on(demo48, source_run, tmp_path):
    """``compact_wide --init-from`` a compact run: twice the filters, the same predictions at the start."""
    from fer_core.models import create_model
    from fer_core.models.widen import widen_into

    source = source_run.load_model()
    wide = create_model("compact_wide", 8, image_size=48, weights="none")
    widen_into(source, wide, noise=0.0)
    assert wide.get_layer("block4b_conv").get_weights()[0].shape == (3, 3, 512, 512)  # compact's: (3, 3, 256, 256)
    faces = demo48.splits["test"][0][..., :1].astype(np.float32)  # (N, 48, 48, 1) gray
    np.testing.assert_allclose(wide(faces, training=False), source(faces, training=False), atol=1e-5)
    # The trainer does the same, then trains on: the run says where it started and its curves continue.
    run = load_run(train_one(demo48, TrainConfig(model="compact_wide", init_from=str(source_run.path), **TINY),
                             tmp_path))
    assert run.model_name == "compact_wide" and run.metrics["init_from"]["widened"] is True
    assert run.metrics["init_from"]["run"] == source_run.id
    assert len(run.history["loss"]) == len(source_run.history["loss"]) + 1


def test_widening_refuses_shapes_that_are_not_whole_multiples():
    from fer_core.models.widen import widen_array

    kernel = np.ones((3, 3, 4, 6), np.float32)
    assert widen_array(kernel, (3, 3, 8, 12), is_kernel=True).sum() == pytest.approx(kernel.sum() * 2)  # inputs halved
    with pytest.raises(ModelError, match="not whole multiples"):
        widen_array(kernel, (3, 3, 6, 12), is_kernel=True)
