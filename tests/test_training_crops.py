"""The app's crops of training faces (fer_core.faces.training_crops) and ``--augment-mode aligned``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_core.faces import training_crops as tc
from fer_core.faces.detect import detect_faces

PHOTO = Path(__file__).resolve().parent.parent / "ui" / "assets" / "astronaut.jpg"


@pytest.fixture(scope="module")
def face48() -> np.ndarray:
    """The astronaut's face framed as a FER2013 face: a square around YuNet's box, 48 px gray."""
    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    (face,) = detect_faces(rgb)
    x, y, w, h = face.box
    side = int(max(w, h) * 1.1)
    cx, cy = x + w // 2, y + h // 2
    square = Image.fromarray(rgb).crop((cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2))
    return np.asarray(square.convert("L").resize((48, 48), Image.Resampling.LANCZOS))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_a_face_comes_back_as_the_apps_crop_of_it(face48):
    crop, found = tc.app_crop(face48, index=3)
    assert found and crop.shape == (48, 48) and crop.dtype == np.uint8
    assert not np.array_equal(crop, face48)  # it went through a photo: resampled, tinted, JPEG
    assert _corr(crop, face48) > 0.6  # ... and is still the same face, framed about the same
    again, _ = tc.app_crop(face48, index=3)
    other, _ = tc.app_crop(face48, index=4)
    assert np.array_equal(again, crop) and not np.array_equal(other, crop)  # seeded by the row


def test_a_face_the_detector_misses_keeps_its_own_crop():
    blank = np.full((48, 48), 128, np.uint8)
    crop, found = tc.app_crop(blank, index=0)
    assert not found and np.array_equal(crop, blank)


def test_batches_keep_order_and_shape(face48):
    faces = np.stack([face48, np.full((48, 48), 128, np.uint8), face48])[..., None]  # (3, 48, 48, 1)
    crops, found = tc.app_crops(faces, np.array([3, 0, 4]), chunk=2)
    assert crops.shape == (3, 48, 48, 1) and found.tolist() == [True, False, True]
    assert np.array_equal(crops[0, ..., 0], tc.app_crop(face48, 3)[0])  # row numbers seed the scenes
    empty, none = tc.app_crops(np.zeros((0, 48, 48), np.uint8))
    assert empty.shape == (0, 48, 48, 1) and none.shape == (0,)


def test_each_epoch_swaps_in_a_share_of_the_other_view_per_face():
    from fer_core.fit.train import _image_pipeline

    n = 400
    x = np.zeros((n, 8, 8, 1), np.uint8)
    alt = np.full((n, 8, 8, 1), 255, np.uint8)
    y = np.eye(2, dtype=np.float32)[np.arange(n) % 2]
    ds = _image_pipeline(x, y, 50, shuffle_seed=0, alt=alt, alt_share=0.5)
    shares = []
    for _ in range(2):  # two epochs
        batches = np.concatenate([a.numpy() for a, _ in ds])
        means = batches.reshape(n, -1).mean(1)
        assert set(np.unique(means)) <= {0.0, 255.0}  # whole faces are swapped, never mixed
        shares.append(float(np.mean(means == 255.0)))
    assert all(0.4 < s < 0.6 for s in shares)


def test_aligned_mode_is_for_models_trained_on_pixels():
    from fer_core.errors import ModelError
    from fer_core.fit.train import TrainConfig

    TrainConfig(model="compact", augment=True, augment_mode="aligned").validate()
    with pytest.raises(ModelError, match="aligned"):
        TrainConfig(model="vgg19", augment=True, augment_mode="aligned").validate()


def test_training_with_app_crops_cuts_them_once(tmp_path, face48, monkeypatch):
    from fer_core import load_dataset
    from fer_core.fit.features import FeatureCache
    from fer_core.fit.app_crops import train_app_crops
    from fer_core.fit.train import TrainConfig, train_one
    from fer_core.store.runs import load_run

    arrays = {}
    for split in ("train", "validation", "test"):
        arrays[f"{split}_images"] = np.stack([face48] * 8)
        arrays[f"{split}_labels"] = np.arange(8) % 7
    np.savez(tmp_path / "faces.npz", **arrays)
    ds = load_dataset(tmp_path / "faces.npz")
    cache = FeatureCache(tmp_path / "cache")
    cfg = TrainConfig(model="compact", epochs=1, batch_size=4, patience=0, precision="float32",
                      augment=True, augment_mode="aligned")
    run = load_run(train_one(ds, cfg, tmp_path / "runs", cache=cache))
    assert run.metrics["config"]["augment_mode"] == "aligned"
    (stored,) = list((tmp_path / "cache").glob("app-crops-*.npz"))
    with np.load(stored) as z:
        assert z["crops"].shape == (8, 48, 48, 1) and z["found"].all() and len(set(z["keys"])) == 1
        assert (z["crops"] == z["crops"][0]).all()  # one face, one scene: seeded by its pixels

    cut = []
    real = tc.app_crops

    def counting(faces, *a, **k):
        cut.append(len(faces))
        return real(faces, *a, **k)

    monkeypatch.setattr(tc, "app_crops", counting)
    assert train_app_crops(ds, cache=cache).shape == (8, 48, 48, 1) and cut == []  # all cached
    blank = np.full((48, 48), 128, np.uint8)
    arrays["train_images"] = np.stack([face48] * 8 + [blank])  # another dataset sharing 8 faces
    arrays["train_labels"] = np.arange(9) % 7
    np.savez(tmp_path / "more.npz", **arrays)
    more = train_app_crops(load_dataset(tmp_path / "more.npz"), cache=cache)
    assert cut == [1] and more.shape == (9, 48, 48, 1)  # only the new face was cut
    assert np.array_equal(more[:8], train_app_crops(ds, cache=cache)) and np.array_equal(more[8, ..., 0], blank)
