"""Inputs for the prediction process: 1920×1080 photos with composited demo faces, and the
demo images every lever's agreement is measured on."""

from __future__ import annotations

import numpy as np


def _background(width: int, height: int, rng) -> np.ndarray:
    from PIL import Image

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([120 + 60 * xx / width, 130 + 40 * yy / height, 140 - 30 * xx / width], -1)
    low = rng.random((max(2, height // 32), max(2, width // 32))) * 255
    noise = np.asarray(Image.fromarray(low.astype(np.uint8)).resize((width, height), Image.BICUBIC), np.float32)
    return np.clip(base + 0.25 * (noise - 128)[..., None], 0, 255).astype(np.uint8)


def _paste(img: np.ndarray, tile: np.ndarray, x0: int, y0: int) -> None:
    """Blend a square face tile into img through a feathered ellipse (no hard square edges)."""
    from PIL import Image, ImageDraw, ImageFilter

    s = tile.shape[0]
    m = Image.new("L", (s, s), 0)
    ImageDraw.Draw(m).ellipse([s * 0.08, s * 0.02, s * 0.92, s * 0.98], fill=255)
    a = np.asarray(m.filter(ImageFilter.GaussianBlur(s / 40)), np.float32)[..., None] / 255
    region = img[y0:y0 + s, x0:x0 + s].astype(np.float32)
    img[y0:y0 + s, x0:x0 + s] = np.clip(tile * a + region * (1 - a), 0, 255).astype(np.uint8)


def make_photo(n_faces: int, *, width: int = 1920, height: int = 1080, tries: int = 8, seed: int = 0) -> dict:
    """A 1920×1080 JPEG (stored sideways with EXIF orientation 6) with n demo faces at photo-like sizes.

    the detector finds only some cartoon faces, so each slot keeps the first drawn
    face (up to ``tries`` candidates) that the app's own detector finds alone
    on the background; the JSON records how many were tried and found.
    """
    import io

    from PIL import Image

    from fer_core.data.demo import draw_face
    from fer_core.faces.detect import detect_faces

    rng = np.random.default_rng(seed)
    bg = _background(width, height, rng)
    tile = 440 if n_faces == 1 else min(340, width // (n_faces + 1))  # face ≈ 55 % of the tile: 240 / 190 px
    xs = np.linspace(0, width, n_faces + 2)[1:-1]
    img = bg.copy()
    slots = []
    for i, cx in enumerate(xs):
        x0 = int(np.clip(cx - tile / 2, 0, width - tile))
        y0 = int(np.clip(height * (0.45 + 0.06 * ((i % 2) - 0.5)) - tile / 2, 0, height - tile))
        chosen, found, tried = None, None, 0
        for k in range(tries):
            tried += 1
            face = draw_face(np.random.default_rng(seed * 1000 + i * 100 + k), (i + k) % 8, tile)
            chosen = face
            if tries == 1:
                break  # no choice to make: skip the probe
            probe = bg.copy()
            _paste(probe, face, x0, y0)
            hits = [f for f in detect_faces(probe) if x0 - tile / 4 <= f.box[0] + f.box[2] / 2 <= x0 + tile * 1.25]
            found = bool(hits)
            if hits:
                break
        _paste(img, chosen, x0, y0)
        slots.append({"box": [x0, y0, tile, tile], "candidates_tried": tried, "detected_alone": found})
    upright = Image.fromarray(img)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # sideways, as phones store portrait-held shots
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    from fer_core.data.images import open_image

    decoded = open_image(buf.getvalue())  # the app's decoder applies the EXIF rotation
    if decoded.size != (width, height):
        raise RuntimeError(f"EXIF orientation not applied: decoded {decoded.size}, expected {(width, height)}")
    return {"jpeg": buf.getvalue(), "faces_placed": n_faces, "tile_px": tile, "slots": slots,
            "size": [width, height], "jpeg_bytes": len(buf.getvalue()), "exif_orientation": 6}


def agreement_images(cfg: dict) -> np.ndarray:
    from fer_core.data.demo import make_demo_arrays

    a = make_demo_arrays(per_class=cfg["agree_per_class"], image_size=128, seed=7)
    return np.concatenate([a["train_images"], a["validation_images"], a["test_images"]])
