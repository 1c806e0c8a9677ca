"""The Video page's pieces: the sample clip, one bounded analysis run (progress, cancel), the figures.

An analysis is the costliest thing a visitor can ask for (a face detection
per sampled frame), so it starts only on the Analyse button, counts against
the session's prediction budget (:func:`ui.access.admit_prediction`), reads
at most ``limits().video_seconds`` of the clip and refuses files over
``limits().video_mb``. Its result — timelines, the CSV, the annotated clip —
is kept in ``st.session_state`` keyed by the clip's digest and the settings
that change it, so smoothing and tab switches never re-run it.

Cancel: clicking the Cancel button makes Streamlit stop the running script at
its next progress update; the reader's generator is closed on the way out
(the file and decoder are released), and the rerun says it was cancelled.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from fer_core import FERError, memory
from fer_core.inference.video import analyse_video, clip_from_photo, encode_clip

from . import access, settings, state
from .charts import _layout, emotion_colors
from .inference import plain
from .loaders import predictor_for
from .samples import PHOTOS, sample_image

SAMPLE_NAME = "astronaut-pan.mp4"
#: Samples per second of video time offered in the page (the engine takes any rate).
FPS_CHOICES = [1.0, 2.0, 5.0, 10.0]
#: Moving-average windows in samples (1 = off).
SMOOTH_CHOICES = [1, 3, 5, 9]
#: Face tabs shown at most (the longest tracks); every face is in the CSV.
MAX_FACE_TABS = 8


@st.cache_data(show_spinner=False)
def sample_clip() -> bytes:
    """A 4 s, 480×360 H.264 clip of a camera panning across the real astronaut photo, blurred 1.6–2.4 s.

    Built on first use (about a second) from the photo that ships with the
    app, so the page can be tried without a video of one's own.
    """
    photo = np.asarray(sample_image(next(iter(PHOTOS))))  # (H, W, 3) uint8
    frames = clip_from_photo(photo, seconds=4.0, fps=10, size=(480, 360), absent=((1.6, 2.4),), zoom=(0.8, 0.6))
    return encode_clip(frames, fps=10, container="mp4")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def fps_choices(limits: settings.Limits) -> list[float]:
    """The sampling rates offered: :data:`FPS_CHOICES` up to ``limits.video_fps`` (all of them when 0)."""
    return [f for f in FPS_CHOICES if not limits.video_fps or f <= limits.video_fps] or FPS_CHOICES[:1]


def bounds(limits: settings.Limits, fps: float) -> dict:
    """The keyword arguments that bound one analysis (:func:`fer_core.video.analyse_video`) under ``limits``.

    The worst clip a public server accepts then costs at most (``video_seconds`` × ``video_fps``) samples at
    ``video_side`` px, each with ``video_faces`` faces classified, plus ``video_megapixels`` of decoding; ``benchmarks/video.py --public-worst`` measures it.
    """
    return {"fps": min(float(fps), limits.video_fps) if limits.video_fps else float(fps),
            "max_seconds": limits.video_seconds or None,
            "max_bytes": limits.video_mb * 1024 * 1024,
            "max_faces": limits.video_faces or limits.faces or None,
            "max_side": limits.video_side or None,
            "max_pixels": int(limits.video_megapixels * 1e6) or None}


def analysis_key(data: bytes, runs, fps: float, annotate: bool) -> tuple:
    limits = settings.limits()
    return (hashlib.sha1(data).hexdigest(), tuple(r.id for r in runs), float(fps), bool(annotate),
            limits.video_seconds, limits.faces, limits.video_fps, limits.video_side, limits.video_megapixels,
            limits.video_faces)


def cached(key: tuple) -> dict | None:
    out = st.session_state.get(state.VIDEO_RESULT)
    return out if out and out.get("key") == key else None


def was_cancelled(key: tuple) -> bool:
    return st.session_state.get(state.VIDEO_CANCELLED) == key


def _mark_cancelled(key: tuple) -> None:
    st.session_state[state.VIDEO_CANCELLED] = key


def analyse(runs, data: bytes, name: str, *, fps: float, annotate: bool) -> dict:
    """Run one analysis with a progress bar and a Cancel button; returns (and keeps) its outcome.

    ``{"key", "result", "error", "csv", "annotated"}``: ``error`` is one line
    or None; ``csv`` the per-frame table as bytes; ``annotated`` the mp4's
    bytes or None.
    """
    key = analysis_key(data, runs, fps, annotate)
    limits = settings.limits()
    st.session_state.pop(state.VIDEO_CANCELLED, None)
    out = {"key": key, "result": None, "error": None, "csv": None, "annotated": None}
    busy = access.admit_prediction()
    if busy:
        out["error"] = busy
        return out  # not kept: the same clip runs once the minute has passed
    panel = st.empty()
    with panel.container():
        bar = st.progress(0.0, text="Loading the models…")
        st.button("Cancel", key=state.VIDEO_CANCEL, icon=":material/cancel:", on_click=_mark_cancelled, args=(key,))
    fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix="fer-video-")
    os.close(fd)
    try:
        predictor = predictor_for(runs)
        text = "Reading the clip: detecting, tracking and classifying faces…"
        csv = io.StringIO()
        result = analyse_video(data, predictor, file_label=name, on_progress=lambda f: bar.progress(f, text=text),
                               csv_file=csv, annotate_to=tmp if annotate else None, **bounds(limits, fps))
        out["result"], out["csv"] = result, csv.getvalue().encode()
        if result.annotated is not None:
            out["annotated"] = result.annotated.read_bytes()
    except FERError as exc:  # VideoInputError included: one line naming the file, without FFmpeg's own text
        out["error"] = plain(exc)
    except Exception:  # noqa: BLE001 - never a traceback in the page; the detail goes to the server log
        logging.getLogger(__name__).exception("video analysis failed on %s", name)
        out["error"] = f"{name}: this video could not be analysed; try another clip"
    finally:
        os.unlink(tmp)
        memory.trim()  # the decoder's and the frames' buffers go back to the kernel (issue 28)
    panel.empty()
    st.session_state[state.VIDEO_RESULT] = out
    return out


# --------------------------------------------------------------------------- figures (pure)


def smooth(probs: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of (T, C) probabilities over ``window`` samples; edges average what they have."""
    probs = np.asarray(probs, np.float64)
    if window <= 1 or len(probs) < 2:
        return probs
    kernel = np.ones(int(window))
    counts = np.convolve(np.ones(len(probs)), kernel, mode="same")  # (T,)
    return np.stack([np.convolve(probs[:, c], kernel, mode="same") / counts for c in range(probs.shape[1])], axis=1)


