"""Loaders for the four layouts, their normalisation, and their one-line errors."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from fer_core import DatasetError, dataset_report, load_dataset
from fer_core.data.datasets import dataset_from_arrays, stratified_split
from fer_core.labels import AFFECTNET_8, FER2013_7


def _arrays(n_classes=8, n=(16, 8, 8), shape=(12, 12), dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, k in zip(("train", "validation", "test"), n):
        out[f"{split}_images"] = rng.integers(0, 256, (k, *shape)).astype(dtype)
        out[f"{split}_labels"] = np.arange(k) % n_classes
    return out


def _tree_digest(root) -> str:
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            h.update(p.encode())
            h.update(open(p, "rb").read())
    return h.hexdigest()


# --------------------------------------------------------------------------- arrays

def test_npz_seed_layout_defaults_to_affectnet_names(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, **_arrays(8))
    ds = load_dataset(p)
    assert ds.class_names == AFFECTNET_8
    assert ds.image_shape == (12, 12, 1)
    assert {s: len(y) for s, (_, y) in ds.splits.items()} == {"train": 16, "validation": 8, "test": 8}
    assert ds.eval_split == "test"


def test_seven_classes_get_fer2013_names_and_val_alias(tmp_path):
    a = _arrays(7)
    a["val_images"], a["val_labels"] = a.pop("validation_images"), a.pop("validation_labels")
    np.savez(tmp_path / "d.npz", **a)
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.class_names == FER2013_7
    assert "validation" in ds.splits


@pytest.mark.parametrize("kind", ["float01", "float255", "rgb", "chan1"])
def test_image_dtypes_and_shapes_normalise_to_uint8(kind):
    a = _arrays(8)
    x = a["train_images"]
    if kind == "float01":
        a["train_images"] = x.astype(np.float32) / 255.0
    elif kind == "float255":
        a["train_images"] = x.astype(np.float64)
    elif kind == "rgb":
        for s in ("train", "validation", "test"):
            a[f"{s}_images"] = np.repeat(a[f"{s}_images"][..., None], 3, axis=-1)
    else:
        a["train_images"] = x[..., None]
    ds = dataset_from_arrays(a, name="t", source="t")
    tx = ds.splits["train"][0]
    assert tx.dtype == np.uint8 and tx.ndim == 4
    assert np.abs(tx[..., 0].astype(int) - x.astype(int)).max() <= 1


@pytest.mark.parametrize("kind", ["column", "onehot"])
def test_label_layouts(kind):
    a = _arrays(8)
    y = a["train_labels"]
    a["train_labels"] = y[:, None] if kind == "column" else np.eye(8)[y]
    ds = dataset_from_arrays(a, name="t", source="t")
    assert np.array_equal(ds.splits["train"][1], y)


def test_npy_folder_and_class_names(tmp_path):
    a = _arrays(3)
    a["class_names"] = np.array(["a", "b", "c"])
    for k, v in a.items():
        np.save(tmp_path / f"{k}.npy", v)
    ds = load_dataset(tmp_path)
    assert ds.class_names == ("a", "b", "c")


@pytest.mark.parametrize("mutate, needle", [
    (lambda a: a.pop("train_labels"), "'train_images' but no 'train_labels'"),
    (lambda a: (a.pop("validation_images"), a.pop("validation_labels")), "missing 'validation_images'"),
    (lambda a: a.update(train_labels=a["train_labels"][:-1]), "16 images but 'train_labels' has 15"),
    (lambda a: a.update(train_images=np.zeros((16, 4, 4, 2), np.uint8)), "is not (N,H,W)"),
    (lambda a: a.update(train_images=np.full((16, 12, 12), 300.0)), "expected [0, 1] or [0, 255]"),
    (lambda a: a.update(train_images=np.full((16, 12, 12), np.nan)), "NaN"),
    (lambda a: a.update(test_labels=np.full(8, 9), class_names=np.array(AFFECTNET_8)), "there are 8 classes"),
    (lambda a: a.update(validation_images=np.zeros((8, 10, 10), np.uint8)), "but train images are"),
    (lambda a: a.update(train_labels=np.full((16, 8), 0.5)), "one-hot"),
])
def test_array_errors_are_one_line_and_name_the_key(tmp_path, mutate, needle):
    a = _arrays(8)
    mutate(a)
    p = tmp_path / "bad.npz"
    np.savez(p, **a)
    with pytest.raises(DatasetError) as err:
        load_dataset(p)
    msg = str(err.value)
    assert needle in msg and "\n" not in msg and "bad.npz" in msg


def test_corrupt_npz_and_pickled_npz(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_dataset(tmp_path / "c.npz")
    a = _arrays(8)
    a["class_names"] = np.array([object()] * 8, dtype=object)
    np.savez(tmp_path / "p.npz", **a)
    with pytest.raises(DatasetError, match="pickle"):
        load_dataset(tmp_path / "p.npz")


def test_missing_path_and_wrong_suffix(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nope.npz")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DatasetError, match="unsupported file type"):
        load_dataset(tmp_path / "x.txt")


# --------------------------------------------------------------------------- image folders

def _img(path, mode="RGB", size=(20, 16), color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "P":
        Image.new("RGB", size, color).convert("P").save(path)
    elif mode == "RGBA":
        Image.new("RGBA", size, (*color, 128)).save(path)
    elif mode == "L":
        Image.new("L", size, 90).save(path)
    else:
        Image.new("RGB", size, color).save(path)


def test_flat_class_folders_split_stratified_and_skip_non_images(tmp_path):
    modes = ["RGB", "L", "RGBA", "P"]
    for ci, cls in enumerate(["happy", "sad", "angry"]):
        for i in range(10):
            _img(tmp_path / cls / f"{i}.png", mode=modes[i % 4], size=(20 + i, 16 + ci), color=(10 * i, 50, 90))
    (tmp_path / "happy" / "notes.txt").write_text("not an image")
    (tmp_path / "sad" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    before = _tree_digest(tmp_path)
    ds = load_dataset(tmp_path, seed=3)
    assert _tree_digest(tmp_path) == before  # nothing on disk changed
    assert ds.class_names == ("angry", "happy", "sad")
    assert ds.image_shape == (128, 128, 3)
    sizes = {s: len(y) for s, (_, y) in ds.splits.items()}
    assert sizes == {"train": 18, "validation": 6, "test": 6}  # 10 images per class: 6/2/2 (1.5 rounds to 2)
    for s, (_, y) in ds.splits.items():
        assert set(np.unique(y)) == {0, 1, 2}, s
    assert any("skipped 2" in w for w in ds.warnings)
    again = load_dataset(tmp_path, seed=3)
    assert again.fingerprint == ds.fingerprint


def test_predefined_split_folders_with_val_alias_and_gray(tmp_path):
    for split, n in (("train", 3), ("val", 1), ("test", 1)):
        for cls in ("a", "b"):
            for i in range(n):
                _img(tmp_path / split / cls / f"{i}.png", mode="L")
    ds = load_dataset(tmp_path)
    assert ds.image_shape == (128, 128, 1)
    assert {s: len(y) for s, (_, y) in ds.splits.items()} == {"train": 6, "validation": 2, "test": 2}


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° CW on display
    for cls in ("a", "b"):
        for i in range(3):
            (tmp_path / cls).mkdir(exist_ok=True)
            img.save(tmp_path / cls / f"{i}.jpg", exif=exif)
    ds = load_dataset(tmp_path)
    x = ds.splits["train"][0][0]  # upright: portrait 20×40 → centre crop is the middle; top half blue
    top, bottom = x[:20].astype(int).mean((0, 1)), x[-20:].astype(int).mean((0, 1))
    assert top[2] > top[0] and bottom[0] > bottom[2]


@pytest.mark.parametrize("layout, needle", [
    ("empty_class", "class folder has no readable images"),
    ("one_class", "at least 2 class folders"),
    ("no_val", "no 'validation/' or 'val/'"),
    ("empty_root", "no class folders"),
])
def test_folder_errors(tmp_path, layout, needle):
    if layout == "empty_class":
        _img(tmp_path / "a" / "1.png")
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "readme.md").write_text("x")
    elif layout == "one_class":
        _img(tmp_path / "a" / "1.png")
    elif layout == "no_val":
        _img(tmp_path / "train" / "a" / "1.png")
        _img(tmp_path / "train" / "b" / "1.png")
    with pytest.raises(DatasetError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(tmp_path)


def test_stratified_split_keeps_every_class_in_train():
    labels = np.array([0] * 20 + [1] * 2 + [2])
    idx = stratified_split(labels, seed=1)
    assert sorted(np.concatenate(list(idx.values())).tolist()) == list(range(len(labels)))
    assert set(labels[idx["train"]]) == {0, 1, 2}
    assert len(idx["validation"]) == 3 and len(idx["test"]) == 3


# --------------------------------------------------------------------------- FER2013 CSV

def test_fer2013_csv(tmp_path):
    rows = ["emotion,pixels,Usage"]
    for i, usage in enumerate(["Training"] * 6 + ["PublicTest"] * 2 + ["PrivateTest"] * 2):
        rows.append(f"{i % 7},{' '.join(str((i * 7 + j) % 256) for j in range(16))},{usage}")
    p = tmp_path / "fer.csv"
    p.write_text("\n".join(rows))
    ds = load_dataset(p)
    assert ds.class_names == FER2013_7 and ds.image_shape == (4, 4, 1)
    assert len(ds.splits["test"][1]) == 2


@pytest.mark.parametrize("text, needle", [
    ("emotion,Usage\n1,Training", "missing column 'pixels'"),
    ("emotion,pixels,Usage\n1,1 2 3,Training", "do not form a square"),
    ("emotion,pixels,Usage\n9,1 2 3 4,Training", "emotion 9"),
    ("emotion,pixels,Usage\n1,1 2 3 4,Holdout", "Usage 'Holdout'"),
])
def test_fer2013_csv_errors_name_the_line(tmp_path, text, needle):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DatasetError, match=needle):
        load_dataset(p)


# --------------------------------------------------------------------------- demo + report

def test_demo_dataset_and_leakage_report():
    ds = load_dataset("demo", demo_per_class=5, demo_image_size=32)
    assert ds.class_names == AFFECTNET_8 and ds.image_shape == (32, 32, 3)
    rep = dataset_report(ds)
    assert rep["leakage"]["total"] == 0
    assert sum(rep["class_counts"]["train"].values()) == len(ds.splits["train"][1])
    # Plant two leaks and find them.
    x_train = ds.splits["train"][0]
    x_test, y_test = ds.splits["test"]
    x_test = x_test.copy()
    x_test[0], x_test[1] = x_train[3], x_train[4]
    ds.splits["test"] = (x_test, y_test)
    ds._fingerprint = None
    rep = dataset_report(ds)
    assert rep["leakage"]["pairs"]["train-test"] == 2
    assert {(e["index_a"], e["index_b"]) for e in rep["leakage"]["examples"]} == {(3, 0), (4, 1)}


def test_fingerprint_changes_with_content():
    a = dataset_from_arrays(_arrays(8), name="a", source="a")
    b = _arrays(8)
    b["test_labels"] = b["test_labels"][::-1].copy()
    assert a.fingerprint != dataset_from_arrays(b, name="a", source="a").fingerprint
    assert a.fingerprint == dataset_from_arrays(_arrays(8), name="other", source="x").fingerprint


def test_fer2013_from_shared(fer2013_path):
    ds = load_dataset(fer2013_path)
    assert ds.class_names == FER2013_7
    assert {s: len(y) for s, (_, y) in ds.splits.items()} == {"train": 28709, "validation": 3589, "test": 3589}
    rep = dataset_report(ds)
    assert rep["class_counts"]["train"]["disgust"] == 436
    assert rep["leakage"]["total"] >= 0
