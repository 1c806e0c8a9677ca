"""End to end through the CLI: run folders, metrics, feature cache, lock, interruption, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from conftest import ROOT, TINY_ARGS, run_cli
from fer_core import RunStoreError, list_runs, load_dataset, load_run
from fer_core.fit.progress import read_events
from fer_core.store.runs import TrainLock

FIVE = ["baseline", "resnet50v2", "inception_resnet_v2", "inception_v3", "vgg19"]
HISTORY_KEYS = {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_all_five_write_complete_self_describing_runs(tiny_runs_dir):
    listing = list_runs(tiny_runs_dir)
    assert listing.warnings == []
    assert sorted(r.model_name for r in listing.runs) == sorted(FIVE)
    groups = listing.by_dataset()
    assert len(groups) == 1  # one dataset fingerprint
    for run in listing.runs:
        m = run.metrics
        for key in ("model", "accuracy", "macro_f1", "loss", "confusion_matrix", "class_names", "per_class",
                    "train_seconds", "params", "dataset", "config", "split", "latency_ms", "model_size_bytes"):
            assert key in m, (run.id, key)
        assert m["split"] == "test" and len(m["class_names"]) == 8
        cm = np.array(m["confusion_matrix"])
        assert cm.shape == (8, 8) and cm.sum() == m["n_samples"]
        assert np.isclose(np.trace(cm) / cm.sum(), m["accuracy"])
        assert set(m["per_class"]["happy"]) == {"precision", "recall", "f1", "support"}
        assert HISTORY_KEYS <= set(run.history) and len(run.history["loss"]) == 1
        assert run.config["model"]["name"] == run.model_name and run.config["train_config"]["weights"] == "none"
        assert m["dataset"]["fingerprint"] == run.fingerprint and len(run.fingerprint) == 16
    assert not [p for p in tiny_runs_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("model", ["baseline", "inception_v3"])
def test_saved_model_predicts_from_raw_pixels_and_reproduces_metrics(tiny_runs_dir, model):
    from fer_core.compute.forward import compiled_forward, predict_batches
    from fer_core.data.preprocess import prepare_images

    run = next(r for r in list_runs(tiny_runs_dir).runs if r.model_name == model)
    ds = load_dataset("demo", demo_per_class=6, demo_image_size=64)
    assert ds.fingerprint == run.fingerprint
    x, y = ds.splits["test"]
    size = run.config["model"]["image_size"]
    probs = predict_batches(compiled_forward(run.load_model()), prepare_images(x, size, 3), 16)
    assert np.isclose((probs.argmax(1) == y).mean(), run.metrics["accuracy"])


def test_feature_cache_is_reused_by_a_second_run(tiny_runs_dir, tmp_path):
    first = next(r for r in list_runs(tiny_runs_dir).runs if r.model_name == "vgg19")
    assert first.metrics["feature_cache"]["hit"] is False
    proc = run_cli(*TINY_ARGS, "--models", "vgg19", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    second = list_runs(tmp_path).runs[0]
    assert second.metrics["feature_cache"]["hit"] is True
    assert second.metrics["feature_cache"]["key"] == first.metrics["feature_cache"]["key"]
    assert "loaded from cache" in proc.stderr
    # Same cached features + same seed → same head → same test predictions.
    assert second.metrics["confusion_matrix"] == first.metrics["confusion_matrix"]


def test_augmentation_caches_k_copies(tmp_path):
    proc = run_cli(*TINY_ARGS, "--models", "vgg19", "--augment", "--augment-copies", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = list_runs(tmp_path).runs[0].metrics["feature_cache"]
    assert info["augment_copies"] == 2 and info["hit"] is False
    with np.load(info["path"]) as z:
        assert z["train_augmented"].shape[:2] == (2, z["train"].shape[0])
        assert not np.allclose(z["train_augmented"][0], z["train"])


def test_progress_file_events(tmp_path):
    events_path = tmp_path / "progress.jsonl"
    proc = run_cli(*TINY_ARGS, "--models", "baseline", "--epochs", "2", "--out", str(tmp_path / "runs"),
                   "--progress-file", str(events_path), env={"CI": "true"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    kinds = [e["event"] for e in read_events(events_path)]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("epoch_end") == 2 and "model_end" in kinds
    assert "epoch 2/2" in proc.stderr  # plain lines without a TTY


def test_interrupted_run_leaves_no_complete_folder(tmp_path):
    out, events_path = tmp_path / "runs", tmp_path / "events.jsonl"
    cmd = [sys.executable, "-m", "training", "--data", "demo", "--demo-per-class", "30", "--demo-size", "64",
           "--models", "baseline", "--image-size", "64", "--epochs", "200", "--patience", "0",
           "--out", str(out), "--progress-file", str(events_path)]
    # Ctrl-C as in a terminal: a shell without job control starts background commands with SIGINT
    # ignored, and Python keeps an inherited "ignore"; restore the default so the test does not
    # depend on how the test run itself was started.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and not any(e["event"] == "epoch_end" for e in read_events(events_path)):
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "cancelled" in err and "Traceback" not in err
    assert read_events(events_path)[-1]["status"] == "cancelled"
    # no run and no .tmp-*: only the epoch checkpoint, which the same command picks up again
    assert [p.name for p in out.iterdir() if not p.name.startswith(".train.lock")] == [".checkpoints"]
    assert "run the same command again" in err
    assert list_runs(out).runs == []


def test_second_trainer_on_the_same_folder_is_refused(tmp_path):
    with TrainLock(tmp_path):
        proc = run_cli(*TINY_ARGS, "--models", "baseline", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert f"another training process (pid {os.getpid()})" in proc.stderr


def cli_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """``training.cli.main`` in this process: (exit code, stdout, stderr).

    For the bad-input checks, which fail before any training: a subprocess would spend ~6 s importing
    TensorFlow for each. The subprocess path itself is what the tests above and ``tiny_runs_dir`` run.
    """
    from training.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("args, needle", [
    (["--data", "demo", "--models", "resnet"], "unknown model 'resnet'"),
    (["--data", "missing.npz"], "missing.npz: no such file"),
    (["--data", "demo", "--epochs", "0"], "epochs must be ≥ 1"),
    (["--data", "demo", "--models", "inception_v3", "--image-size", "40"], "at least 75"),
    (["--data", "demo", "--models", "baseline", "--image-size", "32"], "at least 36"),
    (["--data", "demo", "--models", "baseline", "--fine-tune-layers", "3"], None),  # ignored for baseline: trains
    (["--models", "baseline"], "--data is required"),
])
def test_bad_cli_input_is_one_line_exit_2(tmp_path, capsys, args, needle):
    if needle is None:
        args = args + ["--demo-per-class", "3", "--demo-size", "36", "--image-size", "36", "--epochs", "1"]
    code, _, err = cli_in_process(capsys, *args, "--out", str(tmp_path))
    if needle is None:
        assert code == 0, err[-2000:]
        return
    assert code == 2
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert needle in last


def test_bad_dataset_file_message(tmp_path, capsys):
    p = tmp_path / "bad.npz"
    np.savez(p, train_images=np.zeros((4, 8, 8), np.uint8))
    code, _, err = cli_in_process(capsys, "--data", str(p), "--models", "baseline", "--out", str(tmp_path / "runs"))
    assert code == 2
    assert err.strip().splitlines()[-1] == f"error: {p}: has 'train_images' but no 'train_labels'"


def test_list_models_and_help():
    proc = run_cli("--list-models")
    assert proc.returncode == 0
    ids = [line.split()[0] for line in proc.stdout.splitlines()]
    assert ids[:5] == FIVE and "compact" in ids
    help_text = run_cli("--help").stdout
    for opt in ("--data", "--models", "--epochs", "--out", "--weights", "--image-size", "--batch-size", "--seed",
                "--fine-tune-layers", "--class-weight", "--augment", "--patience"):
        assert opt in help_text


def test_listing_skips_broken_runs_with_warnings(tiny_runs_copy):
    runs = sorted(p for p in tiny_runs_copy.iterdir() if p.is_dir())
    (runs[0] / "metrics.json").unlink()  # half-written
    (runs[1] / "history.json").write_text("{not json")  # hand-edited
    m = json.loads((runs[2] / "metrics.json").read_text())
    m["confusion_matrix"] = [[1, 2]]
    (runs[2] / "metrics.json").write_text(json.dumps(m))
    (tiny_runs_copy / ".tmp-20990101_x").mkdir()  # interrupted writer
    listing = list_runs(tiny_runs_copy)
    assert len(listing.runs) == 2 and len(listing.warnings) == 3
    assert any("'metrics.json' is missing" in w for w in listing.warnings)
    assert any("not valid JSON" in w for w in listing.warnings)
    assert any("confusion_matrix is not 8×8" in w for w in listing.warnings)


def test_listing_reads_folders_of_runs_and_skips_trainings_without_a_run_yet(tiny_runs_copy):
    """``--out runs/experiment`` puts runs one level down: the app's runs folder must still show them."""
    import shutil

    runs = sorted(p for p in tiny_runs_copy.iterdir() if p.is_dir())
    experiment = tiny_runs_copy / "experiment"
    (experiment / "deeper").mkdir(parents=True)
    shutil.move(str(runs[0]), experiment / runs[0].name)
    shutil.move(str(runs[1]), experiment / "deeper" / runs[1].name)
    training = tiny_runs_copy / "still_training"
    (training / ".checkpoints" / "compact_x").mkdir(parents=True)
    (training / ".train.lock").write_text("123")
    listing = list_runs(tiny_runs_copy)
    assert sorted(r.id for r in listing.runs) == sorted(p.name for p in runs)
    assert listing.warnings == []
    (runs[2] / "metrics.json").unlink()  # a broken run is still told, wherever it is
    shutil.move(str(runs[2]), experiment / runs[2].name)
    assert len(list_runs(tiny_runs_copy).warnings) == 1


def test_unsafe_keras_file_is_refused(tiny_runs_copy):
    import keras

    run_dir = next(p for p in tiny_runs_copy.iterdir() if "baseline" in p.name)
    inp = keras.Input((4,))
    evil = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp))
    evil.save(run_dir / "model.keras")
    with zipfile.ZipFile(run_dir / "model.keras") as z:
        assert "config.json" in z.namelist()
    with pytest.raises(RunStoreError, match="cannot load model safely"):
        load_run(run_dir).load_model()
