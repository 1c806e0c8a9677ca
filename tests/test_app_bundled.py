"""A fresh install (AppTest): no runs of the user's own, only the bundled FER2013 models in ``models/``.

Compare shows their real curves and matrices and lists the four transfer models as
"not trained yet" with the command that trains them (never a made-up score);
Predict starts with the bundled default (``compact_x2_blur``, fer_core.data.defaults) and labels the models as bundled.
"""

import json

import numpy as np
import pytest

from app_helpers import all_text, assert_clean, data_dir, open_page, plotly_figures, point_app_at  # noqa: F401
from fer_core.store.runs import BUNDLED_DIR
from fer_core.data.defaults import BUNDLED_PREDICT_DEFAULT

TRANSFER = ["resnet50v2", "inception_resnet_v2", "inception_v3", "vgg19"]
BUNDLED_ALL = sorted(d.name for d in BUNDLED_DIR.iterdir() if (d / "metrics.json").is_file()) if BUNDLED_DIR.is_dir() else []
#: The bundled FER2013 models (one dataset group in the app); the FER+ model is a group of its own.
BUNDLED = [m for m in BUNDLED_ALL
           if json.loads((BUNDLED_DIR / m / "metrics.json").read_text())["dataset"]["name"] == "fer2013"]


@pytest.fixture
def fresh_install(tmp_path, data_dir, monkeypatch):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    point_app_at(monkeypatch, runs, data_dir, bundled_dir=BUNDLED_DIR)
    return json.loads((BUNDLED_DIR / BUNDLED[0] / "metrics.json").read_text())["dataset"]["fingerprint"]


def test_the_project_bundles_baseline_compact_and_their_ensemble():
    assert BUNDLED_ALL == ["baseline", "compact", "compact_x2_blur", "ferplus_x2"]
    assert BUNDLED == ["baseline", "compact", "compact_x2_blur"]
    from fer_core import bundled_runs

    listing = bundled_runs()
    assert sorted(r.id for r in listing.runs) == BUNDLED_ALL and not listing.warnings  # models/seeds/ is not a model
    repeats = sorted(r.model_name for r in listing.repeats)
    assert all(r.metrics_only for r in listing.repeats) and repeats.count("baseline") == 2 and "compact" in repeats
    for name in BUNDLED:
        m = json.loads((BUNDLED_DIR / name / "metrics.json").read_text())
        assert m["model"] == name and m["dataset"]["name"] == "fer2013" and m["split"] == "test"
        commands = [mm["command"] for mm in m.get("members", [])] or [m["command"]]  # an ensemble: its members'
        assert all(c.startswith("python -m training ") and "--seed" in c for c in commands), commands
    ensemble = json.loads((BUNDLED_DIR / "compact_x2_blur" / "metrics.json").read_text())
    assert ensemble["command"].startswith("python -m training.ensemble ") and len(ensemble["members"]) == 2
    # compact_x2_blur averages two of compact's seeds, both shipped as its repeats, behind an input blur
    compact_repeats = {d.name for d in (BUNDLED_DIR / "seeds").iterdir()
                       if json.loads((d / "metrics.json").read_text())["model"] == "compact"}
    assert {m["run"] for m in ensemble["members"]} <= compact_repeats and ensemble["config"]["smooth"] == 0.5
    # the 8-emotion model: two seeds trained on the FER+ crowd's votes, averaged
    plus = json.loads((BUNDLED_DIR / "ferplus_x2" / "metrics.json").read_text())
    assert plus["dataset"]["name"] == "fer2013+ferplus" and plus["dataset"]["labels"] == "ferplus"
    assert plus["class_names"] == ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"]
    assert len(plus["members"]) == 2 and all("--labels ferplus" in m["command"] for m in plus["members"])
    paper = plus["ferplus_paper"]  # the FER+ paper's test set, beside the plurality accuracy
    assert paper["n_samples"] < plus["n_samples"] and 0 < paper["accuracy"] <= 1


