"""Predict page (AppTest): samples, uploads, camera, every model's probabilities, Grad-CAM, and bad input."""

import io

import numpy as np
from PIL import Image

from app_helpers import (MODELS, all_text, arr, data_dir, face_image, face_photo, no_runs, open_page,  # noqa: F401
                         plotly_figures, png_bytes, png_with_size_header, run_dirs, with_runs, with_runs_copy)


def probability_table(at):
    """The first face's table: one row per model + the ensemble, probabilities in %."""
    return next(d.value for d in at.dataframe if "Top emotion" in d.value.columns)


def predict_result(at):
    return at.session_state["predict_result"]["result"]


def upload(at, name: str, data: bytes, mime: str = "image/png"):
    at.file_uploader(key="predict_upload").set_value((name, data, mime)).run()
    return at


def assert_probabilities_for_every_model(at, models=MODELS):
    table = probability_table(at)
    assert list(table["Model"]) == list(models) + ["ensemble (mean)"]
    classes = [c for c in table.columns if c not in ("Model", "Top emotion")]
    assert len(classes) == 8
    sums = table[classes].sum(axis=1)
    assert np.allclose(sums, 100.0, atol=0.1)  # in %
    panels = next(f for k, f in plotly_figures(at, "predict_models_").items())
    assert [t["name"] for t in panels["data"]] == list(models)  # a bar panel per model, named by model id
    for t in panels["data"]:
        assert all(str(x).endswith("%") for x in t["text"])
    ensemble = next(f for k, f in plotly_figures(at, "predict_ensemble_").items())
    assert np.isclose(arr(ensemble["data"][0]["x"]).sum(), 100.0, atol=0.1)


def test_predict_without_runs(no_runs):
    at = open_page("predict")
    assert "No trained models yet" in all_text(at)
    assert not at.file_uploader


