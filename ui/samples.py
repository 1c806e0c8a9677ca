"""Sample photos for the Predict page, drawn at runtime from the demo face generator.

No downloaded photos ship with the project: each sample is a deterministic
composition of :func:`fer_core.demo.draw_face` portraits on a plain wall, so it
is the same on every machine and costs a few milliseconds to make.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fer_core.demo import DEMO_CLASSES, draw_face

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
    """The named sample, encoded (PNG by default): exactly what an upload would deliver."""
    buf = io.BytesIO()
    sample_image(name).save(buf, format=fmt)
    return buf.getvalue()


def sample_names() -> list[str]:
    return list(SAMPLES)


def expression_of(label: int) -> str:
    return DEMO_CLASSES[label]
