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
CHARGED = state.ACCESS_CHARGED_PHOTOS


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


#: Photos (content digests) already charged in a session: at most this many are remembered (oldest forgotten).
CHARGED_MEMORY = 256


def admit_prediction(digest: str | None = None) -> str | None:
    """Count one new prediction against this session's budget: None when allowed, else a one-line message.

    ``digest``: the photo's content hash. A photo this session was already
    charged for is admitted without a second charge (a photo added to a batch
    does not re-charge the earlier ones; reading a photo again costs nothing
    of the budget). Clips pass no digest: each analysis is charged.
    """
    charged = st.session_state.get(CHARGED)
    if not isinstance(charged, dict):
        charged = st.session_state[CHARGED] = {}
    if digest is not None and digest in charged:
        return None
    limit = settings.limits().predictions_per_minute
    window = st.session_state.get(RATE_WINDOW)
    if not isinstance(window, SlidingWindow):
        window = st.session_state[RATE_WINDOW] = SlidingWindow(limit)
    window.limit = limit  # the setting may change while the session lives
    wait = window.admit()
    if not wait:
        if digest is not None:
            charged[digest] = True
            while len(charged) > CHARGED_MEMORY:
                charged.pop(next(iter(charged)))
        return None
    seconds = int(wait) + 1
    return (f"Too many predictions: at most {limit} a minute per visitor. "
            f"Try again in {seconds} s (at {clock_text(time.time() + seconds)}).")


# --------------------------------------------------------------------------- uploads


def cap_server_uploads() -> None:
    """Keep the server's own upload limit (``server.maxUploadSize``) at what this mode's pages take.

    ``file_uploader(max_upload_size=…)`` is enforced by the browser only; the
    upload endpoint enforces ``server.maxUploadSize``, read per request by
    Streamlit's Starlette server (≥ 1.50). .streamlit/config.toml sets it to
    the PUBLIC cap (:func:`server_upload_cap` of :data:`ui.settings.PUBLIC_LIMITS`),
    so a freshly started server refuses a larger PUT from its first request,
    before any page has run (the option is read when the server starts; a
    page run comes too late: an upload can arrive while the first run is
    still importing). A lab machine (not public mode) raises it here, on the
    first page run, to what its pages take (dataset archives:
    ``MAX_DATASET_MB``); public mode keeps it at exactly the
    largest upload its pages allow (a lower cap would let the uploader take a file the server then refuses
    with a raw "AxiosError … 413"). Every page run also
    installs the per-session bound on what one visitor's uploads may hold
    (:func:`bound_session_uploads`).
    """
    try:
        from streamlit import config

        current = int(config.get_option("server.maxUploadSize"))
        if settings.public_mode():
            cap = server_upload_cap(settings.limits())
            if current != cap:  # never below what the uploaders allow: the browser would show a raw "413"
                config.set_option("server.maxUploadSize", cap)
        else:
            limits = settings.limits()
            need = max(settings.MAX_DATASET_MB, limits.photo_mb, limits.video_mb)
            if current < need:
                config.set_option("server.maxUploadSize", need)
    except Exception:  # noqa: BLE001 - an internal API; the page's own size check still applies
        pass
    bound_session_uploads()


def server_upload_cap(limits: settings.Limits) -> int:
    """The largest upload (MB) a public page may take: the photo or the video limit."""
    return int(max(limits.photo_mb, limits.video_mb))


# --------------------------------------------------------------------------- what one session may hold

#: The bound in force (set by :func:`bound_session_uploads`): (files, bytes) per session; 0 = none.
_upload_bound = {"files": 0, "bytes": 0}
#: session id → uploads dropped to keep it within the bound (read by :func:`dropped_uploads`).
_dropped: dict[str, int] = {}
_patched = False


