"""Compare and Home (AppTest) over a model trained with two seeds: one row, mean ± std, a band, ties named.

Run folders written by hand (tests/test_seeds.make_run): the pages read only
their JSON files here; the scores are made up to test what the pages say.
"""

import pytest

from app_helpers import all_text, arr, data_dir, dataframe_with, open_page, plotly_figures, point_app_at  # noqa: F401
from test_seeds import make_run


@pytest.fixture
def two_seeds(tmp_path, data_dir, monkeypatch):  # noqa: F811
    """baseline with seeds 0 and 1 (66.8 %, 67.2 %: 67.0 ± 0.3 %), compact once at 66.9 % (inside that spread)."""
    runs = tmp_path / "runs"
    history = {0: {"loss": [1.2, 1.0, 0.9], "accuracy": [0.40, 0.55, 0.66],
                   "val_loss": [1.3, 1.1, 1.0], "val_accuracy": [0.38, 0.52, 0.64]},
               1: {"loss": [1.1, 0.95], "accuracy": [0.45, 0.60],  # stopped early
                   "val_loss": [1.2, 1.05], "val_accuracy": [0.42, 0.58]}}
    make_run(runs, "b-seed0", seed=0, acc=0.668, f1=0.61, created=1, history=history[0],
             cm=[[5, 0, 0], [1, 4, 0], [0, 0, 5]])
    make_run(runs, "b-seed1", seed=1, acc=0.672, f1=0.63, created=2, history=history[1],
             cm=[[3, 2, 0], [0, 5, 0], [1, 1, 3]])
    make_run(runs, "c-seed0", model="compact", seed=0, acc=0.669, f1=0.62, created=3)
    point_app_at(monkeypatch, runs, data_dir)
    return runs


def test_compare_shows_a_two_seed_group_as_one_row_with_its_spread(two_seeds):
    at = open_page("compare")
    board = dataframe_with(at, "Accuracy").set_index("Model")
    assert list(board.index) == ["baseline", "compact"]  # one row per model, not per run
    assert board.loc["baseline", "Accuracy over seeds"] == "67.0 ± 0.3 %, 2 seeds"
    assert board.loc["compact", "Accuracy over seeds"] == "1 seed"
    assert "within seed spread of compact" in board.loc["baseline", "Note"]
    text = all_text(at)
    assert "**baseline** and **compact** differ in accuracy by less than their seed-to-seed spread" in text
    assert "the shaded band runs from the lowest to the highest seed" in text

    curve = plotly_figures(at, "compare_curve_val_accuracy")["compare_curve_val_accuracy"]
    names = [t["name"] for t in curve["data"]]
    assert "baseline seed range" in names and "baseline (fewer seeds)" in names
    band = next(t for t in curve["data"] if t["name"] == "baseline seed range")
    assert band["fill"] == "toself"
    assert arr(band["y"]).tolist() == pytest.approx([42.0, 58.0, 64.0, 64.0, 52.0, 38.0])
    assert [t["name"] for t in curve["data"]].count("compact") == 1  # a single run: one plain line

    matrices = plotly_figures(at, "compare_cm_")
    assert set(matrices) == {"compare_cm_b-seed1", "compare_cm_c-seed0"}  # named after the newest run
    summed = matrices["compare_cm_b-seed1"]
    assert arr(summed["data"][0]["z"]).tolist() == [[8, 2, 0], [1, 9, 0], [1, 1, 8]]
    assert "2 seeds, matrices summed" in summed["layout"]["title"]["text"]


def test_home_leaderboard_and_coverage_read_the_group(two_seeds):
    at = open_page()
    board = dataframe_with(at, "Accuracy").set_index("Model")
    assert board.loc["baseline", "Accuracy over seeds"] == "67.0 ± 0.3 %, 2 seeds"
    coverage = next(d.value for d in at.dataframe if d.value.index.name == "Model")
    assert coverage.loc["baseline"].iloc[0] == "67.0 ± 0.3 %, 2 seeds"
    assert coverage.loc["compact"].iloc[0] == "66.9%"
    assert "tied within seed spread with compact" in all_text(at)


def test_bundled_model_with_seed_repeats_shipped_as_metrics_shows_its_spread(tmp_path, data_dir, monkeypatch):  # noqa: F811
    """models/<name> with weights + models/seeds/<run> without: Compare reads three seeds, Predict offers one model."""
    from test_seeds import repeat_of

    bundled = tmp_path / "models"
    make_run(bundled, "baseline", seed=0, acc=0.52, created=3)
    repeat_of(bundled, "r1", seed=1, acc=0.53, created=1)
    repeat_of(bundled, "r2", seed=2, acc=0.54, created=2)
    point_app_at(monkeypatch, tmp_path / "runs", data_dir, bundled_dir=bundled)
    at = open_page("compare")
    board = dataframe_with(at, "Accuracy").set_index("Model")
    assert list(board.index) == ["baseline (bundled)"]  # one row: the repeats are not runs of their own
    assert board.loc["baseline (bundled)", "Accuracy over seeds"] == "53.0 ± 1.0 %, 3 seeds"
    assert not any("skipped" in w.value for w in at.warning)
