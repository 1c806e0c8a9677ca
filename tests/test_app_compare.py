"""Compare page (AppTest): curves, confusion matrices, per-class F1, leaderboard, downloads — one dataset at a time."""

import json
import shutil

from app_helpers import (MODELS, all_text, arr, data_dir, dataframe_with, no_runs, open_page, plotly_figures,  # noqa: F401
                         run_dirs, with_runs, with_runs_copy)


def test_compare_without_runs(no_runs):
    at = open_page("compare")
    assert "No trained models yet" in all_text(at)
    assert not plotly_figures(at)


def test_compare_one_curve_and_one_matrix_per_model(with_runs):
    at = open_page("compare")
    assert "Dataset **demo**" in all_text(at)  # the page says which dataset
    curves = plotly_figures(at, "compare_curve_")
    assert set(curves) == {f"compare_curve_{m}" for m in ("accuracy", "val_accuracy", "loss", "val_loss")}
    for key, fig in curves.items():
        assert sorted(t["name"] for t in fig["data"]) == sorted(MODELS), key  # one line per model
    small = plotly_figures(at, "compare_small_multiples")["compare_small_multiples"]
    assert len(small["data"]) == 2 * len(MODELS)  # train + validation per model panel
    matrices = plotly_figures(at, "compare_cm_")
    assert len(matrices) == len(MODELS)
    runs = run_dirs(with_runs)
    for model, folder in runs.items():
        fig = matrices[f"compare_cm_{folder.name}"]
        cm = json.loads((folder / "metrics.json").read_text())["confusion_matrix"]
        assert arr(fig["data"][0]["z"]).tolist() == cm  # counts by default
        assert model in fig["layout"]["title"]["text"]
    f1 = plotly_figures(at, "compare_f1")["compare_f1"]
    assert sorted(t["name"] for t in f1["data"]) == sorted(MODELS)
    assert len(dataframe_with(at, "Accuracy")) == len(MODELS)
    labels = [b.proto.label for b in at.get("download_button")]
    assert sum(lab.startswith("model.keras") for lab in labels) == len(MODELS)
    assert labels.count("metrics.json") == len(MODELS)


def test_compare_row_normalised_toggle(with_runs):
    at = open_page("compare")
    at.segmented_control(key="compare_cm_mode").set_value("row-normalised").run()
    for fig in plotly_figures(at, "compare_cm_").values():
        z = arr(fig["data"][0]["z"])
        for row in z:
            assert abs(sum(row) - 100.0) < 1e-6 or sum(row) == 0  # each true class sums to 100 %
        assert all(t.endswith("%") or t == "–" for row in fig["data"][0]["text"] for t in row)
    at.segmented_control(key="compare_small_metric").set_value("loss").run()
    assert not at.exception


def test_compare_only_runs_of_the_chosen_dataset(with_runs_copy):
    """A run on other data forms its own group; choosing it compares only that run."""
    runs = run_dirs(with_runs_copy)
    other = with_runs_copy / "other-data_baseline"
    shutil.copytree(runs["baseline"], other)
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["dataset"].update(fingerprint="feedfacefeedface", name="my-faces", source="my-faces.npz")
    metrics["created"] += 1000  # newest dataset first
    (other / "metrics.json").write_text(json.dumps(metrics))
    at = open_page("compare")
    box = at.selectbox(key="compare_dataset")
    assert len(box.options) == 2
    assert box.value == "feedfacefeedface"
    for fig in plotly_figures(at, "compare_curve_").values():
        assert [t["name"] for t in fig["data"]] == ["baseline"]
    assert len(plotly_figures(at, "compare_cm_")) == 1
    assert "Not trained yet on this dataset" in all_text(at)
    assert box.options[0].startswith("my-faces (feedface")  # labelled by name and fingerprint
    box.select_index(1).run()
    assert len(plotly_figures(at, "compare_cm_")) == len(MODELS)
