"""Face detection and cropping: the first steps of the face pipeline.

Layered after paz's face classification pipeline:
detect → square the box → clip to the image → crop → (classify → draw, in
:mod:`fer_core.inference.predictor`). Each step is a small pure function except
:func:`detect_faces`, which borrows a detector from the process's small pool
(:data:`DETECTORS`), so concurrent sessions never share one.

The detector is YuNet (OpenCV's ``cv2.FaceDetectorYN``; the 232 KB model ships
in ``fer_core/assets`` with its MIT notice and is checked against its sha256 on
load, so detection never touches the network). It returns five landmarks with
each box (eyes, nose tip, mouth corners), which :mod:`fer_core.faces.align` uses to
level and frame the face. Why YuNet over the MTCNN it replaced: on real photos
it found more faces (a crowded group selfie 6 of 7 against 4; 267 of 270
single-face photos against 255) in a fraction of the time, and it needs no
TensorFlow graph of its own (``benchmarks/detect.py`` measures it here).

YuNet keeps state (``setInputSize``), so a detector serves one thread at a
time: the pool lends each caller its own.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The bundled detector and the digest it must have.
YUNET_PATH = Path(__file__).resolve().parent.parent / "assets" / "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"

#: Faces smaller than this many pixels (the box's longer side, original image) are dropped:
#: about the smallest face an expression can be read from.
MIN_FACE_SIZE = 20
#: The detection pass runs on a copy whose longer side is this (20–35 ms per photo here on one thread).
#: Larger photos are scaled down to it; smaller ones up (at most UPSCALE_MAX×): YuNet finds a face
#: reliably from about 50–60 px of its input, so the faces of a 600 px group selfie need the larger copy.
DETECT_SIDE = 960
UPSCALE_MAX = 2.0
#: YuNet misses faces larger than about 300 px of its input, so a second, small copy (this side)
#: finds the face that fills a selfie; it costs about a ninth of the main pass.
LARGE_FACE_SIDE = 320
#: Boxes below this score are dropped (YuNet's own default is 0.9). Chosen on validation scenes by
#: ``python benchmarks/detect.py`` (benchmarks/results/detect.json): 0.5 found 0.703 of the faces
#: ≥ 30 px (0.7: 0.640) with 0.5 % of face-free backgrounds given a box; on test 0.653 vs 0.583.
SCORE_THRESHOLD = 0.5
#: Two boxes of the two passes overlapping more than this (IoU) are one face: the higher score stays.
MERGE_IOU = 0.3
#: A second, closer look at the faces the main pass almost found (issue 25): a box scored between
#: LOOK_FLOOR and the threshold, smaller than LOOK_MAX_PX of the main pass's input (where YuNet is
#: short of pixels, not of evidence), is read again from the original photo in a region LOOK_CONTEXT ×
#: its side, scaled so the box is LOOK_FACE_PX (at most LOOK_MAX_UP×); it is a face when that look
#: confirms it (LOOK_ACCEPT, below). Looks go most promising first until their pixels reach LOOK_BUDGET ×
#: the main pass's, so a cluttered photo costs at most that much more. Chosen on validation scenes
#: (``python benchmarks/detect.py``, benchmarks/results/detect.json).
LOOK_FLOOR = 0.02
LOOK_MAX_PX = 160
LOOK_FACE_PX = 160
LOOK_CONTEXT = 1.6
LOOK_MAX_UP = 4.0
LOOK_BUDGET = 0.5
#: A look is a face only when its own score reaches LOOK_ACCEPT (or the threshold, if higher) and its box
#: matches the candidate's (IoU ≥ LOOK_MATCH_IOU). Accepting at 0.5 read clutter in real photos as
#: faces (a model shuttle, an arm patch, temple carvings; the synthetic backgrounds have none): of 133
#: looks on validation scenes and real photos, the false ones that matched their box scored ≤ 0.66.
LOOK_ACCEPT = 0.8
LOOK_MATCH_IOU = 0.5
#: When nothing passes in a photo, it is searched once more on two copies turned by ± TURN_DEG (longer
#: side TURN_SIDE): YuNet misses some faces tilted past 25°, which the app then read from the centred
#: square. A face found that way counts only when its box is under TURN_MAX_SHARE of the photo's shorter
#: side: a face that fills the photo *is* the centred square. Chosen on validation faces among 2 angles ×
#: 2 sides × 4 shares (``python benchmarks/no_face_fallback.py``, benchmarks/results/no_face_fallback.json):
#: of 1,500 faces pasted into photos, 65 had no face found; the turned look read 27 of them, all on the
#: face, and 26 of the 65 were then read right (the centred square: 14). Of 1,500 tight face photos, 75
#: had none; it read 4 (parts of the face) and 43 were right (the square: 44). It gave none of 199
#: face-free backgrounds a box. It costs two 640 px passes, only on photos where nothing was found.
TURN_DEG = 35.0
TURN_SIDE = 640
TURN_MAX_SHARE = 0.7
#: Detectors in the pool: concurrent sessions each borrow one. 2 = the cores of the machines this app
#: targets (Community Cloud).
DETECTORS = 2
#: OpenCV's own threads per detection: 1, so that the pool's detectors (one per core) do not fight
#: over the cores; a single photo then costs one core for ≈ 20–35 ms.
CV_THREADS = 1

#: The landmark names, image-left before image-right (as an upright face is seen on screen).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

_pool: "queue.SimpleQueue | None" = None
_pool_size = 0
_pool_lock = threading.Lock()  # guards building/resizing the pool, never a detection
_clock = time.monotonic  # the pool's clock (a test moves it, not the process's time.monotonic)
_last_use = 0.0  # _clock() when a detector last went back to the pool
_verified = False
#: A pool unused this long is let go by :func:`release_idle_detectors` (a long-lived server's hook).
IDLE_RELEASE_S = 60.0


@dataclass
class Face:
    """One detected face. ``box`` is (x, y, w, h) in the ORIGINAL image's pixels.

    ``landmarks``: ``{name: (x, y)}`` for :data:`LANDMARKS`, same pixels; None
    when the face came from elsewhere (a test, an older record).
    """

    box: tuple[int, int, int, int]
    confidence: float
    landmarks: dict | None = field(default=None, compare=False)


class DetectorError(RuntimeError):
    """The bundled detector is missing, altered, or OpenCV cannot run it (an install problem)."""


def _new_detector():
    global _verified
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # OpenCV 5's DNN warns about targets on every model load
    try:
        import cv2
    except ImportError as exc:
        raise DetectorError(f"face detection needs OpenCV ≥ 4.8 (pip install -r requirements.txt): {exc}") from None
    if not hasattr(cv2, "FaceDetectorYN"):
        raise DetectorError(f"OpenCV {cv2.__version__} has no FaceDetectorYN; face detection needs OpenCV ≥ 4.8")
    if not _verified:
        try:
            digest = hashlib.sha256(YUNET_PATH.read_bytes()).hexdigest()
        except OSError as exc:
            raise DetectorError(f"the face detector model is missing ({YUNET_PATH}): reinstall FER Studio") from exc
        if digest != YUNET_SHA256:
            raise DetectorError(f"{YUNET_PATH.name} has sha256 {digest[:12]}…, not the bundled YuNet's "
                                f"{YUNET_SHA256[:12]}…: restore it from the repository")
        _verified = True
    cv2.setNumThreads(CV_THREADS)
    # OpenCV 5's DNN warns "Targets are not supported by the new graph engine" on every model load; the
    # environment variable above only counts before cv2's first import, which image decoding often did
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    previous = log.getLogLevel() if log is not None else None
    if log is not None:
        log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        return cv2.FaceDetectorYN.create(str(YUNET_PATH), "", (320, 320), 0.5, 0.3, 5000)
    finally:
        if log is not None:
            log.setLogLevel(previous)


def configure_detectors(n: int = DETECTORS) -> None:
    """Set the pool size (takes effect for detections that start afterwards; tests and the lever benchmark)."""
    global DETECTORS, _pool, _pool_size
    with _pool_lock:
        DETECTORS = max(1, int(n))
        _pool, _pool_size = None, 0


def _borrow():
    """A detector from the pool (built on demand, at most ``DETECTORS``); blocks when all are busy."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None:
            _pool = queue.SimpleQueue()
        pool = _pool
        build = _pool_size < max(1, DETECTORS) and pool.empty()
        if build:
            _pool_size += 1
    if build:
        try:
            return pool, _new_detector()
        except BaseException:
            with _pool_lock:
                _pool_size -= 1
            raise
    return pool, pool.get()


