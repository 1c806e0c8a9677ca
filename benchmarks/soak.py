"""Soak harness for a public deployment (issue 28) — NOT FINISHED: only its raw-protocol client is here.

What is here: :class:`RawSession`, a Streamlit session over the raw protocol (requests for the
XSRF cookie set by ``/_stcore/health``, a websocket for the session, upload PUTs to
``/_stcore/upload_file/<session>/<file>``), used by tests/test_upload_bounds.py to read the server's
own answer to an upload without a browser.

Still to write (the plan; nothing below has been run or measured): ``streamlit run app.py`` with
``FER_PUBLIC=1`` pinned to CPU 0 (benchmarks.load.Server), visitors arriving and leaving through
Playwright (/usr/bin/chromium) on the other cores doing a fixed mix — photo, batch, zip (and zip
bomb), bad files, a 4K clip, a long 720p clip, an upload flood through :class:`RawSession` — while
RSS, CPU seconds, ``/_stcore/health`` and photo answer times are sampled into
benchmarks/results/soak.json (+ a PNG plot). Targets: idle RSS after the soak ≤ warm + 150 MB,
peak ≤ 2,000 MB, no failed health check, photo answer p95 ≤ 1.5 s.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
TARGETS = {"idle_over_warm_mb": 150.0, "peak_mb": 2000.0, "failed_health_checks": 0, "photo_answer_p95_s": 1.5}


# --------------------------------------------------------------------------- raw protocol (no browser)


class RawSession:
    """One Streamlit session over the raw protocol: XSRF cookie, websocket, session id; upload PUTs.

    ``open()`` GETs the health check (the server sets ``_streamlit_xsrf`` there), connects
    the websocket with the token in its subprotocol (as the browser does),
    asks for a script run and returns as soon as the server names the session
    (``new_session``), i.e. while that first run may still be going.
    """

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.session_id: str | None = None
        self._ws = None
        self._http = None

    def open(self, timeout: float = 60.0) -> str:
        import requests
        from websockets.sync.client import connect
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._http = requests.Session()
        self._http.get(self.url + "/_stcore/health", timeout=timeout)  # the server sets the XSRF cookie here
        xsrf = self._http.cookies.get("_streamlit_xsrf")
        ws_url = "ws" + self.url[4:] + "/_stcore/stream"
        self._ws = connect(ws_url, subprotocols=["streamlit", xsrf or "PLACEHOLDER_AUTH_TOKEN"],
                           additional_headers={"Origin": self.url,
                                               "Cookie": f"_streamlit_xsrf={xsrf}" if xsrf else ""},
                           max_size=None, open_timeout=timeout)
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        self._ws.send(msg.SerializeToString())
        deadline = time.time() + timeout
        while time.time() < deadline:
            fwd = ForwardMsg()
            fwd.ParseFromString(self._ws.recv(timeout=max(0.1, deadline - time.time())))
            if fwd.WhichOneof("type") == "new_session":
                self.session_id = fwd.new_session.initialize.session_id
                return self.session_id
        raise TimeoutError("the server named no session")

    def wait_finished(self, timeout: float = 120.0) -> None:
        """Read the session's messages until its script run has finished."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        deadline = time.time() + timeout
        while time.time() < deadline:
            fwd = ForwardMsg()
            fwd.ParseFromString(self._ws.recv(timeout=max(0.1, deadline - time.time())))
            if fwd.WhichOneof("type") == "script_finished":
                return
        raise TimeoutError("the script run did not finish")

    def put(self, name: str, data: bytes, file_id: str | None = None, timeout: float = 60.0) -> int:
        """PUT one file as the uploader widget does → the HTTP status (204 kept, 413 too large…)."""
        file_id = file_id or str(uuid.uuid4())
        xsrf = self._http.cookies.get("_streamlit_xsrf")
        r = self._http.put(f"{self.url}/_stcore/upload_file/{self.session_id}/{file_id}",
                           files={"file": (name, data, "application/octet-stream")},
                           headers={"X-Xsrftoken": xsrf} if xsrf else {}, timeout=timeout)
        return r.status_code

    def close(self) -> None:
        try:
            if self._ws is not None:
                self._ws.close()
        finally:
            if self._http is not None:
                self._http.close()
