"""Epoch checkpoints: an interrupted scratch training continues where it stopped (fer_core/fit/checkpoints.py)."""

import json

import pytest

from fer_core import list_runs, load_dataset, load_run
from fer_core.fit import checkpoints
from fer_core.fit.progress import ProgressCallback
from fer_core.fit.train import TrainConfig, train_one


class Recorder(ProgressCallback):
    """Keeps every event; raises KeyboardInterrupt (Ctrl-C) once epoch ``stop_after`` is reported."""

    def __init__(self, stop_after: int | None = None):
        self.events, self.stop_after = [], stop_after

    def on_event(self, event: dict) -> None:
        self.events.append(event)
        if event["event"] == "epoch_end" and event["epoch"] == self.stop_after:
            raise KeyboardInterrupt

    def epochs(self):
        return [e["epoch"] for e in self.events if e["event"] == "epoch_end"]


@pytest.fixture(scope="module")
def ds():
    return load_dataset("demo", demo_per_class=8, demo_image_size=48)


def _cfg(**kw):
    base = dict(model="baseline", epochs=4, batch_size=16, image_size=48, patience=0, lr_schedule="cosine", seed=3)
    return TrainConfig(**{**base, **kw})


def test_interrupted_training_resumes_after_its_last_epoch(ds, tmp_path):
    out, cfg = tmp_path / "runs", _cfg()
    first = Recorder(stop_after=2)
    with pytest.raises(checkpoints.TrainingInterrupted, match=r"after epoch 2/4; run the same command again"):
        train_one(ds, cfg, out, progress=first)
    assert first.epochs() == [1, 2] and list_runs(out).runs == []
    (folder,) = (out / checkpoints.CHECKPOINTS).iterdir()
    ck = checkpoints.find(folder)
    assert (ck.epoch, ck.epochs, len(ck.history["loss"])) == (2, 4, 2)
    steps = -(-len(ds.splits["train"][1]) // cfg.batch_size)
    assert int(ck.load_model().optimizer.iterations.numpy()) == 2 * steps  # Adam and the schedule go on, not restart

    again = Recorder()
    path = train_one(ds, cfg, out, progress=again)
    assert again.epochs() == [3, 4]  # only the missing epochs ran
    assert any("resuming after epoch 2/4" in e.get("message", "") for e in again.events)
    run = load_run(path)
    assert run.history["loss"][:2] == ck.history["loss"] and len(run.history["loss"]) == 4
    assert run.metrics["resumed_after_epoch"] == 2 and run.metrics["epochs_run"] == 4
    assert not (out / checkpoints.CHECKPOINTS).exists()  # published run → checkpoint deleted


def test_other_settings_do_not_pick_up_a_checkpoint(ds, tmp_path):
    out = tmp_path / "runs"
    with pytest.raises(checkpoints.TrainingInterrupted):
        train_one(ds, _cfg(), out, progress=Recorder(stop_after=1))
    other = Recorder()
    train_one(ds, _cfg(epochs=2), out, progress=other)
    assert other.epochs() == [1, 2]
    assert len(list((out / checkpoints.CHECKPOINTS).iterdir())) == 1  # the first settings' checkpoint stays


def test_unreadable_checkpoint_means_a_fresh_start(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / checkpoints.STATE_FILE).write_text("{not json")
    assert checkpoints.find(folder) is None
    (folder / checkpoints.STATE_FILE).write_text(json.dumps({"epoch": 1, "epochs": 2, "history": {}}))
    assert checkpoints.find(folder) is None  # no model file


def test_cli_prints_the_resume_note_and_exits_130(monkeypatch, capsys):
    import fer_core.fit.train
    from training import cli

    def interrupted(*a, **k):
        raise checkpoints.TrainingInterrupted("baseline: interrupted after epoch 3/9; run the same command again")

    monkeypatch.setattr(fer_core.fit.train, "train_models", interrupted)
    code = cli.main(["--data", "demo", "--demo-per-class", "4", "--models", "baseline"])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted after epoch 3/9; run the same command again" in err
    assert "Traceback" not in err

