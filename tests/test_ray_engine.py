"""The Ray engine (fer_core/fit/distributed.py): a seed sweep as Ray tasks, a feature pass by Ray Data.

One local Ray (2 CPUs, no dashboard) serves the module; the last test replaces
it with a two-node cluster on this machine. Where Ray is not installed the Ray
tests are skipped and say so; the bad-input checks run everywhere.
"""

from __future__ import annotations

import _thread
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT  # noqa: F401  puts the project on sys.path
from fer_core.fit.progress import read_events

SWEEP = ["--data", "demo", "--demo-per-class", "6", "--demo-size", "36", "--image-size", "36", "--epochs", "1",
         "--models", "baseline,compact", "--seeds", "0,1"]
NO_RAY = "Ray is not installed: pip install -r requirements-ray.txt"


def cli(*args: str) -> int:
    from training.cli import main

    return main(list(args))


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason=NO_RAY)
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


def _runs(out: Path) -> dict:
    """(model, seed) → (folder name, files, metrics, history) of each finished run under ``out``."""
    found = {}
    for p in out.iterdir():
        if p.is_dir() and not p.name.startswith("."):
            m = json.loads((p / "metrics.json").read_text())
            found[(m["model"], m["config"]["seed"])] = (p.name, sorted(f.name for f in p.iterdir()), m,
                                                        json.loads((p / "history.json").read_text()))
    return found


# --------------------------------------------------------------------------- bad input (no Ray needed)

def test_engine_ray_without_ray_is_one_line_naming_pip(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: find_spec and import both fail
    assert cli("--data", "demo", "--engine", "ray") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install -r requirements-ray.txt" in err
    from fer_core.fit.distributed import import_ray
    from fer_core.errors import FERError

    with pytest.raises(FERError, match="requirements-ray.txt"):
        import_ray()


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,x"], "--seeds"), (["--seeds", "1,1"], "distinct"), (["--seeds", ","], "--seeds"),
    (["--ray-address", "auto"], "--engine ray"),
])
def test_bad_sweep_options_exit_2(capsys, args, message):
    assert cli("--data", "demo", *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


# --------------------------------------------------------------------------- with Ray

def test_ray_sweep_writes_the_runs_local_writes(ray_local, tmp_path):
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert cli(*SWEEP, "--out", str(local)) == 0
    assert cli(*SWEEP, "--out", str(distributed), "--engine", "ray", "--progress-file", str(tmp_path / "p.jsonl")) == 0
    a, b = _runs(local), _runs(distributed)
    assert sorted(a) == sorted(b) == [("baseline", 0), ("baseline", 1), ("compact", 0), ("compact", 1)]
    for key in a:
        (name_a, files_a, ma, ha), (name_b, files_b, mb, hb) = a[key], b[key]
        # <time>_<model>_<fingerprint>, "-2" added by either engine when two runs of a model end in one second
        assert name_a.split("_", 1)[1].split("-")[0] == name_b.split("_", 1)[1].split("-")[0]
        assert files_a == files_b and set(ma) == set(mb) and set(ha) == set(hb)
        assert ma["dataset"]["fingerprint"] == mb["dataset"]["fingerprint"]  # one dataset for every seed
        assert ma["config"] == mb["config"]
        # Same seed, same data, same settings → the same training, up to float rounding: a Ray task runs
        # TensorFlow on 1 thread, the local engine on all cores (measured: ≤ 5e-7 after 1 epoch, ≤ 2e-3 after 3).
        assert mb["loss"] == pytest.approx(ma["loss"], abs=1e-3)
        for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert hb[k] == pytest.approx(ha[k], abs=1e-3)
        assert ma["confusion_matrix"] == mb["confusion_matrix"]
    # Different seeds do differ (the sweep is not four copies of one run).
    assert a[("baseline", 0)][3]["loss"] != a[("baseline", 1)][3]["loss"]
    # Progress keeps the one-model-at-a-time shape the Train page follows, in task order, with the seed.
    events = read_events(tmp_path / "p.jsonl")
    starts = [e for e in events if e["event"] == "model_start"]
    assert [(e["index"], e["model"], e["seed"]) for e in starts] == [
        (0, "baseline", 0), (1, "baseline", 1), (2, "compact", 0), (3, "compact", 1)]
    ends = [e for e in events if e["event"] == "model_end"]
    assert [Path(e["run_dir"]).parent for e in ends] == [distributed] * 4
    assert all(Path(e["run_dir"]).is_dir() for e in ends)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and events[-1] == {**events[-1], "event": "run_end", "status": "ok"}
    for i, start in enumerate(kinds):  # every epoch_end sits between its model's start and end
        if start == "epoch_end":
            assert events[i]["model"] == next(e["model"] for e in reversed(events[:i]) if e["event"] == "model_start")


def test_feature_pass_by_ray_data_equals_the_local_pass(ray_local):
    import keras

    from fer_core.fit.features import compute_features
    from fer_core.fit.distributed import feature_pass

    keras.utils.set_random_seed(3)
    inputs = keras.Input((24, 24, 3))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    h = keras.layers.Conv2D(8, 3, activation="relu")(h)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(h))
    rng = np.random.default_rng(0)
    splits = {"train": rng.integers(0, 256, (70, 24, 24, 3), np.uint8),
              "test": rng.integers(0, 256, (9, 24, 24, 3), np.uint8)}
    got, workers = feature_pass(model, splits, workers=2, batch_size=16)
    assert workers == 2
    for split, images in splits.items():
        assert got[split].shape == (len(images), 8) and got[split].dtype == np.float32
        np.testing.assert_allclose(got[split], compute_features(model, images), rtol=1e-5, atol=1e-6)  # order kept


