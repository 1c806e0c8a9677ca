"""Face detection and cropping: the first steps of the face pipeline.

Layered after paz's face classification pipeline:
detect → square the box → clip to the image → crop → (classify → draw, in
:mod:`fer_core.predict`). Each step is a small pure function except
:func:`detect_faces`, which borrows an MTCNN detector from the process's
small pool (:data:`DETECTORS`), so concurrent sessions never share one.

MTCNN (the ``mtcnn`` package) ships its own weights, so detection never
touches the network.
"""

from __future__ import annotations

import queue
import threading
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Faces smaller than this (in the downscaled copy) are not searched for:
#: MTCNN's default, and about the smallest face an expression can be read from.
MIN_FACE_SIZE = 20

#: Detectors in the pool: concurrent sessions each borrow one. Its stages are
#: compiled (below), so one instance could even be shared, but a pool keeps any
#: per-call Python state of the ``mtcnn`` package out of reach of a second
#: thread. 2 = the cores of the machines this app targets (Community Cloud);
#: ``benchmarks/load.py --levers`` measures 1 vs 2.
DETECTORS = 2
#: Wrap MTCNN's three Keras stages in ``tf.function`` (one generic trace each):
#: the package calls them eagerly, scale by scale, which costs 2–3× more per
#: photo in Python dispatch than the networks themselves (47–91 ms vs 135–186 ms
#: per photo here, identical boxes).
COMPILED_STAGES = True

#: The second look (see :func:`detect_faces`): when the strict pass finds no
#: face, MTCNN runs again with every stage's threshold at 0.3, on the usual
#: copy and on two smaller ones (480 and 320 px: a large face is easier for
#: PNet there), and the single most confident box at or above this confidence
#: is kept. Chosen on validation scenes (``python benchmarks/second_look.py``:
#: benchmarks/fer2013.py's scenes from FER2013 *validation* faces, seed 1): of
#: the 88 of 600 scenes where the strict pass found nothing, this look finds the
#: pasted face in 69 and a wrong box in 5 (the earlier 0.5 thresholds at 640/320:
#: 48 and 3), detection 0.958 vs 0.923; minimum confidences below 0.7 found 1–4
#: faces more for 1–3 wrong boxes more. No rule put a box on any of 150
#: face-free backgrounds. Cost: ≈ 90 ms instead of ≈ 60 ms, only on photos
#: where the strict pass found no face.
SECOND_LOOK_MIN_CONFIDENCE = 0.7
SECOND_LOOK_THRESHOLDS = {"threshold_pnet": 0.3, "threshold_rnet": 0.3, "threshold_onet": 0.3}
SECOND_LOOK_SIDES = (640, 480, 320)

_pool: "queue.SimpleQueue | None" = None
_pool_size = 0
_pool_lock = threading.Lock()  # guards building/resizing the pool, never a detection
_serial_lock = threading.Lock()  # only for the measured "before" mode: detectors=0


@dataclass
class Face:
    """One detected face. ``box`` is (x, y, w, h) in the ORIGINAL image's pixels."""

    box: tuple[int, int, int, int]
    confidence: float


def _new_detector():
    from ._quiet import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    from mtcnn import MTCNN

    detector = MTCNN()
    if COMPILED_STAGES:
        for stage in detector.stages:
            # Each stage calls ``self._model(x)``; a tf.function with reduce_retracing traces
            # once for the first shape, then once for a generic (None, None, None, 3) shape.
            stage._model = tf.function(stage._model, reduce_retracing=True)
    return detector


def configure_detectors(n: int = DETECTORS, *, compiled: bool | None = None) -> None:
    """Set the pool size (0: the old single detector behind one global lock) and stage compilation.

    Takes effect for detections that start afterwards; used by tests and the
    lever benchmark. Detectors are built lazily, on first use.
    """
    global DETECTORS, COMPILED_STAGES, _pool, _pool_size
    with _pool_lock:
        DETECTORS = int(n)
        if compiled is not None:
            COMPILED_STAGES = bool(compiled)
        _pool, _pool_size = None, 0


def _borrow():
    """A detector from the pool (built on demand, at most ``max(1, DETECTORS)``); blocks when all are busy."""
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


