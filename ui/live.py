"""The Live page's pieces: transport (ICE servers, local or not), limits, the stream, its text, chart and table.

The camera streams to the server over WebRTC (``streamlit-webrtc``, on aiortc
and PyAV). Each frame is handed to this session's
:class:`fer_core.inference.live.LiveProcessor` (latest frame wins, detect every k-th
frame, track between) and the last annotated frame goes back to the browser.

Transport: on localhost and a LAN the browser and the server reach each other
directly, so no ICE server is configured (nothing is fetched from the
network). Anywhere else (Community Cloud) a TURN server must relay the media
(streamlit-webrtc issue #1213); its address and credentials come from the
secrets::

    [webrtc]
    ice_servers = [
      { urls = ["stun:stun.l.google.com:19302"] },
      { urls = ["turn:turn.example.org:3478"], username = "user", credential = "secret" },
    ]
    # or Twilio's Network Traversal Service (tokens fetched once an hour):
    twilio_account_sid = "AC..."
    twilio_auth_token = "..."

(or the environment: ``FER_WEBRTC_ICE_SERVERS`` as JSON, ``TWILIO_ACCOUNT_SID``
and ``TWILIO_AUTH_TOKEN``). Served from a non-local address with no TURN
server, the page says so in one line and offers the still-photo camera.

Public mode: a stream time limit per session (``[fer] max_live_seconds``,
default 120) and a frame-rate cap (``[fer] max_live_fps``, default 10). The
recording (table, histories, last frame) lives in this session's memory only:
nothing is written to disk, and it goes with the session.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

import plotly.graph_objects as go
import streamlit as st

from fer_core import FERError
from fer_core.inference.live import HISTORY_S, LiveProcessor

from . import settings
from .charts import _layout, emotion_colors


def _load_srtp_apart() -> None:
    """Import pylibsrtp (aiortc's SRTP) with its own symbols first (RTLD_DEEPBIND), before streamlit_webrtc.

    Measured here: ``import tensorflow`` then ``import pylibsrtp`` kills the
    process (SIGSEGV in libsrtp's ``srtp_init``: its crypto calls bind to the
    same-named symbols TensorFlow's libraries loaded globally); the other way
    round, or with RTLD_DEEPBIND, both work. The app imports TensorFlow first
    (the model prewarm), so the Live page loads SRTP this way.
    """
    if "pylibsrtp" in sys.modules or not hasattr(os, "RTLD_DEEPBIND"):
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_DEEPBIND)
    try:
        import pylibsrtp  # noqa: F401
    except ImportError:
        pass  # streamlit-webrtc not installed: the page says so when it imports it
    finally:
        sys.setdlopenflags(flags)


_load_srtp_apart()

# session_state keys of this page
DATASET = "live_dataset"
MODELS = "live_models"              # multiselect, + dataset fingerprint
OTHER_MODELS = "live_other_models"  # multiselect of other datasets' runs, + dataset fingerprint
STREAM = "live_stream"              # the webrtc_streamer's key
PROCESSOR = "live_processor"        # {"key": settings key, "proc": LiveProcessor}
SNAPSHOT = "live_snapshot"          # PNG bytes of the last snapshot
SNAPSHOT_BUTTON = "live_snapshot_button"
CSV_BUTTON = "live_csv"
CLEAR_BUTTON = "live_clear"
CAMERA = "live_camera"              # st.camera_input of the still-photo fallback
WAS_PLAYING = "live_was_playing"

#: Faces described in the text and charted at most (the lowest ids); every face is in the CSV.
SHOWN_FACES = 4
#: Seconds between refreshes of the text and the chart while streaming.
REFRESH_S = 1.0


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class LiveLimits:
    seconds: float  #: streaming time per browser session (all streams together); 0 = no limit
    fps: float  #: frames read per second at most; 0 = as many as the server keeps up with


LOCAL_LIVE = LiveLimits(seconds=0, fps=0)
PUBLIC_LIVE = LiveLimits(seconds=120, fps=10)


def live_limits() -> LiveLimits:
    """``$FER_MAX_LIVE_SECONDS`` / ``[fer] max_live_seconds`` and ``..._FPS``, else the mode's defaults."""
    base = PUBLIC_LIVE if settings.public_mode() else LOCAL_LIVE

    def number(key: str, default: float) -> float:
        try:
            value = float(settings.config_value(key, default))
        except (TypeError, ValueError):
            return default
        return default if value < 0 else value

    return LiveLimits(seconds=number("max_live_seconds", base.seconds), fps=number("max_live_fps", base.fps))


# --------------------------------------------------------------------------- transport


def _webrtc_secrets() -> Mapping:
    """The ``[webrtc]`` table of ``st.secrets``, or {} (no secrets file, no table, a broken file)."""
    try:
        secrets = st.secrets
        if not secrets.load_if_toml_exists():
            return {}
        table = secrets.get("webrtc")
        return table if isinstance(table, Mapping) else {}
    except Exception:  # noqa: BLE001 - a broken secrets file must not take the page down
        return {}


def _plain(server) -> dict:
    """One ICE server entry (a secrets table or a dict) → {"urls": [...], "username"?, "credential"?}."""
    entry = dict(server)
    urls = entry.get("urls", entry.get("url"))
    urls = [urls] if isinstance(urls, str) else [str(u) for u in (urls or [])]
    out = {"urls": urls}
    for k in ("username", "credential"):
        if entry.get(k):
            out[k] = str(entry[k])
    return out


@st.cache_data(ttl=3600, show_spinner=False)
def _twilio_ice_servers(sid: str, token: str) -> list[dict]:
    """Twilio's Network Traversal Service: a token valid for a day, asked for once an hour (REST, no SDK)."""
    import base64
    import urllib.request

    req = urllib.request.Request(f"https://api.twilio.com/2010-04-01/Accounts/{sid}/Tokens.json", data=b"",
                                 method="POST")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = json.load(resp)
    return [_plain(s) for s in body.get("ice_servers", [])]


def ice_servers() -> tuple[list[dict], str | None]:
    """The configured ICE servers and a one-line problem (or None): env JSON, ``[webrtc] ice_servers``, Twilio."""
    env = os.environ.get("FER_WEBRTC_ICE_SERVERS", "").strip()
    table = _webrtc_secrets()
    try:
        if env:
            return [_plain(s) for s in json.loads(env)], None
        if table.get("ice_servers"):
            return [_plain(s) for s in table["ice_servers"]], None
    except (TypeError, ValueError, AttributeError) as exc:
        return [], f"the ICE servers in the settings cannot be read ({exc})"
    sid = table.get("twilio_account_sid") or os.environ.get("TWILIO_ACCOUNT_SID")
    token = table.get("twilio_auth_token") or os.environ.get("TWILIO_AUTH_TOKEN")
    if sid and token:
        try:
            return _twilio_ice_servers(str(sid), str(token)), None
        except Exception as exc:  # noqa: BLE001 - network, credentials: the page says so in one line
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return [], f"Twilio's TURN credentials could not be fetched ({text})"
    return [], None


def has_turn(servers: list[dict]) -> bool:
    return any(str(u).startswith(("turn:", "turns:")) for s in servers for u in s.get("urls", []))


def is_local_host(host: str | None) -> bool:
    """Loopback, a private LAN address or a ``.local``/``localhost`` name: WebRTC connects without TURN."""
    if not host:
        return True  # no URL known (a test, an old browser): assume the machine's own
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def page_host() -> str | None:
    """The host name the visitor's browser used to reach the app (``st.context.url``), or None."""
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no client context
        return None
    return urlparse(url).hostname if url else None


@dataclass(frozen=True)
class Transport:
    rtc_configuration: dict  # {"iceServers": [...]} for the browser and the server
    can_stream: bool
    note: str | None  # one line for the page, or None


def transport() -> Transport:
    servers, problem = ice_servers()
    host = page_host()
    if is_local_host(host) or has_turn(servers):
        return Transport({"iceServers": servers}, True, problem)
    why = problem or "no TURN server is configured"
    return Transport({"iceServers": servers}, False,
                     f"Live video needs a TURN server when the app is served from {host} ({why}); "
                     "take a still photo instead. See docs/live.md for setting one up.")


# --------------------------------------------------------------------------- the processor


def processor(predictor, runs) -> LiveProcessor:
    """This session's processor for ``runs`` (a new one when the models or limits change)."""
    lim, faces = live_limits(), settings.limits().faces
    key = (tuple(r.id for r in runs), lim, faces)
    held = st.session_state.get(PROCESSOR)
    if held and held["key"] == key:
        return held["proc"]
    used = 0.0
    if held:
        used = held["proc"].streamed_s  # the time limit is the session's, whatever the models
        held["proc"].close()
    proc = LiveProcessor(predictor, max_faces=faces or None, max_fps=lim.fps or None,
                         time_limit_s=lim.seconds or None, streamed_s=used)
    st.session_state[PROCESSOR] = {"key": key, "proc": proc}
    return proc


def frame_callback(proc: LiveProcessor):
    """streamlit-webrtc's video_frame_callback: hand the frame over, send back the last annotated frame."""
    import av

    def callback(frame: "av.VideoFrame") -> "av.VideoFrame":
        proc.offer(frame.to_ndarray(format="rgb24"))  # (H, W, 3) uint8; never waits for the reading
        out, _ = proc.latest()
        if out is None:
            return frame
        return av.VideoFrame.from_ndarray(out, format="rgb24")

    return callback


def streamer(**kwargs):
    """``streamlit_webrtc.webrtc_streamer`` in SENDRECV mode (the camera up, the annotated video back).

    One seam for the page's tests: AppTest has no WebRTC runtime, so they put
    a stand-in here and drive the page's frame callback themselves.
    """
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    return webrtc_streamer(mode=WebRtcMode.SENDRECV, **kwargs)


def media_constraints(lim: LiveLimits) -> dict:
    """Ask the camera for 640×480 (what the processor is measured at), at most the cap's rate."""
    video = {"width": {"ideal": 640}, "height": {"ideal": 480}}
    if lim.fps:
        video["frameRate"] = {"ideal": min(lim.fps, 15), "max": max(lim.fps, 1)}
    return {"video": video, "audio": False}


# --------------------------------------------------------------------------- text and chart


def status_lines(status, class_names) -> tuple[str, list[str]]:
    """The headline (fps, latency, frames) and one "Face N: <emotion> NN %" line per face."""
    lat = f" · latency p95 {status.latency_p95_ms:.0f} ms" if status.latency_p95_ms is not None else ""
    head = (f"{status.fps:.1f} frames/s processed{lat} · {status.frames_processed} frames read, "
            f"{status.frames_dropped} skipped · {status.elapsed_s:.0f} s")
    faces = [f"Face {f.face_id}: {f.top(class_names)[0]} {100 * f.top(class_names)[1]:.0f} %"
             for f in status.faces[:SHOWN_FACES]]
    return head, faces


def history_figure(history: dict, class_names, now_s: float, height: int = 170) -> go.Figure:
    """Each shown face's emotions over the last 30 s: one small panel per face (lines per emotion, %)."""
    from plotly.subplots import make_subplots

    ids = list(history)[:SHOWN_FACES]
    colors = emotion_colors(class_names)
    fig = make_subplots(rows=max(1, len(ids)), cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[f"Face {i}" for i in ids] or None)
    for row, fid in enumerate(ids, start=1):
        times, probs = history[fid]
        for c, name in enumerate(class_names):
            fig.add_trace(go.Scatter(x=(times - now_s).round(2), y=(100 * probs[:, c]).round(1), mode="lines",
                                     name=name, legendgroup=name, showlegend=row == 1,
                                     line=dict(color=colors[name], width=2),
                                     hovertemplate=f"{name}: %{{y:.0f}}%<extra></extra>"), row=row, col=1)
    fig.update_yaxes(range=[0, 100], ticksuffix="%", nticks=3)
    fig.update_xaxes(range=[-HISTORY_S, 0])
    fig.update_xaxes(title_text="seconds ago", row=max(1, len(ids)), col=1)
    return _layout(fig, height=max(1, len(ids)) * height, legend_rows=2 if len(class_names) > 6 else 1)


def snapshot_png(proc: LiveProcessor) -> bytes | None:
    out, _ = proc.latest()
    if out is None:
        return None
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG")
    return buf.getvalue()


def csv_bytes(proc: LiveProcessor) -> bytes:
    buf = io.StringIO()
    proc.write_csv(buf)
    return buf.getvalue().encode()


def clear(proc: LiveProcessor) -> None:
    """Forget the stream's table, histories, last frame and snapshot (the time used stays counted)."""
    proc.clear()
    st.session_state.pop(SNAPSHOT, None)


def limit_text(lim: LiveLimits) -> str | None:
    parts = []
    if lim.seconds:
        parts.append(f"{lim.seconds / 60:g} min of streaming per visitor" if lim.seconds >= 60 and lim.seconds % 60 == 0
                     else f"{lim.seconds:g} s of streaming per visitor")
    if lim.fps:
        parts.append(f"at most {lim.fps:g} frames read per second")
    return ("This public demo allows " + " and ".join(parts) + ".") if parts else None


def time_limit_message(lim: LiveLimits) -> str:
    return (f"The stream stopped: this public demo streams at most {lim.seconds:g} s per visitor. "
            "Your table is below; run FER Studio on your own machine for unlimited streaming.")


# --------------------------------------------------------------------------- still-photo fallback


def still_photo(runs) -> None:
    """The camera as a still photo (no stream): faces found and read once per click."""
    from fer_core.inference.predictor import draw_boxes

    from . import inference

    shot = st.camera_input("Take a photo", key=CAMERA)
    if shot is None:
        return
    result, error = inference.predict(runs, shot.getvalue(), "camera photo")
    if error:
        st.error(error, icon=":material/error:")
        return
    st.image(draw_boxes(result.image, result.faces), width=480)
    if result.whole_image:
        st.caption("No face found: the whole photo was classified.")
    for face in result.faces:
        name, p = face.top()
        st.markdown(f"**Face {face.index}: {name} {100 * p:.0f} %**")


def predictor_or_error(runs):
    from .loaders import predictor_for

    try:
        return predictor_for(runs), None
    except FERError as exc:
        return None, str(exc)