def _give_back(pool, detector) -> None:
    global _last_use
    _last_use = _clock()
    pool.put(detector)


def release_idle_detectors(idle_s: float = IDLE_RELEASE_S) -> int:
    """Let go of the pool's detectors when none is lent and none was used for ``idle_s`` s; how many went.

    Why (issue 28): OpenCV's DNN keeps each detector's buffers sized for the
    last input, about 60 MB per detector after a 960 px pass, and a server's
    pool held them while nobody came: 2 detectors, +122 MB over warm, measured
    with ``malloc_trim`` after. The next detection builds a new one
    (≈ 5 ms, plus ≈ 15 ms the first pass spends sizing its buffers). A
    detector lent at that moment goes back to the pool it came from, which is
    then no longer the pool.
    """
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size == 0 or _pool.qsize() < _pool_size:
            return 0  # nothing built, or a detection is running
        if _clock() - _last_use < idle_s:
            return 0
        released = _pool_size
        _pool, _pool_size = None, 0
        return released


def warm_up_detector() -> None:
    """Build every detector of the pool and run each once, so the first photo pays for neither."""
    held = []
    try:
        for _ in range(max(1, DETECTORS)):  # hold each one so the next borrow builds a new detector
            held.append(_borrow())
        for _, detector in held:
            detector.setInputSize((64, 48))
            detector.detect(np.full((48, 64, 3), 128, np.uint8))
    finally:
        for pool, detector in held:
            _give_back(pool, detector)


