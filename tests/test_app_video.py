"""Video page (AppTest): the sample clip analysed with the bundled model — timelines, shares, CSV — and bad input."""

import io

import numpy as np
import pandas as pd
import pytest

from app_helpers import all_text, arr, data_dir, open_page, plotly_figures, point_app_at  # noqa: F401
from fer_core.store.runs import BUNDLED_DIR

TIMEOUT = 180  # the first run loads the model and warms the face detectors


@pytest.fixture
def bundled(tmp_path, data_dir, monkeypatch):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    point_app_at(monkeypatch, runs, data_dir, bundled_dir=BUNDLED_DIR)


def analyse_sample(at):
    at.segmented_control(key="video_source").set_value("sample").run(timeout=TIMEOUT)
    assert "Press Analyse" in all_text(at)
    at.button(key="video_analyse").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def test_sample_clip_gives_timelines_shares_and_csv(bundled):
    at = open_page("video", timeout=TIMEOUT)
    assert {".mp4", ".mov", ".webm", ".avi", ".gif"} <= set(at.file_uploader(key="video_upload").allowed_type)
    analyse_sample(at)
    result = at.session_state["video_result"]["result"]
    assert result.sample_times == [round(0.2 * i, 3) for i in range(20)]  # 4 s at 5 samples a second
    face = result.timelines[1]  # the astronaut: one id before and after the blur
    assert min(face.times) < 1.6 and max(face.times) >= 2.4 and not any(1.6 <= t < 2.4 for t in face.times)
    timeline = plotly_figures(at, "video_timeline_1")["video_timeline_1"]
    assert [t["name"] for t in timeline["data"]] == result.class_names  # one line per emotion
    ys = [y for t in timeline["data"] for y in arr(t["y"]) if y is not None]
    assert all(0 <= y <= 100 for y in ys)
    assert any(x is None for x in arr(timeline["data"][0]["x"]))  # the line breaks while the face is blurred out
    shares = plotly_figures(at, "video_shares")["video_shares"]
    assert abs(sum(float(arr(t["x"])[0]) for t in shares["data"]) - 100) < 0.01
    csv = pd.read_csv(io.BytesIO(at.session_state["video_result"]["csv"]))
    assert csv["time_s"].is_monotonic_increasing and csv["time_s"].nunique() == 20  # every sampled frame, in order
    blurred = csv[(csv.time_s >= 1.6) & (csv.time_s < 2.4)]
    assert len(blurred) == 4 and blurred["face_id"].isna().all()
    # Smoothing redraws from the kept result: no second analysis.
    at.select_slider(key="video_smooth").set_value(5).run(timeout=TIMEOUT)
    assert at.session_state["video_result"]["result"] is result
    smoothed = plotly_figures(at, "video_timeline_1")["video_timeline_1"]
    assert "moving average of 5 samples" in smoothed["layout"]["title"]["text"]
    assert not np.allclose([y for y in arr(smoothed["data"][0]["y"]) if y is not None],
                           [y for y in arr(timeline["data"][0]["y"]) if y is not None])
    # the 8-emotion FER+ model beside the default: the clip is read in the wider set of emotions
    fingerprint = at.session_state["video_dataset"]
    at.multiselect(key=f"video_other_models_{fingerprint}").set_value(["ferplus_x2"]).run(timeout=TIMEOUT)
    at.button(key="video_analyse").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error, [e.value for e in at.error]
    mixed = at.session_state["video_result"]["result"]
    assert len(mixed.class_names) == 8 and "contempt" in mixed.class_names and len(result.class_names) == 7


def test_corrupt_upload_and_public_seconds_limit(bundled, monkeypatch):
    at = open_page("video", timeout=TIMEOUT)
    garbage = np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes()
    at.file_uploader(key="video_upload").set_value(("party.mp4", garbage, "video/mp4")).run(timeout=TIMEOUT)
    at.button(key="video_analyse").click().run(timeout=TIMEOUT)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("party.mp4: ") and "\n" not in errors[0], errors
    # Public mode with a 1 s limit: only the clip's first second is read, and the page says so.
    monkeypatch.setenv("FER_PUBLIC", "1")
    monkeypatch.setenv("FER_MAX_VIDEO_SECONDS", "1")
    at = open_page("video", timeout=TIMEOUT)
    analyse_sample(at)
    assert at.session_state["video_result"]["result"].sample_times == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert "Only the first 1 s were analysed" in all_text(at)
    # The annotated clip: a new analysis (the setting changes the output), played in the page and downloadable.
    at.toggle(key="video_annotate").set_value(True).run(timeout=TIMEOUT)
    assert "Press Analyse" in all_text(at)
    at.button(key="video_analyse").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["video_result"]["annotated"][4:8] == b"ftyp"  # an mp4
    assert len(at.get("video")) == 1
