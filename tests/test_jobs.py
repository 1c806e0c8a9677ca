"""fer_core.fit.jobs: training as its own process, followed through its job folder.

Each test starts the real CLI on a tiny demo set (3 images per class, 64 px,
baseline only): a few seconds of CPU each, most of it TensorFlow's import.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from fer_core import FERError, list_runs
from fer_core.fit.jobs import Job, latest_job, list_jobs, start_job

TINY = ["--data", "demo", "--demo-per-class", "3", "--demo-size", "64", "--image-size", "64",
        "--models", "baseline", "--weights", "none", "--batch-size", "8"]


def _wait(job: Job, statuses: tuple[str, ...], timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = job.state()
        if s["status"] in statuses:
            return s
        time.sleep(0.5)
    job.cancel()
    pytest.fail(f"job still {job.state()['status']} after {timeout} s: {job.log_file.read_text()[-2000:]}")


def test_job_trains_to_ok(tmp_path):
    runs = tmp_path / "runs"
    job = start_job([*TINY, "--epochs", "1"], runs)
    assert job.dir == runs.resolve() / ".jobs" / job.id and (job.dir / "job.json").is_file()
    assert job.pid > 0 and job.args[:2] == ["--data", "demo"] and job.created <= time.time()
    s = _wait(job, ("ok", "failed", "cancelled"))
    assert s["status"] == "ok", s["message"]
    assert s["finished_models"][0]["model"] == "baseline" and s["total"] == 1
    assert len(s["history"]["baseline"]["loss"]) == 1
    assert [e["event"] for e in job.events()][0] == "run_start"
    listing = list_runs(runs)
    assert [r.model_name for r in listing.runs] == ["baseline"] and not listing.warnings
    assert latest_job(runs).id == job.id and [j.id for j in list_jobs(runs)] == [job.id]


def test_a_job_with_several_seeds_follows_each_seed_apart(tmp_path):
    """--seeds 0,1: the live curves and the finished table name each seed; no seed's epochs run on from another's."""
    job = start_job([*TINY, "--epochs", "2", "--patience", "0", "--seeds", "0,1"], tmp_path / "runs")
    s = _wait(job, ("ok", "failed", "cancelled"))
    assert s["status"] == "ok", s["message"]
    assert sorted(s["history"]) == ["baseline · seed 0", "baseline · seed 1"]
    assert all(len(h["loss"]) == 2 for h in s["history"].values())
    assert [f["label"] for f in s["finished_models"]] == ["baseline · seed 0", "baseline · seed 1"]
    assert [f["model"] for f in s["finished_models"]] == ["baseline", "baseline"] and s["total"] == 2


def test_second_start_refused_and_cancel_leaves_nothing(tmp_path):
    runs = tmp_path / "runs"
    # 500 tiny epochs take ~27 s here: a slow moment between "epoch 1 seen" and the cancel let one CI run
    # finish them all ("ok"). 100,000 cannot finish first, so only the cancel can end this job.
    job = start_job([*TINY, "--epochs", "100000", "--patience", "0"], runs)
    with pytest.raises(FERError) as info:
        start_job([*TINY, "--epochs", "1"], runs)
    assert "already training" in str(info.value) and "\n" not in str(info.value)
    deadline = time.time() + 180
    while job.state()["epoch"] < 1:  # inside model.fit, well before the run would be saved
        assert job.state()["status"] == "running", job.state()["message"]
        assert time.time() < deadline, job.log_file.read_text()[-2000:]
        time.sleep(0.5)
    s = job.state()  # followed live: the current model, its epochs and the history so far
    assert s["current_model"] == "baseline" and s["total"] == 1 and s["epochs"] == 100000
    assert len(s["history"]["baseline"]["loss"]) == s["epoch"] >= 1
    job.cancel()
    s = _wait(job, ("cancelled", "failed", "ok"), timeout=90)
    assert s["status"] == "cancelled", s["message"]
    deadline = time.time() + 30
    while job.is_alive() and time.time() < deadline:  # run_end is written just before exit
        time.sleep(0.2)
    assert not job.is_alive()
    assert not list(runs.glob(".tmp-*")), "the half-written run folder must be removed"
    assert not list_runs(runs).runs and not [p for p in runs.iterdir() if not p.name.startswith(".")]
    assert len(list_jobs(runs)) == 1


def test_cli_failure_reported_in_one_line(tmp_path):
    runs = tmp_path / "runs"
    job = start_job(["--data", str(tmp_path / "nope.npz"), "--models", "baseline", "--epochs", "1"], runs)
    s = _wait(job, ("ok", "failed", "cancelled"), timeout=120)
    assert s["status"] == "failed"
    assert "nope.npz" in s["message"] and "no such file" in s["message"] and "\n" not in s["message"]


def test_bad_option_fails_with_the_cli_error(tmp_path):
    """argparse exits before any progress event: the reason comes from stderr."""
    job = start_job(["--data", "demo", "--epochs", "many"], tmp_path / "runs")
    s = _wait(job, ("ok", "failed", "cancelled"), timeout=60)
    assert s["status"] == "failed" and "--epochs" in s["message"] and "\n" not in s["message"]


def test_killed_job_is_reported_as_failed_and_frees_the_folder(tmp_path):
    runs = tmp_path / "runs"
    job = start_job([*TINY, "--epochs", "1"], runs)
    time.sleep(1.0)
    os.kill(job.pid, signal.SIGKILL)
    s = _wait(job, ("failed",), timeout=30)
    assert "stopped unexpectedly" in s["message"] and "\n" not in s["message"]
    job2 = start_job([*TINY, "--epochs", "1"], runs)
    s = _wait(job2, ("ok", "failed"), timeout=180)
    assert s["status"] == "ok", s["message"]
    assert [f["model"] for f in s["finished_models"]] == ["baseline"]
