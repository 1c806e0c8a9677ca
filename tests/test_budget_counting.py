"""The per-minute prediction budget counts each photo once (AppTest, public mode, the bundled models).

Adding photos to the uploader one at a time used to re-read (and re-charge) every earlier photo:
1 + 2 + 3 + 4 = 10 predictions for 4 photos. Now each photo is charged once per session, by content:
the batch keeps every photo's rows, and a photo read before is neither read nor charged again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app_helpers import TIMEOUT, all_text, assert_clean, data_dir, open_page, point_app_at  # noqa: F401
from fer_core.store.runs import BUNDLED_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.load import photo_variants  # noqa: E402

BUDGET = 4


@pytest.fixture
def public_budget(tmp_path, data_dir, monkeypatch):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    point_app_at(monkeypatch, runs, data_dir, bundled_dir=BUNDLED_DIR)
    for key in ("FER_MAX_BATCH_PHOTOS", "FER_MAX_FACES"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FER_PUBLIC", "1")
    monkeypatch.setenv("FER_PREDICTIONS_PER_MINUTE", str(BUDGET))
    from streamlit import config

    upload_cap = config.get_option("server.maxUploadSize")
    yield [(f"p{i}.jpg", data, "image/jpeg") for i, data in enumerate(photo_variants(BUDGET + 2, seed=7))]
    config.set_option("server.maxUploadSize", upload_cap)


def budget_lines(at) -> list[str]:
    return [w.value for w in list(at.warning) + list(at.error) if "Too many predictions" in w.value]


def test_adding_photos_one_at_a_time_charges_each_once(public_budget):
    photos = public_budget
    at = open_page("predict", timeout=TIMEOUT)
    uploader = lambda: at.file_uploader(key="predict_upload")  # noqa: E731 - fetched again after each run
    for n in range(2, BUDGET + 1):  # 2, 3, 4 photos: the old count was 2 + 3 + 4 = 9 > 4 by the third step
        uploader().set_value(photos[:n]).run(timeout=TIMEOUT)
        assert_clean(at)
        assert not budget_lines(at), (n, budget_lines(at))
        result = at.session_state["predict_batch_result"]
        assert result["photos"] == n and result["read_now"] == (2 if n == 2 else 1), result["read_now"]  # only the new photo is read
    assert sorted(set(result["rows"][i]["file"] for i in range(len(result["rows"])))) == [p[0] for p in photos[:BUDGET]]
    # The budget is now exactly spent (4 photos, 4 charges): one more new photo is refused, on one line.
    uploader().set_value(photos[:BUDGET + 1]).run(timeout=TIMEOUT)
    assert_clean(at)
    lines = budget_lines(at)
    assert len(lines) == 1 and lines[0].startswith("1 photo left out. Too many predictions: at most 4 a minute")
    assert at.session_state["predict_batch_result"]["photos"] == BUDGET


def test_reading_a_photo_again_is_not_charged_again(public_budget):
    a, b, c, d, e = (p[:2] for p in public_budget[:5])
    at = open_page("predict", timeout=TIMEOUT)
    uploader = lambda: at.file_uploader(key="predict_upload")  # noqa: E731 - fetched again after each run
    for photo in (a, b, a, b, a, c, d):  # 4 distinct photos, 7 reads: within a budget of 4
        uploader().set_value((*photo, "image/jpeg")).run(timeout=TIMEOUT)
        assert_clean(at)
        assert not budget_lines(at), (photo[0], budget_lines(at))
        assert "Face 1: " in all_text(at)
    uploader().set_value([(*a, "image/jpeg"), (*b, "image/jpeg")]).run(timeout=TIMEOUT)  # the same photos as a batch
    assert_clean(at)
    assert not budget_lines(at)
    uploader().set_value((*e, "image/jpeg")).run(timeout=TIMEOUT)  # a fifth distinct photo: over the budget
    assert_clean(at)
    assert len(budget_lines(at)) == 1