def detection_copy(rgb: np.ndarray, side: int, max_up: float = 1.0) -> tuple[np.ndarray, float]:
    """(H, W, 3) → the copy a pass reads, longer side ``side`` (upscaled at most ``max_up``×), and its factor.

    The detector's cost grows with the pixel count; faces large enough to read
    an expression from survive the downscale, and small faces of a small photo
    grow to a size the detector finds.
    """
    import cv2

    h, w = rgb.shape[:2]
    scale = min(side / max(h, w), max_up)
    if abs(scale - 1.0) < 1e-3:
        return rgb, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR), scale


def detect_faces(rgb: np.ndarray, *, max_side: int = DETECT_SIDE, min_confidence: float = SCORE_THRESHOLD,
                 large_face_side: int | None = LARGE_FACE_SIDE, second_look: bool = True,
                 turn: bool = False) -> list[Face]:
    """Faces in an upright RGB uint8 image (H, W, 3), sorted left → right, with their landmarks.

    Detection runs on a copy whose longer side is ``max_side`` (a smaller
    photo is upscaled, at most :data:`UPSCALE_MAX`×). With ``second_look``,
    the boxes that pass almost found (small, scored from :data:`LOOK_FLOOR`)
    are read again closer, from the original pixels (:func:`second_looks`).
    With ``turn``, a photo in which nothing passes is searched again on
    turned copies (:func:`turned_face`): photos, not video frames, whose
    every frame would pay the extra passes. When the main copy is larger
    than 1.5 × ``large_face_side``, a copy of that side finds faces too
    large for it. Overlapping boxes are one face. Boxes
    are scaled back to the original image and clipped to it. An image too
    small to hold a face gives ``[]``.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"detect_faces expects an (H, W, 3) RGB image, got shape {rgb.shape}")
    if min(rgb.shape[:2]) < MIN_FACE_SIZE // 2:
        return []  # nothing a face could be read from
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    floor = min(min_confidence, LOOK_FLOOR) if second_look else min_confidence
    found, main_scale, main_shape = _detect(rgb, max_side, floor, UPSCALE_MAX)
    faces = [f for f in found if f.confidence >= min_confidence]  # YuNet's own NMS already kept them apart
    if large_face_side and max(main_shape) > 1.5 * large_face_side:
        faces = merge_faces(faces, _detect(rgb, large_face_side, min_confidence)[0])
    if second_look:  # after the large-face pass, so no look reads a part of a large face as a face
        near = [f for f in found if f.confidence < min_confidence]
        faces += second_looks(rgb, near, faces, main_scale, LOOK_BUDGET * main_shape[0] * main_shape[1],
                              min_confidence)
    faces = [f for f in faces if max(f.box[2], f.box[3]) >= MIN_FACE_SIZE]
    if turn and not faces:
        faces = turned_face(rgb, min_confidence)
    return sorted(faces, key=lambda f: (f.box[0], f.box[1]))


def turned_face(rgb: np.ndarray, min_confidence: float = SCORE_THRESHOLD) -> list[Face]:
    """The best face YuNet finds on copies of ``rgb`` (H, W, 3) turned by ± :data:`TURN_DEG`, as ``[face]``
    in the photo's own pixels (landmarks included, so the crop is levelled by them); ``[]`` if none, or if
    every box is :data:`TURN_MAX_SHARE` of the photo's shorter side or more (see there)."""
    return best_turned(turned_faces(rgb, min_confidence), rgb.shape, TURN_MAX_SHARE)


