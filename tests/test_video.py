"""fer_core.inference.video + fer_core.faces.tracking: rows of a real face through a clip, timestamps, tracks, streaming, bad input.

The clips are built here from the real astronaut photo (ui/assets, public
domain): the camera pans across it and zooms in, and for 0.4 s the view is
blurred so that no face can be found. Nothing is downloaded.
"""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from fer_core import FERError, bundled_runs
from fer_core.inference.rows import columns
from fer_core.faces.tracking import IoUTracker
from fer_core.inference.video import (VideoInputError, VideoStats, analyse_video, clip_from_photo, encode_clip, is_video,
                            iter_video_rows, probe_video)
from ui.samples import PHOTOS

ABSENT = (0.8, 1.2)  # seconds with the view blurred: no face
TIMES = [round(0.2 * i, 3) for i in range(10)]  # 2 s clip sampled at 5 fps


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.open(next(iter(PHOTOS.values()))).convert("RGB"))


@pytest.fixture(scope="module")
def frames(photo) -> list[np.ndarray]:
    return list(clip_from_photo(photo, seconds=2.0, fps=10, size=(320, 240), absent=(ABSENT,)))


@pytest.fixture(scope="module")
def clip(frames) -> bytes:
    return encode_clip(frames, fps=10, container="mp4")


@pytest.fixture(scope="module")
def predictor():
    from fer_core.inference.predictor import Predictor

    runs = [r for r in bundled_runs().runs if r.model_name == "compact"]
    p = Predictor(runs)
    yield p
    p.close()


def test_rows_per_sampled_frame_with_timestamps_tracks_and_no_face_rows(clip, predictor):
    rows = list(iter_video_rows(clip, predictor, fps=5, file_label="pan.mp4"))
    assert all(list(r) == columns(predictor.class_names) for r in rows)  # the shared row layout
    times = [r["time_s"] for r in rows]
    assert times == TIMES  # one row per sampled frame here (one face at most), at 1/5 s of video time
    assert [r["frame"] for r in rows] == list(range(0, 20, 2))  # 10 fps source: every second frame
    assert all(r["file"] == "pan.mp4" for r in rows)
    absent = [r for r in rows if ABSENT[0] <= r["time_s"] < ABSENT[1]]
    present = [r for r in rows if r not in absent]
    assert absent and all(r["face_id"] is None and r["top"] is None and r["x"] is None for r in absent)
    assert len(present) == 8 and {r["face_id"] for r in present} == {1}  # the same id before and after the gap
    for r in present:
        assert abs(sum(r[c] for c in predictor.class_names) - 1) < 1e-3
        assert r["top"] in predictor.class_names and r["w"] == r["h"] > 40
    xs = [r["x"] for r in present]
    assert xs[0] - xs[-1] > 40  # the camera pans right, so the face moves left through the frame


def test_rows_are_streamed_not_decoded_ahead(clip, predictor):
    stats = VideoStats()
    seen = []
    for row in iter_video_rows(clip, predictor, fps=5, stats=stats):
        seen.append((row["frame"], stats.frames_decoded))
    # When the row of frame f arrives, frames 0..f and nothing after have been decoded.
    assert seen and all(decoded == frame + 1 for frame, decoded in seen)


def test_cancel_stops_cleanly_and_progress_runs_to_one(clip, predictor):
    got, progress = [], []
    stats = VideoStats()
    for row in iter_video_rows(clip, predictor, fps=5, stats=stats, should_stop=lambda: len(got) >= 3):
        got.append(row)
    assert len(got) == 3 and stats.cancelled and stats.frames_decoded < 12
    list(iter_video_rows(clip, predictor, fps=2.5, on_progress=progress.append))
    assert progress == sorted(progress) and progress[0] == 0.0 and progress[-1] == 1.0


def test_max_seconds_truncates_and_every_frame_mode(clip, predictor):
    stats, progress = VideoStats(), []
    rows = list(iter_video_rows(clip, predictor, fps=None, max_seconds=0.5, stats=stats, on_progress=progress.append))
    assert [r["time_s"] for r in rows] == [0.0, 0.1, 0.2, 0.3, 0.4]  # fps=None: every frame
    assert stats.truncated and not stats.cancelled and progress[-1] == 1.0


def test_variable_frame_rate_is_sampled_by_presentation_time():
    import av

    times_ms = [0, 50, 90, 260, 330, 410, 990, 1010, 1230]  # irregular, with a 0.58 s gap
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="matroska") as out:
        s = out.add_stream("libx264", rate=1000)  # millisecond ticks: any pts is exact
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        for t in times_ms:
            f = av.VideoFrame.from_ndarray(np.full((64, 96, 3), 120, np.uint8), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)

    class NoFaces:  # a predictor stand-in: nothing is classified when no face is found
        class_names = ["a", "b"]
        runs = []

        def predict_faces(self, crops):
            assert not crops
            return []

    rows = list(iter_video_rows(buf.getvalue(), NoFaces(), fps=5))
    # The first frame at or after 0, 0.2, 0.4, then 0.6 and 0.8 (both: 0.99, kept once), 1.0, 1.2.
    assert [r["time_s"] for r in rows] == [0.0, 0.26, 0.41, 0.99, 1.01, 1.23]
    assert [r["frame"] for r in rows] == [0, 3, 5, 6, 7, 8]
    assert all(r["face_id"] is None for r in rows)


