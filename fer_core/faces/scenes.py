"""Synthetic photo scenes built from FER2013 faces, to measure the photo pipeline.

Why: FER2013 faces are 48×48 gray crops that the dataset's authors already
framed; a user's photo is a large colour JPEG in which the face is somewhere,
at some size and tilt. Accuracy measured on the 48 px crops therefore says
nothing about the detect → square → crop → resize steps in between. Without
private photos, the honest proxy is to put each labelled test face back into
a photo-like scene — upscaled, tilted, tinted, JPEG-compressed — run the app's
own pipeline on the JPEG bytes, and compare with direct accuracy on the crop.

Everything is seeded per face (``np.random.default_rng([seed, index])``), so
scene ``i`` is the same whatever subset of faces is synthesised and in which
order. Backgrounds are smooth gradients, blurred noise and blurred blocks:
nothing face-like for the detector to find instead of the pasted face.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageFilter

from .detect import box_iou, clip_box


@dataclass(frozen=True)
class SceneConfig:
    """The ranges scene parameters are drawn from (uniformly unless said otherwise).

    Defaults model an ordinary phone or webcam photo of one person: the face
    is 120–300 px (a 48 px FER2013 face upscaled 2.5–6×), the frame 640×480 to
    1280×720, a tilt of a few degrees, a mild colour cast, JPEG quality 60–95.

    The face keeps a blurred border of context (its own edge, mirrored) and
    only that border fades into the background: a feather inside the face
    (the first design) blended the FER frame's outer 8 % with the background,
    which cost about 2 points of MTCNN detections (0.859 vs 0.886 at
    confidence 0.9 on 149 validation scenes) and rewarded crops tighter than
    the face — an artefact of the scene, not of photos, which have hair, ears
    and neck around every face.
    """

    face_px: tuple[int, int] = (120, 300)
    scene_sizes: tuple[tuple[int, int], ...] = ((640, 480), (800, 600), (1024, 768), (1280, 720))
    max_rotation_deg: float = 10.0
    #: per-channel gains drawn from [1 - cast, 1 + cast]: a colour cast (white balance)
    colour_cast: float = 0.15
    #: brightness gain of the whole scene, drawn from this range
    brightness: tuple[float, float] = (0.8, 1.15)
    jpeg_quality: tuple[int, int] = (60, 95)
    #: width of the soft border of the pasted face, as a fraction of its side (0: hard edge)
    feather: float = 0.12
    #: context added around the face on each side, as a fraction of its side: a blurred
    #: mirror of the face's own border (hair, neck, background beyond the 48 px frame);
    #: the feather then fades this context, not the face, into the scene
    context: float = 0.15

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Scene:
    """One synthetic photo: JPEG bytes and where the face is.

    ``box`` is the pasted face square (x, y, s, s) before rotation, i.e. the
    region the 48 px FER2013 image covers (rotated by ``params['rotation']``
    degrees about its centre). It lies inside the image.
    """

    jpeg: bytes
    box: tuple[int, int, int, int]
    size: tuple[int, int]  # (W, H)
    params: dict


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A face-free (H, W, 3) uint8 background: gradient, blurred noise or blurred blocks.

    Cheap at 1280×720 (everything random is drawn at low resolution and
    upscaled), and smooth enough that MTCNN does not find faces in it; its
    colours are free, unlike the gray face, so a tint of the whole scene
    reads as a colour cast on the face.
    """
    kind = rng.integers(3)
    if kind == 0:  # linear gradient between two colours
        c0, c1 = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        t = (xx * np.cos(angle) + yy * np.sin(angle))
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
        img = c0 * (1 - t[..., None]) + c1 * t[..., None]
        img += rng.normal(0, 4, (height, width, 1))  # sensor noise
    elif kind == 1:  # blurred colour noise (a defocused texture)
        small = rng.uniform(20, 235, (int(rng.integers(4, 12)), int(rng.integers(4, 12)), 3)).astype(np.uint8)
        img = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), np.float32)
        img += rng.normal(0, 5, (height, width, 1))
    else:  # blurred rectangles (furniture, windows, shelves out of focus)
        canvas = Image.new("RGB", (width // 4, height // 4), tuple(int(v) for v in rng.uniform(40, 210, 3)))
        pixels = np.asarray(canvas).copy()
        for _ in range(int(rng.integers(4, 12))):
            x0, y0 = int(rng.integers(0, width // 4)), int(rng.integers(0, height // 4))
            x1, y1 = x0 + int(rng.integers(8, width // 4)), y0 + int(rng.integers(8, height // 4))
            pixels[y0:y1, x0:x1] = rng.uniform(20, 235, 3)
        blurred = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(3))
        img = np.asarray(blurred.resize((width, height), Image.Resampling.BICUBIC), np.float32)
        img += rng.normal(0, 4, (height, width, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def _feather_mask(side: int, feather: float) -> Image.Image:
    """An (side × side) 'L' mask: 255 inside, a linear ramp to 0 over the outer ``feather`` share."""
    ramp = max(0, int(round(side * feather)))
    if ramp == 0:
        return Image.new("L", (side, side), 255)
    d = np.arange(side, dtype=np.float32)
    edge = np.minimum(d, side - 1 - d)  # distance to the nearest border, per axis
    dist = np.minimum(edge[:, None], edge[None, :])
    return Image.fromarray(np.clip(255 * (dist + 0.5) / ramp, 0, 255).astype(np.uint8))


def make_scene(face: np.ndarray, seed: int, index: int, config: SceneConfig = SceneConfig()) -> Scene:
    """Paste one face — (H, W) or (H, W, 1) gray, or (H, W, 3) RGB, uint8 — into a synthetic photo.

    Steps: upscale (Lanczos) to a random side → rotate a few degrees with a
    feathered mask → paste at a random place where the whole rotated square
    fits → tint the whole scene (per-channel gains, brightness) → JPEG at a
    random quality. ``(seed, index)`` fixes every draw.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    face = np.asarray(face, np.uint8)
    if face.ndim == 3 and face.shape[-1] == 1:
        face = face[..., 0]
    W, H = config.scene_sizes[int(rng.integers(len(config.scene_sizes)))]
    side = int(rng.integers(config.face_px[0], min(config.face_px[1], int(H * 2 / 3 / (1 + 2 * config.context))) + 1))
    angle = float(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
    gains = rng.uniform(1 - config.colour_cast, 1 + config.colour_cast, 3) * rng.uniform(*config.brightness)
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    scene = Image.fromarray(background(rng, W, H))

    patch = Image.fromarray(face).resize((side, side), Image.Resampling.LANCZOS).convert("RGB")
    pad = int(round(side * config.context))
    if pad > 0:
        arr = np.asarray(patch)
        padded = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        blurred = np.asarray(Image.fromarray(padded).filter(ImageFilter.GaussianBlur(max(1, pad // 3))))
        padded = blurred.copy()
        padded[pad:pad + side, pad:pad + side] = arr  # the face itself stays sharp
        patch = Image.fromarray(padded)
    full = side + 2 * pad
    mask = _feather_mask(full, config.feather * side / full)
    patch = patch.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    pw, ph = patch.size  # the rotated square's bounding box; the face's centre is its centre
    cx = int(rng.integers(pw // 2 + 1, W - (pw - pw // 2)))
    cy = int(rng.integers(ph // 2 + 1, H - (ph - ph // 2)))
    scene.paste(patch, (cx - pw // 2, cy - ph // 2), mask)

    pixels = np.asarray(scene, np.float32) * gains
    out = io.BytesIO()
    Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    x0 = cx - pw // 2 + (pw - full) // 2 + pad
    y0 = cy - ph // 2 + (ph - full) // 2 + pad
    params = {"index": int(index), "size": [W, H], "face_px": side, "rotation": round(angle, 3),
              "gains": [round(float(g), 4) for g in gains], "jpeg_quality": quality}
    return Scene(jpeg=out.getvalue(), box=(int(x0), int(y0), side, side), size=(W, H), params=params)


#: A detector's box is the pasted face when their IoU reaches this (the benchmarks' one rule).
MATCH_IOU = 0.3


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes (:func:`fer_core.faces.detect.box_iou`)."""
    return float(box_iou(a, b))


@dataclass(frozen=True)
class GroupSceneConfig:
    """Ranges of a group photo: several faces at mixed sizes, tilted, some cut by the frame's edge.

    Face sides are drawn log-uniformly from ``face_px`` (20 px, a face at the
    back of a crowd, to 600 px, a selfie), so every octave is equally common.
    """

    faces: tuple[int, int] = (2, 7)
    face_px: tuple[int, int] = (20, 600)
    scene_sizes: tuple[tuple[int, int], ...] = ((640, 480), (800, 600), (1280, 720), (1920, 1080), (1600, 1200),
                                              (1080, 1440))
    max_rotation_deg: float = 25.0
    #: share of faces placed across the frame's edge, cut by up to ``max_cut`` of their side
    edge_share: float = 0.2
    max_cut: float = 0.35
    colour_cast: float = 0.15
    jpeg_quality: tuple[int, int] = (60, 95)
    context: float = 0.15

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GroupScene:
    """A synthetic group photo: JPEG bytes, each pasted face's square (x, y, s, s) and its dataset index."""

    jpeg: bytes
    boxes: list[tuple[int, int, int, int]]
    indices: list[int]
    rotations: list[float]
    size: tuple[int, int]


def _face_patch(face: np.ndarray, side: int, context: float) -> tuple[Image.Image, int]:
    """A gray face upscaled to ``side`` with a blurred mirrored border of context: (RGB patch, border px)."""
    patch = Image.fromarray(face).resize((side, side), Image.Resampling.LANCZOS).convert("RGB")
    pad = int(round(side * context))
    if pad > 0:
        arr = np.asarray(patch)
        padded = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        blurred = np.asarray(Image.fromarray(padded).filter(ImageFilter.GaussianBlur(max(1, pad // 3)))).copy()
        blurred[pad:pad + side, pad:pad + side] = arr
        patch = Image.fromarray(blurred)
    return patch, pad


def make_group_scene(faces: list[np.ndarray], indices: list[int], seed: int, index: int,
                     config: GroupSceneConfig = GroupSceneConfig()) -> GroupScene:
    """Paste several gray faces into one photo; ``(seed, index)`` fixes every draw.

    Faces do not overlap (a face whose square would meet another's is tried
    elsewhere, then left out); those placed across the edge keep at least
    ``1 - max_cut`` of their side inside. ``boxes`` are clipped to the frame.
    """
    rng = np.random.default_rng([int(seed), int(index), 7])
    W, H = config.scene_sizes[int(rng.integers(len(config.scene_sizes)))]
    scene = Image.fromarray(background(rng, W, H))
    boxes, kept, rotations = [], [], []
    for face, k in zip(faces, indices):
        face = np.asarray(face, np.uint8)
        face = face[..., 0] if face.ndim == 3 else face
        lo, hi = np.log(config.face_px[0]), np.log(min(config.face_px[1], int(min(W, H) * 0.6)))
        side = int(round(np.exp(rng.uniform(lo, hi))))
        angle = float(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
        at_edge = rng.uniform() < config.edge_share
        for _ in range(30):
            if at_edge:  # centre within max_cut of the side beyond the half-side margin of one edge
                cut = rng.uniform(0.05, config.max_cut) * side
                edge = int(rng.integers(4))
                cx = rng.uniform(side / 2, W - side / 2) if edge < 2 else (side / 2 - cut if edge == 2 else W - side / 2 + cut)
                cy = rng.uniform(side / 2, H - side / 2) if edge >= 2 else (side / 2 - cut if edge == 0 else H - side / 2 + cut)
            else:
                cx, cy = rng.uniform(side / 2, W - side / 2), rng.uniform(side / 2, H - side / 2)
            box = (int(round(cx - side / 2)), int(round(cy - side / 2)), side, side)
            grown = (box[0] - side // 4, box[1] - side // 4, side + side // 2, side + side // 2)  # keep heads apart
            if all(box_iou(grown, (b[0] - b[2] // 4, b[1] - b[3] // 4, b[2] * 3 // 2, b[3] * 3 // 2)) == 0
                   for b in boxes):
                break
        else:
            continue
        patch, pad = _face_patch(face, side, config.context)
        full = side + 2 * pad
        mask = _feather_mask(full, 0.12 * side / full).rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        patch = patch.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        pw, ph = patch.size
        scene.paste(patch, (int(round(cx - pw / 2)), int(round(cy - ph / 2))), mask)
        boxes.append(box)
        kept.append(int(k))
        rotations.append(round(angle, 3))
    gains = rng.uniform(1 - config.colour_cast, 1 + config.colour_cast, 3)
    pixels = np.clip(np.rint(np.asarray(scene, np.float32) * gains), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
    clipped = [clip_box(b, (H, W)) for b in boxes]
    return GroupScene(jpeg=out.getvalue(), boxes=clipped, indices=kept, rotations=rotations, size=(W, H))


def background_photo(seed: int, index: int, config: GroupSceneConfig = GroupSceneConfig()) -> bytes:
    """Face-free photo ``index`` of a benchmark split (JPEG bytes, quality 85), at one of ``config``'s scene sizes,
    seeded by ``(seed, index)``: the backgrounds on which false boxes are counted."""
    rng = np.random.default_rng([seed, index, 99])
    W, H = config.scene_sizes[int(rng.integers(len(config.scene_sizes)))]
    buf = io.BytesIO()
    Image.fromarray(background(rng, W, H)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def stratified_indices(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Up to ``limit`` indices into ``labels``, each class in its own proportion, seeded, sorted.

    Every class keeps at least one face (FER2013's disgust is 1.5 % of test),
    so a small limit still measures all seven.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if limit is None or limit >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen = []
    classes, counts = np.unique(labels, return_counts=True)
    for c, count in zip(classes, counts):
        k = max(1, int(round(limit * count / n)))
        members = np.flatnonzero(labels == c)
        chosen.append(rng.choice(members, size=min(k, count), replace=False))
    return np.sort(np.concatenate(chosen))
