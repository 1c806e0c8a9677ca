"""Publishing runs for a deployment (``python -m training.publish``), offline.

A stand-in for Keras' ImageNet cache: ``KERAS_HOME`` points at a temporary
folder holding a randomly initialised VGG19 saved under the real ``*_notop.h5``
file name. A tiny VGG19 run trained with ``--weights imagenet`` against it is
what a real frozen-ImageNet run looks like (32 px, 8 classes × 4 images, one
epoch), so publishing it must give a head-only folder that rebuilds the same
model from that cache file and refuses any other file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_core import list_runs, load_run
from fer_core.errors import ModelError, RunStoreError, WeightsUnavailableError
from fer_core.models import get_spec
from fer_core.models import weights as weights_mod
from fer_core.store.publish import head_only_reason, publish_run
from fer_core.store.runs import BACKBONE_FILE, BUNDLED_DIR, HEAD_FILE

SIZE = 32
VGG_FILE = get_spec("vgg19").weights_file


@pytest.fixture(scope="module")
def keras_home(tmp_path_factory):
    """``$KERAS_HOME`` with a stand-in VGG19 ImageNet file (random weights, the real file name and format)."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    home = tmp_path_factory.mktemp("keras-home")
    (home / "models").mkdir()
    keras.utils.set_random_seed(1)
    backbone = keras.applications.VGG19(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3), pooling="avg")
    with h5py.File(home / "models" / VGG_FILE, "w") as f:  # Keras' legacy layout, as the download is
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(home))
        mp.setattr(weights_mod, "_online", lambda timeout=3.0: False)
        yield home


@pytest.fixture(scope="module")
def imagenet_run(keras_home, tmp_path_factory) -> Path:
    """A full (old-format) VGG19 run trained in this process with ``--weights imagenet`` from the stand-in cache."""
    from training.cli import main

    out = tmp_path_factory.mktemp("runs")
    rc = main(["--data", "demo", "--demo-per-class", "4", "--demo-size", "32", "--image-size", str(SIZE),
               "--epochs", "1", "--batch-size", "16", "--models", "vgg19", "--weights", "imagenet",
               "--precision", "float32", "--patience", "0", "--out", str(out)])
    assert rc == 0
    (run,) = list_runs(out).runs
    return run.path


@pytest.fixture(scope="module")
def published(imagenet_run, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("models") / "vgg19"
    result = publish_run(imagenet_run, dest)
    assert result.kind == "head-only" and result.max_abs_diff <= 1e-5
    return dest


def _probs(model, n=6, seed=3):
    x = np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3)).astype(np.uint8)  # (n, S, S, 3) raw pixels
    return np.asarray(model(x.astype(np.float32), training=False))  # (n, 8)


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir())


def test_frozen_imagenet_run_publishes_head_only_and_predicts_the_same(imagenet_run, published, keras_home):
    names = {p.name for p in published.iterdir()}
    assert names == {HEAD_FILE, BACKBONE_FILE, "metrics.json", "history.json", "config.json"}
    assert _folder_bytes(published) < 5e6 < (imagenet_run / "model.keras").stat().st_size
    ref = json.loads((published / BACKBONE_FILE).read_text())
    assert ref["application"] == "VGG19" and ref["weights_file"] == VGG_FILE and ref["image_size"] == SIZE
    assert ref["sha256"] == weights_mod.sha256_file(keras_home / "models" / VGG_FILE)
    metrics = json.loads((published / "metrics.json").read_text())
    assert metrics["model_size_bytes"] == (published / HEAD_FILE).stat().st_size + (published / BACKBONE_FILE).stat().st_size
    assert metrics["full_model_bytes"] == (imagenet_run / "model.keras").stat().st_size
    assert metrics["backbone_bytes"] == (keras_home / "models" / VGG_FILE).stat().st_size
    assert metrics["published_from"] == imagenet_run.name

    listing = list_runs(published.parent)  # a complete run like any other
    assert listing.warnings == [] and [r.id for r in listing.runs] == ["vgg19"] and listing.runs[0].head_only
    full, rebuilt = load_run(imagenet_run).load_model(), listing.runs[0].load_model()
    assert np.max(np.abs(_probs(full) - _probs(rebuilt))) <= 1e-5
    assert rebuilt.get_layer(get_spec("vgg19").gradcam_layer) is not None  # Grad-CAM reaches the backbone


def test_a_changed_cache_file_is_refused_with_a_digest_error(published, keras_home, tmp_path, monkeypatch):
    other = tmp_path / "models"
    other.mkdir()
    data = bytearray((keras_home / "models" / VGG_FILE).read_bytes())
    data[-1] ^= 0xFF  # one flipped byte: still "the file", not the weights this run was published with
    (other / VGG_FILE).write_bytes(bytes(data))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ModelError, match="sha256") as err:
        load_run(published).load_model()
    assert str(other / VGG_FILE) in str(err.value) and "Fix:" in str(err.value) and "\n" not in str(err.value)


