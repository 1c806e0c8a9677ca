"""Built-in synthetic facial-expression dataset ("demo" data).

Why this exists: FER Studio must be usable -- and its training/evaluation
pipeline testable -- without downloading AffectNet or FER2013.  This module
*draws* cartoon faces for the eight AffectNet expression classes with numpy and
Pillow only (no TensorFlow, no Streamlit import), so it is cheap to import from
anywhere, including tests and the UI.

Design goals:

* **Learnable but not trivial.**  Every class has its own brows, eyes and
  mouth, but each image is drawn at a random *intensity* (a weak smile looks
  almost neutral) with jittered feature shapes, and with nuisance variation
  that has nothing to do with the label: skin tone, hair, face size, position,
  in-plane rotation, lighting gradient, colour cast, background clutter, blur
  and sensor noise.  A small CNN should therefore beat chance (12.5 %) easily
  but not be perfect after one epoch.
* **Deterministic.**  Everything derives from one ``np.random.default_rng(seed)``
  so the same arguments give byte-identical arrays (reproducible demos, tests).
* **Fast.**  Shapes are drawn with ``PIL.ImageDraw`` at 2x resolution and box-
  downsampled (cheap anti-aliasing); photometric nuisance is applied with numpy
  at the final resolution.  The default 3,200 images (400 per class) take a few
  seconds on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["DEMO_CLASSES", "DEMO_FACE_SCALE", "DEMO_IMAGE_SIZE", "DEMO_PER_CLASS", "make_demo_arrays", "draw_face"]

#: Class names in AffectNet label order (index == integer label).
DEMO_CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")

#: Faces per class of the default demo set: the CLI's ``--demo-per-class`` and the Train page's
#: "Faces per class" both read this (via :mod:`fer_core.data.defaults`).  Why this many: with 60 the
#: baseline made ~30 optimiser steps in 5 epochs and every model ended at chance; it needs a few
#: hundred steps before its loss leaves ln(8), and the four backbones' one-off feature pass
#: (~0.04 s per image on 2 cores) must keep the five-model run within about 5 minutes.
DEMO_PER_CLASS = 400
DEMO_IMAGE_SIZE = 128
#: Head size of the dataset faces relative to :func:`draw_face`'s portrait framing: 1.2 makes
#: the face fill the image about as much as Predict's detector crop (face box + 20 % margin), so
#: the expression features are bigger for a small CNN and match what the models see in a photo.
DEMO_FACE_SCALE = 1.2

_SUPERSAMPLE = 2  # draw at 2x and box-downsample: anti-aliased edges for free

# Realistic skin tones from very light to very dark; a tone is interpolated
# between neighbouring anchors so the whole range is covered, not 7 colours.
_SKIN_ANCHORS = np.array(
    [
        (255, 224, 196),
        (241, 194, 160),
        (224, 172, 125),
        (198, 134, 90),
        (160, 105, 65),
        (120, 75, 45),
        (85, 55, 35),
    ],
    dtype=np.float64,
)

_HAIR_COLOURS = np.array(
    [
        (25, 20, 18),  # black
        (60, 40, 25),  # dark brown
        (105, 72, 40),  # brown
        (185, 155, 100),  # blond
        (140, 62, 30),  # red
        (150, 148, 145),  # grey
    ],
    dtype=np.float64,
)

_IRIS_COLOURS = np.array(
    [(70, 45, 25), (40, 28, 20), (70, 110, 150), (80, 110, 70), (110, 85, 50)],
    dtype=np.float64,
)


# --------------------------------------------------------------------------
# Expression parameters
# --------------------------------------------------------------------------


@dataclass
class _Expression:
    """Geometric description of one face's expression.

    Lengths are in units of the face half-width so they scale with face size.
    Signs: positive ``brow_raise`` / ``brow_inner`` move up; positive
    ``mouth_curve`` lifts both mouth corners (smile), negative pulls them down.
    """

    brow_raise: float = 0.0  # whole brow up (+) / down (-)
    brow_inner: float = 0.0  # inner end up (+, sad/fear) or down (-, anger V)
    brow_arch: float = 0.04  # bulge of the brow's middle
    brow_width_scale: float = 1.0
    eye_open: float = 1.0  # eye height relative to a relaxed eye
    eye_lid_slant: float = 0.0  # inner upper lid lowered (anger/disgust)
    cheek_raise: bool = False  # lower-lid "smile" creases under the eyes
    furrow: bool = False  # vertical lines between the brows
    nose_wrinkle: bool = False  # horizontal creases on the nose bridge
    mouth_kind: str = "line"  # line | open | o
    mouth_curve: float = 0.0
    mouth_width: float = 1.0
    mouth_open: float = 0.0  # opening height (face units)
    mouth_open_lower_curve: float = 0.0  # extra curve of the lower lip when open
    mouth_squareness: float = 2.0  # exponent: 2 = lens shape, larger = boxier
    mouth_side: int = 1  # +1 right / -1 left, for one-sided features
    mouth_smirk: float = 0.0  # one-sided corner lift (contempt)
    mouth_sneer: float = 0.0  # one-sided upper-lip raise (disgust)
    mouth_wave: float = 0.0  # wavy/uneven lip line amplitude
    teeth: bool = False
    lip_width_scale: float = 1.0
    smile_lines: bool = False  # nasolabial folds beside a broad smile


def _expression_params(rng: np.random.Generator, label: int) -> _Expression:
    """Sample the expression geometry of one image of class ``label``.

    Each non-neutral class is "neutral + intensity * class delta" plus shape
    jitter, so weak expressions drift towards neutral and neighbouring classes
    (neutral/contempt, anger/disgust, fear/surprise) overlap a little -- that
    is what keeps the task from being trivially separable.
    """
    k = float(rng.uniform(0.45, 1.0))  # expression intensity
    side = int(rng.choice((-1, 1)))
    e = _Expression(mouth_side=side)
    if label == 0:  # neutral: straight mouth, relaxed brows
        e.mouth_curve = float(rng.normal(0.0, 0.025))
        e.mouth_width = float(rng.uniform(0.85, 1.0))
    elif label == 1:  # happy: upward arc, squinted eyes, raised cheeks
        e.mouth_curve = 0.30 * k
        e.mouth_width = 1.05 + 0.15 * k
        e.eye_open = 1.0 - 0.4 * k
        e.cheek_raise = k > 0.6
        e.brow_raise = 0.03 * k
        if rng.random() < 0.55:
            e.mouth_kind = "open"
            e.mouth_open = 0.05 + 0.10 * k
            e.mouth_open_lower_curve = 0.08 * k
            e.teeth = True
        e.smile_lines = rng.random() < 0.5 * k
    elif label == 2:  # sad: downward arc, brows raised at the inner end
        e.mouth_curve = -0.20 * k
        e.mouth_width = 0.85
        e.brow_inner = 0.16 * k
        e.brow_raise = 0.02
        e.brow_arch = 0.0
        e.eye_open = 0.9 - 0.15 * k
    elif label == 3:  # surprise: raised arched brows, wide eyes, "O" mouth
        e.brow_raise = 0.16 * k
        e.brow_arch = 0.06 + 0.06 * k
        e.eye_open = 1.15 + 0.5 * k
        e.mouth_kind = "o"
        e.mouth_open = 0.12 + 0.16 * k
        e.mouth_width = 0.45 + 0.15 * k
    elif label == 4:  # fear: raised slanted brows, wide eyes, wide tense mouth
        e.brow_raise = 0.10 * k
        e.brow_inner = 0.12 * k
        e.brow_arch = 0.0
        e.eye_open = 1.15 + 0.45 * k
        e.mouth_kind = "open"
        e.mouth_open = 0.08 + 0.12 * k
        e.mouth_curve = -0.12 * k
        e.mouth_open_lower_curve = -0.04 * k  # stretched, flat lower lip
        e.mouth_width = 1.0 + 0.15 * k
        e.mouth_squareness = 3.0
        e.teeth = rng.random() < 0.7
        e.furrow = rng.random() < 0.3
    elif label == 5:  # disgust: low wrinkled brows, narrow eyes, sneer
        e.brow_raise = -0.07 * k
        e.brow_inner = -0.06 * k
        e.eye_open = 1.0 - 0.4 * k
        e.nose_wrinkle = True
        e.mouth_kind = "open"
        e.mouth_open = 0.015
        e.mouth_sneer = 0.05 + 0.09 * k
        e.mouth_wave = 0.02 + 0.03 * k
        e.mouth_curve = -0.08 * k
        e.teeth = True
        e.mouth_width = 0.9
    elif label == 6:  # anger: V brows, narrowed eyes, tight flat/down mouth
        e.brow_raise = -0.08 * k
        e.brow_inner = -0.18 * k
        e.brow_arch = 0.0
        e.brow_width_scale = 1.3
        e.eye_open = 1.0 - 0.35 * k
        e.eye_lid_slant = 0.5 * k
        e.furrow = rng.random() < 0.6
        e.mouth_curve = -0.08 * k
        e.mouth_width = 0.75
        e.lip_width_scale = 1.4
        if rng.random() < 0.3:  # clenched teeth
            e.mouth_kind = "open"
            e.mouth_open = 0.06
            e.mouth_squareness = 6.0
            e.teeth = True
    elif label == 7:  # contempt: one-sided smirk, otherwise near neutral
        e.mouth_smirk = 0.10 + 0.14 * k
        e.mouth_curve = float(rng.normal(0.0, 0.02))
        e.mouth_width = 0.9
        e.eye_open = 1.0 - 0.15 * k
        e.brow_raise = float(rng.normal(0.0, 0.02))
    else:
        raise ValueError(f"label must be in [0, {len(DEMO_CLASSES) - 1}], got {label}")
    _jitter_expression(rng, e)
    return e


def _jitter_expression(rng: np.random.Generator, e: _Expression) -> None:
    """Add small class-independent shape noise (people differ at rest too)."""
    e.brow_raise += float(rng.normal(0.0, 0.025))
    e.brow_inner += float(rng.normal(0.0, 0.025))
    e.brow_arch += float(rng.normal(0.0, 0.015))
    e.eye_open *= float(rng.uniform(0.88, 1.12))
    e.mouth_curve += float(rng.normal(0.0, 0.02))
    e.mouth_width *= float(rng.uniform(0.9, 1.1))


# --------------------------------------------------------------------------
# Small colour / geometry helpers
# --------------------------------------------------------------------------


def _rgb(c) -> tuple[int, int, int]:
    """Clip and convert a float colour to the int tuple Pillow wants."""
    a = np.clip(np.asarray(c, dtype=np.float64), 0, 255)
    return int(a[0]), int(a[1]), int(a[2])


def _skin_tone(rng: np.random.Generator) -> np.ndarray:
    """Continuous skin tone sampled along the light-to-dark anchor ramp."""
    t = rng.uniform(0.0, len(_SKIN_ANCHORS) - 1)
    i = min(int(t), len(_SKIN_ANCHORS) - 2)
    f = t - i
    tone = (1 - f) * _SKIN_ANCHORS[i] + f * _SKIN_ANCHORS[i + 1]
    return tone + rng.normal(0.0, 5.0, 3)


def _curve_points(x0, y0, x1, y1, lift, n=12) -> list[tuple[float, float]]:
    """Points on a quadratic arc from (x0,y0) to (x1,y1) whose middle is
    raised by ``lift`` pixels (negative = sagging)."""
    t = np.linspace(0.0, 1.0, n)
    xs = x0 + (x1 - x0) * t
    ys = y0 + (y1 - y0) * t - lift * 4.0 * t * (1.0 - t)
    return list(zip(xs.tolist(), ys.tolist()))


def _thick_line(draw: ImageDraw.ImageDraw, pts, colour, width: float) -> None:
    """Polyline with round caps (Pillow's own lines have square ends)."""
    w = max(1, int(round(width)))
    draw.line(pts, fill=colour, width=w, joint="curve")
    r = w / 2.0
    for x, y in (pts[0], pts[-1]):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


# --------------------------------------------------------------------------
# Scene parts
# --------------------------------------------------------------------------


def _draw_background(rng: np.random.Generator, size: int) -> Image.Image:
    """Random coloured, gradient-lit background with some clutter shapes, so
    the network cannot key on a constant backdrop.  Returned as RGBA so the
    head layer can be composited onto it without a mode conversion."""
    base = rng.uniform(30, 225, 3)
    other = np.clip(base + rng.normal(0, 40, 3), 0, 255)
    # 1-pixel-wide gradient strip stretched by Pillow: far cheaper than
    # building a full float image in numpy.
    t = np.linspace(0.0, 1.0, size)[:, None]
    strip = np.empty((size, 1, 4), dtype=np.uint8)
    strip[:, 0, :3] = base * (1 - t) + other * t
    strip[:, 0, 3] = 255
    img = Image.fromarray(strip, "RGBA").resize((size, size), Image.NEAREST)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.TRANSPOSE)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 6))):
        col = _rgb(np.clip(base + rng.normal(0, 55, 3), 0, 255))
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
        w, h = rng.uniform(0.1, 0.6, 2) * size
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=col)
        elif kind == 1:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=col)
        else:
            draw.line((x0, y0, x0 + w, y0 + h), fill=col, width=int(size * rng.uniform(0.01, 0.04)))
    return img


