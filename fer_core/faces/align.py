"""Face crops framed like the training faces: level the eyes, then scale and place the face as FER2013 does.

Why: the classifiers learned FER2013's registered 48×48 faces, where the eyes
sit at a fixed height and the face fills the frame from brow to chin. A square
around a detector's box is a looser match: its size follows the box, which
varies with the detector, and a tilted head stays tilted. The detector's five
landmarks (:mod:`fer_core.faces.detect`) give the eyes and the mouth, so each crop is
one similarity transform (rotate, scale, shift) that puts them where FER2013
has them.

Where FER2013 has them was measured by running the same detector on 2,738 of
the first 3,000 FER2013 training faces, upscaled 4× with a replicated border
(``python benchmarks/framing.py``; medians, as fractions of the frame's side):
eye centre (0.496, 0.381), mouth centre (0.501, 0.730), eye distance 0.349,
eye-to-mouth distance 0.348. The frame's side is taken from whichever of the
two distances gives the larger face, so a head turned aside (eyes closer
together) or tipped back (mouth closer to the eyes) is not cropped too tight.

One function serves Predict, folders, videos, the CLI and the benchmarks:
:func:`face_crops`.
"""

from __future__ import annotations

import math

import numpy as np

from .detect import crop_face, square_box

#: FER2013's framing, measured (module docstring; benchmarks/results/framing.json).
EYE_CENTRE = (0.496, 0.381)
MOUTH_CENTRE = (0.501, 0.730)
EYE_DISTANCE = 0.349
EYE_MOUTH_DISTANCE = 0.348
#: The crop's side relative to the measured framing (1.0 = FER2013's own). Chosen on validation
#: scenes' found faces by ``python benchmarks/detect.py`` (benchmarks/results/detect.json: crops):
#: 0.90 read 0.658 right with compact, 1.00 0.629, 1.10 0.595; plain squares 0.641; test 0.647.
ALIGN_SCALE = 0.9
#: Crop faces that have landmarks by alignment (False: the square box around the detection, as before
#: alignment existed); chosen with ALIGN_SCALE on validation scenes.
ALIGN_FACES = True
#: Aligned crops are returned at most this many pixels wide: every bundled model reads 48 px
#: (the transfer models 128), and a 1,000 px face need not travel at full size.
MAX_CROP_SIDE = 256


def _point(landmarks: dict, name: str) -> np.ndarray:
    return np.asarray(landmarks[name], dtype=np.float64)


def alignment_transform(landmarks: dict, scale: float | None = None) -> tuple[np.ndarray, float]:
    """The 2×3 affine matrix taking image pixels to a frame of side 1, and that frame's side in image pixels.

    ``landmarks``: ``{left_eye, right_eye, mouth_left, mouth_right: (x, y)}``
    (image-left before image-right, as :data:`fer_core.faces.detect.LANDMARKS`).
    """
    scale = ALIGN_SCALE if scale is None else scale
    el, er = _point(landmarks, "left_eye"), _point(landmarks, "right_eye")
    ml, mr = _point(landmarks, "mouth_left"), _point(landmarks, "mouth_right")
    eyes, mouth = (el + er) / 2, (ml + mr) / 2
    angle = math.atan2(er[1] - el[1], er[0] - el[0])  # the eye line's tilt, radians
    side = max(np.hypot(*(er - el)) / EYE_DISTANCE, np.hypot(*(mouth - eyes)) / EYE_MOUTH_DISTANCE) * scale
    side = max(side, 1.0)
    anchor_src = (eyes + mouth) / 2
    anchor_dst = (np.asarray(EYE_CENTRE) + np.asarray(MOUTH_CENTRE)) / 2 - 0.5  # relative to the frame's centre
    anchor_dst = anchor_dst / scale + 0.5  # a larger frame keeps the face centred where FER2013 has it
    c, s = math.cos(-angle) / side, math.sin(-angle) / side
    rot = np.array([[c, -s], [s, c]])  # rotate by -angle (level the eyes) and scale to the unit frame
    shift = anchor_dst - rot @ anchor_src
    return np.hstack([rot, shift[:, None]]), float(side)


def align_face(rgb: np.ndarray, landmarks: dict, scale: float | None = None) -> np.ndarray:
    """(H, W, 3) uint8 → the aligned square crop (s, s, 3), s ≤ :data:`MAX_CROP_SIDE`, edges replicated."""
    import cv2

    unit, side = alignment_transform(landmarks, ALIGN_SCALE if scale is None else scale)
    full = int(min(max(round(side), 8), 4 * MAX_CROP_SIDE))  # warp at about the face's own resolution
    crop = cv2.warpAffine(np.ascontiguousarray(rgb), unit * full, (full, full), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    if full > MAX_CROP_SIDE:
        crop = cv2.resize(crop, (MAX_CROP_SIDE, MAX_CROP_SIDE), interpolation=cv2.INTER_AREA)
    return crop


def move_landmarks(landmarks: dict, old_box, new_box) -> dict:
    """``landmarks`` found with ``old_box``, carried to ``new_box`` (x, y, w, h): same place relative to the box.

    Videos detect every k-th sample and track in between; a tracked box keeps
    its face's last landmarks, moved with it, so every sample's crop is aligned.
    """
    ox, oy, ow, oh = old_box
    nx, ny, nw, nh = new_box
    sx, sy = nw / max(ow, 1), nh / max(oh, 1)
    return {k: (nx + (x - ox) * sx, ny + (y - oy) * sy) for k, (x, y) in landmarks.items()}


def face_crops(rgb: np.ndarray, faces: list, *, align: bool | None = None) -> tuple[list[tuple], list[np.ndarray]]:
    """The boxes to draw and the crops to classify for ``faces`` of ``rgb`` (H, W, 3).

    Boxes are the :func:`~fer_core.faces.detect.square_box` of each detection (what
    the app draws and the CSVs record). Crops are aligned by the landmarks
    when a face has them (and ``align``, default :data:`ALIGN_FACES`), else
    the plain square crop.
    """
    align = ALIGN_FACES if align is None else align
    boxes = [square_box(f.box, rgb.shape) for f in faces]
    crops = [align_face(rgb, f.landmarks) if align and getattr(f, "landmarks", None) else crop_face(rgb, b)
             for f, b in zip(faces, boxes)]
    return boxes, crops
