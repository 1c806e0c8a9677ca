"""Sample photos for the Predict page.

One real photo ships with the project (``ui/assets/astronaut.jpg``: NASA's
portrait of astronaut Eileen Collins, public domain; the copy scikit-image
distributes as ``skimage.data.astronaut``), so the bundled FER2013 models can
be tried on a real face straight away. The others are deterministic
compositions of :func:`fer_core.data.demo.draw_face` portraits on a plain wall,
drawn at runtime: the same on every machine, a few milliseconds to make.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fer_core.data.demo import DEMO_CLASSES, draw_face

from .settings import ROOT

#: name → file under ui/assets: real photos, shown first
PHOTOS = {
    "Astronaut Eileen Collins (real photo, NASA, public domain)": ROOT / "ui" / "assets" / "astronaut.jpg",
}
#: name → (labels of the faces, canvas size, seed)
SAMPLES = {
    "Two friends (happy, surprise)": ((1, 3), (760, 440), 11),
    "Close-up (sad)": ((2,), (360, 360), 5),
    "Group of three (neutral, anger, fear)": ((0, 6, 4), (960, 420), 20),
}


def _wall(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.array(rng.choice([(214, 205, 190), (190, 204, 214), (206, 214, 196)]), dtype=np.float32)
    ramp = np.linspace(1.05, 0.85, h, dtype=np.float32)[:, None, None]
    noise = rng.normal(0, 3, (h, w, 1)).astype(np.float32)
    img = np.clip(base[None, None, :] * ramp + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(np.broadcast_to(img, (h, w, 3)).copy())


def sample_image(name: str) -> Image.Image:
    """The named sample as a PIL RGB image."""
    if name in PHOTOS:
        with Image.open(PHOTOS[name]) as img:
            return img.convert("RGB")
    labels, size, seed = SAMPLES[name]
    canvas = _wall(size, seed)
    w, h = size
    n = len(labels)
    side = int(min(h * 0.78, w / n * 0.82))
    gap = (w - n * side) / (n + 1)
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        face = Image.fromarray(draw_face(np.random.default_rng(seed * 100 + i), label, side))
        x = int(gap + i * (side + gap))
        y = int((h - side) / 2)
        shadow = Image.new("L", (side + 24, side + 24), 0)
        ImageDraw.Draw(shadow).rectangle([12, 12, side + 12, side + 12], fill=90)
        canvas.paste((60, 60, 60), (x - 6, y - 2), shadow.filter(ImageFilter.GaussianBlur(8)))
        draw.rectangle([x - 5, y - 5, x + side + 4, y + side + 4], fill=(250, 250, 248))
        canvas.paste(face, (x, y))
    return canvas


def sample_bytes(name: str, fmt: str = "PNG") -> bytes:
    """The named sample, encoded (drawn ones as PNG by default): exactly what an upload would deliver."""
    if name in PHOTOS:
        return PHOTOS[name].read_bytes()
    buf = io.BytesIO()
    sample_image(name).save(buf, format=fmt)
    return buf.getvalue()


def sample_names() -> list[str]:
    return [*PHOTOS, *SAMPLES]


def expression_of(label: int) -> str:
    return DEMO_CLASSES[label]