def _draw_body(draw, rng, cx, cy, u, ry, skin, size) -> None:
    """Neck and shoulders below the head (not rotated with it)."""
    neck = _rgb(skin * 0.85)
    draw.rectangle((cx - 0.45 * u, cy + 0.5 * ry, cx + 0.45 * u, size), fill=neck)
    cloth = _rgb(rng.uniform(20, 230, 3))
    top = cy + ry * rng.uniform(0.95, 1.1)
    draw.ellipse((cx - 2.2 * u, top, cx + 2.2 * u, top + 2.0 * ry), fill=cloth)


def _draw_head(draw, rng, cx, cy, u, ry, skin, hair) -> None:
    """Hair mass, ears, face oval and fringe/cap."""
    bald = rng.random() < 0.12
    if not bald:  # hair behind the head
        long = rng.uniform(0.0, 0.9)
        draw.ellipse((cx - 1.12 * u, cy - 1.1 * ry, cx + 1.12 * u, cy + long * ry), fill=_rgb(hair))
    ear = _rgb(skin * 0.93)
    for s in (-1, 1):
        ex = cx + s * 0.97 * u
        draw.ellipse((ex - 0.13 * u, cy - 0.2 * ry, ex + 0.13 * u, cy + 0.12 * ry), fill=ear)
    draw.ellipse((cx - u, cy - ry, cx + u, cy + ry), fill=_rgb(skin))
    if not bald:  # fringe: top half of an ellipse whose flat side is the hairline
        hairline = cy - ry * rng.uniform(0.5, 0.68)
        top = cy - ry * 1.04
        box = (cx - 1.03 * u, top, cx + 1.03 * u, hairline + (hairline - top))
        draw.chord(box, 180, 360, fill=_rgb(hair))


