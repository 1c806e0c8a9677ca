"""Transfer runs with random backbones (``--weights none``) are marked wherever their numbers appear.

Offline there are no ImageNet weights, so the four transfer models train on random
backbones and score near chance; Compare, Home, Predict and the Train page's progress
say so (issue 11) instead of letting such a score read as a verdict on the architecture.
The tiny session runs (tests/conftest.py) are exactly such runs: ``--weights none``.
"""

from __future__ import annotations

import json

import pytest

from app_helpers import (MODELS, all_text, data_dir, dataframe_with, open_page, plotly_figures,  # noqa: F401
                         run_dirs, with_runs, with_runs_copy)
from fer_core import load_run
from ui import tables

NOTE = "random backbone — ImageNet weights were not available; expect near-chance accuracy"
TRANSFER = [m for m in MODELS if m != "baseline"]


def _set_weights(runs_dir, weights: str) -> None:
    """Rewrite the runs' recorded backbone weights (as if trained with --weights <weights>)."""
    for folder in run_dirs(runs_dir).values():
        cfg = json.loads((folder / "config.json").read_text())
        cfg["train_config"]["weights"] = weights
        (folder / "config.json").write_text(json.dumps(cfg))


def test_run_property(tiny_runs_copy):
    runs = {m: load_run(p) for m, p in run_dirs(tiny_runs_copy).items()}
    assert [m for m, r in runs.items() if r.random_backbone] == TRANSFER
    assert not runs["baseline"].random_backbone  # trained from scratch: nothing random about it
    _set_weights(tiny_runs_copy, "imagenet")
    assert not any(load_run(p).random_backbone for p in run_dirs(tiny_runs_copy).values())
    # A trunk copied from a trained run (fer_compact) is not random either.
    folder = run_dirs(tiny_runs_copy)["vgg19"]
    cfg = json.loads((folder / "config.json").read_text())
    cfg["train_config"]["weights"] = "none"
    cfg["model"]["trunk_from"] = {"run": "x"}
    (folder / "config.json").write_text(json.dumps(cfg))
    assert not load_run(folder).random_backbone


def test_table_helpers(tiny_runs_dir):
    runs = [load_run(p) for p in run_dirs(tiny_runs_dir).values()]
    by = {r.model_name: r for r in runs}
    assert tables.model_label(by["vgg19"]) == "vgg19 (random backbone)"
    assert tables.model_label(by["baseline"]) == "baseline"
    note = tables.random_backbone_note(runs)
    assert NOTE in note and all(m in note for m in TRANSFER) and "baseline" not in note
    assert tables.random_backbone_note([by["baseline"]]) is None
    board = tables.leaderboard(runs).set_index("Model")
    assert board.loc["baseline", "Note"] == ""
    assert all("random backbone" in board.loc[m, "Note"] for m in TRANSFER)

    class Group:
        label = "demo"

    Group.runs = runs
    cov = tables.coverage_matrix([Group], MODELS)["demo"]
    assert cov["baseline"].endswith("%") and all(cov[m].endswith("% (random backbone)") for m in TRANSFER)


@pytest.mark.parametrize("args, expected", [
    (["--data", "demo", "--models", "all", "--weights", "none"], ["resnet50v2", "vgg19"]),
    (["--data", "demo", "--weights", "none"], ["resnet50v2", "vgg19"]),  # --models defaults to all
    (["--data", "demo", "--models", "baseline,vgg19,fer_compact", "--weights=none"], ["vgg19"]),
    (["--data", "demo", "--models", "all", "--weights", "imagenet"], []),
    (["--data", "demo", "--models", "all"], []),  # --weights defaults to imagenet
])
def test_random_backbone_models_of_a_command(args, expected):
    catalog = {"baseline": {"weights_file": None, "in_all": True},
               "resnet50v2": {"weights_file": "r.h5", "in_all": True},
               "vgg19": {"weights_file": "v.h5", "in_all": True},
               "fer_compact": {"weights_file": None, "in_all": False}}
    assert tables.random_backbone_models(args, catalog) == expected


