"""Home page (AppTest): intro, which models are trained on which dataset, leaderboard, next step."""

import json
import shutil

from app_helpers import MODELS, all_text, dataframe_with, data_dir, no_runs, open_page, run_dirs, with_runs, with_runs_copy  # noqa: F401


def coverage_table(at):
    """Models × datasets table: the one indexed by model."""
    return next(d.value for d in at.dataframe if d.value.index.name == "Model")


def test_home_without_runs_points_to_training(no_runs):
    at = open_page()
    assert at.title[0].value == "FER Studio"
    text = all_text(at)
    assert "No trained models yet" in text
    assert any("python -m training --data demo" in c.value for c in at.code)
    assert not at.dataframe  # no leaderboard without runs


def test_home_lists_models_by_dataset_and_leaderboard(with_runs):
    at = open_page()
    coverage = coverage_table(at)
    assert list(coverage.index) == MODELS
    assert coverage.shape[1] == 1  # one dataset
    assert "demo" in coverage.columns[0]
    board = dataframe_with(at, "Accuracy")
    assert sorted(board["Model"]) == sorted(MODELS)
    for column in ("Accuracy", "Macro-F1", "Parameters", "Size (MB)", "Train time (s)", "Latency (ms)"):
        assert board[column].notna().all(), column
    # Numbers come from the runs' metrics.json, in %.
    runs = run_dirs(with_runs)
    acc = json.loads((runs["baseline"] / "metrics.json").read_text())["accuracy"]
    assert abs(board.set_index("Model").loc["baseline", "Accuracy"] - 100 * acc) < 1e-6
    assert "Next step" in [s.value for s in at.subheader]


def test_home_shows_untrained_models_with_the_command(with_runs_copy):
    runs = run_dirs(with_runs_copy)
    shutil.rmtree(runs["vgg19"])
    shutil.rmtree(runs["inception_v3"])
    at = open_page()
    coverage = coverage_table(at)
    assert coverage.loc["vgg19"].iloc[0] == "not trained yet"
    assert coverage.loc["baseline"].iloc[0].endswith("%")
    assert "Not trained yet on this dataset" in all_text(at)
    cmd = next(c.value for c in at.code if "--models" in c.value)
    assert "inception_v3,vgg19" in cmd and "--data demo" in cmd and "--demo-per-class 6" in cmd


def test_home_labels_bundled_runs(tiny_runs_dir, data_dir, monkeypatch):
    from app_helpers import point_app_at

    empty = data_dir / "runs"
    empty.mkdir()
    point_app_at(monkeypatch, empty, data_dir, bundled_dir=tiny_runs_dir)
    at = open_page()
    # models/ holds whatever was published there: the label names the dataset the runs saw (demo here).
    assert "bundled, trained on demo" in coverage_table(at).columns[0]
    assert all(m.endswith("(bundled)") for m in dataframe_with(at, "Accuracy")["Model"])


def test_home_prefers_the_users_runs_over_bundled_ones(tiny_runs_dir, tmp_path, data_dir, monkeypatch):
    """Bundled runs (trained on FER2013) are listed, but the user's own dataset is the default choice."""
    import json
    import shutil

    from app_helpers import point_app_at

    bundled = tmp_path / "models"
    src = run_dirs(tiny_runs_dir)["baseline"]
    shutil.copytree(src, bundled / "baseline")
    metrics = json.loads((bundled / "baseline" / "metrics.json").read_text())
    metrics["dataset"].update(fingerprint="fe2013fe2013fe20", name="fer2013")
    metrics["created"] += 10_000  # newer than the user's runs
    (bundled / "baseline" / "metrics.json").write_text(json.dumps(metrics))
    point_app_at(monkeypatch, tiny_runs_dir, data_dir, bundled_dir=bundled)
    at = open_page()
    columns = list(coverage_table(at).columns)
    assert columns[0].startswith("demo") and columns[1].startswith("fer2013") and "bundled" in columns[1]
    assert at.selectbox(key="home_dataset").value != "fe2013fe2013fe20"
