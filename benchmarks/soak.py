"""A public deployment for half an hour: memory, CPU, health and answer times under a scripted mix of visitors.

    python benchmarks/soak.py                     # 30 min → benchmarks/results/soak.json (+ soak.png)
    python benchmarks/soak.py --minutes 2 --out benchmarks/results/soak_smoke.json   # a short smoke run

The server is ``streamlit run app.py`` with ``FER_PUBLIC=1`` (the bundled
models, an empty runs folder), pinned to CPU 0 with ``taskset`` when the
machine has two or more cores; the harness, Playwright's driver and one
headless Chromium run on the other cores. Visitors arrive and leave all the
time (each is a fresh browser context = a fresh Streamlit session) and do
one thing each, drawn from a fixed cycle:

* ``photo``: Predict, one photo (a new variant each time: no cache can answer) —
  its answer time (file chosen → "Face 1: …" shown) is the figure the p95 target is about;
* ``batch``: Predict, several photos at once (a table of faces);
* ``zip``: Predict, a zip of photos, and now and then a zip bomb (refused in one line);
* ``bad``: Predict, a bad file (random bytes named .jpg, a 0-byte file);
* ``video4k``: Video, a 4K clip (the largest frames the Video page takes) → Analyse;
* ``video_long``: Video, a long 720p clip (longer than the seconds analysed) → Analyse;
* ``upload_flood``: straight HTTP (no browser): a session that PUTs more files than
  the per-session bound, and one over-limit PUT (must be 413).

Every ``--sample`` seconds the server's RSS (the process tree, from /proc), its
CPU seconds and ``/_stcore/health`` are recorded. At the end every visitor has
gone; after ``server.disconnectedSessionTTL`` (+ margin) with no session open the
idle RSS is taken and compared with the warm RSS (after one warm-up photo).

Targets (issue 28, server on one core): idle RSS after the soak ≤ warm + 150 MB,
peak ≤ 2,000 MB, no failed health check, photo answer p95 ≤ 1.5 s.

The module also holds a small raw-protocol client (:class:`RawSession`) —
requests for the XSRF cookie, a websocket for the session — used by the
upload-flood step and by tests that need the server's own answer to an upload
PUT without a browser.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import zipfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.load import (CHROMIUM, CHROMIUM_ARGS, ERROR_SELECTORS, FILE_INPUT, SCRIPT_IDLE, Server,  # noqa: E402
                             machine_info, percentile, photo_variants, summarize, tree_cpu_s, tree_rss_mb)

RESULTS = ROOT / "benchmarks" / "results"
TARGETS = {"idle_over_warm_mb": 150.0, "peak_mb": 2000.0, "failed_health_checks": 0, "photo_answer_p95_s": 1.5}
MIX = ("photo", "batch", "photo", "bad", "video4k", "photo", "zip", "video_long", "photo", "upload_flood")


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
