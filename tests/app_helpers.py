"""Helpers for the AppTest suites (``tests/test_app_*.py``): start the app on a page, read what it shows.

The app reads its folders from the environment, so each test points
``FER_RUNS_DIR``/``FER_DATA_DIR`` at temporary folders, turns background
model loading off (``FER_PREWARM=0``) and hides any bundled runs (an empty
``models/`` stand-in) unless the test is about them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 60


def point_app_at(monkeypatch, runs_dir: Path, data_dir: Path, bundled_dir: Path | None = None) -> None:
    import ui.loaders

    monkeypatch.setenv("FER_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("FER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FER_PREWARM", "0")
    empty = data_dir.parent / "no-bundled-runs"
    empty.mkdir(exist_ok=True)
    monkeypatch.setattr(ui.loaders, "BUNDLED_DIR", bundled_dir or empty)


def open_page(page: str | None = None, *, timeout: int = TIMEOUT) -> AppTest:
    """Run ``app.py`` and switch to ``pages/<page>.py``; asserts no exception reached the page."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    assert_clean(at)
    if page and page != "home":
        at.switch_page(f"pages/{page}.py").run()
        assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    """No uncaught exception (a traceback box) on the page."""
    assert not at.exception, [e.value for e in at.exception]


def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def all_text(at: AppTest) -> str:
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success", "code"):
        parts += [str(v) for v in texts(at, kind)]
    return "\n".join(parts)


def plotly_figures(at: AppTest, prefix: str = "") -> dict[str, dict]:
    """Plotly charts on the page as {widget key: figure dict}, filtered by key prefix."""
    out = {}
    for el in at.get("plotly_chart"):
        key = el.proto.id.split("-", 2)[-1] if el.proto.id.startswith("$$ID-") else el.proto.id
        if key.startswith(prefix):
            out[key] = json.loads(el.proto.spec)
    return out


def png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def face_photo() -> bytes:
    """A synthetic photo with two faces (one of the Predict page's samples), as PNG bytes."""
    from ui.samples import sample_bytes

    return sample_bytes("Two friends (happy, surprise)")


def face_image() -> Image.Image:
    from ui.samples import sample_image

    return sample_image("Close-up (sad)")


def png_with_size_header(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims ``width``×``height`` (a decompression-bomb stand-in)."""
    import struct
    import zlib

    raw = bytearray(png_bytes(Image.new("L", (8, 8), 0)))
    # IHDR data starts at byte 16: width, height (big-endian), then depth, colour type, ...
    raw[16:24] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(raw[12:29])) & 0xFFFFFFFF
    raw[29:33] = struct.pack(">I", crc)
    return bytes(raw)


def rng_image(shape, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, shape).astype(dtype)


# --------------------------------------------------------------------------- fixtures (import them in a test module)

import pytest  # noqa: E402


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def no_runs(tmp_path, data_dir, monkeypatch) -> Path:
    """The app over an empty runs folder (and no bundled runs)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    point_app_at(monkeypatch, runs, data_dir)
    return runs


@pytest.fixture
def with_runs(tiny_runs_dir, data_dir, monkeypatch) -> Path:
    """The app over the five tiny demo runs (shared, read-only)."""
    point_app_at(monkeypatch, tiny_runs_dir, data_dir)
    return tiny_runs_dir


@pytest.fixture
def with_runs_copy(tiny_runs_copy, data_dir, monkeypatch) -> Path:
    """The app over a private copy of the tiny runs a test may damage."""
    point_app_at(monkeypatch, tiny_runs_copy, data_dir)
    return tiny_runs_copy


def run_dirs(runs_dir: Path) -> dict[str, Path]:
    """{model id: run folder} of a runs folder."""
    out = {}
    for d in sorted(runs_dir.iterdir()):
        if d.is_dir() and (d / "metrics.json").is_file():
            out[json.loads((d / "metrics.json").read_text())["model"]] = d
    return out


MODELS = ["baseline", "resnet50v2", "inception_resnet_v2", "inception_v3", "vgg19"]


def dataframe_with(at: AppTest, column: str, nth: int = 0):
    """The ``nth`` dataframe on the page having ``column`` (dataframes expose no key in AppTest)."""
    found = [d.value for d in at.dataframe if column in list(d.value.columns) or d.value.index.name == column]
    assert len(found) > nth, f"no dataframe with column {column!r}; have {[list(d.value.columns) for d in at.dataframe]}"
    return found[nth]


def arr(value) -> np.ndarray:
    """A plotly data field as a numpy array (plotly ≥ 6 encodes arrays as base64 typed arrays in JSON)."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return a.reshape([int(s) for s in str(shape).split(",")]) if shape else a
    return np.asarray(value)
