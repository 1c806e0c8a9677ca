"""fer_core.inference.predictor / faces / gradcam over real (tiny) runs of all five models.

The runs come from the session's ``tiny_runs_dir`` fixture (one epoch on
tiny demo faces), so the probabilities mean nothing; the tests assert the
pipeline's behaviour: every model answers for every face, the ensemble is
their mean, the fallback and EXIF handling work, faces are batched, Grad-CAM
and drawing produce sensible arrays. No network.
"""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from fer_core import FERError, ImageInputError, list_runs, load_run
from fer_core.data.demo import draw_face
from fer_core.faces.detect import centre_square_box, crop_face, detect_faces, square_box
from fer_core.inference.gradcam import gradcam, jet, overlay
from fer_core.inference.predictor import FaceResult, Predictor, PredictionResult, draw_boxes

FACE_AT = (420, 160, 256)  # x, y, side of the pasted face in the synthetic photo


@pytest.fixture(scope="module")
def runs(tiny_runs_dir):
    listing = list_runs(tiny_runs_dir)
    assert len(listing.runs) == 5, listing.warnings
    return listing.runs


@pytest.fixture(scope="module")
def predictor(runs) -> Predictor:
    return Predictor(runs)


def _photo() -> np.ndarray:
    """A 1280×720 'photo': a demo face pasted on a plain wall."""
    canvas = np.full((720, 1280, 3), 200, np.uint8)
    x, y, s = FACE_AT
    canvas[y:y + s, x:x + s] = draw_face(np.random.default_rng(0), 1, s)
    return canvas