def turned_faces(rgb: np.ndarray, min_confidence: float = SCORE_THRESHOLD, angle: float = TURN_DEG,
                 side: int = TURN_SIDE) -> list[Face]:
    """Every face of the passes on ``rgb`` turned by +``angle`` and −``angle`` degrees, in ``rgb``'s pixels."""
    return [f for a in (angle, -angle) for f in _turned_pass(rgb, a, side, min_confidence)]


def best_turned(faces: list[Face], shape, max_share: float) -> list[Face]:
    """``[the highest-scored of faces]`` among those of a readable size under ``max_share`` of the shorter side of
    an image of ``shape`` (H, W, ...); ``[]`` if none."""
    short = min(shape[:2])
    fit = [f for f in faces if MIN_FACE_SIZE <= max(f.box[2], f.box[3]) < max_share * short]
    return [max(fit, key=lambda f: f.confidence)] if fit else []


def _turned_pass(rgb: np.ndarray, angle: float, side: int, min_confidence: float) -> list[Face]:
    """One YuNet pass on ``rgb`` turned by ``angle`` degrees (counter-clockwise, on a canvas that holds all of
    it) → its faces mapped back to ``rgb``'s pixels: each box keeps its size around its mapped centre.

    The photo is brought to ``side`` before it is turned: turning a 3,200 px photo itself cost 0.3 s.
    """
    import cv2

    H, W = rgb.shape[:2]
    small, scale = detection_copy(rgb, side, UPSCALE_MAX)  # (h, w, 3), longer side ``side``
    h, w = small.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)  # (2, 3)
    cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
    cw, ch = int(h * sin + w * cos), int(h * cos + w * sin)
    turn[:, 2] += (cw / 2 - w / 2, ch / 2 - h / 2)  # centre the copy on the larger canvas
    turned = cv2.warpAffine(small, turn, (cw, ch), borderMode=cv2.BORDER_REPLICATE)  # (ch, cw, 3)
    back = cv2.invertAffineTransform(turn)  # (2, 3): canvas → the small copy
    to_photo = lambda x, y: tuple(float(v) / scale for v in back @ (x, y, 1.0))  # noqa: E731
    out = []
    for f in _detect(turned, side, min_confidence, UPSCALE_MAX)[0]:  # boxes in canvas pixels
        bx, by, bw, bh = f.box
        cx, cy = to_photo(bx + bw / 2, by + bh / 2)
        bw, bh = round(bw / scale), round(bh / scale)
        box = clip_box((round(cx - bw / 2), round(cy - bh / 2), bw, bh), (H, W))
        if box[2] > 0 and box[3] > 0:
            out.append(Face(box=box, confidence=f.confidence,
                            landmarks={n: to_photo(px, py) for n, (px, py) in f.landmarks.items()}))
    return out


