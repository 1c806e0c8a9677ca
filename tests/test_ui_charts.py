"""The app's pure builders (ui.charts, ui.tables) on real tiny runs — no Streamlit script run needed."""

import numpy as np

from app_helpers import MODELS, arr
from fer_core import list_runs
from ui import charts, tables


def _runs(tiny_runs_dir):
    runs = list_runs(tiny_runs_dir).runs
    order = {m: i for i, m in enumerate(MODELS)}
    return sorted(runs, key=lambda r: order[r.model_name])


def test_history_and_small_multiples_have_one_trace_per_model(tiny_runs_dir):
    runs = _runs(tiny_runs_dir)
    for metric in ("accuracy", "val_accuracy", "loss", "val_loss"):
        fig = charts.history_figure(runs, metric)
        assert [t.name for t in fig.data] == MODELS
    colors = charts.model_colors(r.model_name for r in runs)
    assert len(set(colors.values())) == len(MODELS)
    fig = charts.small_multiples(runs, "accuracy", colors)
    assert len(fig.data) == 2 * len(MODELS)
    assert max(max(t.y) for t in fig.data) <= 100.0  # accuracy in %


def test_confusion_figure_counts_and_row_normalised(tiny_runs_dir):
    run = _runs(tiny_runs_dir)[0]
    counts = charts.confusion_figure(run)
    assert np.array_equal(arr(counts.data[0].z), np.array(run.metrics["confusion_matrix"]))
    norm = arr(charts.confusion_figure(run, normalise=True).data[0].z)
    rows = norm.sum(axis=1)
    assert np.all((np.abs(rows - 100) < 1e-6) | (rows == 0))


def test_leaderboard_and_coverage(tiny_runs_dir):
    runs = _runs(tiny_runs_dir)
    board = tables.leaderboard(runs)
    assert list(board["Accuracy"]) == sorted(board["Accuracy"], reverse=True)
    assert set(board["Model"]) == set(MODELS)

    class Group:  # the shape tables.coverage_matrix reads
        label = "demo"

    Group.runs = runs[:2]
    cov = tables.coverage_matrix([Group], MODELS)
    assert list(cov["demo"])[2:] == ["not trained yet"] * 3
    cmd = tables.train_command("demo", ["vgg19"], demo_args={"demo_per_class": 6, "demo_image_size": 64})
    assert cmd == "python -m training --data demo --models vgg19 --demo-per-class 6 --demo-size 64"


def test_prediction_figures_are_in_percent():
    class P:
        def __init__(self, model, probs):
            self.model, self.label, self.probs = model, model, np.asarray(probs)

    classes = ["a", "b", "c"]
    preds = [P("baseline", [0.2, 0.5, 0.3]), P("vgg19", [0.6, 0.3, 0.1])]
    fig = charts.model_probs_figure(classes, preds)
    assert [t.name for t in fig.data] == ["baseline", "vgg19"]
    assert list(fig.data[0].text) == ["20%", "50%", "30%"]
    assert "b 50%" in fig.layout.annotations[0].text  # the model's top emotion in its panel title
    ens = charts.ensemble_figure(classes, [0.4, 0.4, 0.2])
    assert list(ens.data[0].text) == ["40.0%", "40.0%", "20.0%"]


def test_percentages_round_in_python_so_cells_and_sentences_agree():
    """0.1625 is 16.2 % in an f-string; the browser would round the raw 16.25 up to 16.3."""
    from types import SimpleNamespace

    def run(name, acc, f1):
        return SimpleNamespace(model_name=name, bundled=False, id=name,
                               metrics={"accuracy": acc, "macro_f1": f1, "class_names": []})

    board = tables.leaderboard([run("a", 0.16249, 0.1), run("b", 0.1625, 0.2), run("c", 0.1626, 0.3)])
    assert list(board["Model"]) == ["c", "b", "a"]  # ordered on the unrounded scores
    assert board.loc[board["Model"] == "b", "Accuracy"].item() == float(f"{100 * 0.1625:.1f}") == 16.2


def test_the_leaderboard_shows_the_fer_plus_papers_test_set_only_for_runs_that_recorded_it():
    from types import SimpleNamespace

    def run(name, acc, paper=None):
        metrics = {"accuracy": acc, "macro_f1": acc, "class_names": []}
        if paper is not None:
            metrics["ferplus_paper"] = {"accuracy": paper, "macro_f1": 0.5, "n_samples": 3001}
        return SimpleNamespace(model_name=name, bundled=False, id=name, metrics=metrics)

    board = tables.leaderboard([run("plus", 0.8209, 0.86071), run("other", 0.70)]).set_index("Model")
    assert board.loc["plus", "FER+ paper's test set"] == 86.1  # beside its plurality accuracy, 82.1
    assert board.loc["plus", "Accuracy"] == 82.1
    assert board["FER+ paper's test set"].isna().tolist() == [False, True]  # a run without it: blank, not 0
    assert tables.leaderboard([run("other", 0.70)])["FER+ paper's test set"].isna().all()