def test_compare_shows_bundled_runs_and_untrained_transfer_models(fresh_install):
    at = open_page("compare")
    text = all_text(at)
    assert "bundled, trained on FER2013" in text
    curves = plotly_figures(at, "compare_curve_val_accuracy")
    lines = [t["name"] for t in next(iter(curves.values()))["data"]
             if not t["name"].endswith((" seed range", " (fewer seeds)"))]  # a seed group's band and dotted tail
    trained = [m for m in BUNDLED if not json.loads((BUNDLED_DIR / m / "metrics.json").read_text()).get("members")]
    assert [m for m in lines if m in trained] == trained  # one line per trained model; an ensemble has no epochs
    assert len(plotly_figures(at, "compare_cm_")) == len(BUNDLED)  # one matrix per bundled model
    assert "Not trained yet on this dataset" in text and all(m in text for m in TRANSFER)
    commands = [c.value for c in at.code]
    assert any("--models " + ",".join(TRANSFER) in c and "fer2013" in c for c in commands), commands
    leaderboard = next(d.value for d in at.dataframe if "Accuracy" in d.value.columns)
    assert sorted(leaderboard["Model"]) == [f"{m} (bundled)" for m in BUNDLED]  # no row, no score for the others
    # Other seeds ship as metrics only (models/seeds/): a model's row reads the spread over them.
    seeds = leaderboard.set_index("Model")["Accuracy over seeds"]
    repeats = [json.loads((d / "metrics.json").read_text()) for d in (BUNDLED_DIR / "seeds").iterdir()]
    counts = {}
    for model in BUNDLED:
        accs = [json.loads((BUNDLED_DIR / model / "metrics.json").read_text())["accuracy"]] + [
            m["accuracy"] for m in repeats if m["model"] == model]
        counts[model] = len(accs)
        want = (f"{100 * np.mean(accs):.1f} ± {100 * np.std(accs, ddof=1):.1f} %, {len(accs)} seeds"
                if len(accs) > 1 else "1 run (mean of 2 networks)" if model == "compact_x2_blur" else "1 seed")
        assert seeds[f"{model} (bundled)"] == want, model
    assert counts["baseline"] == 3 and counts["compact"] >= 2


def test_compare_on_fer_plus_shows_the_papers_test_set_beside_the_accuracy(fresh_install):
    at = open_page("compare")
    board = next(d.value for d in at.dataframe if "Accuracy" in d.value.columns)
    assert "FER+ paper's test set" not in board.columns  # FER2013's runs have no such score: no empty column
    select = at.selectbox(key="compare_dataset")
    select.select_index(next(i for i, label in enumerate(select.options) if "FER+" in label)).run()
    assert_clean(at)
    board = next(d.value for d in at.dataframe if "Accuracy" in d.value.columns).set_index("Model")
    metrics = json.loads((BUNDLED_DIR / "ferplus_x2" / "metrics.json").read_text())
    row = board.loc["ferplus_x2 (bundled)"]
    assert row["FER+ paper's test set"] == round(100 * metrics["ferplus_paper"]["accuracy"], 1)
    assert row["Accuracy"] == round(100 * metrics["accuracy"], 1)
    # an ensemble has no epochs: a sentence says so instead of four empty charts
    assert "No curves for ferplus_x2" in all_text(at) and not plotly_figures(at, "compare_curve_")


