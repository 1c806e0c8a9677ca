"""Reading expressions from a camera stream: latest frame wins, detect every k-th frame, track between.

The Live page's engine, free of Streamlit and of any transport: whatever
delivers frames (streamlit-webrtc's callback, ``benchmarks/live.py``, a test)
calls :meth:`LiveProcessor.offer` with an RGB frame and shows
:meth:`LiveProcessor.latest`. Per processed frame (the Video page's steps,
:mod:`fer_core.inference.video`)::

    offer(rgb) → one-frame mailbox: a newer frame replaces one still waiting   (latest frame wins:
                 (counted as dropped); offer never blocks                       no queue, no backlog)
    worker thread: take the mailbox's frame
    → faces (x, y, w, h) + landmarks, every ``detect_every``-th frame          faces.detect_faces
      (or, between detections, the tracks' predicted boxes)                    tracking.IoUTracker.coast
    → face ids kept across frames                                              tracking.IoUTracker.update
    → crops aligned by the landmarks → every model in one compiled call        Predictor.predict_faces
    → numbered boxes + top emotion drawn                                       predict.draw_boxes
    → rows (rows.face_row layout, time_s from the stream's first frame),
      each face's last ``history_s`` seconds (the page's chart), fps, latency

Why a mailbox of one: a camera sends 15–30 frames a second whatever the
server can read; a queue would grow without end and every answer would come
later than the last. With one slot the answer is never more than one frame's
processing behind the camera, and the frames the server cannot read are
skipped, not delayed.

Bounded state (a 10-minute stream costs what a 10-second one does, but for
the table): tracks expire after ``max_age`` processed frames, face histories
keep ``history_s`` seconds and at most :data:`MAX_HISTORY_FACES` faces,
latencies and frame times are fixed-size deques, and the rows live in
fixed-size arrays (:data:`MAX_ROWS`, oldest dropped beyond it and counted).

Public API: :class:`LiveProcessor`, :class:`LiveStatus`, :func:`fit_frame`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..faces import align as _align
from ..faces.align import align_face, move_landmarks
from ..faces.detect import crop_face, detect_faces, largest_faces, square_box
from .rows import face_row, no_face_row, write_csv
from ..faces.tracking import IoUTracker

#: Detect on every k-th processed frame and track in between. Measured by ``benchmarks/live.py``
#: ("detect_every": a 640×480 clip of the astronaut photo drifting 0–80 px, read frame by frame with the
#: bundled default): k = 2 costs 1.43× less CPU than k = 1 (24.4 vs 34.7 ms a frame) with the same face on
#: every frame, the same top emotion on 100 % and boxes at IoU 0.95 of k = 1's; k = 3 (1.66×) keeps the top
#: emotion on only 95.6 % (IoU 0.75). The Video page's rule (≥ 1.3× less CPU, ≥ 98 % found, ≥ 97 % same
#: top) picks 2. At 15 fps a camera's face moves far less between frames than a clip's between 5 fps samples.
DEFAULT_DETECT_EVERY = 2
#: Longer side the detector reads a camera frame at: a 640×480 webcam frame as it comes (no
#: upscale; Predict's 960 is for group photos), plus fer_core.faces.detect' 320 px pass for a face
#: that fills the frame.
DETECT_SIDE = 640
#: Seconds of each face's probabilities kept for the page's live chart.
HISTORY_S = 30.0
#: Faces whose history is kept at most (the most recently seen).
MAX_HISTORY_FACES = 8
#: Rows (one per face per processed frame) kept for the CSV: 30 minutes at 15 fps with 2 faces.
#: Beyond it the oldest are dropped (``LiveStatus.rows_dropped`` counts them).
MAX_ROWS = 54_000
#: Processed-frame times kept for the fps reading, and the window it is read over (seconds).
FPS_WINDOW_S = 2.0
#: Latencies kept for the p50/p95 reading (the last ones).
LATENCY_KEEP = 300
#: Largest frame accepted (a camera's 1080p); larger frames are scaled down by :func:`fit_frame`.
MAX_SIDE = 1920
#: Seconds without a frame after which the worker thread ends (the next frame starts a new one).
IDLE_EXIT_S = 5.0
#: What the CSV's ``file`` column says for a live stream.
FILE_LABEL = "camera"


@dataclass
class LiveFace:
    face_id: int  # track id, 1-based, stable while the face stays in view
    box: tuple[int, int, int, int]  # (x, y, s, s) square that was drawn, frame pixels
    probs: np.ndarray  # (C,) ensemble mean
    detected: bool  # False: the box came from the tracker between detections

    def top(self, class_names) -> tuple[str, float]:
        k = int(np.argmax(self.probs))
        return class_names[k], float(self.probs[k])


@dataclass
class LiveStatus:
    """What the page shows once a second; a snapshot, safe to read from any thread."""

    running: bool  # a stream is feeding frames (False after end() or the time limit)
    elapsed_s: float  # this stream's time since its first frame
    streamed_s: float  # every stream of this processor together (the per-session time limit counts this)
    frames_in: int  # frames offered
    frames_processed: int
    frames_dropped: int  # replaced in the mailbox before they were read (latest frame wins)
    fps: float  # processed frames per second over the last FPS_WINDOW_S
    latency_p50_ms: float | None  # frame offered → annotated frame ready, the last LATENCY_KEEP frames
    latency_p95_ms: float | None
    faces: list[LiveFace] = field(default_factory=list)  # of the last processed frame, by face_id
    rows: int = 0
    rows_dropped: int = 0
    limit: str | None = None  # "time" when the time limit stopped the stream


def fit_frame(rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """(H, W, 3) uint8 → the same, scaled down so its longer side is at most ``max_side``."""
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    import cv2

    s = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


class _Rows:
    """One row per face per processed frame in fixed-size arrays: a ring of ``cap`` rows.

    ``meta`` (cap, 7) float64: frame, time_s, face_id (NaN: no face), x, y, w, h;
    ``probs`` (cap, C) float32 (NaN: no face). ``np.empty`` reserves the
    memory without touching it, so a short stream costs only what it wrote.
    """

    def __init__(self, n_classes: int, cap: int):
        self.cap = int(cap)
        self.meta = np.empty((self.cap, 7), np.float64)
        self.probs = np.empty((self.cap, n_classes), np.float32)
        self.n = 0  # rows written since clear()

    def clear(self) -> None:
        self.n = 0

    def add(self, frame: int, time_s: float, face_id, box, probs) -> None:
        i = self.n % self.cap
        self.meta[i, 0], self.meta[i, 1] = frame, time_s
        self.meta[i, 2] = np.nan if face_id is None else face_id
        self.meta[i, 3:7] = np.nan if box is None else box
        self.probs[i] = np.nan if probs is None else probs
        self.n += 1

    @property
    def kept(self) -> int:
        return min(self.n, self.cap)

    @property
    def dropped(self) -> int:
        return max(0, self.n - self.cap)

    def iter_dicts(self, class_names, file: str) -> Iterator[dict]:
        start = self.n - self.kept
        for k in range(start, self.n):
            i = k % self.cap
            frame, t, fid = int(self.meta[i, 0]), float(self.meta[i, 1]), self.meta[i, 2]
            if np.isnan(fid):
                yield no_face_row(file=file, class_names=class_names, frame=frame, time_s=t)
            else:
                yield face_row(file=file, class_names=class_names, probs=self.probs[i],
                               box=tuple(int(v) for v in self.meta[i, 3:7]), face_id=int(fid), frame=frame, time_s=t)


@dataclass
class _Follow:
    """Who is where: the tracker, each track's last landmarks, frames since the last detection."""

    tracker: IoUTracker = field(default_factory=lambda: IoUTracker(max_age=15))  # ≈ 1 s at the live rate
    landmarks: dict = field(default_factory=dict)  # track id → (box, landmarks) at its last detection
    since_detect: int = 0


