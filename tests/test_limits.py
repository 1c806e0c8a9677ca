"""Bounds for anonymous use and one training job per server — unit tests, no TensorFlow, no real trainer.

The rate limiter runs on a fake clock; the face cap on a hand-made result; the
server lock on a stand-in trainer (a Python process that only sleeps), started
into two runs folders.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest

from fer_core import FERError
from fer_core.fit import jobs
from fer_core.inference.predictor import FaceResult, PredictionResult
from ui import access, inference, settings


# --------------------------------------------------------------------------- settings


@pytest.fixture
def no_settings(monkeypatch):
    """No FER_* limit variables and no secrets: the built-in defaults."""
    for key in ("FER_PUBLIC", "FER_MAX_PHOTO_MB", "FER_MAX_MEGAPIXELS", "FER_MAX_FACES",
                "FER_PREDICTIONS_PER_MINUTE", "FER_ADMINS", "FER_REPO_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(settings, "_fer_secrets", lambda: {})
    return monkeypatch


def test_defaults_local_and_public(no_settings):
    assert not settings.public_mode()
    assert settings.limits() == settings.LOCAL_LIMITS
    assert settings.LOCAL_LIMITS.photo_mb == settings.MAX_PHOTO_MB
    no_settings.setenv("FER_PUBLIC", "1")
    assert settings.public_mode() and settings.limits() == settings.PUBLIC_LIMITS
    lim = settings.PUBLIC_LIMITS  # a public URL is stricter on every bound
    assert lim.photo_mb < settings.LOCAL_LIMITS.photo_mb and lim.megapixels < settings.LOCAL_LIMITS.megapixels
    assert 0 < lim.faces < settings.LOCAL_LIMITS.faces
    assert 0 < lim.predictions_per_minute < settings.LOCAL_LIMITS.predictions_per_minute


def test_limits_from_env_then_secrets(no_settings):
    no_settings.setattr(settings, "_fer_secrets", lambda: {"public": True, "max_faces": 3, "max_photo_mb": 5,
                                                           "admins": ["Me@Example.org", " "]})
    assert settings.public_mode()  # from the secrets alone
    assert settings.limits().faces == 3 and settings.limits().photo_mb == 5
    assert settings.admins() == ["me@example.org"]
    no_settings.setenv("FER_MAX_FACES", "4")  # the environment wins over the secrets
    no_settings.setenv("FER_PREDICTIONS_PER_MINUTE", "0")  # 0 = unlimited
    no_settings.setenv("FER_MAX_MEGAPIXELS", "1000")  # never above the decoder's own guard
    assert settings.limits().faces == 4 and settings.limits().predictions_per_minute == 0
    assert settings.limits().megapixels == 40
    no_settings.setenv("FER_MAX_FACES", "many")  # a typo falls back to the default
    assert settings.limits().faces == settings.PUBLIC_LIMITS.faces
    no_settings.setenv("FER_PUBLIC", "0")  # the environment cannot switch off the deployment's secrets
    assert settings.public_mode()


def test_no_secrets_file_is_quiet(monkeypatch, tmp_path, capfd):
    """The real st.secrets with no secrets.toml anywhere: {} without a warning or an exception."""
    from streamlit import config

    monkeypatch.setattr(config, "get_option",
                        lambda key, _orig=config.get_option: [str(tmp_path / "secrets.toml")]
                        if key == "secrets.files" else _orig(key))
    import streamlit as st
    from streamlit.runtime.secrets import Secrets

    monkeypatch.setattr(st, "secrets", Secrets())
    monkeypatch.delenv("FER_PUBLIC", raising=False)
    assert settings._fer_secrets() == {} and not settings.public_mode()
    assert settings.limits() == settings.LOCAL_LIMITS
    err = capfd.readouterr().err  # Streamlit's loggers do not propagate to caplog; they write to stderr
    assert "secret" not in err.lower(), err


# --------------------------------------------------------------------------- rate limit


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_sliding_window_with_a_fake_clock():
    clock = FakeClock()
    window = access.SlidingWindow(3, window=60, clock=clock)
    assert [window.admit() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert window.admit() == 60.0  # full: the oldest leaves the window in 60 s
    clock.t += 45
    assert window.admit() == 15.0  # refused attempts are not recorded
    clock.t += 15
    assert window.admit() == 0.0  # the first three have left; one slot taken again
    assert window.admit() == 0.0 and window.admit() == 0.0
    assert window.admit() > 0
    unlimited = access.SlidingWindow(0, clock=clock)
    assert all(unlimited.admit() == 0.0 for _ in range(1000))


# --------------------------------------------------------------------------- photos


def _face(index: int, box, confidence=0.99) -> FaceResult:
    return FaceResult(index=index, box=box, confidence=confidence, crop=np.zeros((4, 4, 3), np.uint8),
                      predictions=[], ensemble=np.full(8, 0.125, np.float32), class_names=[])


def _result(faces, whole_image=False, faces_found=-1) -> PredictionResult:
    return PredictionResult(image=np.zeros((400, 600, 3), np.uint8), faces=faces, whole_image=whole_image,
                            class_names=[], timings={}, faces_found=faces_found)


def test_face_cap_keeps_the_largest_in_order():
    from fer_core.faces.detect import largest_faces

    faces = [_face(1, (0, 0, 20, 20)), _face(2, (100, 0, 80, 80)), _face(3, (200, 0, 40, 40), 0.95),
             _face(4, (300, 0, 40, 40), 0.99), _face(5, (400, 0, 60, 60))]
    capped = largest_faces(faces, 3)
    assert [f.box[0] for f in capped] == [100, 300, 400]  # 80, 60 px, then the surer of the two 40s, left → right
    assert len(faces) == 5  # the input is untouched
    for cap in (None, 0, 5, 9):  # None/0 = no cap; at or under the cap: every face
        assert largest_faces(faces, cap) == faces


def test_face_cap_note_counts_the_faces_the_predictor_left_out():
    """The Predictor caps before classifying (``max_faces``) and counts every face in ``faces_found``."""
    two = [_face(1, (0, 0, 50, 50)), _face(2, (90, 0, 60, 60))]
    assert _result(two, faces_found=5).cap_note == "5 faces found; the 2 largest were classified."
    assert _result(two[:1], faces_found=5).cap_note == "5 faces found; the largest was classified."
    assert _result(two, faces_found=2).cap_note is None and _result(two).cap_note is None
    assert _result(two[:1], whole_image=True, faces_found=0).cap_note is None


def test_pixel_and_size_limits_name_the_file():
    from PIL import Image

    from app_helpers import png_bytes

    photo = png_bytes(Image.new("RGB", (2000, 1000)))
    inference.check_pixels("wide.png", photo, megapixels=2)  # 2.0 MP: allowed
    with pytest.raises(Exception) as info:
        inference.check_pixels("wide.png", photo, megapixels=1.5)
    assert str(info.value).startswith("wide.png: image is 2000×1000") and "1.5 megapixels" in str(info.value)
    inference.check_pixels("junk.jpg", b"not an image", megapixels=1)  # the decoder will say what is wrong
    with pytest.raises(Exception) as info:
        inference.check_upload_size("big.jpg", bytes(3 * 1024 * 1024), limit_mb=2)
    assert "big.jpg: 3.0 MB is over the 2 MB limit" in str(info.value)


# --------------------------------------------------------------------------- one job per server

#: A stand-in trainer: sleeps until killed (the arguments after -c are ignored).
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture
def sleeper(monkeypatch, tmp_path):
    monkeypatch.setattr(jobs, "TRAINER", SLEEPER)
    monkeypatch.setenv("FER_JOBS_DIR", str(tmp_path / "server"))
    started = []
    yield started
    for job in started:
        job.cancel()


def _wait_dead(job, timeout=10):
    deadline = time.time() + timeout
    while job.is_alive() and time.time() < deadline:
        time.sleep(0.05)
    assert not job.is_alive()


def test_one_training_job_per_server_across_runs_folders(sleeper, tmp_path):
    assert jobs.server_job() is None
    first = jobs.start_job(["--data", "demo"], tmp_path / "runs-a", started_by="ana@lab.org")
    sleeper.append(first)
    assert first.started_by == "ana@lab.org" and json.loads((first.dir / "job.json").read_text())["started_by"]
    assert first.state()["status"] == "running" and first.state()["started_by"] == "ana@lab.org"
    # Another runs folder (another app instance, another FER_RUNS_DIR): still refused, saying who and since when.
    with pytest.raises(FERError) as info:
        jobs.start_job(["--data", "demo"], tmp_path / "runs-b", started_by="ben")
    msg = str(info.value)
    assert "already training on this server" in msg and "\n" not in msg
    assert f"job {first.id} (started by ana@lab.org at {time.strftime('%H:%M', time.localtime(first.created))}" in msg
    assert not (tmp_path / "runs-b" / ".jobs").exists() or not jobs.list_jobs(tmp_path / "runs-b")
    seen = jobs.server_job()
    assert seen is not None and seen.id == first.id and seen.started_by == "ana@lab.org"
    assert jobs.describe_start(seen, now=seen.created + 125).endswith("(2 min ago)")
    # The lock lives in the trainer: killed, it frees the server at once (no stale lock, no cleanup).
    first.cancel()
    _wait_dead(first)
    assert jobs.server_job() is None
    second = jobs.start_job(["--data", "demo"], tmp_path / "runs-b")
    sleeper.append(second)
    assert second.started_by  # default: the Unix user
    assert jobs.server_job().id == second.id


def test_started_text_for_the_page(sleeper, tmp_path):
    from ui import training

    job = jobs.start_job(["--data", "demo"], tmp_path / "runs", started_by="a visitor from 10.0.0.7")
    sleeper.append(job)
    text = training.started_text(job)
    assert text.startswith("Training in progress — started by a visitor from 10.0.0.7 at ")
    assert text.endswith("(just now)")
    assert "10.0.0.7" not in training.started_text(job, who=False)