def test_missing_cache_offline_says_where_to_put_the_file(published, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsUnavailableError) as err:
        load_run(published).load_model()
    msg = str(err.value)
    assert VGG_FILE in msg and str(tmp_path / "empty" / "models") in msg and "Fix:" in msg and "\n" not in msg


def test_a_head_only_run_without_its_head_is_incomplete(published, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(published, broken)
    (broken / HEAD_FILE).unlink()
    with pytest.raises(RunStoreError, match=f"'{HEAD_FILE}' is missing"):
        load_run(broken)


def test_other_runs_keep_a_full_model(imagenet_run, tmp_path):
    def with_config(**train_config):
        run = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(imagenet_run, run)
        cfg = json.loads((run / "config.json").read_text())
        cfg["train_config"].update(train_config)
        (run / "config.json").write_text(json.dumps(cfg))
        return load_run(run)

    assert head_only_reason(with_config(weights="none")) is not None
    assert head_only_reason(with_config(weights=str(tmp_path / "my.h5"))) is not None
    assert head_only_reason(load_run(BUNDLED_DIR / "baseline")) == "not a transfer model"
    fine_tuned = with_config(fine_tune_layers=2)
    assert "fine-tuned" in head_only_reason(fine_tuned)
    result = publish_run(fine_tuned.path, tmp_path / "out" / "vgg19")
    assert result.kind == "full" and (result.dest / "model.keras").is_file() and not (result.dest / HEAD_FILE).exists()
    assert result.max_abs_diff <= 1e-5


def test_old_full_runs_still_load(imagenet_run):
    assert not load_run(imagenet_run).head_only
    listing = list_runs(bundled_roots=(BUNDLED_DIR,))
    assert listing.warnings == [] and {r.model_name for r in listing.runs} >= {"baseline", "compact"}
    model = load_run(BUNDLED_DIR / "baseline").load_model()
    assert model.output.shape[-1] == 7


def test_publish_cli_prints_sizes_and_refuses_bad_input(published, tmp_path, capsys, monkeypatch):
    from training.bundle import main as bundle_main
    from training.publish import main

    assert main([str(published), "--into", str(tmp_path), "--name", "again"]) == 0  # republishing a published run
    out = capsys.readouterr().out
    assert "head-only" in out and "MB" in out and "instead of" in out and (tmp_path / "again" / HEAD_FILE).is_file()

    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "does not exist" in err and err.count("\n") == 1

    monkeypatch.setattr("fer_core.store.publish.GITHUB_FILE_LIMIT", 100_000)  # baseline's 0.7 MB model.keras is "too big"
    assert main([str(BUNDLED_DIR / "baseline"), "--into", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "100 MiB" in err and "Git LFS" in err and err.count("\n") == 1 and not (tmp_path / "baseline").exists()
    monkeypatch.undo()

    assert bundle_main([str(BUNDLED_DIR / "baseline"), str(tmp_path / "bl")]) == 0  # the older command still works
    assert "full" in capsys.readouterr().out and (tmp_path / "bl" / "model.keras").is_file()
    bundled = load_run(BUNDLED_DIR / "baseline").metrics
    assert load_run(tmp_path / "bl").metrics["published_from"] == (bundled.get("published_from") or bundled["bundled_from"])


def test_metrics_only_publish_ships_a_seed_repeat_that_groups_with_the_bundled_model(tmp_path, capsys):
    """--metrics-only: three JSON files in <into>/seeds/<run id>/, no weights; the listing reads it as a repeat."""
    from training.publish import main

    src = tmp_path / "runs" / "20990101-000000_baseline_x"  # a finished run of the bundled baseline's recipe, seed 1
    shutil.copytree(BUNDLED_DIR / "baseline", src)
    cfg = json.loads((src / "config.json").read_text())
    cfg["train_config"]["seed"] = 1
    (src / "config.json").write_text(json.dumps(cfg))
    metrics = json.loads((src / "metrics.json").read_text())
    for key in ("bundled_from", "published_from"):  # a fresh training run, not a published one
        metrics.pop(key, None)
    (src / "metrics.json").write_text(json.dumps(metrics))
    into = tmp_path / "models"
    shutil.copytree(BUNDLED_DIR / "baseline", into / "baseline")

    assert main([str(src), "--into", str(into), "--metrics-only"]) == 0
    assert "seed repeat" in capsys.readouterr().out
    dest = into / "seeds" / src.name
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "history.json", "metrics.json"]
    metrics = json.loads((dest / "metrics.json").read_text())
    assert metrics["weights_shipped"] is False and metrics["published_from"] == src.name
    listing = list_runs(bundled_roots=(into,))
    assert [r.id for r in listing.runs] == ["baseline"] and [r.id for r in listing.repeats] == [src.name]
    from fer_core.store.seeds import groups_for

    assert sorted(groups_for(listing.runs, listing.seed_pool)[0].seeds) == [0, 1]

    assert main([str(src), "--into", str(into), "--metrics-only", "--name", "x"]) == 2  # no model, so no name
    assert "--metrics-only" in capsys.readouterr().err
    assert main([str(tmp_path / "nope"), "--into", str(into), "--metrics-only"]) == 2
    assert "does not exist" in capsys.readouterr().err
