"""fer_core.inference.live: latest frame wins, detect every k-th frame, bounded state, rows in the Video page's layout."""

from __future__ import annotations

import io
import threading
import time
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fer_core.inference import rows as rows_mod
from fer_core.faces.detect import Face
from fer_core.inference.live import MAX_HISTORY_FACES, LiveProcessor

CLASSES = ["angry", "happy", "neutral"]


class FakePredictor:
    """predict_faces like Predictor's: [face][model] with .probs; optionally slow; records the crops' count."""

    def __init__(self, delay: float = 0.0):
        self.class_names = list(CLASSES)
        self.delay = delay
        self.calls = 0

    def predict_faces(self, crops):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return [[SimpleNamespace(probs=np.array([0.1, 0.7, 0.2], np.float32))] for _ in crops]


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def marks(x, y, s):
    return {"left_eye": (x + 0.3 * s, y + 0.4 * s), "right_eye": (x + 0.7 * s, y + 0.4 * s),
            "nose": (x + 0.5 * s, y + 0.6 * s), "mouth_left": (x + 0.35 * s, y + 0.8 * s),
            "mouth_right": (x + 0.65 * s, y + 0.8 * s)}


def one_face(x=200, y=100, s=120):
    return lambda rgb: [Face(box=(x, y, s, s), confidence=0.9, landmarks=marks(x, y, s))]


def frame(i: int = 0) -> np.ndarray:
    f = np.full((480, 640, 3), 90, np.uint8)
    f[0, 0, 0] = i % 256  # which frame this is, for the latest-frame test
    return f


def test_latest_frame_wins_no_backlog():
    """A reader slower than the camera skips frames instead of queueing them; the last frame is always read."""
    pred = FakePredictor(delay=0.06)  # ≈ 60 ms per frame, the camera sends one every 10 ms
    seen = []
    proc = LiveProcessor(pred, detect=one_face(), draw=False,
                         on_processed=lambda latency, n: seen.append(latency))
    try:
        for i in range(60):
            assert proc.offer(frame(i))
            time.sleep(0.01)
        assert proc.wait_idle(5)
        s = proc.status()
        assert s.frames_in == 60
        assert s.frames_processed + s.frames_dropped == 60  # every frame either read or replaced, none queued
        # The camera outpaced the reader: the frames it could not read were dropped, not kept.
        assert s.frames_dropped >= 10 and s.frames_processed <= s.elapsed_s / 0.06 + 2, s
        last = proc.rows()[-1]
        assert last["frame"] == 59  # the newest frame was read, not an old one from a queue
        # No backlog: a frame waits at most for the one being read before it, so latency stays near one or two
        # readings (a queue would make it grow to seconds over the 60 frames).
        assert float(np.median(seen)) < 0.06 * 3, seen
    finally:
        proc.close()


def test_offer_never_blocks_while_a_frame_is_read():
    gate, inside = threading.Event(), threading.Event()

    class Stuck(FakePredictor):
        def predict_faces(self, crops):
            inside.set()
            gate.wait(5)
            return super().predict_faces(crops)

    proc = LiveProcessor(Stuck(), detect=one_face(), draw=False)
    try:
        proc.offer(frame(0))
        assert inside.wait(5)
        t0 = time.perf_counter()
        for i in range(1, 30):
            proc.offer(frame(i))
        assert time.perf_counter() - t0 < 0.5  # the worker is stuck in the model; offers return at once
        gate.set()
        assert proc.wait_idle(5)
        s = proc.status()
        assert s.frames_processed == 2 and s.frames_dropped == 28  # the first (being read) and the last
        assert [r["frame"] for r in proc.rows()] == [0, 29]
    finally:
        proc.close()


def test_detect_every_k_tracks_between_and_detects_when_lost():
    calls = []

    def detect(rgb):
        calls.append(1)
        return one_face()(rgb)

    proc = LiveProcessor(FakePredictor(), detect=detect, detect_every=3, threaded=False, draw=False)
    for i in range(9):
        proc.offer(frame(i))
    assert len(calls) == 3  # frames 0, 3, 6
    rows = proc.rows()
    assert [r["face_id"] for r in rows] == [1] * 9  # the tracked frames keep the face and its id
    # No face followed any more: the detector runs on every frame until it finds one again.
    calls.clear()
    proc2 = LiveProcessor(FakePredictor(), detect=lambda rgb: (calls.append(1), [])[1], detect_every=3,
                          threaded=False, draw=False)
    for i in range(4):
        proc2.offer(frame(i))
    assert len(calls) == 4


