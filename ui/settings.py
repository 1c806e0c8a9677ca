"""Where the app reads runs and datasets from, and its upload limits.

Both folders come from the environment so a deployment, a test or a CLI user
can point the app elsewhere without touching code::

    FER_RUNS_DIR=runs/   FER_DATA_DIR=data/   streamlit run app.py
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Photos larger than this are refused in the page (phones produce 3–12 MB).
MAX_PHOTO_MB = 20
#: Dataset archives (.npz / .zip) may be larger; must stay ≤ server.maxUploadSize.
MAX_DATASET_MB = 200
#: Photo types the Predict page accepts (first frame of a GIF).
PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]


def _resolve(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (Path.cwd() / path)


def runs_dir() -> Path:
    """Runs folder: ``$FER_RUNS_DIR`` or ``runs/`` (relative to where the app was started)."""
    return _resolve(os.environ.get("FER_RUNS_DIR") or "runs")


def data_root() -> Path:
    """Data root: ``$FER_DATA_DIR`` or ``data/``; dataset paths must stay inside it."""
    return _resolve(os.environ.get("FER_DATA_DIR") or "data")


def display_path(path: Path) -> str:
    """A path as short as possible for the page: relative to the working folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)
