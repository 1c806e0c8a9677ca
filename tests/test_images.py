"""fer_core.data.images.open_image: every upload becomes upright RGB/L pixels or one clear error.

Bad inputs (empty, truncated, not an image, unsupported, too small, too
large) must raise :class:`ImageInputError` with a one-line message; odd but
valid ones (16-bit, CMYK, palette with transparency, RGBA, animated GIF,
EXIF-rotated) must decode to sensible pixels. Everything is built in memory
with Pillow; nothing here loads TensorFlow.
"""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from fer_core import ImageInputError
from fer_core.data.images import MAX_PIXELS, open_image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _rgb(w=64, h=48, colour=(200, 120, 40)) -> Image.Image:
    return Image.new("RGB", (w, h), colour)


def _refused(data: bytes, match: str, name: str = "upload.jpg") -> str:
    with pytest.raises(ImageInputError, match=match) as info:
        open_image(data, name=name)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(name)
    return msg


# --------------------------------------------------------------------------- refused

def test_zero_bytes():
    _refused(b"", "empty")


def test_truncated_jpeg():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    data = _encode(noise, "JPEG", quality=90)
    _refused(data[: len(data) // 2], "truncated or corrupt")


def test_pdf_renamed_jpg():
    _refused(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"0" * 200, "PDF")


def test_heic_header():
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200
    _refused(heic, "HEIC", name="IMG_0001.HEIC")


def test_random_bytes():
    _refused(bytes(range(256)) * 4, "not a supported image")


def test_one_by_one_image():
    _refused(_encode(_rgb(1, 1), "PNG"), "too small", name="dot.png")


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG that declares w×h 1-bit gray pixels, with a few rows of real data.

    If the loader tried to decode it, it would fail as truncated; refusing
    it as too large proves the header alone was enough.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    rows = zlib.compress(b"\x00" * (1 + (w + 7) // 8) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header():
    data = _png_header_only(20000, 20000)
    assert len(data) < 10_000
    t = time.perf_counter()
    msg = _refused(data, "too large|pixels", name="bomb.png")
    assert time.perf_counter() - t < 2.0
    assert "truncated" not in msg


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_just_over_our_limit_refused():
    side = int(MAX_PIXELS ** 0.5) + 100  # over our 40 MP, under Pillow's own 2× hard limit
    _refused(_png_header_only(side, side), "over the", name="big.png")


# --------------------------------------------------------------------------- accepted, normalised

def test_16bit_png_keeps_contrast():
    a = np.zeros((16, 32), np.uint16)
    a[:, 16:] = 65535
    a[:, 8] = 32768
    img = open_image(_encode(Image.fromarray(a), "PNG"))
    assert img.mode == "L"
    px = np.asarray(img)
    assert px[0, 0] == 0 and px[0, 20] == 255 and 120 <= px[0, 8] <= 135


def test_cmyk_jpeg_becomes_rgb():
    img = open_image(_encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG", quality=95))
    assert img.mode == "RGB"
    r, g, b = np.asarray(img)[15, 20].astype(int)
    assert r > 200 and g < 60 and b < 60  # full magenta + yellow = red


def test_palette_png_with_transparency_on_white():
    p = Image.new("P", (20, 20), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.paste(1, (0, 0, 10, 20))  # left half: palette index 1 (red)
    data = _encode(p, "PNG", transparency=0)  # index 0 (right half) is transparent
    px = np.asarray(open_image(data))
    assert px.shape == (20, 20, 3)
    assert tuple(px[10, 5]) == (255, 0, 0) and tuple(px[10, 15]) == (255, 255, 255)


def test_rgba_composited_on_white():
    a = np.zeros((20, 20, 4), np.uint8)
    a[..., 2] = 255
    a[:, :10, 3] = 255  # opaque blue left, transparent right
    px = np.asarray(open_image(_encode(Image.fromarray(a), "PNG")))
    assert tuple(px[5, 2]) == (0, 0, 255) and tuple(px[5, 15]) == (255, 255, 255)


def test_gif_first_frame():
    frames = [_rgb(32, 32, (255, 0, 0)), _rgb(32, 32, (0, 0, 255))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = open_image(data, name="anim.gif")
    r, g, b = np.asarray(img)[16, 16].astype(int)
    assert img.mode == "RGB" and r > 200 and b < 50


def test_exif_orientation_applied():
    a = np.zeros((100, 200, 3), np.uint8)
    a[:, :100] = (255, 0, 0)
    a[:, 100:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    px = np.asarray(open_image(_encode(Image.fromarray(a), "JPEG", quality=95, exif=exif.tobytes())))
    assert px.shape == (200, 100, 3)  # portrait, as a phone shows it
    assert px[10, 50, 0] > 200 and px[190, 50, 2] > 200  # left half ended on top


def test_path_input_and_missing_file(tmp_path):
    path = tmp_path / "face.png"
    _rgb().save(path)
    assert open_image(path).size == (64, 48)
    with pytest.raises(ImageInputError, match="cannot read"):
        open_image(tmp_path / "missing.png")