def _interrupt_after_first_epoch(progress: Path) -> None:
    """Ctrl-C in the main thread once ``progress`` holds an epoch_end (in a thread, as a user's key press)."""
    def watch():
        deadline = time.time() + 120
        while time.time() < deadline:
            if any(e.get("event") == "epoch_end" for e in read_events(progress)):
                _thread.interrupt_main()  # what Ctrl-C does
                return
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()


def test_cancel_leaves_no_run_exits_130_and_the_same_command_continues(ray_local, tmp_path):
    """Ctrl-C: no run, the tasks stop; the driver holds the last epoch's checkpoint (shipped from the worker,
    no shared filesystem), and the same command continues after that epoch."""
    out = tmp_path / "runs"
    args = ["--data", "demo", "--demo-per-class", "6", "--demo-size", "48", "--image-size", "48",
            "--models", "baseline", "--epochs", "500", "--patience", "0", "--engine", "ray", "--out", str(out)]
    progress = tmp_path / "p.jsonl"
    _interrupt_after_first_epoch(progress)
    assert cli(*args, "--progress-file", str(progress)) == 130
    assert sorted(p.name for p in out.iterdir()) == [".checkpoints", ".train.lock"]  # no run, no .tmp-
    events = read_events(progress)
    assert events[-1]["event"] == "run_end" and events[-1]["status"] == "cancelled"
    assert "run the same command again to continue" in events[-1]["message"]
    assert not any(e["event"] == "model_end" for e in events)
    (ckpt,) = (out / ".checkpoints").iterdir()
    saved = json.loads((ckpt / "state.json").read_text())["epoch"]
    reported = max(e["epoch"] for e in events if e["event"] == "epoch_end")
    assert 1 <= reported <= saved  # every epoch the page showed is in the driver's checkpoint
    # The task itself was cancelled: nothing keeps the 2 CPUs busy afterwards.
    deadline = time.time() + 30
    while ray_local.available_resources().get("CPU", 0) < 2 and time.time() < deadline:
        time.sleep(0.5)
    assert ray_local.available_resources().get("CPU", 0) == 2

    again = tmp_path / "p2.jsonl"
    _interrupt_after_first_epoch(again)
    assert cli(*args, "--progress-file", str(again)) == 130
    events = read_events(again)
    assert any(f"resuming after epoch {saved}/500" in e.get("message", "") for e in events if e["event"] == "status")
    assert next(e for e in events if e["event"] == "epoch_end")["epoch"] == saved + 1
    assert json.loads((ckpt / "state.json").read_text())["epoch"] > saved


def test_two_node_cluster_needs_no_shared_filesystem(ray_local, tmp_path):
    """Tasks run on the worker node only, train in that node's temp folder, and never see --out."""
    import logging

    from ray.cluster_utils import Cluster

    from fer_core.store.runs import load_run

    ray_local.shutdown()  # the module's local Ray makes way for a cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        worker = cluster.add_node(num_cpus=2)
        worker_tmp = tmp_path / "worker-node-tmp"
        worker_tmp.mkdir()
        ray_local.init(address=cluster.address, log_to_driver=False, logging_level=logging.ERROR,
                       runtime_env={"env_vars": {"TMPDIR": str(worker_tmp), "FER_CACHE_DIR": str(worker_tmp / "cache")}})
        out, progress = tmp_path / "driver-out", tmp_path / "p.jsonl"
        assert cli("--data", "demo", "--demo-per-class", "6", "--demo-size", "48", "--image-size", "48",
                   "--epochs", "1", "--models", "baseline", "--seeds", "0,1", "--engine", "ray",
                   "--out", str(out), "--progress-file", str(progress)) == 0
        ends = [e for e in read_events(progress) if e["event"] == "model_end"]
        assert len(ends) == 2
        for e in ends:
            assert e["node"] == worker.node_id != cluster.head_node.node_id  # trained on the worker node
            assert Path(e["worker_dir"]).parent == worker_tmp and not Path(e["worker_dir"]).exists()  # its own temp, removed
            assert not Path(e["worker_dir"]).is_relative_to(out)
            assert load_run(e["run_dir"]).path.parent == out  # the driver wrote the run
        assert list(worker_tmp.glob("fer-ray-*")) == []  # no task folder left on the worker
    finally:
        ray_local.shutdown()
        cluster.shutdown()
