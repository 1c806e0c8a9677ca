"""Prediction for the Predict page: validates input, calls the cached Predictor, keeps the result.

The result of the last photo lives in ``st.session_state`` keyed by the photo's
digest and the run ids, so widget changes (face picker, Grad-CAM toggle) never
re-run detection and classification.

Every new prediction is bounded (:func:`ui.settings.limits`): the photo's size
in MB and in pixels (read from its header, before decoding), the session's
predictions per minute (:func:`ui.access.admit_prediction`) and the faces
classified per photo (the largest ones: ``Predictor.predict(max_faces=...)``). A bound that is hit
gives one line in the page, never a traceback.

Several photos at once (:func:`predict_batch`: more than one upload, or a zip)
go through :mod:`fer_core.inference.batch`, bounded by ``limits.batch_photos`` and the
same per-minute budget, one prediction per photo.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings

import streamlit as st

from fer_core import FERError, ImageInputError, memory

from . import access, settings, state
from .loaders import predictor_for


#: A parenthesised tail that is a library's text, not the app's: errno numbers, FFmpeg's and Python's
#: error texts, Axios/HTTP status lines. :func:`plain` cuts it from a line before a visitor sees it.
_LIBRARY_TAIL = re.compile(r"\s*\((?=[^()]*(?:Errno|Error|error:|Exception|Invalid data|<none>|errno|"
                           r"status code|0x[0-9a-fA-F]|Traceback))[^()]*\)")


def plain(line: str) -> str:
    """One line in the app's words: the first line, without a library's parenthesised error text."""
    text = str(line).strip().splitlines()[0] if str(line).strip() else ""
    return _LIBRARY_TAIL.sub("", text).strip()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_upload_size(name: str, data: bytes, limit_mb: int | None = None) -> None:
    """The page's own size check (the browser enforces the uploader's limit, the server ``server.maxUploadSize``)."""
    limit_mb = settings.limits().photo_mb if limit_mb is None else limit_mb
    if len(data) > limit_mb * 1024 * 1024:
        raise ImageInputError(f"{name}: {len(data) / 1024 / 1024:.1f} MB is over the {limit_mb} MB limit for photos")


def check_pixels(name: str, data: bytes, megapixels: float | None = None) -> None:
    """Refuse a photo over the pixel limit from its header alone (decoding 40 MP costs ~120 MB of memory).

    Input Pillow cannot even open passes through: the decoder then names the problem.
    """
    megapixels = settings.limits().megapixels if megapixels is None else megapixels
    try:
        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w, h = Image.open(io.BytesIO(data)).size
    except Exception:  # noqa: BLE001 - not an image, or a bomb Pillow refuses: fer_core says which
        return
    if w * h > megapixels * 1e6:
        raise ImageInputError(f"{name}: image is {w}×{h} = {w * h:,} pixels, over this app's limit of "
                              f"{megapixels:g} megapixels for photos")


def face_cap_note() -> str | None:
    """The face-cap note of the last prediction (``PredictionResult.cap_note``), for the page to show."""
    return (st.session_state.get(state.PREDICT_RESULT) or {}).get("note")


def predict(runs, data: bytes, name: str):
    """(result, None) or (None, one-line error). Cached per (photo, runs) in the session."""
    digest = hashlib.sha1(data).hexdigest()
    key = (digest, tuple(r.id for r in runs))
    cached = st.session_state.get(state.PREDICT_RESULT)
    if cached and cached["key"] == key:
        return cached["result"], cached["error"]
    recent = st.session_state.get(state.PREDICT_RECENT)
    if recent and recent["key"] == key:  # back to the previous photo: swap, nothing runs again
        st.session_state[state.PREDICT_RECENT], st.session_state[state.PREDICT_RESULT] = cached, recent
        return recent["result"], recent["error"]
    limits = settings.limits()
    result, error, note = None, None, None
    try:
        check_upload_size(name, data, limits.photo_mb)
        check_pixels(name, data, limits.megapixels)
        busy = access.admit_prediction(digest)  # a photo this session was charged for is not charged again
        if busy:
            return None, busy  # not cached: the same photo predicts once the minute has passed
        predictor = predictor_for(runs)
        with st.spinner("Finding faces and classifying them…"):
            # The Predictor classifies only the K largest faces (a crowd photo is a hundred crops per model).
            result = predictor.predict(data, max_faces=limits.faces or None).for_display()  # kept: ≤ 2,048 px
        note = result.cap_note
    except ImageInputError as exc:
        # Messages name "image" for raw bytes; the user knows the file by its name.
        msg = str(exc)
        error = plain(f"{name}: {msg.split(': ', 1)[1]}" if msg.startswith("image: ") else msg)
    except FERError as exc:
        error = plain(exc)
    except Exception:  # last resort: never a traceback in the page
        logging.getLogger(__name__).exception("prediction failed on %s", name)  # the detail: server log only
        error = f"{name}: this photo could not be read; try another one"
    memory.trim_if_due()  # at most every 30 s: a decoded photo's pages go back to the kernel
    if cached and cached.get("result") is not None:
        st.session_state[state.PREDICT_RECENT] = cached  # one earlier photo kept (results, not uploads)
    st.session_state[state.PREDICT_RESULT] = {"key": key, "result": result, "error": error, "gradcam": {},
                                              "note": note}
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
            logging.getLogger(__name__).exception("Grad-CAM failed for %s", run_id)
            store[key] = f"Grad-CAM could not be computed for {run_id}"
    return store[key]


# --------------------------------------------------------------------------- several photos at once


def is_batch(files: list[tuple[str, bytes]]) -> bool:
    """Several uploads, or one zip: the page shows a table of faces instead of one photo's view."""
    from fer_core.inference.batch import sniff

    return len(files) > 1 or (len(files) == 1 and sniff(files[0][1][:16]) == "zip")