@dataclass
class _Layout:
    """Where the features sit on this particular face (identity variation)."""

    cx: float
    cy: float
    u: float  # face half-width in pixels
    ry: float  # face half-height in pixels
    eye_dx: float
    eye_y: float
    eye_w: float  # eye half-width
    brow_gap: float
    mouth_y: float
    mouth_w: float  # neutral mouth half-width
    line_w: float  # base stroke width


def _layout(rng, cx, cy, u, ry) -> _Layout:
    """Sample per-identity feature placement (eye spacing, mouth height...)."""
    return _Layout(
        cx=cx,
        cy=cy,
        u=u,
        ry=ry,
        eye_dx=u * rng.uniform(0.36, 0.46),
        eye_y=cy - ry * rng.uniform(0.08, 0.16),
        eye_w=u * rng.uniform(0.17, 0.22),
        brow_gap=u * rng.uniform(0.14, 0.2),
        mouth_y=cy + ry * rng.uniform(0.44, 0.54),
        mouth_w=u * rng.uniform(0.30, 0.38),
        line_w=u * rng.uniform(0.04, 0.06),
    )


def _draw_eyes(draw, rng, lay: _Layout, e: _Expression, skin, with_glasses: bool) -> None:
    """Sclera, iris, pupil, outline; optional lowered lids and cheek creases."""
    iris = _rgb(_IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))])
    outline = _rgb(skin * 0.35)
    crease = _rgb(skin * 0.7)
    ew = lay.eye_w
    eh = min(ew * 0.5 * e.eye_open, ew * 0.95)
    eh = max(eh, ew * 0.12)
    gaze = rng.normal(0.0, 0.12, 2) * ew
    for s in (-1, 1):
        ex, ey = lay.cx + s * lay.eye_dx, lay.eye_y
        draw.ellipse((ex - ew, ey - eh, ex + ew, ey + eh), fill=(245, 243, 238), outline=outline,
                     width=max(1, int(lay.line_w * 0.6)))
        r = min(eh * 0.92, ew * 0.5)
        ix = ex + float(np.clip(gaze[0], -(ew - r), ew - r))
        iy = ey + float(np.clip(gaze[1], -(eh - r), eh - r))
        draw.ellipse((ix - r, iy - r, ix + r, iy + r), fill=iris)
        pr = r * 0.45
        draw.ellipse((ix - pr, iy - pr, ix + pr, iy + pr), fill=(10, 10, 10))
        hl = r * 0.2
        draw.ellipse((ix + pr * 0.3, iy - pr * 0.9, ix + pr * 0.3 + hl, iy - pr * 0.9 + hl), fill=(255, 255, 255))
        # upper lid: thick arc across the top of the eye
        _thick_line(draw, _curve_points(ex - ew, ey, ex + ew, ey, eh * 1.0), outline, lay.line_w * 0.7)
        if e.eye_lid_slant > 0.05:  # lid lowered towards the nose (glare)
            inner = ex - s * ew * 1.05
            outer = ex + s * ew * 1.05
            drop = eh * (0.6 + 0.8 * e.eye_lid_slant)
            poly = [(inner, ey - eh * 1.4), (outer, ey - eh * 1.4),
                    (outer, ey - eh * 0.9), (inner, ey - eh * 1.0 + drop)]
            draw.polygon(poly, fill=_rgb(skin))
            _thick_line(draw, [poly[3], poly[2]], outline, lay.line_w * 0.7)
        if e.cheek_raise:  # raised cheek bunches up under the eye
            _thick_line(draw, _curve_points(ex - ew * 0.9, ey + eh + ew * 0.25, ex + ew * 0.9,
                                            ey + eh + ew * 0.25, ew * 0.25), crease, lay.line_w * 0.5)
        if with_glasses:
            gr = ew * 1.45
            draw.ellipse((ex - gr, ey - gr * 0.8, ex + gr, ey + gr * 0.8), outline=(30, 30, 30),
                         width=max(1, int(lay.line_w * 0.5)))
    if with_glasses:
        gr = ew * 1.45
        draw.line((lay.cx - lay.eye_dx + gr, lay.eye_y, lay.cx + lay.eye_dx - gr, lay.eye_y),
                  fill=(30, 30, 30), width=max(1, int(lay.line_w * 0.5)))