def _jpeg(rgb: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def _check_face(face: FaceResult, n_models: int, n_classes: int) -> None:
    assert len(face.predictions) == n_models
    for p in face.predictions:
        assert p.probs.shape == (n_classes,) and np.isclose(p.probs.sum(), 1.0, atol=1e-4)
    mean = np.mean([p.probs for p in face.predictions], axis=0)
    np.testing.assert_allclose(face.ensemble, mean, atol=1e-6)
    name, prob = face.top()
    assert name in face.class_names and prob == pytest.approx(face.ensemble.max())
    assert face.crop.dtype == np.uint8 and face.crop.ndim == 3 and face.crop.shape[2] == 3


def test_photo_every_model_answers_for_every_face(predictor, runs):
    result = predictor.predict(_jpeg(_photo()))
    assert isinstance(result, PredictionResult)
    assert result.image.shape == (720, 1280, 3) and result.image.dtype == np.uint8
    assert result.class_names == list(runs[0].metrics["class_names"]) == predictor.class_names
    assert set(result.timings) == {"decode", "detect", "classify", "total"}
    assert len(result.faces) >= 1
    assert [f.index for f in result.faces] == list(range(1, len(result.faces) + 1))
    assert {p.run_id for p in result.faces[0].predictions} == {r.id for r in runs}
    for face in result.faces:
        _check_face(face, len(runs), len(result.class_names))
    if not result.whole_image:  # the detector found the pasted face: the box covers it
        x, y, s = FACE_AT
        bx, by, bw, bh = result.faces[0].box
        assert bw == bh and bx < x + s / 2 < bx + bw and by < y + s / 2 < by + bh
        assert 0 < result.faces[0].confidence <= 1


def test_plain_image_falls_back_to_whole_image(predictor):
    result = predictor.predict(np.full((300, 400, 3), 90, np.uint8))
    assert result.whole_image and len(result.faces) == 1
    face = result.faces[0]
    assert face.box == (50, 0, 300, 300) and face.confidence is None and face.crop.shape == (300, 300, 3)
    _check_face(face, len(predictor.runs), len(predictor.class_names))


def test_exif_rotated_jpeg_is_upright(predictor):
    a = np.zeros((100, 200, 3), np.uint8)
    a[:, :100] = (255, 0, 0)
    a[:, 100:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, "rotate 90° clockwise to display"
    result = predictor.predict(_jpeg(a, exif=exif.tobytes()), detect=False)
    assert result.image.shape == (200, 100, 3)
    assert result.image[10, 50, 0] > 200 and result.image[190, 50, 2] > 200


def test_inputs_of_every_kind(predictor, tmp_path):
    gray = np.full((64, 80), 128, np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    for image in (gray, gray[..., None], path, str(path), Image.open(path), path.read_bytes()):
        assert predictor.predict(image, detect=False).image.shape == (64, 80, 3)
    with pytest.raises(ImageInputError, match="not a supported image"):
        predictor.predict(b"%PDF-1.4 definitely not a photo")
    with pytest.raises(ImageInputError, match="too small"):
        predictor.predict(np.zeros((1, 1, 3), np.uint8))


def test_predict_faces_one_call_per_model(predictor):
    crops = [draw_face(np.random.default_rng(i), i, s) for i, s in enumerate((48, 90, 131))]
    calls = {}
    originals = [m.forward for m in predictor._loaded]
    for m in predictor._loaded:
        def counting(x, _f=m.forward, _id=m.run.id):
            calls[_id] = calls.get(_id, 0) + 1
            assert len(x) == 4  # 3 faces padded to the batch size 4 (run_bucketed)
            return _f(x)
        m.forward = counting
    try:
        out = predictor.predict_faces(crops)
    finally:
        for m, f in zip(predictor._loaded, originals):
            m.forward = f
    assert calls == {r.id: 1 for r in predictor.runs}
    assert len(out) == 3 and all(len(per) == len(predictor.runs) for per in out)
    alone = predictor.predict_faces(crops[1:2])[0]
    for a, b in zip(out[1], alone):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)  # batching does not change answers
    assert predictor.predict_faces([]) == []


def test_serving_calls_only_meet_the_bucket_sizes():
    """Every call a served model gets has 1, 2, 4 or 8 rows (issue 28: each new size pinned memory)."""
    from fer_core.compute.forward import BATCH_BUCKETS, run_bucketed

    seen = []

    def forward(x):
        seen.append(len(x))
        return x[:, :1].astype(np.float32) * 2  # row i → its own value: padding must not leak into answers

    for n in range(1, 21):
        x = np.arange(n, dtype=np.uint8)[:, None].repeat(3, axis=1)  # (n, 3)
        out = run_bucketed(forward, x)
        assert out.shape == (n, 1) and (out[:, 0] == 2 * np.arange(n)).all()
    assert set(seen) <= set(BATCH_BUCKETS) and max(seen) == 8
    assert seen[-3:] == [8, 8, 4]  # 20 rows: 8 + 8 + 4 (the last four rows, unpadded)


def test_mismatched_class_names_refused(runs, tmp_path):
    other = tmp_path / runs[0].id
    shutil.copytree(runs[0].path, other)
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["class_names"] = [f"c{i}" for i in range(len(metrics["class_names"]))]
    (other / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(FERError, match="different classes"):
        Predictor([runs[0], load_run(other)])
    with pytest.raises(FERError, match="no model"):
        Predictor([])


@pytest.mark.parametrize("model", ["baseline", "vgg19"])
def test_gradcam_heatmap(runs, predictor, model):
    run = next(r for r in runs if r.model_name == model)
    spec = run.config["model"]
    size, channels = spec["image_size"], spec["channels"]
    image = draw_face(np.random.default_rng(3), 1, size)[..., :channels]
    keras_model = next(m.model for m in predictor._loaded if m.run.id == run.id)
    heat = gradcam(keras_model, spec["gradcam_layer"], image, class_index=1)
    assert heat.shape == (size, size) and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0

    face = predictor.predict(np.full((120, 160, 3), 128, np.uint8), detect=False).faces[0]
    shown = predictor.gradcam(face, run.id)
    assert shown.shape == face.crop.shape and shown.dtype == np.uint8


def test_overlay_and_colormap():
    assert jet(np.array([0.0]))[0, 2] > 100 and jet(np.array([1.0]))[0, 0] > 100  # cold blue, hot red
    img = np.full((40, 40, 3), 100, np.uint8)
    out = overlay(img, np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10))
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8 and not np.array_equal(out, img)


def test_draw_boxes_changes_pixels_not_input(predictor):
    photo = _photo()
    result = predictor.predict(photo)
    before = result.image.copy()
    drawn = draw_boxes(result.image, result.faces)
    assert drawn.shape == photo.shape and drawn.dtype == np.uint8
    assert np.array_equal(result.image, before)
    x, y, w, h = result.faces[0].box
    assert not np.array_equal(drawn[y:y + h, x:x + w], before[y:y + h, x:x + w])


# --------------------------------------------------------------------------- face geometry (no models)

def test_square_box_is_square_enlarged_and_inside():
    assert square_box((100, 100, 40, 60), (480, 640), margin=0.2) == (84, 94, 72, 72)
    assert square_box((100, 100, 40, 60), (480, 640)) == (90, 100, 60, 60)  # default: the box's longer side
    for box in [(0, 0, 50, 80), (600, 420, 40, 60), (-10, -10, 30, 30)]:  # near or past edges
        x, y, w, h = square_box(box, (480, 640), margin=0.5)
        assert w == h and x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480
    assert square_box((0, 0, 300, 300), (100, 200)) == (100, 0, 100, 100)  # shrunk to fit, shifted inside
    assert centre_square_box((100, 300)) == (100, 0, 100, 100)
    rgb = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    np.testing.assert_array_equal(crop_face(rgb, (2, 3, 4, 5)), rgb[3:8, 2:6])


def test_detect_faces_on_blank_and_tiny_images():
    assert detect_faces(np.full((12, 12, 3), 255, np.uint8)) == []
    assert detect_faces(np.full((200, 300, 3), 255, np.uint8)) == []


def test_a_result_kept_for_display_is_at_most_2048_px_with_its_boxes_scaled():
    """What a page keeps per visitor (issue 28): not a 24 MP photo's 72 MB, and boxes that still fit the faces."""
    from fer_core.inference.predictor import DISPLAY_SIDE, FaceResult, PredictionResult

    image = np.zeros((3000, 4000, 3), np.uint8)
    image[1000:1400, 2000:2400] = 255  # the "face"
    face = FaceResult(index=1, box=(2000, 1000, 400, 400), confidence=0.9, crop=np.zeros((48, 48, 3), np.uint8),
                      predictions=[], ensemble=np.array([1.0], np.float32), class_names=["happy"])
    result = PredictionResult(image=image, faces=[face], whole_image=False, class_names=["happy"], timings={})
    small = result.for_display()
    assert small.image.shape == (1536, DISPLAY_SIDE, 3) and result.image.shape == (3000, 4000, 3)
    x, y, w, h = small.faces[0].box
    assert (x, y, w, h) == (1024, 512, 205, 205)
    assert small.image[y + 5:y + h - 5, x + 5:x + w - 5].min() > 200 and small.image[:y - 5].max() == 0
    assert small.faces[0].crop is face.crop and result.faces[0].box == (2000, 1000, 400, 400)
    little = PredictionResult(image=image[:600, :800], faces=[], whole_image=True, class_names=[], timings={})
    assert little.for_display() is little  # small photos are kept as they are