def _with_gaps(times: list[float], values: np.ndarray, gap: float) -> tuple[list, list]:
    """Insert None where the face was absent for longer than ``gap`` s, so lines break instead of bridging."""
    xs, ys = [], []
    for i, (t, v) in enumerate(zip(times, values)):
        if i and t - times[i - 1] > gap:
            xs.append(None)
            ys.append(None)
        xs.append(t)
        ys.append(float(v))
    return xs, ys


def timeline_figure(timeline, class_names, *, fps: float | None, window: int = 1, duration: float | None = None,
                    height: int = 320) -> go.Figure:
    """Each emotion's probability (%) against video time for one face; smoothed over ``window`` samples."""
    probs = smooth(timeline.array(), window)  # (T, C)
    colors = emotion_colors(class_names)
    gap = 1.5 / fps if fps else 0.5
    fig = go.Figure()
    for c, name in enumerate(class_names):
        xs, ys = _with_gaps(timeline.times, 100.0 * probs[:, c], gap)
        fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines", line=dict(color=colors[name], width=2),
                                 hovertemplate=f"{name}: %{{y:.0f}}%<extra></extra>"))
    fig.update_yaxes(range=[0, 100], ticksuffix="%", title_text="probability")
    fig.update_xaxes(title_text="time (s)", range=[0, duration] if duration else None)
    title = f"Face {timeline.face_id}" + (f" · moving average of {window} samples" if window > 1 else "")
    return _layout(fig, title=title, height=height, legend_rows=2 if len(class_names) > 6 else 1)


def shares_figure(result, face_ids: list[int]) -> go.Figure:
    """One stacked bar per face (and all faces): each emotion's share of the samples it is the top emotion of."""
    names = result.class_names
    colors = emotion_colors(names)
    rows = [(f"Face {i}", result.shares(i)) for i in face_ids]
    if len(face_ids) > 1:
        rows.append(("All faces", result.shares()))
    fig = go.Figure()
    for name in names:
        fig.add_trace(go.Bar(y=[r[0] for r in rows], x=[100.0 * r[1][name] for r in rows], name=name,
                             orientation="h", marker_color=colors[name],
                             hovertemplate=f"{name}: %{{x:.0f}}% of the samples<extra></extra>"))
    fig.update_layout(barmode="stack", legend_traceorder="normal")  # emotions in class order, as in the timelines
    fig.update_xaxes(range=[0, 100], ticksuffix="%")
    fig.update_yaxes(autorange="reversed")
    _layout(fig, title="Share of the clip (top emotion per sample)", height=70 + 40 * len(rows),
            legend_rows=2 if len(names) > 6 else 1)
    fig.update_layout(hovermode="closest")
    return fig


def shown_faces(result) -> list[int]:
    """The face ids to chart, in id order: the longest tracks, at most :data:`MAX_FACE_TABS`.

    A face seen in a single sample is almost always a detector false positive
    (a badge, a pattern); it gets no tab of its own when longer tracks exist,
    but stays in the CSV and the shares of "All faces".
    """
    ids = sorted(result.timelines, key=lambda i: -len(result.timelines[i].times))
    lasting = [i for i in ids if len(result.timelines[i].times) >= 2]
    return sorted((lasting or ids)[:MAX_FACE_TABS])