def _draw_brows(draw, lay: _Layout, e: _Expression, colour, width_jitter: float) -> None:
    """Two brows; inner-end height encodes sad/fear (up) vs anger (V, down)."""
    ew, u = lay.eye_w, lay.u
    base_y = lay.eye_y - ew * 0.5 - lay.brow_gap - e.brow_raise * u
    width = lay.line_w * 1.5 * e.brow_width_scale * width_jitter
    for s in (-1, 1):
        ex = lay.cx + s * lay.eye_dx
        inner_x, outer_x = ex - s * ew * 0.85, ex + s * ew * 1.15
        inner_y = base_y - e.brow_inner * u
        outer_y = base_y + 0.25 * e.brow_inner * u
        _thick_line(draw, _curve_points(inner_x, inner_y, outer_x, outer_y, e.brow_arch * u), colour, width)
    if e.furrow:  # vertical frown lines between the brows
        for s in (-1, 1):
            x = lay.cx + s * u * 0.07
            pts = [(x, base_y + ew * 0.1), (x - s * u * 0.015, base_y + ew * 0.7)]
            _thick_line(draw, pts, colour, lay.line_w * 0.4)


def _draw_nose(draw, lay: _Layout, e: _Expression, skin) -> None:
    """Simple nose; wrinkled bridge for disgust."""
    col = _rgb(skin * 0.62)
    u, cx = lay.u, lay.cx
    tip_y = lay.cy + lay.ry * 0.2
    _thick_line(draw, [(cx + u * 0.03, lay.eye_y + u * 0.05), (cx + u * 0.08, tip_y)], col, lay.line_w * 0.45)
    _thick_line(draw, _curve_points(cx - u * 0.13, tip_y, cx + u * 0.13, tip_y, -u * 0.06), col, lay.line_w * 0.55)
    if e.nose_wrinkle:
        for j in range(3):
            y = lay.eye_y + u * (0.02 + 0.07 * j)
            _thick_line(draw, _curve_points(cx - u * 0.09, y, cx + u * 0.09, y, u * 0.025), col, lay.line_w * 0.4)


