"""Compare page's export control (AppTest): a format per run, Export converts once, then a zip to download.

Driven over the two bundled FER2013 models (``models/``); converted zips go to a temporary
``FER_EXPORT_CACHE``.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from app_helpers import all_text, data_dir, open_page, point_app_at  # noqa: F401
from fer_core.store import export as ex
from fer_core import load_run
from fer_core.store.runs import BUNDLED_DIR
from ui import export as ui_export

FORMAT = "compare_download_export_format_baseline"
GO = "compare_download_export_go_baseline"


@pytest.fixture
def bundled_app(tmp_path, data_dir, monkeypatch):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    point_app_at(monkeypatch, runs, data_dir, bundled_dir=BUNDLED_DIR)
    monkeypatch.setenv("FER_EXPORT_CACHE", str(tmp_path / "exports"))
    monkeypatch.delenv("FER_PUBLIC", raising=False)
    monkeypatch.delenv("FER_ADMINS", raising=False)
    return tmp_path / "exports"


def _zip_buttons(at) -> list[str]:
    return [b.proto.label for b in at.get("download_button") if b.proto.label.endswith(" MB")
            and ".zip" in b.proto.label and "_" in b.proto.label.split(".zip")[0]]


def test_export_converts_once_then_every_session_downloads_the_zip(bundled_app):
    fmt = "onnx" if ex.unavailable_reason("onnx") is None else "saved_model"
    at = open_page("compare")
    box = at.selectbox(key=FORMAT)
    assert box.value == "keras"  # first in the menu: no conversion at all
    box.set_value(fmt).run()
    assert not _zip_buttons(at)  # nothing converted yet
    at.button(key=GO).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert _zip_buttons(at) == [f"baseline_{fmt}.zip · " + _zip_buttons(at)[0].split(" · ")[1]]
    assert "max |Δp|" in all_text(at) and "against the Keras model" in all_text(at)
    zips = list(bundled_app.glob(f"*/{fmt}.zip"))
    assert len(zips) == 1
    with zipfile.ZipFile(zips[0]) as zf:
        labels = json.loads(zf.read(f"baseline_{fmt}/labels.json"))
    assert labels["model_format"] == fmt and labels["input"]["shape"] == [None, 128, 128, 3]
    assert labels["check"]["max_abs_diff"] <= 1e-4

    again = open_page("compare")  # a new visitor: the cached zip is offered at once, no Export button
    again.selectbox(key=FORMAT).set_value(fmt).run()
    assert [b for b in again.button if b.key == GO] == [] and len(_zip_buttons(again)) == 1


def test_missing_packages_hide_their_formats_and_say_why(bundled_app, monkeypatch):
    monkeypatch.setattr(ex, "_installed", lambda module: module not in ("onnxruntime", "ai_edge_litert"))
    at = open_page("compare")
    box = at.selectbox(key=FORMAT)
    assert [ex.FORMATS[f].title for f in ("keras", "saved_model")] == box.options
    text = all_text(at)
    assert ("tflite, tflite_int8, onnx: not installed on this server (ai-edge-litert, onnxruntime; "
            "pip install -r requirements-export.txt)") in text


def test_public_mode_shows_one_line_instead_of_export(bundled_app, monkeypatch):
    """Issue 28: a conversion costs far more than one visitor's CPU budget, so public mode offers none."""
    monkeypatch.setenv("FER_PUBLIC", "1")
    at = open_page("compare")
    assert not [b for b in at.selectbox if b.key and b.key.startswith("compare_download_export_")]
    assert not [b for b in at.button if b.key and b.key.startswith("compare_download_export_")]
    lines = [i.value for i in at.info if "Export is off" in i.value]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "python -m training.export models/" in lines[0] and "--format tflite" in lines[0]
    assert not list(bundled_app.glob("*/*.zip"))  # nothing converted


def test_offered_formats_off_trusted_settings_are_float_formats_of_small_models(monkeypatch):
    monkeypatch.setattr(ex, "_installed", lambda module: True)
    formats, note = ui_export.offered(load_run(BUNDLED_DIR / "baseline"), trusted=False)
    assert "tflite_int8" not in formats and "keras" in formats
    assert "tflite_int8 is not converted on this shared server" in note

    big = load_run(BUNDLED_DIR / "baseline")
    big.metrics = dict(big.metrics, model_size_bytes=80_000_000)  # a VGG19-sized model
    formats, note = ui_export.offered(big, trusted=False)
    assert formats == [] and "80 MB model is too large to convert on this shared server" in note
    assert ui_export.offered(big, trusted=True)[0][:2] == ["keras", "saved_model"]


def test_public_mode_leaves_out_onnx_of_an_ensemble(monkeypatch):
    """ONNX of the bundled compact_x2_blur peaked at +1.0 GB (benchmarks/export.py): not on a shared server."""
    monkeypatch.setattr(ex, "_installed", lambda module: True)  # every export package present
    ensemble = load_run(BUNDLED_DIR / "compact_x2_blur")
    formats, note = ui_export.offered(ensemble, trusted=False)
    assert formats == ["keras", "saved_model", "tflite"] and "onnx of an ensemble is not converted" in note
    assert "onnx" in ui_export.offered(ensemble, trusted=True)[0]
    assert "onnx" in ui_export.offered(load_run(BUNDLED_DIR / "compact"), trusted=False)[0]  # a single network