def predict_batch(runs, files: list[tuple[str, bytes]], progress=None) -> dict:
    """Rows (fer_core.inference.rows layout) for uploaded photos and zips; cached per (files, runs) in the session.

    Returns ``{"rows", "class_names", "skipped", "photos", "faces", "whole_image", "seconds"}``, or
    ``{"error"}`` when nothing could be read. Each photo is one prediction of the session's
    per-minute budget (it costs the server what a single photo does), charged ONCE: every photo's rows
    are kept in the session by content (:data:`ui.state.PREDICT_PHOTO_ROWS`, a few floats per face), so
    adding a photo to the uploader reads only the new one, and a photo read before is neither read nor
    charged again. Photos past the budget, past ``limits.batch_photos`` or over the size and pixel limits
    are named on one line each and left out. ``progress(fraction, text)`` is called as photos finish.
    """
    import time

    from fer_core.inference.batch import BatchReport, Source, expand_uploads, iter_rows

    digest = hashlib.sha1()
    for name, data in files:
        digest.update(name.encode() + b"\0" + hashlib.sha1(data).digest())
    run_ids = tuple(r.id for r in runs)
    key = (digest.hexdigest(), run_ids)
    cached = st.session_state.get(state.PREDICT_BATCH_RESULT)
    if cached and cached["key"] == key:
        return cached
    limits = settings.limits()
    known = st.session_state.get(state.PREDICT_PHOTO_ROWS)
    if not isinstance(known, dict):
        known = st.session_state[state.PREDICT_PHOTO_ROWS] = {}
    t0 = time.perf_counter()
    expansion = expand_uploads(files, max_photos=limits.batch_photos, max_file_bytes=limits.photo_mb * 2**20)
    skipped = list(expansion.problems)
    order, new, busy = [], [], None  # order: (label, photo key); new: sources to read now
    try:
        for source in expansion.sources:
            try:
                data = source.read(limits.photo_mb * 2**20)
            except FERError as exc:
                skipped.append(str(exc))
                continue
            photo = (hashlib.sha1(data).hexdigest(), run_ids, limits.faces)
            if photo not in known:
                busy = access.admit_prediction(photo[0])
                if busy:
                    left = len(expansion.sources) - len(order)
                    skipped.append(f"{left} photo{'s' if left != 1 else ''} left out. {busy}")
                    break
                new.append(Source(label=source.label, kind="photo", data=data))
            order.append((source.label, photo))
    finally:
        expansion.close()
    skipped = [plain(line) for line in skipped]
    if not order:  # not cached: the budget frees up in a minute
        if busy:
            return {"error": busy, "skipped": []}
        if len(skipped) == 1:  # that one line IS the error: shown once, not as a warning and an error
            return {"error": skipped[0], "skipped": []}
        return {"error": f"none of the {len(files)} files holds a photo this page reads", "skipped": skipped}
    report = BatchReport()

    def on_event(e: dict) -> None:
        if progress is not None and e.get("done") is not None:
            progress(e["done"] / max(1, e["total"]), f"{e['done']} of {e['total']} new photos · {e['file']}")

    try:
        predictor = predictor_for(runs)
        fresh = list(iter_rows(new, predictor, max_faces=limits.faces or None, on_event=on_event, report=report,
                               max_bytes=limits.photo_mb * 2**20, max_pixels=int(limits.megapixels * 1e6))) if new else []
        class_names = predictor.class_names
    except FERError as exc:
        return {"error": plain(exc), "skipped": skipped}
    except Exception as exc:  # last resort: never a traceback in the page
        logging.getLogger(__name__).exception("batch prediction failed")
        return {"error": "these photos could not be read; try others", "skipped": skipped}
    new.clear()  # the photos' bytes: what the session keeps is their rows
    memory.trim()  # decoded photos and crops go back to the kernel (issue 28)
    by_label: dict[str, list] = {}
    for row in fresh:
        by_label.setdefault(row["file"], []).append(row)
    for label, photo in order:
        if photo not in known and label in by_label:
            known[photo] = [{k: v for k, v in row.items() if k != "file"} for row in by_label[label]]
    while len(known) > access.CHARGED_MEMORY:
        known.pop(next(iter(known)))
    rows, photos, whole = [], 0, 0
    for label, photo in order:
        if photo in known:  # a photo that failed to read is in skipped, not here
            rows += [{"file": label, **row} for row in known[photo]]
            photos += 1
            whole += any(row.get("whole_image") for row in known[photo])
    result = {"key": key, "rows": rows, "class_names": class_names,
              "skipped": skipped + [plain(line) for line in report.skipped],
              "photos": photos, "faces": sum(1 for r in rows if not r.get("whole_image")), "whole_image": whole,
              "seconds": time.perf_counter() - t0, "read_now": report.photos}
    st.session_state[state.PREDICT_BATCH_RESULT] = result
    return result