def _mouth_lines(lay: _Layout, e: _Expression, n: int = 17):
    """Upper-lip and lower-lip y(x) curves of the mouth (pixel coords).

    Built from a normalised coordinate t in [-1, 1] across the mouth:
    symmetric corner curve, one-sided smirk/sneer and a small wave.
    """
    u = lay.u
    hw = lay.mouth_w * e.mouth_width
    t = np.linspace(-1.0, 1.0, n)
    side_t = np.clip(e.mouth_side * t, 0.0, None)
    up = lay.mouth_y - u * (e.mouth_curve * t**2 + e.mouth_smirk * side_t**2.5)
    up = up + u * e.mouth_wave * np.sin(t * np.pi * 2.0 + 0.5)
    lo = up.copy()
    if e.mouth_open > 0:
        opening = e.mouth_open * (1.0 - np.abs(t) ** e.mouth_squareness)
        lo = up + u * (opening + e.mouth_open_lower_curve * (1.0 - t**2))
        up = up - u * e.mouth_sneer * side_t ** 0.8 * (1.0 - side_t) * 2.5  # raised upper lip on one side
    xs = lay.cx + hw * t
    return xs, up, lo


def _draw_mouth(draw, lay: _Layout, e: _Expression, skin) -> None:
    """Mouth as a line, an open lens (with teeth) or an "O"."""
    lip = _rgb(skin * np.array([0.55, 0.32, 0.32]) + np.array([40, 0, 0]))
    dark = (45, 15, 20)
    lw = lay.line_w * e.lip_width_scale
    u = lay.u
    if e.mouth_kind == "o":
        hw = lay.mouth_w * e.mouth_width
        hh = u * e.mouth_open
        cy = lay.mouth_y + hh * 0.2
        draw.ellipse((lay.cx - hw, cy - hh, lay.cx + hw, cy + hh), fill=dark, outline=lip, width=max(1, int(lw * 1.2)))
        return
    xs, up, lo = _mouth_lines(lay, e)
    upper = list(zip(xs.tolist(), up.tolist()))
    lower = list(zip(xs.tolist(), lo.tolist()))
    if e.mouth_kind == "open":
        draw.polygon(upper + lower[::-1], fill=dark)
        if e.teeth:
            th = np.minimum(lo - up, u * 0.06)
            teeth = list(zip(xs.tolist(), (up + th).tolist()))
            draw.polygon(upper + teeth[::-1], fill=(238, 235, 225))
        _thick_line(draw, lower, lip, lw * 0.8)
    _thick_line(draw, upper, lip, lw)
    if e.smile_lines:  # nasolabial folds framing a broad smile
        crease = _rgb(skin * 0.72)
        for s in (-1, 1):
            x0 = lay.cx + s * (lay.mouth_w * e.mouth_width + u * 0.08)
            _thick_line(draw, _curve_points(x0 - s * u * 0.05, lay.mouth_y - u * 0.35, x0, lay.mouth_y + u * 0.05,
                                            s * u * 0.04), crease, lay.line_w * 0.45)


