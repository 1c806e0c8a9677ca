"""Who may do what on this deployment, who a visitor is, and how often one may predict.

On a public URL (:func:`ui.settings.public_mode`) strangers share one server:
they may read faces and compare models, but not start training, upload
datasets or see and type filesystem paths — one visitor could otherwise fill
the disk, occupy the CPU for hours, or probe the server's files. Signed-in
admins (``st.user.email`` listed under ``[fer] admins`` in st.secrets) keep
training. Everything here works when authentication is not configured:
``st.user`` is then an empty mapping with no ``is_logged_in`` key.

Prediction costs CPU (face detection + every chosen model), so each browser
session gets a sliding-window budget (:class:`SlidingWindow`, kept in
``st.session_state``): when it is spent the page says when to try again.
A visitor can reset it by opening a new session; it bounds accidental
hammering (a held-down rerun, a script on one tab), not a determined attacker.
"""

from __future__ import annotations

import secrets as _random
import time
from collections.abc import Callable
from datetime import datetime

import streamlit as st

from . import settings, state

#: session_state keys owned by this module (named with the others in ui/state.py).
RATE_WINDOW = state.ACCESS_PREDICT_WINDOW
VISITOR_LABEL = state.ACCESS_VISITOR_LABEL


# --------------------------------------------------------------------------- who


def current_email() -> str | None:
    """The signed-in user's e-mail (lower case), or None: not signed in, or no auth configured at all.

    Uses ``st.user.get`` rather than attribute access: without an ``[auth]``
    section ``st.user`` has no ``is_logged_in`` key and ``st.user.is_logged_in``
    raises AttributeError.
    """
    try:
        user = st.user
        if not user.get("is_logged_in"):
            return None
        email = str(user.get("email") or "").strip().lower()
        return email or None
    except Exception:  # noqa: BLE001 - no script context, odd provider data: treat as anonymous
        return None


def is_admin() -> bool:
    """Signed in with an e-mail listed under ``[fer] admins``."""
    email = current_email()
    return bool(email) and email in settings.admins()


def trusted() -> bool:
    """May this visitor train, upload datasets and see server paths? Always off public URLs; admins on them."""
    return not settings.public_mode() or is_admin()


def may_view(email: str | None) -> bool:
    """Is a signed-in ``email`` allowed in under ``[fer] viewers`` (exact addresses or ``@domain``)? Admins always are."""
    if not email:
        return False
    allowed = settings.viewers()
    if not allowed or email in settings.admins():
        return True
    return email in allowed or any(a.startswith("@") and email.endswith(a) for a in allowed)


def sign_in_gate() -> None:
    """With ``require_login``: a page that only offers sign-in (and stops) until an allowed visitor is signed in.

    Streamlit's own OIDC sign-in (``st.login``; provider settings under ``[auth]``
    in the secrets, Authlib installed) keeps the identity in a cookie, so this
    costs one check per script run. Without an ``[auth]`` section sign-in
    cannot work: the page says so instead of letting everyone in.
    """
    if not settings.require_login():
        return
    email = current_email()
    if may_view(email):
        if st.sidebar.button("Sign out", key="access_sign_out", icon=":material/logout:"):
            st.logout()
        return
    st.title("FER Studio")
    if email:
        st.warning(f"Signed in as {email}, which is not on this app's list of viewers.", icon=":material/block:")
        st.button("Sign out", key="access_sign_out", on_click=st.logout, icon=":material/logout:")
    else:
        st.info("This FER Studio deployment is private: sign in to continue.", icon=":material/lock:")
        if st.button("Sign in", key="access_sign_in", type="primary", icon=":material/login:"):
            try:
                st.login()
            except Exception as exc:  # noqa: BLE001 - no [auth] section, Authlib missing
                st.error(f"Sign-in is not configured on this deployment: {str(exc).splitlines()[0]}",
                         icon=":material/error:")
    st.stop()


def visitor_label() -> str:
    """How this visitor is named to others (``started_by`` of a training job).

    The e-mail when signed in; else the client's IP address from
    ``st.context.ip_address`` (None on localhost); else a short random label
    kept for the session, so two anonymous visitors are still told apart.
    """
    email = current_email()
    if email:
        return email
    try:
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001 - older Streamlit, no client context
        ip = None
    if ip:
        return f"a visitor from {ip}"
    label = st.session_state.get(VISITOR_LABEL)
    if not label:
        label = st.session_state[VISITOR_LABEL] = f"local session {_random.token_hex(2)}"
    return label


def clock_text(ts: float) -> str:
    """``ts`` (epoch seconds) as HH:MM in the visitor's time zone when the browser told it, else the server's."""
    tz = None
    try:
        name = st.context.timezone
        if name:
            from zoneinfo import ZoneInfo

            tz = ZoneInfo(name)
    except Exception:  # noqa: BLE001 - unknown zone name, no client context
        tz = None
    return datetime.fromtimestamp(ts, tz).strftime("%H:%M")


# --------------------------------------------------------------------------- how often


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds; ``limit`` 0 = unlimited.

    ``clock`` is injectable so tests need not sleep. :meth:`admit` records the
    event when there is room and returns 0.0, else returns the seconds until
    the oldest event leaves the window (and records nothing).
    """

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.time):
        self.limit, self.window, self.clock = int(limit), float(window), clock
        self.events: list[float] = []

    def admit(self) -> float:
        if self.limit <= 0:
            return 0.0
        now = self.clock()
        self.events = [t for t in self.events if now - t < self.window]
        if len(self.events) < self.limit:
            self.events.append(now)
            return 0.0
        return max(0.0, self.events[0] + self.window - now)


def admit_prediction() -> str | None:
    """Count one new prediction against this session's budget: None when allowed, else a one-line message."""
    limit = settings.limits().predictions_per_minute
    window = st.session_state.get(RATE_WINDOW)
    if not isinstance(window, SlidingWindow):
        window = st.session_state[RATE_WINDOW] = SlidingWindow(limit)
    window.limit = limit  # the setting may change while the session lives
    wait = window.admit()
    if not wait:
        return None
    seconds = int(wait) + 1
    return (f"Too many predictions: at most {limit} a minute per visitor. "
            f"Try again in {seconds} s (at {clock_text(time.time() + seconds)}).")


# --------------------------------------------------------------------------- uploads


def cap_server_uploads() -> None:
    """In public mode, lower the server's own upload limit to the largest photo or video limit.

    ``file_uploader(max_upload_size=…)`` is enforced by the browser only; the
    upload endpoint enforces ``server.maxUploadSize`` (200 MB in
    .streamlit/config.toml, for dataset archives on a lab machine). A public
    deployment takes no dataset uploads, so the live option is lowered for the
    whole process, and a hand-made 200 MB POST is refused by the server.
    The option is read per request (Streamlit ≥ 1.50's Starlette server);
    it is only ever lowered, never raised.
    """
    if not settings.public_mode():
        return
    try:
        from streamlit import config

        limits = settings.limits()
        cap = int(max(limits.photo_mb, limits.video_mb))  # the largest upload a page may take
        if int(config.get_option("server.maxUploadSize")) > cap:
            config.set_option("server.maxUploadSize", cap)
    except Exception:  # noqa: BLE001 - an internal API; the page's own size check still applies
        pass
