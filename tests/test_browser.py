"""One real-browser test: Debian's chromium driven by Playwright against ``streamlit run app.py``.

Opens the app over the tiny runs, goes to Predict, uploads a photo file with
``set_input_files``, waits for every model's probabilities and saves
screenshots (and the time to the first prediction) under ``tests/artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app_helpers import MODELS, ROOT, face_photo

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(runs: Path, data: Path, log_path: Path, env_drop: tuple[str, ...] = ()):
    """``streamlit run app.py`` on a free port over ``runs`` and ``data``; yields its URL once healthy."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env.update(FER_RUNS_DIR=str(runs), FER_DATA_DIR=str(data))
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail("streamlit did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def app_server(tiny_runs_dir, tmp_path):
    """``streamlit run app.py`` over the tiny runs; yields its URL."""
    data = tmp_path / "data"
    data.mkdir()
    with streamlit_server(tiny_runs_dir, data, tmp_path / "streamlit.log") as url:
        yield url


def _screenshot(page, name: str) -> None:
    """Whole app (Streamlit scrolls inside its main container, so grow the viewport to fit)."""
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                           "'[data-testid=stMain], [data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": 1440, "height": min(int(height) + 40, 8000)})
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})


def test_browser_predict_on_uploaded_photo(app_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "friends.png"
    photo.write_bytes(face_photo())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            t0 = time.time()
            page.goto(app_server)
            expect(page.get_by_role("heading", name="FER Studio")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Trained models by dataset")).to_be_visible(timeout=60_000)
            _screenshot(page, "home.png")

            page.locator("[data-testid=stSidebarNav]").get_by_text("Predict", exact=True).click()
            expect(page.get_by_role("heading", name="Predict on a photo")).to_be_visible(timeout=60_000)
            page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(photo))
            expect(page.get_by_text("Every model's probabilities")).to_be_visible(timeout=180_000)
            seconds = time.time() - t0
            # A bar panel per model, titled with the model id, and the ensemble.
            for model in MODELS:
                expect(page.locator(".js-plotly-plot").get_by_text(model, exact=True).first).to_be_attached(timeout=60_000)
            expect(page.locator(".js-plotly-plot").get_by_text("Ensemble", exact=False).first).to_be_attached(timeout=60_000)
            expect(page.locator(".js-plotly-plot").get_by_text("%", exact=False).first).to_be_attached(timeout=60_000)
            assert page.locator("[data-testid=stAlertContentError]").count() == 0
            assert page.get_by_text("Traceback").count() == 0
            page.wait_for_timeout(1500)  # let plotly finish drawing before the picture
            _screenshot(page, "predict.png")
        finally:
            browser.close()
    (ARTIFACTS / "timings.json").write_text(json.dumps({"page_load_to_first_prediction_s": round(seconds, 1)}))
    print(f"time from opening the app to the first prediction: {seconds:.1f} s")


def test_browser_on_a_phone_the_sidebar_starts_closed(app_server):
    """At a phone's width the navigation must not cover the page (initial_sidebar_state="auto")."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page.goto(f"{app_server}/predict")
            expect(page.get_by_role("heading", name="Predict on a photo")).to_be_visible(timeout=60_000)
            expect(page.locator("[data-testid=stSidebar]")).to_have_attribute("data-collapsed", "true", timeout=30_000)
            page.get_by_text("Sample", exact=True).first.click(timeout=30_000)  # nothing lies over the page
            expect(page.get_by_text("Every model's probabilities")).to_be_visible(timeout=180_000)
            assert page.get_by_text("Traceback").count() == 0
            page.screenshot(path=str(ARTIFACTS / "predict_phone.png"))
        finally:
            browser.close()
