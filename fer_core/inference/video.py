"""Reading expressions through a video: decode → sample → detect → track → classify, streamed.

The pipeline, in the order it runs for each frame (PyAV's cookbook reader,
then the photo pipeline of :mod:`fer_core.inference.predictor` per sampled frame)::

    file / bytes → PyAV demux + decode, one frame at a time          _sampled_frames
    → keep the first frame at or after each 1/fps of VIDEO time      (pts × time_base, never a
      (variable frame rates and gaps stay honest)                      constant rate assumed)
    → upright RGB (H, W, 3) uint8 of that frame only
    → faces (x, y, w, h)                                              faces.detect_faces
      (or, between detections, the tracks' predicted boxes)          tracking.IoUTracker.coast
    → face ids kept across frames                                    tracking.IoUTracker.update
    → square crops → every model in one compiled call               Predictor.predict_faces
    → one row per face per sampled frame (+ one for a frame without) rows.face_row / no_face_row

Why streamed: a clip of any length costs the memory of one frame and the
live tracks. :func:`iter_video_rows` is a generator that decodes the next
frame only when the caller asks for the next row, and :func:`analyse_video`
writes the CSV and the annotated video as it goes; only the per-face
timelines (a few floats per sample) are kept for the page's charts.

Public API: :func:`is_video`, :func:`iter_video_rows` (the ``python -m
predict`` CLI uses it), :func:`analyse_video` (the Video page),
:func:`probe_video`, :func:`clip_from_photo` (sample clips and tests).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import FERError, ImageInputError
from ..faces import align as _align
from ..faces.align import align_face, move_landmarks
from ..faces.detect import crop_face, detect_faces, largest_faces, square_box
from .rows import face_row, no_face_row, write_csv
from ..faces.tracking import IoUTracker

#: Sampling rate of video time when the caller gives none: enough to follow an
#: expression (they last 0.5–4 s) at a fifth of the work of a 25 fps clip.
DEFAULT_FPS = 5.0
#: Run the detector on every k-th sampled frame and track in between. 1 (detect
#: every sample) is the measured choice (``benchmarks/video.py``, 60 s 720p clip of
#: two moving FER2013 faces): k = 2 costs 41 % less CPU and matches the faces'
#: labels as often (0.626 vs 0.617), but reproduces only 91 % of k = 1's face rows
#: (a predicted box drifts off a moving face), gives another top emotion on 12 %
#: of them and reports 39 rows for faces that had left; k = 3 loses a third of them.
#: The declared rule (≥ 1.3× less CPU and ≥ 98 % / 97 % agreement) keeps k = 1.
DEFAULT_DETECT_EVERY = 1
#: Largest frame decoded (width × height): 4K UHD. Larger streams are refused.
MAX_VIDEO_PIXELS = 3840 * 2160
#: What one decoded frame counts against a ``max_pixels`` budget at least: decoding has a per-frame cost
#: too, so a tiny clip at hundreds of frames per second is bounded like a 360p one.
MIN_FRAME_CHARGE = 640 * 360
#: What the page and the CLI say they accept; the content decides (:func:`is_video`), not the name.
VIDEO_TYPES = ["mp4", "mov", "m4v", "webm", "mkv", "avi", "gif"]
#: Bytes of a file's head that :func:`is_video` needs for every format but GIF.
HEAD_BYTES = 64 * 1024

# ISO-BMFF brands that are still images (HEIC/HEIF/AVIF photos share MP4's container).
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis",
                 b"jpeg", b"avci"}
# Top-level QuickTime atoms an old .mov may start with instead of ``ftyp``.
_MOV_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


class VideoInputError(ImageInputError):
    """A video that cannot be read: corrupt, truncated, not a video, no video stream, over a limit."""


# --------------------------------------------------------------------------- what is a video


def _head(source, n: int = HEAD_BYTES) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[:n])
    try:
        with open(source, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _animated_gif(source, head: bytes) -> bool:
    """More than one frame in a GIF (a path or the whole bytes; else a head that holds two frames).

    Pillow's ``is_animated`` reads up to the second frame's header only, so a
    large GIF on disk is never loaded whole.
    """
    from PIL import Image

    whole = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else None
    try:
        with Image.open(io.BytesIO(whole) if whole is not None else source) as img:
            return bool(getattr(img, "is_animated", False))
    except Exception:  # noqa: BLE001 - a truncated head: count the per-frame control blocks instead
        return head.count(b"\x21\xf9\x04") >= 2


def is_video(source) -> bool:
    """Does ``source`` (a path, or the file's bytes or first bytes) hold a video, judged by content?

    MP4/MOV/M4V (an ``ftyp`` box whose brand is not a still image such as
    HEIC or AVIF, or a QuickTime atom), WebM/MKV (EBML), AVI (``RIFF....AVI``)
    and GIFs with more than one frame. A single-frame GIF is a photo.
    """
    head = _head(source)
    if len(head) < 12:
        return False
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    if head[4:8] in _MOV_ATOMS:
        return True
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return True
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return True
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _animated_gif(source, head)
    return False


# --------------------------------------------------------------------------- opening


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a clip (``duration_s`` None when it does not say)."""

    width: int
    height: int
    duration_s: float | None
    average_fps: float | None
    codec: str
    format: str
    frames: int | None  # as declared by the container (often 0/None for WebM and GIF)


def _label(source, file_label: str | None) -> str:
    if file_label:
        return file_label
    return Path(source).name if isinstance(source, (str, Path)) else "video"


def _size(n: int) -> str:
    """Bytes as people read them: ``9.8 KB``, ``12.3 MB``, ``200 MB``."""
    mb = n / 1024 / 1024
    return f"{n / 1024:.1f} KB" if mb < 1 else f"{mb:.1f} MB".replace(".0 MB", " MB")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def open_video(source, *, file_label: str | None = None, max_bytes: int | None = None):
    """``(container, stream, info)`` of a path or bytes; every failure is a one-line :class:`VideoInputError`.

    Checks, before FFmpeg parses more than the header: the size (``max_bytes``),
    that the content is a video (:func:`is_video` — FFmpeg would otherwise
    open anything it has a demuxer for), that there is a video stream and
    that its frames are not over :data:`MAX_VIDEO_PIXELS`.
    """
    import av

    label = _label(source, file_label)
    if isinstance(source, (bytes, bytearray, memoryview)):
        size = len(source)
        opener = lambda: av.open(io.BytesIO(bytes(source)), mode="r")  # noqa: E731
    else:
        path = Path(source)
        if not path.is_file():
            raise VideoInputError(f"{label}: no such file")
        size = path.stat().st_size
        opener = lambda: av.open(str(path), mode="r")  # noqa: E731
    if size == 0:
        raise VideoInputError(f"{label}: the file is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise VideoInputError(f"{label}: {_size(size)} is over the {_size(max_bytes)} limit for videos")
    if not is_video(source):
        raise VideoInputError(f"{label}: not a video this app reads; use MP4, MOV, WebM, MKV, AVI or an "
                              "animated GIF")
    try:
        container = opener()
    except av.FFmpegError as exc:
        raise VideoInputError(f"{label}: cannot open the video, it is corrupt or truncated "
                              f"({_one_line(exc)})") from None
    try:
        if not container.streams.video:
            raise VideoInputError(f"{label}: the file holds no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        w, h = int(ctx.width or 0), int(ctx.height or 0)
        if w <= 0 or h <= 0:
            raise VideoInputError(f"{label}: the video stream has no frame size (corrupt header)")
        if w * h > MAX_VIDEO_PIXELS:
            raise VideoInputError(f"{label}: frames are {w}×{h}, over the 3840×2160 (4K) limit")
        stream.thread_type = "AUTO"  # frame + slice threads: decoding uses the machine's cores
        yield container, stream, _info(container, stream)
    finally:
        container.close()


def _info(container, stream) -> VideoInfo:
    import av

    duration = None
    if container.duration:
        duration = container.duration / av.time_base
    elif stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(width=int(stream.codec_context.width), height=int(stream.codec_context.height),
                     duration_s=None if duration is None else round(float(duration), 3),
                     average_fps=float(rate) if rate else None, codec=stream.codec_context.name,
                     format=container.format.name, frames=int(stream.frames) or None)


def probe_video(source, *, file_label: str | None = None, max_bytes: int | None = None) -> VideoInfo:
    """The clip's size, duration and codec from its header, without decoding a frame."""
    with open_video(source, file_label=file_label, max_bytes=max_bytes) as (_, _, info):
        return info


# --------------------------------------------------------------------------- sampling


@dataclass
class VideoStats:
    """Where the time went (seconds) and how much was done; filled in while a clip is read."""

    decode: float = 0.0  # demux + decode + conversion of sampled frames to RGB
    detect: float = 0.0
    track: float = 0.0
    classify: float = 0.0  # crops + every model's compiled call
    frames_decoded: int = 0
    frames_sampled: int = 0
    detections: int = 0  # sampled frames the detector ran on
    faces: int = 0  # face rows
    truncated: bool = False  # stopped at max_seconds (or the max_pixels budget) before the clip's end
    seconds: float = 0.0  # video time read: the last sampled frame's time (the stop, when truncated)
    decoded_pixels: int = 0  # what the decoded frames counted against max_pixels (each ≥ MIN_FRAME_CHARGE)
    cancelled: bool = False  # should_stop() asked to stop

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@dataclass
class SampledFrame:
    index: int  # 0-based index of the frame among all decoded frames of the stream
    time_s: float  # presentation time, seconds from the first frame
    rgb: np.ndarray  # (H, W, 3) uint8, upright


def _upright(rgb: np.ndarray, rotation) -> np.ndarray:
    """Apply the stream's display rotation (phones store portrait clips as rotated landscape frames).

    FFmpeg's display matrix angle is counter-clockwise; ``np.rot90`` turns
    counter-clockwise for positive k, so k = angle / 90.
    """
    k = int(round(float(rotation or 0) / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def frame_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(W, H) a decoded frame is converted to: its own, or scaled so the longer side is ``max_side``."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(2, round(width * scale)), max(2, round(height * scale))


def _sampled_frames(container, stream, *, fps: float | None, max_seconds: float | None,
                    should_stop: Callable[[], bool] | None, stats: VideoStats, label: str,
                    max_side: int | None = None, max_pixels: int | None = None) -> Iterator[SampledFrame]:
    """The first decoded frame at or after each multiple of 1/fps (every frame when ``fps`` is None).

    Times come from each frame's pts × time_base, relative to the first
    frame, so a variable-rate clip (phones, screen recordings) or one with
    gaps is sampled at true video time; a frame without pts falls back to
    its index over the stream's average rate. Only sampled frames are
    converted to RGB: the others cost their decode alone.

    ``max_side``: sampled frames are scaled by FFmpeg's swscale during the RGB
    conversion so their longer side is at most this. A 4K frame's full RGB
    conversion alone cost 69 ms here, scaled to 960 px 7 ms; the detector reads
    a 960 px copy anyway. ``max_pixels``: stop (``stats.truncated``) once the
    decoded frames' pixels (each at least :data:`MIN_FRAME_CHARGE`) pass it,
    which bounds the decode cost whatever the clip's size and frame rate.
    """
    import av

    rate = float(stream.average_rate or stream.guessed_rate or 25)
    eps = 1e-3  # pts rounding: a frame at 0.19999 s is the 0.2 s sample
    next_t, t_first, index = 0.0, None, -1
    frames = container.decode(stream)
    while True:
        if should_stop is not None and index % 8 == 7 and should_stop():  # also while skipping frames
            stats.cancelled = True
            return
        t0 = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.FFmpegError as exc:
            at = f" after {index + 1} frames" if index >= 0 else ""
            raise VideoInputError(f"{label}: the video could not be decoded{at}, it is corrupt or truncated "
                                  f"({_one_line(exc)})") from None
        finally:
            stats.decode += time.perf_counter() - t0
        index += 1
        t = frame.time if frame.time is not None else index / rate
        if t_first is None:
            t_first = t
        rel = max(0.0, float(t - t_first))
        if max_seconds is not None and rel >= max_seconds - eps:
            stats.truncated, stats.seconds = True, rel
            return
        charge = max(int(frame.width) * int(frame.height), MIN_FRAME_CHARGE)
        if max_pixels is not None and stats.decoded_pixels + charge > max_pixels:
            stats.truncated, stats.seconds = True, rel
            return
        stats.frames_decoded += 1
        stats.decoded_pixels += charge
        if fps and rel < next_t - eps:
            continue  # between samples: decoded (later frames need it), never converted
        if fps:
            next_t = (math.floor(rel * fps + eps) + 1) / fps
        if should_stop is not None and should_stop():
            stats.cancelled = True
            return
        t0 = time.perf_counter()
        w, h = frame_size(int(frame.width), int(frame.height), max_side)
        if (w, h) == (frame.width, frame.height):
            raw = frame.to_ndarray(format="rgb24")
        else:
            raw = frame.to_ndarray(width=w, height=h, format="rgb24", interpolation="AREA")
        rgb = _upright(raw, getattr(frame, "rotation", 0))  # (H, W, 3) uint8
        stats.decode += time.perf_counter() - t0
        stats.frames_sampled += 1
        stats.seconds = rel
        yield SampledFrame(index=index, time_s=rel, rgb=rgb)


# --------------------------------------------------------------------------- faces through time


@dataclass
class TrackedFace:
    face_id: int  # track id, 1-based, stable across frames
    box: tuple[int, int, int, int]  # (x, y, s, s) square crop that was classified, pixels of FrameFaces.rgb
    probs: np.ndarray  # (C,) ensemble mean, or the requested model's
    detected: bool  # False: the box was predicted by the tracker between detections


@dataclass
class FrameFaces:
    index: int
    time_s: float
    faces: list[TrackedFace]  # ordered by face_id
    rgb: np.ndarray  # (H, W, 3) uint8 of this frame (for drawing; dropped by the row stream)
    scale: float = 1.0  # rgb's pixels per source pixel (< 1 when max_side scaled the frame down)

    def source_box(self, box) -> tuple[int, int, int, int]:
        """A box of :attr:`rgb` in the source video's pixels (what the CSV records)."""
        return box if self.scale == 1.0 else tuple(int(round(v / self.scale)) for v in box)


def _model_picker(predictor, model: str | None):
    """A function [ModelPrediction] → (C,) probabilities: the mean over models, or one requested model's."""
    if model is None:
        return lambda preds: np.mean([p.probs for p in preds], axis=0)
    known = {r.id: r.id for r in predictor.runs} | {r.model_name: r.id for r in predictor.runs}
    if model not in known:
        raise FERError(f"model '{model}' is not one of the chosen runs: {', '.join(r.id for r in predictor.runs)}")
    run_id = known[model]
    return lambda preds: next(p.probs for p in preds if p.run_id == run_id)


def iter_video_frames(source, predictor, *, fps: float | None = DEFAULT_FPS, file_label: str | None = None,
                      on_progress: Callable[[float], None] | None = None,
                      should_stop: Callable[[], bool] | None = None, max_seconds: float | None = None,
                      max_bytes: int | None = None, max_faces: int | None = None, model: str | None = None,
                      detect_every: int = DEFAULT_DETECT_EVERY, stats: VideoStats | None = None,
                      info_out: list | None = None, max_side: int | None = None,
                      max_pixels: int | None = None) -> Iterator[FrameFaces]:
    """The faces of each sampled frame, tracked and classified; one :class:`FrameFaces` at a time.

    ``detect_every`` k > 1 runs the detector on every k-th sample only (and
    on any sample while no face is being tracked); in between, each face is
    classified at the box its track predicts. ``stats`` (a
    :class:`VideoStats`) is filled in as the clip is read; ``info_out``, a
    list, receives the :class:`VideoInfo` before the first frame.
    ``max_side`` / ``max_pixels``: see :func:`_sampled_frames` (a public
    server's bound on what one clip may cost).
    """
    if fps is not None and not fps > 0:
        raise FERError(f"the sampling rate must be a positive number of frames per second, not {fps}")
    if detect_every < 1:
        raise FERError(f"detect_every must be 1 or more, not {detect_every}")
    stats = stats if stats is not None else VideoStats()
    label = _label(source, file_label)
    pick = _model_picker(predictor, model)
    # 1 s of absence keeps a face's id; at least 2 samples, and never less than the detection gap.
    tracker = IoUTracker(max_age=max(2, detect_every, int(round((fps or 5.0) * 1.0))))
    landmarks_of: dict[int, tuple] = {}  # track id → (box, landmarks) at its last detection
    with open_video(source, file_label=file_label, max_bytes=max_bytes) as (container, stream, info):
        if info_out is not None:
            info_out.append(info)
        span = info.duration_s
        if max_seconds is not None:
            span = min(span, max_seconds) if span else max_seconds
        sampled = _sampled_frames(container, stream, fps=fps, max_seconds=max_seconds, should_stop=should_stop,
                                  stats=stats, label=label, max_side=max_side, max_pixels=max_pixels)
        scale = frame_size(info.width, info.height, max_side)[0] / info.width
        with closing(sampled):
            for n, frame in enumerate(sampled):
                rgb = frame.rgb
                t0 = time.perf_counter()
                detect = n % detect_every == 0 or not any(t.missed == 0 for t in tracker.tracks)
                if detect:
                    # no second looks on frames: they can add half a pass per frame, and the public
                    # bound on a clip's CPU (benchmarks/video.py --public-worst) was measured without them
                    found = largest_faces(detect_faces(rgb, second_look=False), max_faces)
                    stats.detections += 1
                    t1 = time.perf_counter()
                    ids = tracker.update([f.box for f in found])
                    raw = [f.box for f in found]
                    flags = [True] * len(found)
                    marks = [f.landmarks for f in found]
                    seen = {i: (f.box, f.landmarks) for i, f in zip(ids, found) if f.landmarks}  # for the tracked samples
                    alive = {t.id for t in tracker.tracks}
                    landmarks_of = {**{k: v for k, v in landmarks_of.items() if k in alive}, **seen}
                else:
                    t1 = time.perf_counter()
                    live = tracker.coast()
                    ids, raw, flags = [t.id for t in live], [t.box for t in live], [False] * len(live)
                    marks = [move_landmarks(landmarks_of[t.id][1], landmarks_of[t.id][0], t.box)
                             if t.id in landmarks_of else None for t in live]
                t2 = time.perf_counter()
                boxes = [square_box(b, rgb.shape) for b in raw]
                keep = [i for i, b in enumerate(boxes) if b[2] > 0 and b[3] > 0]
                aligned = _align.ALIGN_FACES
                preds = predictor.predict_faces([align_face(rgb, marks[i]) if aligned and marks[i] else crop_face(rgb, boxes[i])
                                                 for i in keep])
                faces = sorted((TrackedFace(face_id=ids[i], box=boxes[i], probs=np.asarray(pick(p), np.float32),
                                            detected=flags[i]) for i, p in zip(keep, preds)),
                               key=lambda f: f.face_id)
                t3 = time.perf_counter()
                stats.detect += t1 - t0
                stats.track += t2 - t1
                stats.classify += t3 - t2
                stats.faces += len(faces)
                if on_progress is not None and span:
                    on_progress(min(1.0, frame.time_s / span))
                yield FrameFaces(index=frame.index, time_s=frame.time_s, faces=faces, rgb=rgb, scale=scale)
    if on_progress is not None:
        on_progress(1.0)


def frame_rows(frame: FrameFaces, class_names, file: str) -> list[dict]:
    """The table rows of one sampled frame: one per face, or one with an empty face_id when there is none."""
    if not frame.faces:
        return [no_face_row(file=file, class_names=class_names, frame=frame.index, time_s=frame.time_s)]
    return [face_row(file=file, class_names=class_names, probs=f.probs, box=frame.source_box(f.box), face_id=f.face_id,
                     frame=frame.index, time_s=frame.time_s) for f in frame.faces]


def iter_video_rows(source, predictor, *, fps: float | None = DEFAULT_FPS, file_label: str | None = None,
                    on_progress: Callable[[float], None] | None = None, should_stop: Callable[[], bool] | None = None,
                    max_seconds: float | None = None, max_bytes: int | None = None, max_faces: int | None = None,
                    model: str | None = None, detect_every: int = DEFAULT_DETECT_EVERY,
                    stats: VideoStats | None = None, max_side: int | None = None,
                    max_pixels: int | None = None) -> Iterator[dict]:
    """Rows (:mod:`fer_core.inference.rows` layout) of a clip, streamed: one per face per sampled frame.

    ``source``: a path or the file's bytes. ``fps``: samples per second of
    video time (None: every frame). ``on_progress(fraction)``: 0..1 of the
    clip's duration (or of ``max_seconds``) after each sampled frame, then
    1.0. ``should_stop()``: True ends the stream cleanly (the rows so far
    stand). ``max_seconds``: analyse only the clip's first seconds.
    ``model``: one run's probabilities (its id or model name) instead of the
    ensemble mean. A frame without a face gives one row with an empty
    ``face_id``. Bad input raises :class:`VideoInputError` (one line).
    """
    file = file_label or _label(source, None)
    classes = predictor.class_names
    for frame in iter_video_frames(source, predictor, fps=fps, file_label=file_label, on_progress=on_progress,
                                   should_stop=should_stop, max_seconds=max_seconds, max_bytes=max_bytes,
                                   max_faces=max_faces, model=model, detect_every=detect_every, stats=stats,
                                   max_side=max_side, max_pixels=max_pixels):
        yield from frame_rows(frame, classes, file)


# --------------------------------------------------------------------------- the page's result


@dataclass
class Timeline:
    """One face's probabilities through the clip: ``times`` (T,) seconds, ``probs`` (T, C)."""

    face_id: int
    times: list[float] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)

    def array(self) -> np.ndarray:
        return np.asarray(self.probs, np.float32).reshape(len(self.probs), -1)  # (T, C)


@dataclass
class VideoResult:
    """What the Video page shows: per-face timelines, shares, and where the CSV and annotated clip went."""

    info: VideoInfo
    class_names: list[str]
    fps: float | None
    sample_times: list[float]  # every sampled frame's time, faces or not
    timelines: dict[int, Timeline]  # face id → timeline
    stats: VideoStats
    rows: int  # rows written to the CSV
    annotated: Path | None = None  # H.264 mp4 of the sampled frames with numbered boxes

    @property
    def cancelled(self) -> bool:
        return self.stats.cancelled

    @property
    def truncated(self) -> bool:
        return self.stats.truncated

    def shares(self, face_id: int | None = None) -> dict[str, float]:
        """Each emotion's share of the face-samples it is the top emotion of (one face, or all faces)."""
        lines = [self.timelines[face_id]] if face_id is not None else list(self.timelines.values())
        tops = np.concatenate([np.argmax(t.array(), axis=1) for t in lines if t.probs] or [np.zeros(0, int)])
        counts = np.bincount(tops, minlength=len(self.class_names))
        total = max(1, int(counts.sum()))
        return {c: float(n) / total for c, n in zip(self.class_names, counts)}


def analyse_video(source, predictor, *, fps: float | None = DEFAULT_FPS, file_label: str | None = None,
                  on_progress=None, should_stop=None, max_seconds: float | None = None,
                  max_bytes: int | None = None, max_faces: int | None = None, model: str | None = None,
                  detect_every: int = DEFAULT_DETECT_EVERY, csv_file=None,
                  annotate_to: str | Path | None = None, annotate_max_side: int = 960,
                  max_side: int | None = None, max_pixels: int | None = None) -> VideoResult:
    """Read a whole clip (see :func:`iter_video_rows`), keeping only its timelines.

    ``csv_file``: an open text file that receives the per-frame CSV as it is
    produced. ``annotate_to``: a path for an H.264 mp4 of the sampled frames
    with numbered boxes and top emotions (at most ``annotate_max_side`` px),
    playable in a browser. A cancelled or truncated read still returns what
    it read (``result.cancelled`` / ``result.truncated``).
    """
    stats = VideoStats()
    infos: list[VideoInfo] = []
    classes = predictor.class_names
    file = file_label or _label(source, None)
    times: list[float] = []
    timelines: dict[int, Timeline] = {}
    writer = None
    frames = iter_video_frames(source, predictor, fps=fps, file_label=file_label, on_progress=on_progress,
                               should_stop=should_stop, max_seconds=max_seconds, max_bytes=max_bytes,
                               max_faces=max_faces, model=model, detect_every=detect_every, stats=stats,
                               info_out=infos, max_side=max_side, max_pixels=max_pixels)

    def rows():
        nonlocal writer
        for frame in frames:
            times.append(frame.time_s)
            for f in frame.faces:
                line = timelines.setdefault(f.face_id, Timeline(f.face_id))
                line.times.append(frame.time_s)
                line.probs.append(f.probs)
            if annotate_to is not None:
                if writer is None:
                    writer = AnnotatedWriter(annotate_to, frame.rgb.shape, fps=fps or infos[0].average_fps or 25,
                                             max_side=annotate_max_side)
                writer.write(frame, classes)
            yield from frame_rows(frame, classes, file)

    try:
        with closing(frames):
            if csv_file is not None:
                n_rows = write_csv(rows(), classes, csv_file)
            else:
                n_rows = sum(1 for _ in rows())
    finally:
        if writer is not None:
            writer.close()
    return VideoResult(info=infos[0], class_names=list(classes), fps=fps, sample_times=times,
                       timelines=dict(sorted(timelines.items())), stats=stats, rows=n_rows,
                       annotated=Path(annotate_to) if writer is not None else None)


# --------------------------------------------------------------------------- writing clips


class AnnotatedWriter:
    """Encodes frames as H.264 (yuv420p, faststart) mp4 — what every browser's <video> plays.

    Frames keep their video times (pts in milliseconds), so the annotated
    clip lines up with the original even though it holds only the sampled
    frames. Frames are scaled so the longer side is at most ``max_side`` and
    both sides are even (H.264's 4:2:0 needs it).
    """

    def __init__(self, path, shape, *, fps: float, max_side: int = 960, crf: int = 26):
        import av

        h, w = shape[:2]
        scale = min(1.0, max_side / max(h, w))
        self.size = (max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2))  # (W, H), even
        self.scale = (self.size[0] / w, self.size[1] / h)
        self.out = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000),
                                          options={"preset": "veryfast", "crf": str(crf)})
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        # Millisecond ticks for the codec too: sampled times (0.208 s of a 24 fps clip) stay exact, never merged.
        self.stream.time_base = self.stream.codec_context.time_base = Fraction(1, 1000)
        self._last_pts = -1

    def write_rgb(self, rgb: np.ndarray, time_s: float) -> None:
        import av
        from PIL import Image

        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = np.asarray(Image.fromarray(rgb).resize(self.size, Image.Resampling.BILINEAR))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = max(self._last_pts + 1, int(round(time_s * 1000)))
        frame.time_base = Fraction(1, 1000)
        self._last_pts = frame.pts
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def write(self, frame: FrameFaces, class_names) -> None:
        """One sampled frame with each face's box, id and top emotion drawn (ids keep their colour)."""
        from .predictor import FaceResult, draw_boxes

        faces = [FaceResult(index=f.face_id, box=f.box, confidence=None, crop=np.zeros((0, 0, 3), np.uint8),
                            predictions=[], ensemble=f.probs, class_names=list(class_names)) for f in frame.faces]
        self.write_rgb(draw_boxes(frame.rgb, faces) if faces else frame.rgb, frame.time_s)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.out.mux(packet)
        self.out.close()


def encode_clip(frames, *, fps: float, container: str = "mp4", codec: str | None = None) -> bytes:
    """(H, W, 3) uint8 frames → an encoded clip's bytes (mp4/mov/mkv: H.264, webm: VP9, avi: MPEG-4, gif).

    For sample clips and tests: everything stays in memory, so keep them short.
    """
    import av

    frames = list(frames)
    h, w = frames[0].shape[:2]
    codec = codec or {"webm": "libvpx-vp9", "avi": "mpeg4", "gif": "gif"}.get(container, "libx264")
    pix = {"gif": "rgb8", "mpeg4": "yuv420p"}.get(codec, "yuv420p")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format={"mkv": "matroska"}.get(container, container)) as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, pix
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def clip_from_photo(photo: np.ndarray, *, seconds: float = 2.0, fps: float = 10.0, size: tuple[int, int] = (320, 240),
                    absent: tuple[tuple[float, float], ...] = (), zoom: tuple[float, float] = (0.85, 0.7)) -> Iterator[np.ndarray]:
    """Frames (H, W, 3) of a camera panning left → right across ``photo`` (H, W, 3) and zooming in.

    ``size`` is the clip's (W, H); ``zoom`` the share of the photo's width
    in view at the start and at the end. During the ``absent`` (start, end)
    second ranges the view is blurred out of focus, so no face can be found
    — a subject covered or out of shot.
    """
    from PIL import Image, ImageFilter

    img = Image.fromarray(np.asarray(photo, np.uint8))
    W, H = img.size
    cw, ch = size
    n = max(1, int(round(seconds * fps)))
    for i in range(n):
        t = i / fps
        a = i / max(1, n - 1)
        vw = W * (zoom[0] + (zoom[1] - zoom[0]) * a)
        vh = min(H, vw * ch / cw)
        x0 = (W - vw) * a
        view = img.resize((cw, ch), Image.Resampling.BILINEAR, box=(x0, 0, x0 + vw, vh))
        if any(s <= t < e for s, e in absent):
            # radius side/8: at side/20 (or /10) YuNet still reads the blurred whole view as one big face
            # (score 0.76 at /20, 0.30 at /10; none at /8, even at threshold 0.3)
            view = view.filter(ImageFilter.GaussianBlur(radius=max(cw, ch) / 8))
        yield np.asarray(view.convert("RGB"))
