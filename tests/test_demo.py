"""Tests for the built-in synthetic demo dataset (fer_core.data.demo).

Kept small (a few dozen 64 px images per call) so the whole file runs in a
couple of seconds on a shared CPU; generation speed is deliberately not
asserted here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow plain `pytest` from any cwd
    sys.path.insert(0, str(ROOT))

from fer_core.data.demo import DEMO_CLASSES, draw_face, make_demo_arrays  # noqa: E402

SPLITS = ("train", "validation", "test")
KEYS = {f"{s}_{k}" for s in SPLITS for k in ("images", "labels")} | {"class_names"}
SIZE = 64


@pytest.fixture(scope="module")
def small():
    return make_demo_arrays(per_class=5, image_size=SIZE, seed=0)


@pytest.fixture(scope="module")
def medium():
    """Enough images per class for simple statistics across classes."""
    return make_demo_arrays(per_class=12, image_size=SIZE, seed=0)


def _all(data):
    images = np.concatenate([data[f"{s}_images"] for s in SPLITS])
    labels = np.concatenate([data[f"{s}_labels"] for s in SPLITS])
    return images, labels


def test_classes_are_affectnet_order():
    assert DEMO_CLASSES == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")


def test_keys_shapes_dtypes(small):
    assert set(small) == KEYS
    for s in SPLITS:
        images, labels = small[f"{s}_images"], small[f"{s}_labels"]
        assert images.dtype == np.uint8
        assert images.ndim == 4 and images.shape[1:] == (SIZE, SIZE, 3)
        assert labels.dtype == np.int64
        assert labels.shape == (images.shape[0],)
        assert labels.min() >= 0 and labels.max() < len(DEMO_CLASSES)
    assert small["class_names"].tolist() == list(DEMO_CLASSES)


def test_deterministic_for_same_seed(small):
    again = make_demo_arrays(per_class=5, image_size=SIZE, seed=0)
    for key in KEYS:
        assert small[key].dtype == again[key].dtype
        assert np.array_equal(small[key], again[key]), key
        if small[key].dtype != np.dtype("<U8"):
            assert small[key].tobytes() == again[key].tobytes(), key


def test_different_seed_differs(small):
    other = make_demo_arrays(per_class=5, image_size=SIZE, seed=1)
    assert not np.array_equal(small["train_images"], other["train_images"])


def test_draw_face_deterministic_given_generator_state():
    a = draw_face(np.random.default_rng(42), 3, 48)
    b = draw_face(np.random.default_rng(42), 3, 48)
    assert a.dtype == np.uint8 and a.shape == (48, 48, 3)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("label", [-1, len(DEMO_CLASSES)])
def test_draw_face_rejects_bad_label(label):
    with pytest.raises(ValueError):
        draw_face(np.random.default_rng(0), label, 32)


def test_default_split_sizes_and_every_class_everywhere(small, medium):
    # per_class=5 -> 3/1/1 (largest remainder of 3.5/0.75/0.75), per_class=12 -> 8/2/2
    for data, expected in ((small, (3, 1, 1)), (medium, (8, 2, 2))):
        for s, n in zip(SPLITS, expected):
            counts = np.bincount(data[f"{s}_labels"], minlength=len(DEMO_CLASSES))
            assert counts.tolist() == [n] * len(DEMO_CLASSES), s


def test_default_fractions_at_default_size_counts_only():
    from fer_core.data.demo import _split_counts

    assert _split_counts(200, (0.70, 0.15, 0.15)) == (140, 30, 30)
    assert sum(_split_counts(7, (0.70, 0.15, 0.15))) == 7


def test_custom_split_and_tiny_per_class():
    data = make_demo_arrays(per_class=4, image_size=32, seed=3, split=(0.75, 0.25, 0.0))
    assert np.bincount(data["train_labels"]).tolist() == [3] * 8
    assert np.bincount(data["validation_labels"]).tolist() == [1] * 8
    assert data["test_images"].shape == (0, 32, 32, 3) and data["test_labels"].shape == (0,)

    one = make_demo_arrays(per_class=1, image_size=32, seed=3)
    assert np.bincount(one["train_labels"]).tolist() == [1] * 8  # train always gets one
    assert len(one["validation_labels"]) == 0 and len(one["test_labels"]) == 0


@pytest.mark.parametrize(
    "kwargs",
    [dict(per_class=0), dict(split=(0.0, 0.5, 0.5)), dict(split=(0.7, 0.3)), dict(split=(0.8, -0.1, 0.3))],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        make_demo_arrays(image_size=32, **{"per_class": 2, **kwargs})


def test_splits_are_shuffled(medium):
    labels = medium["train_labels"]
    assert not np.all(np.diff(labels) >= 0), "train split should not be sorted by class"


def test_images_vary_within_class(small):
    images, labels = _all(small)
    for c in range(len(DEMO_CLASSES)):
        cls = images[labels == c].astype(np.int16)
        assert len(cls) == 5
        for i in range(len(cls)):
            for j in range(i + 1, len(cls)):
                assert np.abs(cls[i] - cls[j]).mean() > 5, (DEMO_CLASSES[c], i, j)


def test_class_mean_images_differ(medium):
    images, labels = _all(medium)
    gray = images.astype(np.float64).mean(-1)
    means = np.stack([gray[labels == c].mean(0) for c in range(len(DEMO_CLASSES))])
    for a in range(len(means)):
        for b in range(a + 1, len(means)):
            assert np.abs(means[a] - means[b]).mean() > 1.0, (DEMO_CLASSES[a], DEMO_CLASSES[b])


def _mouth_upturn(images: np.ndarray) -> np.ndarray:
    """Per-image score that is high when lines in the mouth region curve up
    at the corners (smile) and low when they curve down (frown).

    Uses the sign of the gradient product Ix*Iy: on a line running "\\" it is
    negative, on "/" positive.  A smile is "\\" on the left half and "/" on the
    right, a frown the reverse.  This is shift-tolerant, unlike comparing raw
    mean pixels (the face jitters in size and position by more than a lip's
    width).
    """
    gray = images.astype(np.float32).mean(-1)
    iy, ix = np.gradient(gray, axis=(1, 2))
    prod = (ix * iy)[:, 36:54, 18:46]  # mouth region of a 64 px face
    half = prod.shape[2] // 2
    return prod[:, :, half:].sum((1, 2)) - prod[:, :, :half].sum((1, 2))


def test_happy_mouths_curve_up_more_than_sad(medium):
    images, labels = _all(medium)
    score = _mouth_upturn(images)
    happy, sad = score[labels == 1], score[labels == 2]
    assert happy.mean() > sad.mean()
    # probability that a random happy face out-scores a random sad one (AUC)
    auc = (happy[:, None] > sad[None, :]).mean()
    assert auc > 0.7, auc


def test_surprise_mouths_are_open_and_dark(medium):
    """Surprise draws a dark "O"; neutral only a thin lip line.  Darkness is
    measured relative to the face's own median so skin tone and lighting
    (multiplicative nuisance) largely cancel."""
    images, labels = _all(medium)
    gray = images.astype(np.float32).mean(-1)
    face_ref = np.median(gray[:, 24:50, 20:44].reshape(len(gray), -1), axis=1)
    dark = (gray[:, 36:54, 20:44] < 0.55 * face_ref[:, None, None]).mean((1, 2))
    surprise, neutral = dark[labels == 3], dark[labels == 0]
    assert surprise.mean() > 2 * neutral.mean()
    assert (surprise[:, None] > neutral[None, :]).mean() > 0.7


def test_demo_module_imports_no_tensorflow_or_streamlit():
    """Loads demo.py on its own (not via the package __init__) in a fresh
    interpreter: the demo data must stay cheap to import."""
    path = ROOT / "fer_core" / "data" / "demo.py"
    assert path.is_file()
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('demo_check', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['demo_check'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "mod.draw_face(__import__('numpy').random.default_rng(0), 1, 16)\n"
        "bad = [m for m in ('tensorflow', 'keras', 'streamlit') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- defaults (issue 11)


def test_face_scale_keeps_the_scene_and_only_frames_tighter():
    """draw_face's framing option draws no extra random numbers: the portrait (what the Predict
    samples use) is unchanged by default, and a tighter crop shows the same face bigger."""
    portrait = draw_face(np.random.default_rng(5), 1, 64)
    assert np.array_equal(portrait, draw_face(np.random.default_rng(5), 1, 64, face_scale=1.0))
    crop = draw_face(np.random.default_rng(5), 1, 64, face_scale=1.2)
    assert crop.shape == portrait.shape and not np.array_equal(crop, portrait)
    assert np.array_equal(crop, draw_face(np.random.default_rng(5), 1, 64, face_scale=1.2))
    with pytest.raises(ValueError):
        draw_face(np.random.default_rng(5), 1, 64, face_scale=3.0)


def test_default_dataset_is_deterministic_by_seed_and_framed_as_a_crop():
    from fer_core.data.demo import DEMO_FACE_SCALE

    a = make_demo_arrays(per_class=3, image_size=48, seed=4)
    b = make_demo_arrays(per_class=3, image_size=48, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in KEYS)
    c = make_demo_arrays(per_class=3, image_size=48, seed=4, face_scale=DEMO_FACE_SCALE)
    assert all(np.array_equal(a[k], c[k]) for k in KEYS)  # the default is DEMO_FACE_SCALE
    d = make_demo_arrays(per_class=3, image_size=48, seed=4, face_scale=1.0)
    assert np.array_equal(a["train_labels"], d["train_labels"]) and not np.array_equal(a["train_images"], d["train_images"])


def test_one_source_of_truth_for_the_demo_defaults():
    """The CLI's argparse defaults, make_demo_arrays and the Train page all read fer_core.data.defaults."""
    import inspect

    from fer_core.data import defaults
    from fer_core.data.demo import DEMO_IMAGE_SIZE, DEMO_PER_CLASS
    from training.cli import build_parser

    args = build_parser().parse_args(["--data", "demo"])
    assert args.demo_per_class == defaults.DEMO_PER_CLASS == DEMO_PER_CLASS
    assert args.demo_size == defaults.DEMO_IMAGE_SIZE == DEMO_IMAGE_SIZE
    assert (args.epochs, args.batch_size, args.learning_rate, args.patience) == (
        defaults.EPOCHS, defaults.BATCH_SIZE, defaults.LEARNING_RATE, defaults.PATIENCE)
    sig = inspect.signature(make_demo_arrays).parameters
    assert sig["per_class"].default == DEMO_PER_CLASS and sig["image_size"].default == DEMO_IMAGE_SIZE
    page = (ROOT / "pages" / "train.py").read_text()
    assert "train_defaults.DEMO_PER_CLASS" in page and "train_defaults.EPOCHS" in page
    # Enough faces and epochs for the baseline to leave chance (issue 11: 60 × 5 epochs stayed at chance).
    steps = defaults.EPOCHS * -(-int(0.7 * defaults.DEMO_PER_CLASS * len(DEMO_CLASSES)) // defaults.BATCH_SIZE)
    assert steps >= 400, steps


def test_demo_runs_record_the_seed_that_drew_their_data(tmp_path):
    """A --seeds sweep trains seed 1 on seed 0's demo faces: the run must rebuild those, not seed 1's."""
    from fer_core import load_dataset, load_run
    from fer_core.fit.train import TrainConfig, train_one

    ds0 = load_dataset("demo", seed=0, demo_per_class=4, demo_image_size=48)
    cfg = TrainConfig(model="baseline", epochs=1, batch_size=16, image_size=48, patience=0, seed=1)
    run = load_run(train_one(ds0, cfg, tmp_path / "runs"))
    assert run.metrics["dataset"]["data_seed"] == 0
    params = run.demo_params()
    assert params["seed"] == 0
    assert load_dataset("demo", **params).fingerprint == run.fingerprint
