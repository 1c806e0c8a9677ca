"""Where the app reads runs and datasets from, whether it runs in public mode, and its limits.

Both folders come from the environment so a deployment, a test or a CLI user
can point the app elsewhere without touching code::

    FER_RUNS_DIR=runs/   FER_DATA_DIR=data/   streamlit run app.py

Public mode and the limits for anonymous use come from the environment
(``FER_PUBLIC``, ``FER_MAX_PHOTO_MB``…) or, where no environment can be set
(Streamlit Community Cloud), from a ``[fer]`` table in ``st.secrets``::

    [fer]
    public = true
    admins = ["me@example.org"]
    max_faces = 8

This module is the only place that reads ``st.secrets``: :func:`fer_secret`
never raises or warns when there is no ``secrets.toml`` (a local checkout).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fer_core.data.images import MAX_PIXELS

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


# --------------------------------------------------------------------------- env + st.secrets

_MISSING = object()


def _fer_secrets() -> Mapping:
    """The ``[fer]`` table of ``st.secrets``, or {}.

    ``st.secrets.load_if_toml_exists()`` is Streamlit's probe that returns
    False instead of raising when no secrets file exists (``st.secrets["fer"]``
    would raise, and the app would log "No secrets found"). ``st.secrets`` is
    looked up at call time, so AppTest's ``at.secrets`` reaches it.
    """
    try:
        import streamlit as st

        secrets = st.secrets
        if not secrets.load_if_toml_exists():
            return {}
        fer = secrets.get("fer")
        return fer if isinstance(fer, Mapping) else {}
    except Exception:  # noqa: BLE001 - a broken secrets file must not take the app down
        return {}


def fer_secret(key: str, default=None):
    """``st.secrets["fer"][key]``, or ``default`` (no secrets file, no [fer] table, no key)."""
    value = _fer_secrets().get(key, _MISSING)
    return default if value is _MISSING else value


def config_value(key: str, default=None):
    """A setting: ``$FER_<KEY>`` first, then ``[fer] <key>`` in st.secrets, then ``default``."""
    env = os.environ.get(f"FER_{key.upper()}")
    if env is not None and env.strip() != "":
        return env.strip()
    return fer_secret(key, default)


def _truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def public_mode() -> bool:
    """True on a public deployment: ``FER_PUBLIC=1`` or ``public = true`` under ``[fer]`` in st.secrets.

    Either source turns it on (an environment variable cannot switch off what
    the deployment's secrets ask for). In public mode strangers cannot train,
    upload datasets or see and type filesystem paths; Predict and Compare work.
    """
    return _truthy(os.environ.get("FER_PUBLIC", "")) or _truthy(fer_secret("public", False))


def _address_list(key: str) -> list[str]:
    """A setting holding e-mail addresses: a list, or a comma-separated string → lower-case entries."""
    raw = config_value(key, [])
    if isinstance(raw, str):
        raw = raw.split(",")
    try:
        return [str(a).strip().lower() for a in raw if str(a).strip()]
    except TypeError:
        return []


def admins() -> list[str]:
    """E-mail addresses (lower case) under ``[fer] admins`` (a list, or a comma-separated string)."""
    return _address_list("admins")


def require_login() -> bool:
    """``[fer] require_login = true`` (or ``FER_REQUIRE_LOGIN=1``): every page asks for sign-in via ``st.login``."""
    return _truthy(config_value("require_login", False))


def viewers() -> list[str]:
    """Who may use a sign-in-only app: e-mails or ``@domain`` entries under ``[fer] viewers``; empty = anyone signed in."""
    return _address_list("viewers")


def repo_url() -> str | None:
    """Where the code can be cloned (``FER_REPO_URL`` / ``[fer] repo_url``), shown by the Train page in public mode."""
    url = config_value("repo_url")
    return str(url).strip() if url else None


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Bounds on what one visitor may ask of the server; 0 = no limit (faces, predictions)."""

    photo_mb: int            #: largest photo upload
    megapixels: float        #: largest photo (width × height / 10⁶), checked from the header before decoding
    faces: int               #: faces classified per photo (the largest ones)
    predictions_per_minute: int  #: new predictions per browser session in any 60 s
    #: photos in one Predict batch (several files or a zip); each also counts against the per-minute budget
    batch_photos: int = 60
    #: largest video upload (MB); in public mode the server's own upload cap is max(photo_mb, video_mb)
    video_mb: int = 200
    #: seconds of a video analysed (the first ones); 0 = the whole clip. Video costs a detection per sampled frame
    video_seconds: float = 600
    #: what one browser session's uploads may hold on the server (files, MB); 0 = no bound. The oldest
    #: are let go past it (ui/access.py: bound_session_uploads); a photo batch must fit in it
    session_upload_files: int = 0
    session_upload_mb: int = 0
    #: what one clip may cost, whatever its size and frame rate (fer_core.inference.video; 0 = no bound): samples per
    #: second of video time (each costs a detection), the longer side sampled frames are scaled to before
    #: detection (the detector reads a 960 px copy anyway), and the decoded frames' megapixels (the decode
    #: cost; each frame counts at least 640×360). benchmarks/video.py --public-worst measures the worst clip
    video_fps: float = 0
    video_side: int = 0
    video_megapixels: float = 0
    #: faces classified per video sample (the largest); 0 = as for photos (``faces``). A crowd costs a
    #: classification per face per sample: 8 faces × 150 samples measured 25 CPU-s, over the budget
    video_faces: int = 0


#: Defaults: a lab machine is generous; a public URL bounds what one stranger can cost.
LOCAL_LIMITS = Limits(photo_mb=MAX_PHOTO_MB, megapixels=MAX_PIXELS / 1e6, faces=20, predictions_per_minute=60)
PUBLIC_LIMITS = Limits(photo_mb=10, megapixels=24, faces=8, predictions_per_minute=10, batch_photos=10,
                       video_mb=10, video_seconds=30, session_upload_files=12, session_upload_mb=50,
                       video_fps=5, video_side=960, video_megapixels=4000, video_faces=4)
#: Hard ceilings no setting can exceed: the server's upload size and the decoder's own pixel guard.
_CEILINGS = {"photo_mb": MAX_DATASET_MB, "megapixels": MAX_PIXELS / 1e6, "video_mb": MAX_DATASET_MB}


def _number(key: str, default, cast):
    try:
        value = cast(config_value(key, default))
    except (TypeError, ValueError):
        return default  # a typo in a setting falls back to the default rather than breaking Predict
    return default if value < 0 else value


def limits() -> Limits:
    """The limits in force: ``$FER_MAX_PHOTO_MB`` / ``[fer] max_photo_mb`` etc., else the mode's defaults."""
    base = PUBLIC_LIMITS if public_mode() else LOCAL_LIMITS
    photo_mb = _number("max_photo_mb", base.photo_mb, int) or base.photo_mb
    megapixels = _number("max_megapixels", base.megapixels, float) or base.megapixels
    return Limits(photo_mb=min(photo_mb, _CEILINGS["photo_mb"]),
                  megapixels=min(megapixels, _CEILINGS["megapixels"]),
                  faces=_number("max_faces", base.faces, int),
                  predictions_per_minute=_number("predictions_per_minute", base.predictions_per_minute, int),
                  batch_photos=_number("max_batch_photos", base.batch_photos, int),
                  video_mb=min(_number("max_video_mb", base.video_mb, int) or base.video_mb, _CEILINGS["video_mb"]),
                  video_seconds=_number("max_video_seconds", base.video_seconds, float),
                  session_upload_files=_number("max_session_uploads", base.session_upload_files, int),
                  session_upload_mb=_number("max_session_upload_mb", base.session_upload_mb, int),
                  video_fps=_number("max_video_fps", base.video_fps, float),
                  video_side=_number("max_video_side", base.video_side, int),
                  video_megapixels=_number("max_video_megapixels", base.video_megapixels, float),
                  video_faces=_number("max_video_faces", base.video_faces, int))