class LiveProcessor:
    """One camera stream's reader: offer frames from any thread, read the latest annotated frame and status.

    ``predictor``: a :class:`fer_core.inference.predictor.Predictor` (anything with
    ``class_names`` and ``predict_faces(crops)`` → [face][model] with
    ``.probs``); one predictor serves every stream of the process.
    ``detect_every``: run the detector on every k-th processed frame (and
    whenever no face is being followed), track in between. ``max_faces``:
    the largest faces only. ``max_fps``: read at most this many frames a
    second (public mode's cap; the others are dropped like any frame that
    arrives while one is read). ``time_limit_s``: streaming time allowed,
    all streams of this processor together (public mode's per-session
    limit); when spent the processor stops reading and ``status().limit``
    is ``"time"``. ``threaded=False``: :meth:`offer` reads the frame itself
    (tests, and callers with their own thread). ``clock``: injectable.
    ``on_processed(status_of_frame)``: called in the worker after each frame
    with ``(latency_s, n_faces)`` (the benchmark's full record).
    """

    def __init__(self, predictor, *, detect_every: int = DEFAULT_DETECT_EVERY, max_faces: int | None = None,
                 max_fps: float | None = None, time_limit_s: float | None = None, streamed_s: float = 0.0,
                 history_s: float = HISTORY_S, max_rows: int = MAX_ROWS, detect_side: int = DETECT_SIDE,
                 threaded: bool = True, clock: Callable[[], float] = time.monotonic,
                 detect: Callable[[np.ndarray], list] | None = None,
                 on_processed: Callable[[float, int], None] | None = None, draw: bool = True):
        self.predictor = predictor
        self.class_names = list(predictor.class_names)
        self.detect_every = max(1, int(detect_every))
        self.max_faces = max_faces or None
        self.max_fps = float(max_fps) if max_fps else None
        self.time_limit_s = float(time_limit_s) if time_limit_s else None
        self.history_s = float(history_s)
        self.threaded = threaded
        self.clock = clock
        self.draw = draw
        self.on_processed = on_processed
        # no second looks on camera frames: each would add up to half a pass to a frame's latency
        self._detect = detect or (lambda rgb: detect_faces(rgb, max_side=detect_side, second_look=False))
        self._rows = _Rows(len(self.class_names), max_rows)
        self._cond = threading.Condition()
        self._pending: tuple | None = None  # (rgb, index, t_offered, time_s) waiting in the mailbox
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._streamed_before = float(streamed_s)  # earlier streams' seconds (time limit)
        self.error: str | None = None  # the last frame's failure, one line (the stream goes on)
        self._reset_stream()

    # ----------------------------------------------------------------- stream life

    def _reset_stream(self) -> None:
        """A new stream: fresh table, tracks, histories and counters (the earlier stream's time stays counted)."""
        self._t0: float | None = None
        self._ended = False
        self._limit: str | None = None
        self._frames_in = 0
        self._processed = 0
        self._dropped = 0
        self._next_slot = -1e9  # earliest time the next frame may be read (frame-rate cap)
        self._gen = getattr(self, "_gen", 0) + 1  # frames of an earlier stream still being read are discarded
        self._follow = _Follow()
        self._history: dict[int, deque] = {}
        self._done_times: deque = deque(maxlen=256)
        self._latencies: deque = deque(maxlen=LATENCY_KEEP)
        self._faces: list[LiveFace] = []
        self._latest: np.ndarray | None = None
        self._latest_seq = 0
        self._elapsed_end: float | None = None
        self._rows.clear()

    def end(self) -> None:
        """The stream stopped (the visitor pressed Stop, the camera went away): keep the table, stop reading."""
        with self._cond:
            if self._t0 is not None and not self._ended and self._elapsed_end is None:  # (the time limit set it)
                self._elapsed_end = self.clock() - self._t0
            self._ended = True
            self._pending = None
            self._cond.notify_all()

    def close(self) -> None:
        """End the stream and the worker thread (the session is over)."""
        self.end()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def clear(self) -> None:
        """Forget the recorded stream (its table, histories and last frame); the time used stays counted."""
        with self._cond:
            self.end()
            self._streamed_before += self._elapsed_end or 0.0
            self._reset_stream()

    @property
    def streamed_s(self) -> float:
        with self._cond:
            return self._streamed_before + self._elapsed_locked()

    def _elapsed_locked(self) -> float:
        if self._t0 is None:
            return 0.0
        if self._elapsed_end is not None:
            return self._elapsed_end
        return self.clock() - self._t0

    # ----------------------------------------------------------------- frames in

    def offer(self, rgb: np.ndarray) -> bool:
        """A new camera frame (H, W, 3) uint8; returns False when it will not be read (ended, time limit).

        Never waits for processing (threaded): the frame takes the mailbox,
        replacing a frame still waiting there, which is counted as dropped.
        After :meth:`end`, the next frame starts a new stream (a new table).
        """
        now = self.clock()
        with self._cond:
            if self._closed:
                return False
            if self._ended:  # Start after Stop: a new recording, the time used so far still counts
                self._streamed_before += self._elapsed_end or 0.0
                self._reset_stream()
            if self._limit is not None:
                return False
            if self._t0 is None:
                self._t0 = now
            if self.time_limit_s is not None and self._streamed_before + (now - self._t0) >= self.time_limit_s:
                self._limit = "time"
                self._elapsed_end = now - self._t0
                self._pending = None
                return False
            index = self._frames_in
            self._frames_in += 1
            if self._pending is not None:
                self._dropped += 1
            self._pending = (rgb, index, now, now - self._t0, self._gen, self._follow)
            if not self.threaded:
                job = self._take_locked(now)
            else:
                self._start_locked()
                self._cond.notify_all()
                return True
        if job is not None:
            self._run(job)
        return True

    def _start_locked(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="fer-live", daemon=True)
            self._thread.start()

    def _take_locked(self, now: float):
        """The waiting frame if it may be read now (frame-rate cap), else None; the caller holds the lock."""
        if self._pending is None:
            return None
        if self.max_fps and now < self._next_slot - 1e-3:
            if not self.threaded:  # no thread to wait: this frame is skipped, like one replaced in the mailbox
                self._pending = None
                self._dropped += 1
            return None
        job, self._pending = self._pending, None
        if self.max_fps:  # slots 1/max_fps apart: a 30 fps camera capped at 10 gives 10, not 7.5
            self._next_slot = max(now, self._next_slot) + 1.0 / self.max_fps
        self._busy = True
        return job

    def _loop(self) -> None:
        while True:
            with self._cond:
                idle_since = time.monotonic()
                while True:
                    if self._closed:
                        self._thread = None
                        return
                    now = self.clock()
                    job = self._take_locked(now)
                    if job is not None:
                        break
                    if self._pending is None and time.monotonic() - idle_since > IDLE_EXIT_S:
                        self._thread = None  # no frames: the thread ends (the next offer starts another), so a
                        return  # session that went away leaves no thread holding its processor
                    wait = 0.5
                    if self._pending is not None and self.max_fps:  # capped: wait until the next slot
                        wait = max(0.0, self._next_slot - 1e-3 - now)
                    self._cond.wait(timeout=wait)
            self._run(job)

    def _run(self, job) -> None:
        try:
            self._process(*job)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not end the stream
            text = str(exc).strip()
            self.error = text.splitlines()[0] if text else type(exc).__name__
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no frame waits or is being read (tests, the benchmark's end); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=left)
        return True

    # ----------------------------------------------------------------- one frame

    def _process(self, rgb: np.ndarray, index: int, t_offered: float, time_s: float, gen: int,
                 follow: _Follow) -> None:
        rgb = fit_frame(np.ascontiguousarray(rgb, dtype=np.uint8))
        tracker = follow.tracker
        detect = follow.since_detect % self.detect_every == 0 or not any(t.missed == 0 for t in tracker.tracks)
        if detect:
            found = largest_faces(self._detect(rgb), self.max_faces)
            ids = tracker.update([f.box for f in found])
            raw = [f.box for f in found]
            marks = [f.landmarks for f in found]
            flags = [True] * len(found)
            alive = {t.id for t in tracker.tracks}
            seen = {i: (f.box, f.landmarks) for i, f in zip(ids, found) if f.landmarks}
            follow.landmarks = {**{k: v for k, v in follow.landmarks.items() if k in alive}, **seen}
            follow.since_detect = 1
        else:
            live = tracker.coast()
            ids, raw, flags = [t.id for t in live], [t.box for t in live], [False] * len(live)
            marks = [move_landmarks(follow.landmarks[t.id][1], follow.landmarks[t.id][0], t.box)
                     if t.id in follow.landmarks else None for t in live]
            follow.since_detect += 1
        boxes = [square_box(b, rgb.shape) for b in raw]
        keep = [i for i, b in enumerate(boxes) if b[2] > 0 and b[3] > 0]
        crops = [align_face(rgb, marks[i]) if _align.ALIGN_FACES and marks[i] else crop_face(rgb, boxes[i])
                 for i in keep]
        preds = self.predictor.predict_faces(crops) if crops else []
        faces = sorted((LiveFace(face_id=ids[i], box=boxes[i],
                                 probs=np.mean([p.probs for p in pred], axis=0).astype(np.float32),
                                 detected=flags[i]) for i, pred in zip(keep, preds)), key=lambda f: f.face_id)
        out = self._annotate(rgb, faces) if self.draw else None
        done = self.clock()
        with self._cond:
            if gen != self._gen:
                return  # a new stream began while this frame of the old one was read
            self._processed += 1
            self._done_times.append(done)
            self._latencies.append(done - t_offered)
            self._faces = faces
            if out is not None:
                self._latest = out
                self._latest_seq += 1
            if faces:
                for f in faces:
                    self._rows.add(index, time_s, f.face_id, f.box, f.probs)
                    line = self._history.get(f.face_id)
                    if line is None:
                        line = self._history[f.face_id] = deque()
                    line.append((time_s, f.probs))
            else:
                self._rows.add(index, time_s, None, None, None)
            self._prune_history_locked(time_s)
        if self.on_processed is not None:
            self.on_processed(done - t_offered, len(faces))

    def _annotate(self, rgb: np.ndarray, faces: list[LiveFace]) -> np.ndarray:
        if not faces:
            return rgb
        from .predictor import FaceResult, draw_boxes

        shown = [FaceResult(index=f.face_id, box=f.box, confidence=None, crop=np.zeros((0, 0, 3), np.uint8),
                            predictions=[], ensemble=f.probs, class_names=self.class_names) for f in faces]
        return draw_boxes(rgb, shown)

    def _prune_history_locked(self, now_s: float) -> None:
        horizon = now_s - self.history_s
        for fid in list(self._history):
            line = self._history[fid]
            while line and line[0][0] < horizon:
                line.popleft()
            if not line:
                del self._history[fid]
        if len(self._history) > MAX_HISTORY_FACES:  # keep the faces seen most recently
            order = sorted(self._history, key=lambda k: self._history[k][-1][0], reverse=True)
            for fid in order[MAX_HISTORY_FACES:]:
                del self._history[fid]

    # ----------------------------------------------------------------- reading out

    def latest(self) -> tuple[np.ndarray | None, int]:
        """The last annotated frame (H, W, 3) uint8, or None before the first, and its sequence number."""
        with self._cond:
            return self._latest, self._latest_seq

    def status(self) -> LiveStatus:
        with self._cond:
            now = self.clock()
            recent = [t for t in self._done_times if now - t <= FPS_WINDOW_S]
            running = self._t0 is not None and not self._ended and self._limit is None
            if len(recent) >= 2 and running:
                span = max(now - recent[0], 1e-6)
                fps = (len(recent) - 1) / span if now - recent[-1] < 1.0 else len(recent) / FPS_WINDOW_S
            else:
                fps = 0.0
            lat = np.asarray(self._latencies, np.float64) * 1000.0
            p50, p95 = (float(np.percentile(lat, 50)), float(np.percentile(lat, 95))) if len(lat) else (None, None)
            return LiveStatus(running=running, elapsed_s=self._elapsed_locked(),
                              streamed_s=self._streamed_before + self._elapsed_locked(),
                              frames_in=self._frames_in, frames_processed=self._processed,
                              frames_dropped=self._dropped, fps=float(fps), latency_p50_ms=p50, latency_p95_ms=p95,
                              faces=list(self._faces), rows=self._rows.kept, rows_dropped=self._rows.dropped,
                              limit=self._limit)

    def history(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Each face's last ``history_s`` seconds: face id → (times (T,) s from the stream start, probs (T, C))."""
        with self._cond:
            return {fid: (np.asarray([t for t, _ in line], np.float64),
                          np.stack([p for _, p in line]).reshape(len(line), -1))
                    for fid, line in sorted(self._history.items())}

    def rows(self, file: str = FILE_LABEL) -> list[dict]:
        """The stream's table (:mod:`fer_core.inference.rows` layout): one row per face per processed frame, in order."""
        with self._cond:
            return list(self._rows.iter_dicts(self.class_names, file))

    def write_csv(self, fh, file: str = FILE_LABEL) -> int:
        """The table as CSV into the open text file ``fh``; returns rows written."""
        return write_csv(self.rows(file), self.class_names, fh)