def test_rows_layout_time_from_stream_start_and_csv():
    clock = Clock()
    faces = {0: one_face()}
    proc = LiveProcessor(FakePredictor(), detect=lambda rgb: faces.get("now", one_face())(rgb), threaded=False,
                         clock=clock, draw=False, detect_every=1)
    for i in range(5):
        if i == 3:
            faces["now"] = lambda rgb: []  # the face leaves: a row with an empty face_id keeps the time
        elif i == 4:
            faces.pop("now")
        proc.offer(frame(i))
        clock.t += 0.1
    rows = proc.rows()
    assert [list(r) for r in rows] == [rows_mod.columns(CLASSES)[:len(rows[0])]] * len(rows)
    assert [r["time_s"] for r in rows][:3] == [0.0, 0.1, 0.2]
    assert rows[3]["face_id"] is None and rows[3]["top"] is None and rows[3]["x"] is None
    assert rows[0]["face_id"] == 1 and rows[0]["top"] == "happy" and rows[0]["happy"] == pytest.approx(0.7)
    assert rows[0]["file"] == "camera" and rows[0]["frame"] == 0 and rows[0]["w"] == rows[0]["h"]
    buf = io.StringIO()
    assert proc.write_csv(buf) == 5
    table = pd.read_csv(io.StringIO(buf.getvalue()))
    assert list(table.columns) == rows_mod.columns(CLASSES)  # the Video page's CSV layout
    assert table["time_s"].is_monotonic_increasing and table["face_id"].isna().sum() == 1


def test_bounded_state_over_a_long_stream():
    """10 simulated minutes at 2 fps with faces coming and going: rows capped, histories ≤ 30 s, memory flat."""
    clock = Clock()
    fps = 2
    n_frames = 10 * 60 * fps
    state = {"i": 0}

    def detect(rgb):  # a new person every 4 s, at a new place (new track ids all the time)
        k = state["i"] // (4 * fps)
        x = 40 + (k * 97) % 400
        return [Face(box=(x, 100, 100, 100), confidence=0.9, landmarks=marks(x, 100, 100)),
                Face(box=(500, 300, 80, 80), confidence=0.9, landmarks=marks(500, 300, 80))]

    proc = LiveProcessor(FakePredictor(), detect=detect, threaded=False, clock=clock, draw=True, max_rows=500)
    tracemalloc.start()
    try:
        for i in range(n_frames):
            state["i"] = i
            proc.offer(frame(i))
            clock.t += 1 / fps
            if i == n_frames // 3:
                tracemalloc.reset_peak()
                early, _ = tracemalloc.get_traced_memory()
        late, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    s = proc.status()
    assert s.frames_processed == n_frames
    assert s.rows == 500 and s.rows_dropped == 2 * n_frames - 500
    hist = proc.history()
    assert len(hist) <= MAX_HISTORY_FACES
    for times, probs in hist.values():
        assert times.max() - times.min() <= 30.0 + 1e-6 and probs.shape[1] == 3
        assert times.max() >= s.elapsed_s - 31
    # Tracks expire after 15 processed frames unseen; a new face every 8 frames: a handful alive, never 150.
    assert len(proc._follow.tracker.tracks) <= 6
    assert late - early < 2_000_000, (early, late)  # the last two thirds of the stream added < 2 MB
    assert peak - early < 8_000_000
    rows = proc.rows()
    assert len(rows) == 500 and rows[-1]["frame"] == n_frames - 1  # the newest rows are the ones kept