def test_predict_sample_shows_every_models_probabilities(with_runs):
    at = open_page("predict", timeout=180)  # the first test loads the five models
    assert {".jpg", ".png", ".webp", ".bmp", ".gif"} <= set(at.file_uploader(key="predict_upload").allowed_type)
    assert "Upload a photo" in all_text(at)
    at.segmented_control(key="predict_source").set_value("sample").run(timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert_probabilities_for_every_model(at)
    result = predict_result(at)
    if result.whole_image:
        assert "No face found" in all_text(at)
    else:
        assert "Every model's probabilities" in [s.value for s in at.subheader]
        assert len(result.faces) >= 1
    # Grad-CAM overlay per model for the chosen face.
    at.toggle(key="predict_gradcam").set_value(True).run(timeout=120)
    assert not at.exception and not at.error, [e.value for e in at.error]
    overlays = [i for i in at.image if any(m in str(c) for c in i.captions for m in MODELS)]
    assert len(overlays) == len(MODELS)


def test_predict_upload_and_camera(with_runs):
    at = open_page("predict", timeout=180)
    upload(at, "friends.png", face_photo())
    assert not at.error, [e.value for e in at.error]
    assert_probabilities_for_every_model(at)
    # A JPEG from the camera widget goes through the same pipeline.
    at.segmented_control(key="predict_source").set_value("camera").run()
    jpeg = png_bytes(face_image().convert("RGB"), "JPEG", quality=90)
    at.camera_input(key="predict_camera").set_value(("photo.jpg", jpeg, "image/jpeg")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert_probabilities_for_every_model(at)


def test_predict_respects_exif_orientation(with_runs):
    img = face_image().resize((300, 200))  # landscape as stored ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... "rotate 90° clockwise to display": upright it is portrait
    jpeg = png_bytes(img.convert("RGB"), "JPEG", exif=exif.tobytes())
    at = upload(open_page("predict", timeout=180), "phone.jpg", jpeg, "image/jpeg")
    assert not at.error, [e.value for e in at.error]
    assert predict_result(at).image.shape[:2] == (300, 200)


def test_predict_no_face_classifies_whole_image(with_runs):
    wall = Image.fromarray(np.tile(np.linspace(40, 220, 320, dtype=np.uint8), (240, 1)), "L").convert("RGB")
    at = upload(open_page("predict", timeout=180), "wall.png", png_bytes(wall))
    assert not at.error, [e.value for e in at.error]
    assert "No face found" in all_text(at) and "whole image" in all_text(at)
    assert_probabilities_for_every_model(at)


# --------------------------------------------------------------------------- bad input


def _truncated_png() -> bytes:
    data = png_bytes(face_image())
    return data[: len(data) // 2]


def _gray16() -> bytes:
    a = (np.linspace(0, 65535, 160 * 160).reshape(160, 160)).astype(np.uint16)
    img = Image.fromarray(a)  # 16-bit gray ("I;16")
    assert img.mode.startswith("I;16")
    return png_bytes(img)


def _cmyk_jpeg() -> bytes:
    return png_bytes(face_image().convert("CMYK"), "JPEG")


def _palette_png() -> bytes:
    return png_bytes(face_image().convert("P", palette=Image.Palette.ADAPTIVE))


def _rgba_png() -> bytes:
    img = face_image().convert("RGBA")
    img.putalpha(Image.new("L", img.size, 200))
    return png_bytes(img)


def _animated_gif() -> bytes:
    frames = [face_image().convert("P"), Image.new("P", face_image().size, 0)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


# (file name, bytes, mime, expected error fragment — None: must predict normally)
BAD_INPUTS = {
    "zero-byte": ("empty.jpg", lambda: b"", "image/jpeg", "empty"),
    "truncated": ("cut.png", _truncated_png, "image/png", "truncated"),
    "pdf-as-jpg": ("paper.jpg", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" * 20, "image/jpeg", "PDF"),
    "heic": ("iphone.heic", lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200), "image/heic", "HEIC"),
    "16-bit": ("gray16.png", _gray16, "image/png", None),
    "cmyk": ("print.jpg", _cmyk_jpeg, "image/jpeg", None),
    "palette": ("palette.png", _palette_png, "image/png", None),
    "rgba": ("alpha.png", _rgba_png, "image/png", None),
    "webp": ("photo.webp", lambda: png_bytes(face_image(), "WEBP"), "image/webp", None),
    "bmp": ("photo.bmp", lambda: png_bytes(face_image(), "BMP"), "image/bmp", None),
    "gif-first-frame": ("anim.gif", _animated_gif, "image/gif", None),
    "1x1": ("dot.png", lambda: png_bytes(Image.new("RGB", (1, 1))), "image/png", "too small"),
    "20000x20000": ("bomb.png", lambda: png_with_size_header(20000, 20000), "image/png", "pixels"),
    "over-size-limit": ("huge.png", lambda: b"\x89PNG\r\n\x1a\n" + bytes(21 * 1024 * 1024), "image/png", "20 MB limit"),
}


def test_predict_bad_input_gives_one_line_message(with_runs):
    """Each bad file in turn, in one session: a one-line message naming the file, never a traceback."""
    at = open_page("predict", timeout=180)
    for case, (name, make, mime, expected) in BAD_INPUTS.items():
        if expected is None:
            continue
        upload(at, name, make(), mime)
        assert not at.exception, (case, [e.value for e in at.exception])
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and expected in errors[0], (case, errors)
        assert "\n" not in errors[0] and name in errors[0], (case, errors)
        assert "Traceback" not in all_text(at), case
    # Nothing lost: the same session and models still predict.
    at.segmented_control(key="predict_source").set_value("sample").run(timeout=120)
    assert not at.error
    assert_probabilities_for_every_model(at)


def test_predict_odd_image_modes_are_converted(with_runs):
    """16-bit, CMYK, palette, RGBA, WebP, BMP and animated GIF (first frame) are accepted and classified."""
    at = open_page("predict", timeout=180)
    for case, (name, make, mime, expected) in BAD_INPUTS.items():
        if expected is not None:
            continue
        upload(at, name, make(), mime)
        assert not at.exception and not at.error, (case, [e.value for e in at.error])
        assert_probabilities_for_every_model(at)


def test_predict_skips_broken_runs_with_a_warning(with_runs_copy):
    runs = run_dirs(with_runs_copy)
    (runs["vgg19"] / "model.keras").unlink()  # half-written
    (runs["inception_v3"] / "metrics.json").write_text("{ hand edited")  # broken by hand
    for page in ("home", "compare", "predict"):
        at = open_page(page)
        warning = " ".join(w.value for w in at.warning)
        assert "2 run folders skipped" in warning and "model.keras" in warning and "metrics.json" in warning, page
        assert "baseline" in all_text(at) or page != "compare", page
    assert len(at.selectbox(key="predict_dataset").options) == 1
    # The three intact runs predict: the model picker offers (and preselects) exactly them.
    assert at.multiselect[0].value == ["baseline", "resnet50v2", "inception_resnet_v2"]


def test_predict_refuses_unsafe_keras_file(with_runs_copy):
    """A model.keras holding a Python lambda needs unsafe deserialization: refused with a message."""
    import keras

    inputs = keras.Input((75, 75, 3))
    outputs = keras.layers.Dense(8, activation="softmax")(
        keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 1.0)(inputs)))
    target = run_dirs(with_runs_copy)["baseline"] / "model.keras"
    target.unlink()
    keras.Model(inputs, outputs).save(target)
    at = open_page("predict", timeout=180)
    at.segmented_control(key="predict_source").set_value("sample").run(timeout=180)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "safely" in errors[0] and "\n" not in errors[0], errors


def test_predict_sample_images_are_deterministic():
    from ui.samples import sample_bytes, sample_names

    for name in sample_names():
        assert sample_bytes(name) == sample_bytes(name)
    img = Image.open(io.BytesIO(sample_bytes("Two friends (happy, surprise)")))
    assert img.size[0] > img.size[1] >= 300


def test_the_first_sample_is_a_real_photo_with_one_detected_face():
    from fer_core.faces.detect import detect_faces
    from fer_core.inference.predictor import to_rgb_array
    from ui.samples import sample_bytes, sample_names

    first = sample_names()[0]
    assert "real photo" in first
    faces = detect_faces(to_rgb_array(sample_bytes(first)))
    assert len(faces) == 1 and faces[0].confidence > 0.9



def test_upload_limits_are_configured():
    import tomllib

    from app_helpers import ROOT
    from ui import settings

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    # The server starts at the public cap (bound from its first request); a lab machine raises it to
    # MAX_DATASET_MB on its first page run (ui/access.py: cap_server_uploads; tests/test_upload_bounds.py).
    assert config["server"]["maxUploadSize"] == max(settings.PUBLIC_LIMITS.photo_mb, settings.PUBLIC_LIMITS.video_mb)
    assert settings.MAX_DATASET_MB >= settings.MAX_PHOTO_MB


def test_predict_offers_a_models_older_runs_on_request(with_runs_copy):
    """A model trained twice on the same data: the newest is offered by name, the earlier one behind a toggle."""
    import datetime as dt
    import json
    import shutil

    newest = run_dirs(with_runs_copy)["baseline"]
    earlier = with_runs_copy / "20200101-000000_baseline_earlier"
    shutil.copytree(newest, earlier)
    m = json.loads((earlier / "metrics.json").read_text())
    m["created"] = 1577836800.0  # 2020-01-01: older than every tiny run
    (earlier / "metrics.json").write_text(json.dumps(m))
    day = dt.datetime.fromtimestamp(m["created"]).strftime("%b %d")  # as the label shows it, in local time
    at = open_page("predict", timeout=180)
    assert not any(day in label for label in at.multiselect[0].options)  # offered by name: the newest run only
    toggle = next(t for t in at.toggle if t.label.startswith("Older runs too"))
    assert toggle.label == "Older runs too (1)"
    toggle.set_value(True).run(timeout=180)
    picker = at.multiselect[0]
    assert sum(label.startswith(f"baseline · {day} ") for label in picker.options) == 1, picker.options
    picker.set_value(["baseline", earlier.name]).run(timeout=180)
    upload(at, "friends.png", face_photo())
    assert not at.exception and not at.error, [e.value for e in at.error]
    rows = list(probability_table(at)["Model"])
    assert rows == [f"baseline [{newest.name}]", f"baseline [{earlier.name}]", "ensemble (mean)"], rows
    # Turning the toggle off drops the earlier run from the choice instead of failing.
    next(t for t in at.toggle if t.label.startswith("Older runs too")).set_value(False).run(timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.multiselect[0].value == ["baseline"]
