"""Prediction for the Predict page: validates input, calls the cached Predictor, keeps the result.

The result of the last photo lives in ``st.session_state`` keyed by the photo's
digest and the run ids, so widget changes (face picker, Grad-CAM toggle) never
re-run detection and classification.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from fer_core import FERError, ImageInputError

from . import settings, state
from .loaders import predictor_for


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_upload_size(name: str, data: bytes, limit_mb: int = settings.MAX_PHOTO_MB) -> None:
    """The page's own size check (the browser enforces ``server.maxUploadSize`` too)."""
    if len(data) > limit_mb * 1024 * 1024:
        raise ImageInputError(f"{name}: {len(data) / 1024 / 1024:.1f} MB is over the {limit_mb} MB limit for photos")


def predict(runs, data: bytes, name: str):
    """(result, None) or (None, one-line error). Cached per (photo, runs) in the session."""
    digest = hashlib.sha1(data).hexdigest()
    key = (digest, tuple(r.id for r in runs))
    cached = st.session_state.get(state.PREDICT_RESULT)
    if cached and cached["key"] == key:
        return cached["result"], cached["error"]
    result, error = None, None
    try:
        check_upload_size(name, data)
        predictor = predictor_for(runs)
        with st.spinner("Finding faces and classifying them…"):
            result = predictor.predict(data)
    except ImageInputError as exc:
        # Messages name "image" for raw bytes; the user knows the file by its name.
        msg = str(exc)
        error = f"{name}: {msg.split(': ', 1)[1]}" if msg.startswith("image: ") else msg
    except FERError as exc:
        error = str(exc)
    except Exception as exc:  # last resort: never a traceback in the page
        error = f"{name}: prediction failed ({_one_line(exc)})"
    st.session_state[state.PREDICT_RESULT] = {"key": key, "result": result, "error": error, "gradcam": {}}
    return result, error


def gradcam(runs, face, run_id: str):
    """Grad-CAM overlay (h, w, 3) uint8 of one model on one face, or a one-line error string."""
    cached = st.session_state.get(state.PREDICT_RESULT) or {}
    store = cached.setdefault("gradcam", {})
    key = (face.index, run_id)
    if key not in store:
        try:
            store[key] = predictor_for(runs).gradcam(face, run_id)
        except FERError as exc:
            store[key] = str(exc)
        except Exception as exc:
            store[key] = f"Grad-CAM failed for {run_id}: {_one_line(exc)}"
    return store[key]