def test_figure_titles_are_marked(tiny_runs_dir):
    from ui import charts

    runs = [load_run(p) for p in run_dirs(tiny_runs_dir).values()]
    by = {r.model_name: r for r in runs}
    cm = tables.mark_random_backbones(charts.confusion_figure(by["inception_resnet_v2"]), runs)
    assert cm.layout.title.text.startswith("inception_resnet_v2 (random backbone) · ")
    assert "random backbone" not in tables.mark_random_backbones(charts.confusion_figure(by["baseline"]), runs).layout.title.text
    curves = tables.mark_random_backbones(charts.history_figure(runs, "val_accuracy"), runs)
    assert "random backbone" in curves.layout.title.text and [t.name for t in curves.data] == [r.model_name for r in runs]
    small = tables.mark_random_backbones(charts.small_multiples(runs, "accuracy"), runs)
    titles = [a.text for a in small.layout.annotations]
    assert "baseline" in titles and "vgg19 (random backbone)" in titles


def test_compare_marks_random_backbones(with_runs):
    at = open_page("compare")
    text = all_text(at)
    assert NOTE in text
    board = dataframe_with(at, "Note").set_index("Model")
    assert board.loc["baseline", "Note"] == ""
    assert all("random backbone" in board.loc[m, "Note"] for m in TRANSFER)
    runs = run_dirs(with_runs)
    matrices = plotly_figures(at, "compare_cm_")
    assert "random backbone" not in matrices[f"compare_cm_{runs['baseline'].name}"]["layout"]["title"]["text"]
    for m in TRANSFER:
        assert f"{m} (random backbone)" in matrices[f"compare_cm_{runs[m].name}"]["layout"]["title"]["text"]
    for fig in plotly_figures(at, "compare_curve_").values():
        assert "random backbone" in fig["layout"]["title"]["text"]


def test_home_marks_random_backbones(with_runs):
    at = open_page()
    assert NOTE in all_text(at)
    coverage = next(d.value for d in at.dataframe if d.value.index.name == "Model")
    column = coverage.iloc[:, 0]
    assert "random backbone" not in column["baseline"]
    assert all("(random backbone)" in column[m] for m in TRANSFER)
    board = dataframe_with(at, "Note").set_index("Model")
    assert board.loc["baseline", "Note"] == "" and all(board.loc[m, "Note"] for m in TRANSFER)


def test_predict_notes_random_backbones(with_runs):
    at = open_page("predict")
    assert NOTE in all_text(at)


def test_no_note_with_imagenet_backbones(with_runs_copy):
    _set_weights(with_runs_copy, "imagenet")
    for page in ("home", "compare", "predict"):
        at = open_page(page)
        assert "random backbone" not in all_text(at), page
    board = dataframe_with(open_page("compare"), "Accuracy")
    assert "Note" not in board.columns  # nothing to flag: no empty Note column


def test_train_progress_marks_random_backbones():
    """The Train page's live progress and summary: the finished table labels them, the note explains."""
    from streamlit.testing.v1 import AppTest

    def app(root):
        import sys

        sys.path.insert(0, root)
        from ui import training

        training.render_progress({  # a cancelled job: no page links, which need the app's navigation
            "status": "cancelled", "args": ["--data", "demo", "--models", "baseline,vgg19", "--weights", "none"],
            "current_model": "vgg19", "history": {}, "finished_models": [
                {"model": "baseline", "accuracy": 0.81, "macro_f1": 0.8, "seconds": 30.0},
                {"model": "vgg19", "accuracy": 0.14, "macro_f1": 0.05, "seconds": 60.0}]}, show_cancel=False)
        training.render_progress({"status": "running", "current_model": "vgg19", "model_index": 1, "total": 2,
                                  "epoch": 3, "epochs": 15, "args": ["--data", "demo", "--weights", "none"],
                                  "history": {}, "finished_models": []}, show_cancel=False)

    from app_helpers import ROOT

    at = AppTest.from_function(app, default_timeout=60, args=(str(ROOT),))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert NOTE in all_text(at) and "**vgg19**" in all_text(at)
    finished = at.dataframe[0].value
    assert list(finished["Model"]) == ["baseline", "vgg19 (random backbone)"]
    assert any("**vgg19 (random backbone)**" in m.value for m in at.markdown)  # the running job's header