def test_predict_starts_with_the_best_bundled_model_and_can_add_the_others(fresh_install):
    at = open_page("predict", timeout=180)
    picker = at.multiselect(key=f"predict_models_{fresh_install}")
    assert picker.value == [BUNDLED_PREDICT_DEFAULT] and len(picker.options) == len(BUNDLED)
    assert "the best bundled choice for photos" in all_text(at)  # read from benchmarks/results/fer2013.json
    assert "(the mean of 2 compact networks behind a 0.5 px input blur)" in all_text(at)  # what the default is
    assert "all averaged" in all_text(at) and " ensemble " not in all_text(at)  # the benchmark's mean of all models
    assert all("(bundled) · " in o and o.endswith("%") for o in picker.options)  # labelled with test accuracy
    assert "bundled, trained on FER2013" in all_text(at)
    at.segmented_control(key="predict_source").set_value("sample").run(timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "Top emotion" in d.value.columns)
    assert list(table["Model"]) == [f"{BUNDLED_PREDICT_DEFAULT} (bundled)"]  # one model: no ensemble row
    assert abs(table.drop(columns=["Model", "Top emotion"]).sum(axis=1).iloc[0] - 100) < 0.1
    # one model's bars are plain HTML (no Plotly for the browser to load): every class with its percentage
    bars = [e.proto.body for e in at.get("html")]
    classes = [c for c in table.columns if c not in ("Model", "Top emotion")]
    assert len(bars) == 1 and all(f">{c}<" in bars[0] for c in classes) and bars[0].count("%</span>") == len(classes)
    assert f"{table[table['Top emotion'].iloc[0]].iloc[0]:.1f}%" in bars[0]  # the top emotion's value, as in the table
    assert not plotly_figures(at, "predict_models_") and not plotly_figures(at, "predict_ensemble_")
    picker.set_value(["baseline", "compact"]).run(timeout=180)
    table = next(d.value for d in at.dataframe if "Top emotion" in d.value.columns)
    assert list(table["Model"]) == ["baseline (bundled)", "compact (bundled)", "ensemble (mean)"]
    assert plotly_figures(at, "predict_models_") and not at.get("html")  # several models: the Plotly panels
    # the 8-emotion FER+ model is its own dataset group, offered beside these (none by default)
    at.session_state[f"predict_other_models_{fresh_install}"] = ["a-run-deleted-since"]  # chosen, then removed
    at.run(timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    other = at.multiselect(key=f"predict_other_models_{fresh_install}")
    assert other.value == [] and [o.split(" · ")[:2] for o in other.options] == [["ferplus_x2 (bundled)", "fer2013+ferplus"]]
    picker.set_value([BUNDLED_PREDICT_DEFAULT]).run(timeout=180)
    other.set_value(["ferplus_x2"]).run(timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "Top emotion" in d.value.columns)
    assert list(table["Model"]) == [f"{BUNDLED_PREDICT_DEFAULT} (bundled)", "ferplus_x2 (bundled)", "ensemble (mean)"]
    row = table.set_index("Model")
    assert "contempt" in row.columns and row.loc[f"{BUNDLED_PREDICT_DEFAULT} (bundled)", "contempt"] == 0  # 7 classes
    assert np.allclose(row.drop(columns="Top emotion").sum(axis=1), 100, atol=0.1)  # every row in the 8 emotions


def test_home_on_a_fresh_install_shows_the_bundled_models_and_points_to_training(fresh_install):
    at = open_page("home")
    text = all_text(at)
    assert "bundled, trained on FER2013" in text and "Train your own" in text
    assert "Not trained yet on this dataset" in text  # the four transfer models, with their command
    leaderboard = next(d.value for d in at.dataframe if "Accuracy" in d.value.columns)
    assert sorted(leaderboard["Model"]) == [f"{m} (bundled)" for m in BUNDLED]


def test_predict_on_demo_models_points_to_the_real_face_models(tiny_runs_dir, data_dir, monkeypatch):  # noqa: F811
    """Demo-trained models guess on real photos: the page says so and where the FER2013 models are."""
    point_app_at(monkeypatch, tiny_runs_dir, data_dir, bundled_dir=BUNDLED_DIR)
    at = open_page("predict", timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    hint = "learned from the synthetic *demo* faces"
    bundled_fp = json.loads((BUNDLED_DIR / BUNDLED[0] / "metrics.json").read_text())["dataset"]["fingerprint"]
    assert at.selectbox(key="predict_dataset").value != bundled_fp  # the user's own (demo) runs come first
    assert any(hint in c.value for c in at.caption)
    at.selectbox(key="predict_dataset").set_value(bundled_fp).run(timeout=180)
    assert not any(hint in c.value for c in at.caption)