def second_looks(rgb: np.ndarray, near: list[Face], found: list[Face], main_scale: float, budget_px: float,
                 min_confidence: float) -> list[Face]:
    """The faces a closer look confirms among ``near`` (the main pass's boxes under the threshold).

    Why: on a 1080p photo read at 960 px a 60 px face is 30 px for YuNet,
    where it scores a real face low for lack of pixels. Reading its region
    again from the original, scaled so the box is :data:`LOOK_FACE_PX`, costs
    a small pass (a 256 px square ≈ an eighth of a 960×540 one) and gives the
    face its score at a size YuNet reads well, with landmarks to match. A look
    counts only at :data:`LOOK_ACCEPT` on a box matching the candidate's.
    ``main_scale``: the main copy's size over the original's; ``found``: faces
    already kept (a box overlapping one is not looked at again); ``budget_px``:
    the looks' pixels stop there, most promising first.
    """
    out: list[Face] = []
    spent = 0.0
    accept = max(min_confidence, LOOK_ACCEPT)
    H, W = rgb.shape[:2]
    for cand in sorted(near, key=lambda f: -f.confidence):
        side = max(cand.box[2], cand.box[3])  # original pixels
        if side * main_scale >= LOOK_MAX_PX or side < 1:
            continue  # the main pass saw it large enough: a low score there is no lack of pixels
        if _overlaps_any(cand.box, [*found, *out]):
            continue
        region = square_box(cand.box, (H, W), margin=LOOK_CONTEXT - 1.0)  # (x, y, s, s), inside the photo
        scale = min(LOOK_FACE_PX / side, LOOK_MAX_UP)
        cost = (region[2] * scale) * (region[3] * scale)
        if spent + cost > budget_px:
            continue  # a smaller region further down may still fit
        spent += cost
        x0, y0, rw, rh = region
        faces, _, _ = _detect(rgb[y0:y0 + rh, x0:x0 + rw], round(max(rw, rh) * scale), accept, LOOK_MAX_UP)
        best = None
        for f in faces:
            moved = Face(box=(f.box[0] + x0, f.box[1] + y0, f.box[2], f.box[3]), confidence=f.confidence,
                         landmarks={n: (px + x0, py + y0) for n, (px, py) in f.landmarks.items()})
            if box_iou(moved.box, cand.box) >= LOOK_MATCH_IOU and (best is None or moved.confidence > best.confidence):
                best = moved
        if best is not None and not _overlaps_any(best.box, [*found, *out]):
            out.append(best)
    return out


def _overlaps_any(box, faces: list[Face]) -> bool:
    """Whether ``box`` is one of ``faces`` (IoU > :data:`MERGE_IOU`) or lies mostly (> half its area) inside one:
    a closer look at part of a large face finds a 'face' in it (an eye and a nostril), which is not a second face."""
    area = max(1, box[2] * box[3])
    for g in faces:
        iw = min(box[0] + box[2], g.box[0] + g.box[2]) - max(box[0], g.box[0])
        ih = min(box[1] + box[3], g.box[1] + g.box[3]) - max(box[1], g.box[1])
        if box_iou(box, g.box) > MERGE_IOU or (iw > 0 and ih > 0 and iw * ih > 0.5 * area):
            return True
    return False


def _detect(rgb: np.ndarray, side: int, min_confidence: float,
            max_up: float = 1.0) -> tuple[list[Face], float, tuple[int, int]]:
    """One YuNet pass on a copy of ``rgb`` (H, W, 3) of longer side ``side`` (see :func:`detection_copy`)
    → (its faces in original pixels, the copy's scale, the copy's (h, w))."""
    small, scale = detection_copy(np.ascontiguousarray(rgb), side, max_up)
    h, w = small.shape[:2]
    if min(h, w) < 10:
        return [], scale, (h, w)  # nothing a face could be read from
    bgr = np.ascontiguousarray(small[:, :, ::-1])  # YuNet expects BGR
    pool, detector = _borrow()
    try:
        detector.setInputSize((w, h))
        detector.setScoreThreshold(float(min_confidence))
        _, found = detector.detect(bgr)  # (K, 15): x, y, w, h, 5 × (x, y) landmarks, score
    finally:
        _give_back(pool, detector)
    faces = []
    H, W = rgb.shape[:2]
    for row in ([] if found is None else found):
        x, y, bw, bh = (float(v) / scale for v in row[:4])
        box = clip_box((round(x), round(y), round(bw), round(bh)), (H, W))
        if box[2] <= 0 or box[3] <= 0:
            continue
        pts = row[4:14].reshape(5, 2) / scale  # subject's right eye, left eye, nose, right/left mouth corner
        faces.append(Face(box=box, confidence=float(row[14]),
                          landmarks={n: (float(px), float(py)) for n, (px, py) in zip(LANDMARKS, pts)}))
    return faces, scale, (h, w)