@pytest.mark.parametrize("container", ["mp4", "mov", "mkv", "webm", "avi", "gif"])
def test_containers_are_recognised_and_read(frames, container):
    data = encode_clip(frames[:6], fps=10, container=container)
    assert is_video(data)
    info = probe_video(data)
    assert (info.width, info.height) == (320, 240) and info.duration_s == pytest.approx(0.6, abs=0.11)


def test_photos_and_other_files_are_not_videos(tmp_path, photo):
    def encoded(img, fmt, **kw):
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        return b.getvalue()

    still = Image.fromarray(photo)
    assert not is_video(encoded(still, "JPEG"))
    assert not is_video(encoded(still, "PNG"))
    assert not is_video(encoded(still, "GIF"))  # one frame: a photo
    assert is_video(encoded(still, "GIF", save_all=True, append_images=[still.rotate(5)], duration=100))
    assert not is_video(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")  # HEIC shares MP4's box
    assert not is_video(b"%PDF-1.7\n" + b"x" * 64)
    path = tmp_path / "clip.webm"
    path.write_bytes(encode_clip([photo[:64, :64]] * 3, fps=10, container="webm"))
    assert is_video(path)


def test_bad_input_gives_one_line_errors(clip, predictor, tmp_path, photo):
    jpeg = io.BytesIO()
    Image.fromarray(photo).save(jpeg, "JPEG")
    bad = {
        "random.mp4": np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes(),
        "truncated.mp4": clip[: len(clip) // 2],  # the index (moov) is at the end: cut off
        "garbage.mkv": b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8,
        "photo.mp4": jpeg.getvalue(),
        "empty.mp4": b"",
    }
    for name, data in bad.items():
        with pytest.raises(VideoInputError) as err:
            list(iter_video_rows(data, predictor, file_label=name))
        msg = str(err.value)
        assert msg.startswith(f"{name}: ") and "\n" not in msg, msg
    with pytest.raises(VideoInputError, match=r"^video: \d+\.\d KB is over the 9\.8 KB limit for videos$"):
        list(iter_video_rows(clip, predictor, max_bytes=10_000))
    with pytest.raises(VideoInputError, match="no such file"):
        list(iter_video_rows(tmp_path / "missing.mp4", predictor))
    with pytest.raises(FERError, match="not one of the chosen runs"):
        list(iter_video_rows(clip, predictor, model="vgg19"))
    with pytest.raises(FERError, match="positive"):
        list(iter_video_rows(clip, predictor, fps=0))


def test_analyse_video_timelines_csv_and_browser_playable_annotation(clip, predictor, tmp_path):
    import av

    csv = io.StringIO()
    out = tmp_path / "annotated.mp4"
    result = analyse_video(clip, predictor, fps=5, model="compact", csv_file=csv, annotate_to=out)
    assert result.sample_times == TIMES and not result.cancelled and not result.truncated
    assert list(result.timelines) == [1] and result.timelines[1].array().shape == (8, len(predictor.class_names))
    shares = result.shares()
    assert abs(sum(shares.values()) - 1) < 1e-6 and shares == result.shares(1)
    lines = csv.getvalue().strip().splitlines()
    assert lines[0].split(",") == columns(predictor.class_names) and len(lines) == 1 + result.rows == 11
    with av.open(str(out)) as c:  # H.264 4:2:0 in mp4: what <video> plays in every browser
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        times = [round(float(f.time), 3) for f in c.decode(s)]
    assert times == TIMES  # the annotated frames keep their video times


def test_tracker_keeps_ids_through_motion_crossing_order_and_short_gaps():
    tr = IoUTracker(max_age=2)
    assert tr.update([(0, 0, 50, 50), (200, 0, 50, 50)]) == [1, 2]
    assert tr.update([(215, 5, 50, 50), (20, 5, 50, 50)]) == [2, 1]  # order of detections does not matter
    assert tr.update([(40, 10, 50, 50)]) == [1]  # face 2 missed once
    assert tr.update([(60, 15, 50, 50), (245, 10, 50, 50)]) == [1, 2]  # back within max_age: same id
    for _ in range(3):
        tr.update([(80, 20, 50, 50)])
    assert tr.update([(80, 20, 50, 50), (245, 10, 50, 50)]) == [1, 3]  # gone longer than max_age: a new id
    assert tr.update([(400, 300, 50, 50)]) == [4]  # far away: a new face, never face 1 jumping
