"""Opening images safely: one place that turns any file or upload into pixels.

Used by the image-folder loader and by prediction on uploads, so both agree on
EXIF orientation, odd modes (palette, RGBA, CMYK, 16-bit) and on refusing
decompression bombs before any pixel is decoded.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageInputError

#: Largest image we decode (width × height). 40 MP covers any phone photo;
#: a 20000×20000 "bomb" (400 MP) is refused from its header alone.
MAX_PIXELS = 40_000_000
#: Smallest side that still holds a face worth classifying.
MIN_SIDE = 8

# Pillow's own guard raises at 2× its limit; ours is stricter and checked first.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def open_image(source: str | Path | bytes, *, name: str | None = None,
               max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``source`` (a path or raw bytes) into an upright RGB or L image.

    Raises :class:`ImageInputError` with a one-line reason for empty,
    truncated, non-image, too large or too small input. Only the first frame
    of an animated file (GIF, WebP) is kept.
    """
    label = name or (Path(source).name if not isinstance(source, bytes) else "image")
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise ImageInputError(f"{label}: cannot read file ({exc.strerror or exc})") from None
    if len(raw) == 0:
        raise ImageInputError(f"{label}: the file is empty (0 bytes)")
    try:
        img = Image.open(io.BytesIO(raw))
    except UnidentifiedImageError:
        kind = _sniff_kind(raw)
        raise ImageInputError(f"{label}: not a supported image ({kind}); use JPEG, PNG, WebP, BMP or GIF") from None
    except Image.DecompressionBombError:
        raise ImageInputError(f"{label}: image is too large to decode safely (over {max_pixels:,} pixels)") from None
    except Exception as exc:  # Pillow raises many types for broken headers
        raise ImageInputError(f"{label}: cannot decode image, its header is broken") from None
    w, h = img.size
    if w * h > max_pixels:
        raise ImageInputError(f"{label}: image is {w}×{h} = {w * h:,} pixels, over the {max_pixels:,} limit")
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"{label}: image is {w}×{h}, too small (each side must be at least {MIN_SIDE} px)")
    try:
        img.seek(0)  # first frame of animations
        img.load()
        img = ImageOps.exif_transpose(img)
        return to_rgb_or_gray(img)
    except ImageInputError:
        raise
    except Exception as exc:
        raise ImageInputError(f"{label}: the image data is truncated or corrupt") from None


def to_rgb_or_gray(img: Image.Image) -> Image.Image:
    """Map every Pillow mode onto "RGB" or "L" without losing contrast.

    16-bit and 32-bit gray are rescaled (Pillow's own convert would clip them
    to white); transparency is composited onto white, as viewers show it.
    """
    mode = img.mode
    if mode in ("RGB", "L"):
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
    if mode == "1":
        return img.convert("L")
    if mode in ("LA", "PA") or mode == "RGBA" or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV, RGBX...


def to_array(img: Image.Image) -> np.ndarray:
    """Pillow image (RGB or L) → uint8 array (H, W, 3) or (H, W, 1)."""
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def _sniff_kind(raw: bytes) -> str:
    """Name common non-image or unsupported formats from their magic bytes."""
    head = raw[:16]
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftyphevc", b"ftypmif1", b"ftypmsf1"):
        return "HEIC/HEIF photos are not supported: convert to JPEG first"
    if head.startswith(b"PK"):
        return "it is a zip archive"
    return "unrecognised or damaged data"
