"""What a visitor reads when something is refused: one line each, in the app's words (AppTest, public mode).

* a zip bomb: one line, shown once (it used to be a warning and the same text as an error);
* a clip FFmpeg cannot open: no FFmpeg error number or library text;
* the server's upload cap is never below what the page's uploader allows (else the browser shows
  the upload library's raw "AxiosError … 413").
"""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from app_helpers import TIMEOUT, assert_clean, data_dir, open_page, point_app_at  # noqa: F401
from fer_core.store.runs import BUNDLED_DIR
from ui.inference import plain

LIBRARY_WORDS = ("Errno", "Invalid data", "<none>", "Error:", "Exception", "AxiosError", "Traceback")


@pytest.fixture
def public(tmp_path, data_dir, monkeypatch):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    point_app_at(monkeypatch, runs, data_dir, bundled_dir=BUNDLED_DIR)
    for key in ("FER_PREDICTIONS_PER_MINUTE", "FER_MAX_PHOTO_MB", "FER_MAX_VIDEO_MB"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FER_PUBLIC", "1")
    from streamlit import config

    upload_cap = config.get_option("server.maxUploadSize")
    yield monkeypatch
    config.set_option("server.maxUploadSize", upload_cap)


def shown(at) -> list[str]:
    return [e.value for e in list(at.error) + list(at.warning) + list(at.info)]


def test_a_zip_bomb_is_named_once(public):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.png", b"\x89PNG\r\n\x1a\n" + bytes(8 * 2**20))  # 8 MB of zeros: deflates ~1000×
    at = open_page("predict", timeout=TIMEOUT)
    at.file_uploader(key="predict_upload").set_value(("party.zip", buf.getvalue(), "application/zip")).run(
        timeout=TIMEOUT)
    assert_clean(at)
    lines = [line for line in shown(at) if "bomb" in line]
    assert len(lines) == 1, lines
    assert "\n" not in lines[0] and not any(w in lines[0] for w in LIBRARY_WORDS)


def test_a_broken_clip_gets_one_line_without_ffmpeg_text(public):
    clip = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(200_000)  # an MP4 header, then noise
    at = open_page("video", timeout=TIMEOUT)
    at.file_uploader(key="video_upload").set_value(("holiday.mp4", clip, "video/mp4")).run(timeout=TIMEOUT)
    at.button(key="video_analyse").click().run(timeout=TIMEOUT)
    assert_clean(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("holiday.mp4: "), errors
    assert "\n" not in errors[0] and not any(w in errors[0] for w in LIBRARY_WORDS), errors[0]


def test_the_server_cap_follows_the_uploaders_limit(public):
    from streamlit import config

    public.setenv("FER_MAX_PHOTO_MB", "16")  # a deployment that allows larger photos than the default 10 MB
    at = open_page("predict", timeout=TIMEOUT)
    assert_clean(at)
    widget = at.file_uploader(key="predict_upload").proto.max_upload_size_mb
    assert widget == 16 and config.get_option("server.maxUploadSize") >= widget


def test_plain_keeps_the_apps_words_and_cuts_library_text():
    assert plain("a.mp4: cannot open the video, it is corrupt or truncated ([Errno 1094995529] Invalid data found "
                 "when processing input: '<none>')") == "a.mp4: cannot open the video, it is corrupt or truncated"
    own = "x.zip/b.png: expands 1,000× (a possible zip bomb); left out"
    assert plain(own) == own
    assert plain("first line\nsecond line") == "first line"