def bound_session_uploads() -> None:
    """Bound what one browser session's uploads may hold in the server's memory (public mode).

    Streamlit keeps every file PUT to ``/_stcore/upload_file/<session>/<id>``
    in memory (``MemoryUploadedFileManager``) until the browser deletes it or
    the session ends (``server.disconnectedSessionTTL`` after the tab closes),
    and it does not limit how many files one session may PUT. This wraps the
    manager's ``add_file`` (process-wide, once): after a file is added, the
    session's OLDEST files are dropped until it holds at most
    ``limits.session_upload_files`` files and ``limits.session_upload_mb`` MB
    (the new file always stays). A page finds out through
    :func:`dropped_uploads`. The bound is refreshed on every page run (the
    settings may change); outside public mode it is 0 (no bound).
    """
    global _patched
    limits = settings.limits()
    public = settings.public_mode()
    _upload_bound["files"] = int(limits.session_upload_files) if public else 0
    _upload_bound["bytes"] = int(limits.session_upload_mb) * 2**20 if public else 0
    if _patched:
        return
    try:
        from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    except Exception:  # noqa: BLE001 - internal API moved: the server's size cap still holds
        return
    original = MemoryUploadedFileManager.add_file

    def add_file(self, session_id, file):
        original(self, session_id, file)
        files, limit = _upload_bound["files"], _upload_bound["bytes"]
        if not files and not limit:
            return
        with self._lock:
            store = self.file_storage.get(session_id)
            if not store:
                return
            while len(store) > 1 and ((files and len(store) > files) or
                                      (limit and sum(len(f.data) for f in store.values()) > limit)):
                oldest = next(k for k in store if k != file.file_id)
                rec = store.pop(oldest)
                self._total_bytes -= len(rec.data)
                self._file_count -= 1
                _dropped[session_id] = _dropped.get(session_id, 0) + 1

    original_remove = MemoryUploadedFileManager.remove_session_files

    def remove_session_files(self, session_id):
        original_remove(self, session_id)
        _dropped.pop(session_id, None)

    MemoryUploadedFileManager.add_file = add_file
    MemoryUploadedFileManager.remove_session_files = remove_session_files
    _patched = True


def release_ended_sessions() -> int:
    """Shut down sessions whose reconnect time has passed, and drop uploads no live session owns → sessions released.

    Streamlit keeps a closed tab's session for ``server.disconnectedSessionTTL`` (120 s) in a TTL
    cache that only drops expired entries when another session disconnects, and dropping one does not
    call ``AppSession.shutdown()``: on an idle server, ended sessions kept their state and their
    uploads (in the upload manager, keyed by session) indefinitely (benchmarks/soak.py: idle RSS stayed
    +330 MB over warm). Run periodically (fer_core.memory's trim thread, app.py); internal APIs,
    so every step is guarded. The shutdowns run on the server's event loop, as Streamlit's own do.
    """
    try:
        from streamlit.runtime import Runtime

        rt = Runtime.instance()
        mgr = rt._session_mgr
        storage = getattr(getattr(mgr, "_session_storage", None), "_cache", None)
        expired = storage.expire() if storage is not None and hasattr(storage, "expire") else []
        sessions = [info.session for _, info in expired]
        live = {info.session.id for info in mgr.list_sessions()}
        uploads = getattr(rt.uploaded_file_mgr, "file_storage", {})
        orphans = [sid for sid in list(uploads) if sid not in live and sid not in {s.id for s in sessions}]

        def release():
            for session in sessions:
                session.shutdown()  # its uploads, media files and script runner
            for sid in orphans:
                rt.uploaded_file_mgr.remove_session_files(sid)

        loop = rt._get_async_objs().eventloop
        loop.call_soon_threadsafe(release)
        return len(sessions) + len(orphans)
    except Exception:  # noqa: BLE001 - no runtime (AppTest, CLI) or another Streamlit version: nothing to do
        return 0


def _session_id() -> str | None:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx(suppress_warning=True)
        return ctx.session_id if ctx else None
    except Exception:  # noqa: BLE001
        return None


def dropped_uploads() -> str | None:
    """One line when this session's oldest uploads were dropped to keep it within the bound, else None."""
    sid = _session_id()
    n = _dropped.get(sid, 0) if sid else 0
    if not n:
        return None
    limits = settings.limits()
    return (f"This server keeps at most {limits.session_upload_files} files ({limits.session_upload_mb} MB) of "
            f"uploads per visitor: the {n} oldest were let go. Remove the files you no longer need, or add "
            "them again.")


def session_upload_bytes() -> int:
    """Bytes this session's uploads hold on the server (0 outside a script run)."""
    sid = _session_id()
    try:
        from streamlit.runtime import Runtime

        store = Runtime.instance().uploaded_file_mgr.file_storage.get(sid, {})
        return sum(len(f.data) for f in store.values())
    except Exception:  # noqa: BLE001 - AppTest has no server, no uploads manager
        return 0
