"""Live page (AppTest): renders with the bundled default, the TURN rule on a non-local address, public-mode limits."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import APP, all_text, assert_clean, data_dir, point_app_at  # noqa: F401
from fer_core.data.defaults import BUNDLED_PREDICT_DEFAULT
from fer_core.store.runs import BUNDLED_DIR
from ui import live

TIMEOUT = 180  # the first run loads the bundled model and warms the face detectors
CLOUD_URL = "https://fer-studio.streamlit.app/live"


class FakeStreamer:
    """Stands in for streamlit-webrtc (AppTest has no WebRTC runtime): records each call, plays when told.

    The page's own ``video_frame_callback`` is kept, so a test sends real ``av.VideoFrame``s through it,
    as streamlit-webrtc's worker would. The real transport is driven in test_live_browser.py.
    """

    def __init__(self):
        self.calls: list[dict] = []
        self.playing = False

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return SimpleNamespace(state=SimpleNamespace(playing=self.playing, signalling=False))

    def send(self, rgb: np.ndarray):
        import av

        return self.calls[-1]["video_frame_callback"](av.VideoFrame.from_ndarray(rgb, format="rgb24"))


@pytest.fixture
def bundled(tmp_path, data_dir, monkeypatch):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    point_app_at(monkeypatch, runs, data_dir, bundled_dir=BUNDLED_DIR)
    for var in ("FER_WEBRTC_ICE_SERVERS", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "FER_PUBLIC",
                "FER_MAX_LIVE_SECONDS", "FER_MAX_LIVE_FPS"):
        monkeypatch.delenv(var, raising=False)
    fake = FakeStreamer()
    monkeypatch.setattr(live, "streamer", fake)
    return fake


def astronaut_640x480() -> np.ndarray:
    from ui.samples import PHOTOS, sample_image

    return np.asarray(sample_image(next(iter(PHOTOS))).convert("RGB").resize((640, 640)))[80:560]


def open_live(url: str | None = None, secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if url:
        at.context["url"] = url
    for k, v in (secrets or {}).items():
        at.secrets[k] = v
    at.run()
    assert_clean(at)
    at.switch_page("pages/live.py").run()
    assert_clean(at)
    return at


def test_renders_locally_and_reads_frames_sent_through_its_callback(bundled):
    at = open_live()
    assert at.title[0].value.startswith("Live")
    assert at.multiselect(key=f"{live.MODELS}_{at.selectbox(key=live.DATASET).value}").value == [BUNDLED_PREDICT_DEFAULT]
    assert "Press Start and allow the camera." in all_text(at)
    assert not at.camera_input and not at.info, [i.value for i in at.info]  # local: no TURN needed, no fallback
    call = bundled.calls[-1]
    assert call["rtc_configuration"] == {"iceServers": []}  # localhost: nothing fetched from the network
    assert call["media_stream_constraints"]["audio"] is False and call["async_processing"] is True
    proc = at.session_state[live.PROCESSOR]["proc"]
    assert proc.max_fps is None and proc.time_limit_s is None  # no limits off a public URL
    # Start: frames go through the page's callback; what comes back is the annotated frame.
    bundled.playing = True
    at.run()
    photo = astronaut_640x480()
    out = None
    for _ in range(20):
        out = bundled.send(photo)
        time.sleep(0.05)
    assert proc.wait_idle(30)
    out = bundled.send(photo).to_ndarray(format="rgb24")
    assert out.shape == photo.shape and not np.array_equal(out, photo)  # boxes drawn on it
    at.run()
    assert_clean(at)
    text = all_text(at)
    assert "frames/s processed" in text and "Face 1: " in text and " %" in text, text
    assert "live_chart" in str([c.proto.id for c in at.get("plotly_chart")])
    # Snapshot keeps the annotated frame.
    at.button(key=live.SNAPSHOT_BUTTON).click().run()
    assert at.session_state[live.SNAPSHOT][:8] == b"\x89PNG\r\n\x1a\n"
    # Stop: the table in the Video page's layout.
    bundled.playing = False
    at.run()
    assert_clean(at)
    assert "Stopped after" in all_text(at) and "This stream's table" in all_text(at)
    table = pd.read_csv(io.BytesIO(live.csv_bytes(proc)))
    from fer_core.inference.rows import columns

    assert list(table.columns) == columns(proc.class_names)
    assert table["time_s"].is_monotonic_increasing and table["time_s"].iloc[0] == 0.0
    assert (table["face_id"] == 1).all() and table["top"].isin(proc.class_names).all()
    # the 8-emotion FER+ model beside the default: a new processor that reads the 8 emotions
    fingerprint = at.selectbox(key=live.DATASET).value
    at.multiselect(key=f"{live.OTHER_MODELS}_{fingerprint}").set_value(["ferplus_x2"]).run()
    assert_clean(at)
    mixed = at.session_state[live.PROCESSOR]["proc"]
    assert mixed is not proc and "contempt" in mixed.class_names and "contempt" not in proc.class_names


def test_non_local_address_without_turn_offers_the_still_camera(bundled):
    at = open_live(CLOUD_URL)
    infos = [i.value for i in at.info]
    assert len(infos) == 1 and "needs a TURN server" in infos[0] and "fer-studio.streamlit.app" in infos[0]
    assert "\n" not in infos[0]  # one line
    assert len(at.camera_input) == 1 and not bundled.calls
    # A STUN server alone is not enough either.
    at = open_live(CLOUD_URL, {"webrtc": {"ice_servers": [{"urls": ["stun:stun.example.org:3478"]}]}})
    assert len(at.camera_input) == 1


def test_non_local_address_with_turn_in_the_secrets_streams(bundled):
    turn = {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}
    at = open_live(CLOUD_URL, {"webrtc": {"ice_servers": [turn]}})
    assert not at.camera_input and not at.info and bundled.calls
    assert bundled.calls[-1]["rtc_configuration"] == {"iceServers": [turn]}


def test_public_mode_limits_and_the_table_after_the_time_limit(bundled, monkeypatch):
    monkeypatch.setenv("FER_PUBLIC", "1")
    at = open_live()
    assert "2 min of streaming per visitor" in all_text(at) and "at most 10 frames read per second" in all_text(at)
    proc = at.session_state[live.PROCESSOR]["proc"]
    assert proc.max_fps == 10 and proc.time_limit_s == 120
    # A 1 s limit, spent by frames fed straight to this session's processor (the browser's part is in
    # test_live_browser.py): the page says why the stream stopped and offers the table.
    monkeypatch.setenv("FER_MAX_LIVE_SECONDS", "1")
    at.run()
    assert_clean(at)
    proc = at.session_state[live.PROCESSOR]["proc"]
    assert proc.time_limit_s == 1
    assert bundled.calls[-1]["media_stream_constraints"]["video"]["frameRate"]["max"] == 10
    photo = astronaut_640x480()
    t0 = time.monotonic()
    while proc.offer(photo) and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert proc.wait_idle(30)
    assert proc.status().limit == "time" and proc.status().frames_processed >= 1
    at.run()
    assert_clean(at)
    text = all_text(at)
    assert "The stream stopped: this public demo streams at most 1 s per visitor" in text
    assert "This stream's table" in text
    csv = at.get("download_button")
    assert any(getattr(b.proto, "label", "") == "Per-frame CSV" for b in csv)
    table = pd.read_csv(io.BytesIO(live.csv_bytes(proc)))
    assert table["face_id"].dropna().eq(1).all() and (table["time_s"] < 1.0 + 1e-6).all()
    # Clear forgets the recording (nothing of it stays); the spent time stays spent for this session.
    at.button(key=live.CLEAR_BUTTON).click().run()
    assert_clean(at)
    assert proc.rows() == [] and "This stream's table" not in all_text(at)
    assert not proc.offer(photo)


def test_transport_rules(monkeypatch):
    assert live.is_local_host("localhost") and live.is_local_host("127.0.0.1") and live.is_local_host("192.168.1.20")
    assert live.is_local_host("10.0.0.3") and live.is_local_host("raspberry.local") and live.is_local_host("::1")
    assert not live.is_local_host("fer-studio.streamlit.app") and not live.is_local_host("8.8.8.8")
    assert live.has_turn([{"urls": ["stun:a"]}, {"urls": ["turns:b:443"]}])
    assert not live.has_turn([{"urls": ["stun:a"]}])
    assert live._plain({"url": "turn:x", "username": "u", "credential": "c"}) == \
        {"urls": ["turn:x"], "username": "u", "credential": "c"}
    monkeypatch.setenv("FER_WEBRTC_ICE_SERVERS", '[{"urls": "turn:t.example.org:3478", "username": "u", "credential": "c"}]')
    servers, problem = live.ice_servers()
    assert problem is None and live.has_turn(servers) and servers[0]["urls"] == ["turn:t.example.org:3478"]
    monkeypatch.setenv("FER_WEBRTC_ICE_SERVERS", "not json")
    servers, problem = live.ice_servers()
    assert servers == [] and "cannot be read" in problem