def test_frame_rate_cap_and_time_limit():
    clock = Clock()
    proc = LiveProcessor(FakePredictor(), detect=one_face(), threaded=False, clock=clock, draw=False,
                         max_fps=10, time_limit_s=5.0)
    accepted = 0
    for i in range(30 * 8):  # 8 s of a 30 fps camera
        accepted += proc.offer(frame(i))
        clock.t += 1 / 30
    s = proc.status()
    assert s.limit == "time" and not s.running
    assert abs(accepted - 150) <= 1  # 5 s × 30 fps (± the clock's rounding), then refused
    assert 45 <= s.frames_processed <= 51  # 10 a second for 5 s
    # Stop and Start again in the same session: the limit counts every stream of the session.
    proc.end()
    clock.t += 60
    assert not proc.offer(frame(0)) and proc.status().limit == "time"
    # A fresh session's processor carries nothing over, but one built with streamed_s does.
    carried = LiveProcessor(FakePredictor(), detect=one_face(), threaded=False, clock=clock, draw=False,
                            time_limit_s=5.0, streamed_s=proc.streamed_s)
    assert not carried.offer(frame(0))


def test_start_after_stop_is_a_new_recording_and_clear_forgets():
    clock = Clock()
    proc = LiveProcessor(FakePredictor(), detect=one_face(), threaded=False, clock=clock, draw=True)
    for i in range(10):
        proc.offer(frame(i))
        clock.t += 0.1
    proc.end()
    assert len(proc.rows()) == 10 and proc.latest()[0] is not None  # Stop keeps the table for the download
    assert not proc.status().running
    clock.t += 5
    proc.offer(frame(0))
    rows = proc.rows()
    assert len(rows) == 1 and rows[0]["time_s"] == 0.0 and rows[0]["face_id"] == 1
    assert proc.streamed_s == pytest.approx(1.0)  # the first stream's 1 s; the new one just began
    proc.clear()
    assert proc.rows() == [] and proc.latest()[0] is None and proc.history() == {}


def test_worker_thread_ends_when_frames_stop(monkeypatch):
    import fer_core.inference.live as live

    monkeypatch.setattr(live, "IDLE_EXIT_S", 0.2)
    proc = LiveProcessor(FakePredictor(), detect=one_face(), draw=False)
    proc.offer(frame(0))
    assert proc.wait_idle(5)
    deadline = time.time() + 5
    while proc._thread is not None and time.time() < deadline:
        time.sleep(0.05)
    assert proc._thread is None  # a session that went away leaves no thread behind
    proc.offer(frame(1))  # and the next frame starts one again
    assert proc.wait_idle(5) and proc.status().frames_processed == 2
    proc.close()


def test_real_model_reads_the_astronaut():
    """The bundled default through the processor: the face is found, read and drawn."""
    from fer_core import load_run
    from fer_core.data.defaults import BUNDLED_PREDICT_DEFAULT
    from fer_core.inference.predictor import Predictor
    from fer_core.store.runs import BUNDLED_DIR
    from ui.samples import PHOTOS, sample_image

    photo = np.asarray(sample_image(next(iter(PHOTOS))).convert("RGB").resize((640, 640)))[80:560]  # 640×480
    predictor = Predictor([load_run(BUNDLED_DIR / BUNDLED_PREDICT_DEFAULT, bundled=True)])
    proc = LiveProcessor(predictor, threaded=False)
    try:
        for _ in range(4):
            proc.offer(photo)
        s = proc.status()
        assert s.frames_processed == 4 and [f.face_id for f in s.faces] == [1]
        name, p = s.faces[0].top(predictor.class_names)
        assert name in predictor.class_names and 0 < p <= 1
        out, seq = proc.latest()
        assert seq == 4 and out.shape == photo.shape and not np.array_equal(out, photo)  # the box is drawn
        assert all(r["face_id"] == 1 for r in proc.rows())
        assert s.latency_p95_ms is not None and s.latency_p95_ms > 0
    finally:
        predictor.close()


def test_benchmark_runs_streams_through_the_processor():
    """benchmarks/live.py's stream runner on a fake model for a second: its record has what the docs table reads."""
    from benchmarks.live import clip_frames, run_streams

    frames = clip_frames(8)
    assert all(f.shape == (480, 640, 3) for f in frames)
    out = run_streams(FakePredictor(delay=0.01), frames, 2, 1.0, 30, 2)
    assert out["streams"] == 2 and len(out["per_stream"]) == 2 and len(out["rss_mb_by_tenth"]) == 11
    for s in out["per_stream"]:
        assert s["frames_read"] > 0 and s["frames_read"] + s["frames_skipped"] == s["frames_offered"]
        assert s["fps"] > 0 and s["latency_p95_ms"] >= s["latency_p50_ms"] > 0 and s["errors"] is None
