"""Training faces as the app will see them: each face put in a photo and cut out again by the app's own pipeline.

Why: a model reads FER2013's registered 48 px crops well and the app's crops
less well — for the FER+ models about 4 points less on the benchmark's test
scenes (``benchmarks/fer2013.py``). The app's crop of a face has been
upscaled, tilted, tinted, JPEG-compressed, found by YuNet, levelled by its
eye landmarks and resampled back to 48 px. Random blur and JPEG
(``--augment-mode photo``) imitate parts of that; here every training face
goes through the whole of it once — :func:`~fer_core.faces.scenes.make_scene`,
:func:`~fer_core.faces.detect.detect_faces`,
:func:`~fer_core.faces.align.face_crops` and the predictor's resize — so
training can show a model the very crops it will be asked to read
(``--augment-mode aligned``). One function for the app and for training, as
issue 25 asks. Measured on four bundled networks, it helps little: up to a
point on validation photos, and the FER+ model still loses 2.8 points on the
crops of the faces it finds (docs/benchmarks.md, "Training on the app's crops").

Each face's scene is seeded by :data:`TRAIN_SCENE_SEED` (not the benchmarks'
scene seeds, 0 for test and 1 for validation) and by the face's own pixels
(:func:`face_key`), so a face gets the same crop in any dataset that holds
it: FER2013 and its FER+ subset share the work. Faces span 40–300 px (group
photos too, not only the benchmark's 120–300 px portraits). A face the
detector misses keeps its own crop (``found`` False).
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from .scenes import MATCH_IOU, SceneConfig, iou, make_scene

#: Seed of the training scenes (the benchmarks use 0 for test scenes and 1 for validation).
TRAIN_SCENE_SEED = 25
#: Faces 40–300 px in 640×480 and 800×600 photos.
TRAIN_SCENES = SceneConfig(face_px=(40, 300), scene_sizes=((640, 480), (800, 600)))
#: Bump when the recipe changes: cached crops of another version are not reused.
VERSION = 2


def face_key(face: np.ndarray) -> int:
    """A 63-bit key of a face's pixels: it seeds the face's scene and finds its crop in a cache."""
    digest = hashlib.sha256(np.ascontiguousarray(face, np.uint8).tobytes()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def app_crop(face: np.ndarray, index: int, seed: int = TRAIN_SCENE_SEED,
             config: SceneConfig = TRAIN_SCENES) -> tuple[np.ndarray, bool]:
    """One (S, S) gray uint8 face → (the app's (S, S) gray crop of it in a seeded photo, whether YuNet found it)."""
    from ..data.preprocess import prepare_images, to_channels
    from .align import face_crops
    from .detect import detect_faces

    face = np.asarray(face, np.uint8).reshape(face.shape[0], face.shape[1])
    scene = make_scene(face, seed, index, config)
    rgb = np.asarray(Image.open(io.BytesIO(scene.jpeg)).convert("RGB"))  # (H, W, 3), as the app decodes it
    faces = detect_faces(rgb)
    overlap, best = max(((iou(f.box, scene.box), f) for f in faces), key=lambda t: t[0], default=(0.0, None))
    if overlap < MATCH_IOU:
        return face, False
    _, (crop,) = face_crops(rgb, [best])  # (h, w, 3), levelled by the eyes
    side = face.shape[0]
    small = to_channels(prepare_images(crop[None], side, 3), 1)  # (1, S, S, 1): the predictor's resize, then luma
    return small[0, ..., 0], True


def _chunk(args) -> tuple[np.ndarray, np.ndarray]:
    faces, indices, seed = args
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    out = [app_crop(f, int(i), seed) for f, i in zip(faces, indices)]
    return np.stack([c for c, _ in out]), np.array([ok for _, ok in out])


def app_crops(faces: np.ndarray, indices: np.ndarray | None = None, *, seed: int = TRAIN_SCENE_SEED,
              workers: int = 1, chunk: int = 256, on_chunk=None) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S[, 1]) gray uint8 → (crops (N, S, S, 1) uint8, found (N,) bool); see :func:`app_crop`.

    ``indices`` seed each face's scene (default: :func:`face_key` of each face,
    so a face's crop does not depend on which dataset or subset it came with).
    ``workers`` > 1 spreads chunks over processes. ``on_chunk(done, total)``
    reports progress.
    """
    faces = np.asarray(faces, np.uint8)
    if faces.ndim == 4:
        faces = faces[..., 0]
    indices = np.array([face_key(f) for f in faces], np.uint64) if indices is None else np.asarray(indices)
    jobs = [(faces[i:i + chunk], indices[i:i + chunk], seed) for i in range(0, len(faces), chunk)]
    crops, found, done = [], [], 0

    def collect(result):
        nonlocal done
        crops.append(result[0])
        found.append(result[1])
        done += len(result[0])
        if on_chunk is not None:
            on_chunk(done, len(faces))

    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for result in pool.map(_chunk, jobs):
                collect(result)
    else:
        for job in jobs:
            collect(_chunk(job))
    if not crops:
        return np.zeros((0, *faces.shape[1:], 1), np.uint8), np.zeros(0, bool)
    return np.concatenate(crops)[..., None], np.concatenate(found)
