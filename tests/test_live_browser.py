"""The Live page in a real browser: Chromium's fake camera plays a clip of the astronaut photo over WebRTC.

Chromium reads a 640×480 4:2:0 y4m clip (made here from the project's own
photo, ui/assets/astronaut.jpg) as its camera; the test starts the stream on
the Live page, and reads from the page's text that a face is found and read
and that frames are counted per second; then Stop gives the table.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from app_helpers import ROOT
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does)"),
]

FAKE_CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
               # host candidates as IP addresses, not mDNS names, so the server's aiortc reaches the browser
               "--disable-features=WebRtcHideLocalIpsWithMdns"]


def write_y4m(path: Path, seconds: float = 4.0, fps: int = 15) -> None:
    """A 640×480 clip of the astronaut photo, the view drifting slowly (a face that moves a little)."""
    import cv2
    from PIL import Image

    photo = Image.open(ROOT / "ui" / "assets" / "astronaut.jpg").convert("RGB")
    big = np.asarray(photo.resize((720, 720)))
    n = int(seconds * fps)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(n):
            dx = int(40 * (1 + np.sin(2 * np.pi * i / n)))  # 0..80 px and back
            rgb = np.ascontiguousarray(big[60:540, dx:dx + 640])
            yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # (720, 640): Y, then U, then V planes
            f.write(b"FRAME\n")
            f.write(yuv.tobytes())


@pytest.fixture
def live_server(tmp_path):
    """``streamlit run app.py`` over an empty runs folder (the bundled models only); yields its URL and log."""
    runs, data = tmp_path / "runs", tmp_path / "data"
    runs.mkdir()
    data.mkdir()
    with streamlit_server(runs, data, tmp_path / "streamlit.log", env_drop=("FER_PUBLIC",)) as url:
        yield url, tmp_path / "streamlit.log"


def test_browser_live_stream_reads_the_fake_camera(live_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, server_log = live_server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    clip = tmp_path / "astronaut.y4m"
    write_y4m(clip)
    args = [*CHROMIUM_ARGS, *FAKE_CAMERA, f"--use-file-for-fake-video-capture={clip}"]
    t0 = time.time()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{url}/live")
            expect(page.get_by_role("heading", name="Live: your camera, read as it streams")).to_be_visible(
                timeout=60_000)
            expect(page.get_by_text("Press Start and allow the camera.")).to_be_visible(timeout=90_000)
            webrtc = page.frame_locator("iframe[title*='streamlit_webrtc']")
            webrtc.get_by_role("button", name="Start").click(timeout=30_000)
            # The page's own text, refreshed each second: frames counted per second, the face found and read.
            fps_text = page.get_by_text(re.compile(r"\d+\.\d frames/s processed"))
            expect(fps_text).to_be_visible(timeout=60_000)
            expect(page.get_by_text(re.compile(r"Face 1: \w+ \d+ %"))).to_be_visible(timeout=30_000)
            page.wait_for_timeout(3000)  # a few refreshes: the rate is over a running window
            text = fps_text.inner_text()
            fps = float(re.search(r"(\d+\.\d) frames/s processed", text).group(1))
            read = int(re.search(r"(\d+) frames read", text).group(1))
            face = page.get_by_text(re.compile(r"Face 1: \w+ \d+ %")).first.inner_text()
            assert fps > 0 and read > 0, text
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "live.png"), full_page=True)
            webrtc.get_by_role("button", name="Stop").click(timeout=30_000)
            expect(page.get_by_text("This stream's table")).to_be_visible(timeout=30_000)
            expect(page.get_by_text(re.compile(r"Stopped after \d+ s"))).to_be_visible(timeout=30_000)
            assert page.locator("[data-testid=stAlertContentError]").count() == 0
            assert page.get_by_text("Traceback").count() == 0
        finally:
            browser.close()
    log = server_log.read_text()
    assert "Traceback" not in log and "Error occurred in the WebRTC thread" not in log, log[-3000:]
    print(f"live: {text} | {face} | {time.time() - t0:.1f} s in all")
