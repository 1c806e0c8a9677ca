"""Synthetic photo scenes (fer_core.faces.scenes) and the crop geometry they measure (faces.square_box).

The scene benchmark's numbers are only worth something if a scene is the same
on every machine and run, its ground-truth box is where the face really is,
and the JPEG it hands the pipeline decodes like any uploaded photo.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fer_core.faces import detect as faces
from fer_core.faces.scenes import SceneConfig, iou, make_scene, stratified_indices


def _face(seed: int = 0) -> np.ndarray:
    """A 48×48 gray stand-in face with structure (so misplacement would show in a correlation)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((48, 48), Image.Resampling.BICUBIC))


def test_scene_is_deterministic_per_seed_and_index():
    a, b = make_scene(_face(), seed=3, index=17), make_scene(_face(), seed=3, index=17)
    assert a.jpeg == b.jpeg and a.box == b.box and a.params == b.params
    c = make_scene(_face(), seed=3, index=18)
    assert c.jpeg != a.jpeg  # another face index, another scene
    assert make_scene(_face(), seed=4, index=17).jpeg != a.jpeg


@pytest.mark.parametrize("index", range(12))
def test_truth_box_lies_inside_the_decodable_jpeg(index):
    cfg = SceneConfig()
    scene = make_scene(_face(index), seed=0, index=index, config=cfg)
    img = Image.open(io.BytesIO(scene.jpeg))
    assert img.format == "JPEG" and img.mode == "RGB" and img.size == scene.size
    assert scene.size in cfg.scene_sizes
    x, y, w, h = scene.box
    W, H = scene.size
    assert w == h == scene.params["face_px"] and cfg.face_px[0] <= w <= cfg.face_px[1]
    assert 0 <= x and 0 <= y and x + w <= W and y + h <= H
    assert abs(scene.params["rotation"]) <= cfg.max_rotation_deg
    assert cfg.jpeg_quality[0] <= scene.params["jpeg_quality"] <= cfg.jpeg_quality[1]


def test_the_face_is_where_the_truth_box_says():
    """Upright, no cast, best JPEG: the box's content, shrunk to 48 px, is the face (high correlation)."""
    cfg = SceneConfig(max_rotation_deg=0.0, colour_cast=0.0, brightness=(1.0, 1.0), jpeg_quality=(95, 95), feather=0.0)
    face = _face(5)
    scene = make_scene(face, seed=1, index=0, config=cfg)
    gray = np.asarray(Image.open(io.BytesIO(scene.jpeg)).convert("L"))
    x, y, s, _ = scene.box
    back = np.asarray(Image.fromarray(gray[y:y + s, x:x + s]).resize((48, 48), Image.Resampling.BILINEAR), float)
    assert np.corrcoef(back.ravel(), face.astype(float).ravel())[0, 1] > 0.95
    shifted = gray[y + s // 2:y + s // 2 + s, x:x + s]  # half a face lower: not the face
    if shifted.shape == (s, s):
        off = np.asarray(Image.fromarray(shifted).resize((48, 48), Image.Resampling.BILINEAR), float)
        assert np.corrcoef(off.ravel(), face.astype(float).ravel())[0, 1] < 0.8


def test_rgb_faces_are_accepted():
    rgb = np.stack([_face(1), _face(2), _face(3)], axis=-1)
    scene = make_scene(rgb, seed=0, index=0)
    assert Image.open(io.BytesIO(scene.jpeg)).size == scene.size


def test_stratified_indices_keep_every_class_and_are_seeded():
    labels = np.array([0] * 500 + [1] * 10 + [2] * 300 + [3] * 190)
    idx = stratified_indices(labels, 50, seed=0)
    assert np.array_equal(idx, stratified_indices(labels, 50, seed=0))
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    assert set(labels[idx]) == {0, 1, 2, 3} and abs(len(idx) - 50) <= 4
    assert np.array_equal(stratified_indices(labels, None, 0), np.arange(len(labels)))
    assert np.array_equal(stratified_indices(labels, 5000, 0), np.arange(len(labels)))


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_square_box_uses_the_module_defaults_and_shift_moves_down():
    box = (100, 100, 80, 100)  # MTCNN-like: taller than wide
    x, y, s, s2 = faces.square_box(box, (1000, 1000))
    assert s == s2 == round(100 * (1 + faces.FACE_MARGIN))
    assert faces.square_box(box, (1000, 1000), margin=0.0)[2] == 100
    centred = faces.square_box(box, (1000, 1000), margin=0.0, shift=0.0)
    lower = faces.square_box(box, (1000, 1000), margin=0.0, shift=0.1)
    assert lower[1] == centred[1] + 10 and lower[0] == centred[0]
    # near the edge the square slides inward and stays inside the image
    x, y, s, _ = faces.square_box((0, 0, 50, 60), (200, 300), margin=0.4, shift=-0.2)
    assert x >= 0 and y >= 0 and x + s <= 300 and y + s <= 200