def box_iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def merge_faces(first: list[Face], second: list[Face], iou: float = MERGE_IOU) -> list[Face]:
    """The faces of two passes as one list: where two overlap (IoU > ``iou``), the higher score stays."""
    out: list[Face] = []
    for f in sorted([*first, *second], key=lambda f: -f.confidence):
        if all(box_iou(f.box, g.box) <= iou for g in out):
            out.append(f)
    return out


def largest_faces(faces: list, k: int | None) -> list:
    """The ``k`` largest faces (longer box side, as the drawn square is; then area, the more confident, the earlier), still left → right.

    How every path keeps a crowd affordable (a photo with a hundred faces must
    not cost a visitor, or the others, a hundred crops per model): photos,
    folders, video frames. ``k`` None or ≤ 0 keeps every face. Works on
    anything with ``box`` (x, y, w, h) and ``confidence``.
    """
    if k is None or k <= 0 or len(faces) <= k:
        return list(faces)
    order = sorted(range(len(faces)), key=lambda i: (-max(faces[i].box[2], faces[i].box[3]),
                                                     -(faces[i].box[2] * faces[i].box[3]),
                                                     -(faces[i].confidence or 0.0), i))
    return [faces[i] for i in sorted(order[:k])]


def clip_box(box, image_shape) -> tuple[int, int, int, int]:
    """Intersect (x, y, w, h) with the image (H, W, ...); width/height may become 0."""
    H, W = image_shape[:2]
    x, y, w, h = box
    x0, y0 = max(0, int(x)), max(0, int(y))
    x1, y1 = min(W, int(x) + int(w)), min(H, int(y) + int(h))
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


#: How much the square's side differs from the detector box's longer side
#: (0.2 = 20 % larger; negative = smaller). The square is what the app draws
#: and records, and the crop of a face without landmarks (faces with them are
#: cropped by :mod:`fer_core.faces.align`). YuNet's box on a FER2013-framed face
#: measures about 0.76 wide × 0.96 tall of that frame (``benchmarks/framing.py``),
#: so its longer side with no margin is close to the training framing.
FACE_MARGIN = 0.0
#: Vertical shift of the crop's centre, as a fraction of its side (+ = down);
#: no shift in -0.05…+0.05 beat 0 on validation scenes.
FACE_SHIFT = 0.0


def square_box(box, image_shape, margin: float | None = None, shift: float | None = None) -> tuple[int, int, int, int]:
    """A square (x, y, s, s) around ``box``, each side enlarged by ``margin``, inside the image.

    Classifiers were trained on FER2013's framing: square crops whose face
    fills the frame from brow to chin. The detector's box is taller than wide
    (about 0.8 × 1.0 of that frame), so it is squared on its longer side and
    scaled by ``1 + margin`` (default :data:`FACE_MARGIN`); ``shift`` (default
    :data:`FACE_SHIFT`) moves the square down by that share of its side.
    Near an edge the square is shifted inward rather than cut, so it stays
    square; only an image smaller than the square shrinks it.
    """
    margin = FACE_MARGIN if margin is None else margin
    shift = FACE_SHIFT if shift is None else shift
    H, W = image_shape[:2]
    x, y, w, h = box
    side = int(round(max(w, h) * (1.0 + margin)))
    side = max(1, min(side, H, W))
    cx, cy = x + w / 2.0, y + h / 2.0 + shift * side
    x0 = int(round(cx - side / 2.0))
    y0 = int(round(cy - side / 2.0))
    x0 = min(max(0, x0), W - side)
    y0 = min(max(0, y0), H - side)
    return (x0, y0, side, side)


def centre_square_box(image_shape) -> tuple[int, int, int, int]:
    """The largest centred square of an (H, W, ...) image, as (x, y, s, s)."""
    H, W = image_shape[:2]
    side = min(H, W)
    return ((W - side) // 2, (H - side) // 2, side, side)


def crop_face(rgb: np.ndarray, box) -> np.ndarray:
    """Copy of the (x, y, w, h) region of ``rgb`` (clipped to the image)."""
    x, y, w, h = clip_box(box, rgb.shape)
    if w == 0 or h == 0:
        raise ValueError(f"box {tuple(box)} lies outside the {rgb.shape[1]}×{rgb.shape[0]} image")
    return np.ascontiguousarray(rgb[y:y + h, x:x + w])
