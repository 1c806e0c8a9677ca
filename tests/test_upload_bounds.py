"""The server's own upload bounds, measured on a real ``streamlit run app.py`` (no browser: raw protocol).

* A freshly started public server refuses an over-limit PUT to ``/_stcore/upload_file/…`` from the
  first request: the PUT goes out as soon as the server names the session, while its first script run
  (the only place the app could lower the option) may still be going.
* One session cannot pin more than ``limits.session_upload_mb`` / ``session_upload_files`` of uploads:
  the server's own upload store (``/_stcore/metrics``) stays within the bound after a flood.
* A lab server (not public mode) still takes a dataset-sized upload once a page has run.
"""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.load import Server  # noqa: E402
from benchmarks.soak import RawSession  # noqa: E402
from ui import settings  # noqa: E402

MB = 2**20


def _server(tmp_path: Path, public: bool) -> Server:
    (tmp_path / "runs").mkdir(exist_ok=True)
    (tmp_path / "data").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FER_PUBLIC", "FER_MAX", "STREAMLIT_SERVER"))}
    env.update({"FER_RUNS_DIR": str(tmp_path / "runs"), "FER_DATA_DIR": str(tmp_path / "data"), "FER_PREWARM": "0",
                "TF_CPP_MIN_LOG_LEVEL": "2"})
    if public:
        env["FER_PUBLIC"] = "1"
    server = Server(ROOT / "app.py", env, None, tmp_path / "app.log")
    server.wait_healthy()
    return server


def _held_upload_bytes(server: Server) -> int:
    """Bytes in the server's upload store, from its own metrics endpoint (0 when it holds none)."""
    text = urllib.request.urlopen(server.url + "/_stcore/metrics", timeout=30).read().decode()
    held = [int(m.group(1)) for m in re.finditer(r'^cache_memory_bytes\{[^}]*"UploadedFileManager"[^}]*\} (\d+)$', text,
                                                  re.M)]
    return sum(held)  # the labels come in either order


@pytest.fixture(scope="module")
def public_server(tmp_path_factory):
    server = _server(tmp_path_factory.mktemp("public"), public=True)
    yield server
    server.stop()


def test_fresh_public_server_refuses_an_over_limit_upload_from_the_first_request(public_server):
    cap = max(settings.PUBLIC_LIMITS.photo_mb, settings.PUBLIC_LIMITS.video_mb)
    s = RawSession(public_server.url)
    try:
        s.open()  # returns when the session is named: the first script run has only just started
        assert s.put("big.jpg", b"\0" * ((cap + 40) * MB)) == 413  # the 50–60 MB PUT
        assert s.put("over.jpg", b"\0" * (cap * MB + 1)) == 413
        assert s.put("fits.jpg", b"\0" * (2 * MB)) == 204  # an ordinary photo is still taken
    finally:
        s.close()


def test_one_session_cannot_pin_more_than_its_upload_bound(public_server):
    limits = settings.PUBLIC_LIMITS
    s = RawSession(public_server.url)
    try:
        s.open()
        s.wait_finished()  # the bound is installed by the app's first script run
        before = _held_upload_bytes(public_server)
        codes = [s.put(f"p{i}.jpg", os.urandom(6 * MB)) for i in range(3 * limits.session_upload_files)]
        assert set(codes) == {204}  # kept, the oldest let go: never an error in the visitor's uploader
        time.sleep(5.5)  # the metrics endpoint caches this figure for 5 s
        after = _held_upload_bytes(public_server)
        held = after - before
        assert 6 * MB <= held <= limits.session_upload_mb * MB, held / MB  # 3 × 12 × 6 MB = 216 MB were sent
        assert held // (6 * MB) <= limits.session_upload_files
    finally:
        s.close()


def test_lab_server_still_takes_a_dataset_sized_upload(tmp_path):
    server = _server(tmp_path, public=False)
    s = RawSession(server.url)
    try:
        s.open()
        s.wait_finished()  # a lab machine raises the server's cap on its first page run
        assert s.put("data.npz", b"\0" * (60 * MB)) == 204
        assert s.put("huge.npz", b"\0" * ((settings.MAX_DATASET_MB + 1) * MB)) == 413
    finally:
        s.close()
        server.stop()
