"""Predict page with several photos (AppTest): a table of every face, a CSV download, bad files named on one line.

Runs over the bundled FER2013 models (Predict starts with compact) and real photos
made from ui/assets/astronaut.jpg.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from app_helpers import TIMEOUT, all_text, assert_clean, data_dir, open_page, point_app_at  # noqa: F401
from fer_core.inference.rows import LEAD_COLUMNS
from fer_core.store.runs import BUNDLED_DIR

ASTRONAUT = Path(__file__).resolve().parent.parent / "ui" / "assets" / "astronaut.jpg"
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.fixture
def bundled_app(tmp_path, data_dir, monkeypatch):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    point_app_at(monkeypatch, runs, data_dir, bundled_dir=BUNDLED_DIR)
    for key in ("FER_PUBLIC", "FER_PREDICTIONS_PER_MINUTE", "FER_MAX_BATCH_PHOTOS"):
        monkeypatch.delenv(key, raising=False)
    from streamlit import config

    upload_cap = config.get_option("server.maxUploadSize")
    yield monkeypatch
    config.set_option("server.maxUploadSize", upload_cap)  # public mode lowers it process-wide


def photos() -> list[tuple[str, bytes, str]]:
    from PIL import Image

    img = Image.open(ASTRONAUT).convert("RGB")
    small = io.BytesIO()
    img.resize((300, 300)).save(small, "PNG")
    return [("astronaut.jpg", ASTRONAUT.read_bytes(), "image/jpeg"), ("small.png", small.getvalue(), "image/png")]


def batch_table(at):
    return next(d.value for d in at.dataframe if "face_id" in d.value.columns)


def test_several_photos_and_a_bad_one_give_a_table_a_csv_and_one_line(bundled_app):
    at = open_page("predict", timeout=TIMEOUT)
    files = photos() + [("report.jpg", b"%PDF-1.4 a renamed document", "image/jpeg")]
    at.file_uploader(key="predict_upload").set_value(files).run(timeout=TIMEOUT)
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and warnings[0].startswith("report.jpg: not a photo") and "\n" not in warnings[0]
    table = batch_table(at)
    assert list(table.columns) == [c for c in LEAD_COLUMNS if c not in ("frame", "time_s")] + CLASSES + ["top", "whole_image"]
    assert list(table["file"]) == ["astronaut.jpg", "small.png"]
    assert list(table["top"]) == ["happy", "happy"] and not table["whole_image"].any()
    assert "2 photos · 2 faces" in all_text(at)
    csv = at.session_state["predict_batch_result"]
    assert at.get("download_button") and csv["rows"][0]["file"] == "astronaut.jpg"


def test_a_zip_and_the_per_minute_budget(bundled_app):
    """A zip is a batch of its photos; in public mode each photo spends one prediction of the minute's budget."""
    bundled_app.setenv("FER_PUBLIC", "1")
    bundled_app.setenv("FER_PREDICTIONS_PER_MINUTE", "2")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, _ in photos() + photos():  # the second copies differ by a trailing byte: 4 distinct photos
            zf.writestr(f"trip/{len(zf.namelist())}-{name}", data + b"\0" * (len(zf.namelist()) >= 2))
    at = open_page("predict", timeout=TIMEOUT)
    at.file_uploader(key="predict_upload").set_value(("trip.zip", buf.getvalue(), "application/zip")).run(timeout=TIMEOUT)
    assert_clean(at)
    table = batch_table(at)
    assert list(table["file"]) == ["trip.zip/trip/0-astronaut.jpg", "trip.zip/trip/1-small.png"]
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and warnings[0].startswith("2 photos left out. Too many predictions: at most 2 a minute")