def get_detector():
    """One MTCNN detector of the process pool (kept for callers that want the object itself).

    Building one loads three small networks (≈1 s); Streamlit reruns and
    concurrent sessions share the pool. The returned detector is put back at
    once: use :func:`detect_faces` to get exclusive use during a detection.
    """
    pool, detector = _borrow()
    pool.put(detector)
    return detector


def warm_up_detector(shape: tuple[int, int] = (360, 640)) -> None:
    """Build every detector of the pool and run each on a drawn face, at two canvas sizes.

    The first photo should not pay for building a detector (≈1 s) or for
    tracing its compiled stages: the first call traces them for its shapes,
    the second (another size) for a generic shape that every later photo
    reuses. 360×640 is what any 16:9 photo becomes after :func:`downscale`;
    a demo face makes all three stages run.
    """
    from .demo import draw_face

    held = []
    try:
        for _ in range(max(1, DETECTORS)):  # hold each one so the next borrow builds a new detector
            held.append(_borrow())
        for _, detector in held:
            for h, w in (shape, (shape[1] // 2, shape[0] // 2 + 37)):
                canvas = np.full((h, w, 3), 128, np.uint8)
                side = min(128, h, w)
                canvas[:side, :side] = draw_face(np.random.default_rng(0), 0, side)
                try:
                    detector.detect_faces(canvas, min_face_size=MIN_FACE_SIZE)
                except (ValueError, IndexError):
                    pass
    finally:
        for pool, detector in held:
            pool.put(detector)


def downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """(H, W, 3) → (h, w, 3) with max(h, w) ≤ max_side, and the factor h / H.

    MTCNN's image pyramid makes its cost grow with the pixel count (≈0.57 s on
    a 1080p photo, ≈0.1 s at 350 px); faces large enough to read an
    expression from survive the downscale.
    """
    h, w = rgb.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return rgb, 1.0
    scale = max_side / longest
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    return small, scale


def detect_faces(rgb: np.ndarray, *, max_side: int = 640, min_confidence: float = 0.9,
                 second_look: bool = True) -> list[Face]:
    """Faces in an upright RGB uint8 image (H, W, 3), sorted left → right.

    Detection runs on a copy whose longer side is at most ``max_side``;
    boxes are scaled back to the original image and clipped to it.

    ``second_look``: when no face reaches ``min_confidence``, look once more
    with lenient thresholds (:data:`SECOND_LOOK_THRESHOLDS`, at
    :data:`SECOND_LOOK_SIDES`) and keep the most confident face ≥
    :data:`SECOND_LOOK_MIN_CONFIDENCE`. A profile, a hand over the mouth or a
    blurry face is then still read as a face (its lower confidence shows it)
    rather than answered with the centre of the photo; a photo in which the
    strict pass found someone is never given extra, weaker boxes.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"detect_faces expects an (H, W, 3) RGB image, got shape {rgb.shape}")
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    faces = [f for f in _detect(rgb, max_side) if f.confidence >= min_confidence]
    if not faces and second_look:
        lenient = [f for side in SECOND_LOOK_SIDES for f in _detect(rgb, min(side, max_side), **SECOND_LOOK_THRESHOLDS)]
        best = max(lenient, key=lambda f: f.confidence, default=None)
        if best is not None and best.confidence >= SECOND_LOOK_MIN_CONFIDENCE:
            faces = [best]
    return sorted(faces, key=lambda f: (f.box[0], f.box[1]))


def _detect(rgb: np.ndarray, max_side: int, **thresholds) -> list[Face]:
    """One MTCNN pass on a copy of ``rgb`` (H, W, 3) at most ``max_side`` px → every face it returns, in original pixels."""
    small, scale = downscale(rgb, max_side)
    if min(small.shape[:2]) < MIN_FACE_SIZE:
        return []  # MTCNN's pyramid is empty below its smallest face size
    # A detector is borrowed for the call: no thread waits for another's detection unless all
    # DETECTORS are busy (then it queues for the first one returned).
    pool, detector = _borrow()
    try:
        with _serial_lock if DETECTORS == 0 else nullcontext():
            found = detector.detect_faces(small, min_face_size=MIN_FACE_SIZE, **thresholds)
    except (ValueError, IndexError):  # odd sizes give MTCNN an empty pyramid
        found = []
    finally:
        pool.put(detector)
    faces = []
    H, W = rgb.shape[:2]
    for det in found or []:
        x, y, w, h = (float(v) / scale for v in det["box"])
        box = clip_box((round(x), round(y), round(w), round(h)), (H, W))
        if box[2] > 0 and box[3] > 0:
            faces.append(Face(box=box, confidence=float(det.get("confidence", 0.0))))
    return faces


def largest_faces(faces: list, k: int | None) -> list:
    """The ``k`` largest faces (box area; ties: the more confident, then the earlier), still left → right.

    How every path keeps a crowd affordable (a photo with a hundred faces must
    not cost a visitor, or the others, a hundred crops per model): photos,
    folders, video frames. ``k`` None or ≤ 0 keeps every face. Works on
    anything with ``box`` (x, y, w, h) and ``confidence``.
    """
    if k is None or k <= 0 or len(faces) <= k:
        return list(faces)
    order = sorted(range(len(faces)), key=lambda i: (-(faces[i].box[2] * faces[i].box[3]),
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
#: (0.2 = 20 % larger; negative = smaller). Classifiers were trained on
#: FER2013's framing, and MTCNN's box on a FER2013-framed face measures about
#: 0.80 wide × 1.04 tall of that frame (``python benchmarks/fer2013.py --sweep``),
#: so the box's longer side with no margin reproduces the training framing; the
#: old 0.2 gave crops 1.25× that framing (compact on validation scenes 0.559,
#: here 0.591). The sweep's declared rule (best ``compact`` on 599 validation
#: scenes) picked -0.2 at 0.606, but margins from +0.1 to -0.2 lie within 1.5
#: points there (about one standard error), -0.2 sits at the grid's edge, 0.0 is
#: best for ``baseline`` on the same scenes, and a crop tighter than the face
#: cuts off brows and mouth corners on real photos, whose faces carry the context
#: the pasted 48 px crops lack. So the default follows the framing match. (Test
#: scenes, looked at after the sweep: compact 0.638 at 0.0, 0.623 at -0.2.)
FACE_MARGIN = 0.0
#: Vertical shift of the crop's centre, as a fraction of its side (+ = down);
#: no shift in -0.05…+0.05 beat 0 on validation scenes.
FACE_SHIFT = 0.0


def square_box(box, image_shape, margin: float | None = None, shift: float | None = None) -> tuple[int, int, int, int]:
    """A square (x, y, s, s) around ``box``, each side enlarged by ``margin``, inside the image.

    Classifiers were trained on FER2013's framing: square crops whose face
    fills the frame from brow to chin. MTCNN's box is taller than wide
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


def eye_angle(keypoints) -> float:
    """Degrees the face is tilted, from MTCNN's ``left_eye``/``right_eye`` (image-left/right).

    Positive when the eye line falls to the right (a clockwise tilt on
    screen); ``PIL.Image.rotate`` by this angle levels the eyes.
    """
    (lx, ly), (rx, ry) = keypoints["left_eye"], keypoints["right_eye"]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def align_crop(rgb: np.ndarray, box, keypoints, margin: float | None = None, shift: float | None = None) -> np.ndarray:
    """The :func:`square_box` crop of ``box``, rotated about its centre so the eyes are level.

    FER2013's faces are roughly upright but not eye-aligned, and training
    rotates them by up to ±18°, so this only pays when photos are tilted
    more than that; the scene benchmark measures it. A region √2 larger
    than the square is taken (edges replicated where it leaves the image),
    rotated with bicubic resampling and cut back to the square, so no
    corner is blank. ``keypoints`` are in the same pixels as ``box``.
    """
    x, y, s, _ = square_box(box, (10**9, 10**9), margin, shift)  # unclipped: the rotation needs the true centre
    cx, cy = x + s / 2.0, y + s / 2.0
    big = int(np.ceil(s * 1.4143)) + 2
    x0, y0 = int(round(cx - big / 2.0)), int(round(cy - big / 2.0))
    H, W = rgb.shape[:2]
    ys = np.clip(np.arange(y0, y0 + big), 0, H - 1)
    xs = np.clip(np.arange(x0, x0 + big), 0, W - 1)
    region = Image.fromarray(np.ascontiguousarray(rgb[ys[:, None], xs[None, :]]))
    region = region.rotate(eye_angle(keypoints), resample=Image.Resampling.BICUBIC,
                           center=(cx - x0, cy - y0))
    left, top = int(round(cx - x0 - s / 2.0)), int(round(cy - y0 - s / 2.0))
    return np.asarray(region.crop((left, top, left + s, top + s)))
