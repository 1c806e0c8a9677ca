"""What one clip may cost in public mode (issue 28): frames scaled before detection, samples and decoding bounded.

The clip is built here from the real astronaut photo (ui/assets); the arithmetic of the bounds is
checked on the engine (fer_core.inference.video) and on what the page passes it (ui.video.bounds).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fer_core import bundled_runs
from fer_core.inference.video import (MIN_FRAME_CHARGE, VideoStats, analyse_video, clip_from_photo, encode_clip, frame_size,
                            iter_video_rows)
from ui import settings
from ui.samples import PHOTOS
from ui.video import FPS_CHOICES, bounds, fps_choices


@pytest.fixture(scope="module")
def clip() -> bytes:
    photo = np.asarray(Image.open(next(iter(PHOTOS.values()))).convert("RGB"))
    return encode_clip(clip_from_photo(photo, seconds=2.0, fps=10, size=(640, 480)), fps=10, container="mp4")


@pytest.fixture(scope="module")
def predictor():
    from fer_core.inference.predictor import Predictor

    p = Predictor([r for r in bundled_runs().runs if r.model_name == "compact"])
    yield p
    p.close()


def test_frame_size_scales_the_longer_side_only_down():
    assert frame_size(3840, 2160, 960) == (960, 540)
    assert frame_size(2160, 3840, 960) == (540, 960)  # portrait
    assert frame_size(640, 480, 960) == (640, 480)  # never up
    assert frame_size(3840, 2160, None) == (3840, 2160) and frame_size(3840, 2160, 0) == (3840, 2160)


def test_public_bounds_cap_samples_side_and_decoding(monkeypatch):
    monkeypatch.setenv("FER_PUBLIC", "1")
    for key in ("MAX_VIDEO_FPS", "MAX_VIDEO_SIDE", "MAX_VIDEO_MEGAPIXELS", "MAX_VIDEO_SECONDS", "MAX_VIDEO_FACES",
                "MAX_FACES"):
        monkeypatch.delenv(f"FER_{key}", raising=False)
    limits = settings.limits()
    assert fps_choices(limits) == [f for f in FPS_CHOICES if f <= limits.video_fps] and max(fps_choices(limits)) == 5
    b = bounds(limits, 10.0)  # a rate the page does not offer in public mode is capped all the same
    assert b["fps"] == 5.0 and b["max_side"] == 960 and b["max_seconds"] == 30 and b["max_faces"] == 4
    assert b["max_pixels"] == int(limits.video_megapixels * 1e6)
    # The worst clip by construction: at most 30 s × 5 samples of a 960 px frame, and the decode budget.
    assert b["max_seconds"] * b["fps"] == 150
    assert b["max_pixels"] // (3840 * 2160) * 3840 * 2160 <= b["max_pixels"]
    monkeypatch.setenv("FER_MAX_VIDEO_FPS", "2")
    assert bounds(settings.limits(), 5.0)["fps"] == 2.0


def test_local_mode_leaves_video_unbounded_but_for_seconds(monkeypatch):
    monkeypatch.delenv("FER_PUBLIC", raising=False)
    b = bounds(settings.limits(), 10.0)
    assert b["fps"] == 10.0 and b["max_side"] is None and b["max_pixels"] is None


def test_decode_budget_stops_the_read_and_counts_small_frames_at_the_floor(clip, predictor):
    stats = VideoStats()
    budget = 7 * MIN_FRAME_CHARGE  # 640×480 frames count 307,200 each (over the floor): 5 fit in 7 × 230,400
    rows = list(iter_video_rows(clip, predictor, fps=None, max_pixels=budget, stats=stats))
    assert stats.truncated and stats.frames_decoded == 5 == len({r["frame"] for r in rows})
    assert stats.decoded_pixels == 5 * 640 * 480 <= budget
    assert stats.seconds == pytest.approx(0.5, abs=0.01)  # the stop: the sixth frame's time
    tiny = VideoStats()
    frames = [np.full((48, 64, 3), 100, np.uint8)] * 10
    list(iter_video_rows(encode_clip(frames, fps=10), predictor, fps=None, max_pixels=3 * MIN_FRAME_CHARGE,
                         stats=tiny))
    assert tiny.frames_decoded == 3 and tiny.decoded_pixels == 3 * MIN_FRAME_CHARGE  # the floor, not 64×48


def test_max_side_scales_frames_but_the_csv_keeps_source_pixels(clip, predictor, tmp_path):
    full = analyse_video(clip, predictor, fps=5)
    rows_full = list(iter_video_rows(clip, predictor, fps=5))
    small = analyse_video(clip, predictor, fps=5, max_side=320, annotate_to=tmp_path / "a.mp4")
    rows_small = list(iter_video_rows(clip, predictor, fps=5, max_side=320))
    assert small.stats.frames_sampled == full.stats.frames_sampled == 10
    faced = [(a, b) for a, b in zip(rows_full, rows_small) if a["face_id"] != "" and b["face_id"] != ""]
    assert faced, "the astronaut is found in the 320 px frames too"
    for a, b in faced:  # boxes of the 320 px frame, mapped back to the 640 px source: within a few pixels
        assert abs(a["x"] - b["x"]) <= 12 and abs(a["w"] - b["w"]) <= 16, (a, b)
    import av

    with av.open(str(small.annotated)) as c:  # the annotated clip is drawn on the scaled frames
        assert max(c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) <= 320