# --------------------------------------------------------------------------
# Photometric nuisance (numpy, final resolution)
# --------------------------------------------------------------------------


def _photometric(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Contrast, brightness gradient (directional light), colour cast, noise.

    Done in numpy at the final resolution (4x fewer pixels than the drawing)
    and folded into one multiply-add: out = x * gain + offset + noise, with
    gain = contrast * light(y, x) * cast and offset = mean * (1 - contrast) *
    light * cast.
    """
    n = img.shape[0]
    x = np.asarray(img, dtype=np.float32)
    contrast = np.float32(rng.uniform(0.7, 1.15))
    mean = np.float32(x.mean())
    ang = rng.uniform(0.0, 2.0 * np.pi)
    coords = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    ramp = np.float32(np.cos(ang)) * coords[None, :] + np.float32(np.sin(ang)) * coords[:, None]
    light = np.float32(rng.uniform(0.75, 1.2)) * (1.0 + np.float32(rng.uniform(0.0, 0.35)) * ramp)
    cast = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    gain = light[..., None] * cast  # (n, n, 3)
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    noise *= np.float32(rng.uniform(1.0, 9.0))
    noise += 0.5  # so the final cast rounds instead of truncating
    x *= contrast
    x += mean * (1.0 - contrast)
    x *= gain
    x += noise
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def draw_face(rng: np.random.Generator, label: int, image_size: int, *, face_scale: float = 1.0) -> np.ndarray:
    """Draw one synthetic face of expression ``label`` (index into DEMO_CLASSES).

    All randomness comes from ``rng``, so a generator in the same state always
    yields the same image.  Returns a uint8 array of shape (image_size,
    image_size, 3).

    ``face_scale`` enlarges the head (and everything on it) about the image
    centre without drawing any extra random numbers, so the same generator
    state gives the same person, expression and scene, only framed tighter.
    1.0 is a head-and-shoulders portrait (what the Predict samples compose into
    photos); :func:`make_demo_arrays` uses :data:`DEMO_FACE_SCALE`, a face crop.
    """
    if not 0 <= int(label) < len(DEMO_CLASSES):
        raise ValueError(f"label must be in [0, {len(DEMO_CLASSES) - 1}], got {label}")
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    size = image_size * _SUPERSAMPLE
    expr = _expression_params(rng, int(label))

    # identity / framing
    skin = _skin_tone(rng)
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] + rng.normal(0, 8, 3)
    if not 0.5 <= face_scale <= 2.0:
        raise ValueError(f"face_scale must be in [0.5, 2], got {face_scale}")
    u = size * rng.uniform(0.24, 0.31) * face_scale
    ry = u * rng.uniform(1.18, 1.32)
    cx = size * 0.5 + rng.normal(0.0, 0.035) * size * face_scale
    cy = size * 0.5 + rng.normal(0.0, 0.03) * size * face_scale
    lay = _layout(rng, cx, cy, u, ry)

    canvas = _draw_background(rng, size)
    _draw_body(ImageDraw.Draw(canvas), rng, cx, cy, u, ry, skin, size)

    head = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(head)
    _draw_head(draw, rng, cx, cy, u, ry, skin, hair)
    brow_col = _rgb(0.55 * hair + 0.45 * skin * 0.3)
    _draw_brows(draw, lay, expr, brow_col, rng.uniform(0.8, 1.25))
    _draw_eyes(draw, rng, lay, expr, skin, with_glasses=rng.random() < 0.12)
    _draw_nose(draw, lay, expr, skin)
    _draw_mouth(draw, lay, expr, skin)

    # NEAREST is ~15x cheaper than BILINEAR here; the 2x box-downsample below
    # smooths the stair-stepping it leaves on edges.
    head = head.rotate(float(rng.uniform(-12.0, 12.0)), resample=Image.NEAREST, center=(cx, cy))
    canvas.alpha_composite(head)
    small = canvas.reduce(_SUPERSAMPLE)
    if rng.random() < 0.3:  # out-of-focus / low-res capture
        small = small.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0) * image_size / 128.0))
    return _photometric(rng, np.asarray(small)[..., :3])


def _split_counts(n: int, split) -> tuple[int, int, int]:
    """Stratified per-class (train, val, test) counts for ``n`` images.

    Largest-remainder rounding so counts add up to ``n``; afterwards every
    split with a positive fraction gets at least one image when ``n`` allows
    (train first), taking images from the currently largest split.
    """
    fr = np.asarray(split, dtype=np.float64)
    if fr.shape != (3,) or np.any(fr < 0) or fr[0] <= 0 or not np.isfinite(fr).all():
        raise ValueError(f"split must be 3 non-negative fractions with train > 0, got {split!r}")
    fr = fr / fr.sum()
    exact = fr * n
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    for i in range(3):
        if fr[i] > 0 and counts[i] == 0:
            j = int(np.argmax(counts))
            if counts[j] > 1:
                counts[j] -= 1
                counts[i] += 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def make_demo_arrays(per_class: int = DEMO_PER_CLASS, image_size: int = DEMO_IMAGE_SIZE, seed: int = 0,
                     split=(0.70, 0.15, 0.15), face_scale: float = DEMO_FACE_SCALE) -> dict[str, np.ndarray]:
    """Generate the synthetic demo dataset, stratified into train/val/test.

    Returns ``{"train_images": uint8 (N,H,W,3), "train_labels": int64 (N,),
    "validation_images", "validation_labels", "test_images", "test_labels",
    "class_names": np.array(DEMO_CLASSES)}``.

    Each class gets ``per_class`` images split by ``split`` (fractions are
    normalised; every class has at least one training image), and each split
    is shuffled.  One ``np.random.default_rng(seed)`` drives everything, so the
    same arguments always give byte-identical arrays.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    counts = _split_counts(int(per_class), split)
    rng = np.random.default_rng(seed)
    n_cls = len(DEMO_CLASSES)
    # One child seed per image: each face is independent of how many others
    # are drawn before it within the class loop.
    seeds = rng.integers(0, 2**63 - 1, size=(n_cls, per_class), dtype=np.int64)

    parts: dict[str, tuple[list[np.ndarray], list[int]]] = {k: ([], []) for k in ("train", "validation", "test")}
    for label in range(n_cls):
        faces = [draw_face(np.random.default_rng(int(s)), label, image_size, face_scale=face_scale)
                 for s in seeds[label]]
        start = 0
        for name, c in zip(("train", "validation", "test"), counts):
            parts[name][0].extend(faces[start:start + c])
            parts[name][1].extend([label] * c)
            start += c

    out: dict[str, np.ndarray] = {}
    for name, (imgs, labels) in parts.items():
        images = np.stack(imgs) if imgs else np.zeros((0, image_size, image_size, 3), np.uint8)
        labels_arr = np.asarray(labels, dtype=np.int64)
        perm = rng.permutation(len(labels_arr))
        out[f"{name}_images"] = np.ascontiguousarray(images[perm])
        out[f"{name}_labels"] = labels_arr[perm]
    out["class_names"] = np.array(DEMO_CLASSES)
    return out
