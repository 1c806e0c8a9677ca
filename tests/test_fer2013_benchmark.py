"""benchmarks/fer2013.py: rows per model, an ensemble row, metrics that match the runs, and the pipeline section."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from fer_core import list_runs
from fer_core.data.demo import make_demo_arrays


def test_benchmark_reevaluates_runs_and_adds_the_ensemble(tiny_runs_dir, tmp_path):
    data = tmp_path / "demo.npz"
    np.savez(data, **make_demo_arrays(per_class=6, image_size=64, seed=0))
    # Two of the five tiny runs, one from scratch and one on a backbone: each run is loaded twice (its row and
    # the pipeline's predictor), and the three other backbones would add ~30 s of graph building only.
    runs = [r for r in list_runs(tiny_runs_dir).runs if r.model_name in ("baseline", "vgg19")]
    assert len(runs) == 2
    out = tmp_path / "fer.json"
    proc = subprocess.run([sys.executable, "benchmarks/fer2013.py", "--data", str(data), "--no-peer", "--out", str(out),
                           "--pipeline-limit", "8", "--runs", *[str(r.path) for r in runs]],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = {r["model"]: r for r in result["rows"]}
    for run in runs:
        row = rows[run.model_name]
        assert np.isclose(row["accuracy"], run.metrics["accuracy"])  # same test split, same model
        assert row["ms_per_face"] > 0 and len(row["confusion_matrix"]) == 8
    ensemble = [r for r in result["rows"] if r["model"].startswith("ensemble")]
    assert len(ensemble) == 1 and 0 <= ensemble[0]["accuracy"] <= 1
    assert "| model | labels | FER2013 test | macro-F1 |" in proc.stdout
    # the pipeline section: demo faces pasted into photos, through Predictor.predict
    pipe = result["pipeline"]
    assert pipe["config"]["n"] >= 8 and pipe["config"]["dataset_fingerprint"] == result["dataset"]["fingerprint"]
    assert set(pipe["predict"]["models"]) == {r.model_name for r in runs} | {"ensemble"}
    p = pipe["predict"]
    assert abs(p["detection_rate"] + p["no_face_rate"] + p["wrong_box_rate"] - 1) < 1e-3
    for r in p["models"].values():
        assert 0 <= r["accuracy"] <= 1 and abs(r["gap"] - (r["direct_accuracy"] - r["accuracy"])) < 1e-3
    assert "Pipeline (synthetic photos" in proc.stdout


@pytest.mark.slow
def test_pipeline_sweep_smoke_on_fer2013(fer2013_path, tmp_path):
    """A tiny pipeline + sweep on FER2013 scenes: YuNet finds most pasted faces; selection names a candidate."""
    out = tmp_path / "fer.json"
    proc = subprocess.run([sys.executable, "benchmarks/fer2013.py", "--data", str(fer2013_path), "--no-peer",
                           "--runs", "models/compact", "--pipeline-limit", "14", "--sweep", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pipe = json.loads(out.read_text())["pipeline"]
    assert pipe["config"]["n"] == 14 and pipe["config"]["seed"] == 0
    assert pipe["predict"]["detection_rate"] >= 0.5  # ≈ 0.85 on 600 scenes
    plus = pipe["predict"]["models"]["compact"].get("ferplus")
    if plus is not None:  # votes beside the data: the crowd's gap also on the faces found
        assert 0 < plus["n_detected"] <= plus["n"] and 0 <= plus["accuracy_detected"] <= 1
        paper = plus.get("paper")  # the FER+ paper's test set lies inside the plurality one
        assert paper is None or 0 < paper["n"] <= plus["n"]
    sweep = pipe["sweep"]
    assert abs(sweep["validation"]["n"] - 14) <= 2 and set(sweep["validation"]["detection_rate"]) == {"0.5", "0.6", "0.7", "0.8", "0.9"}
    chosen = sweep["selection"]["chosen"]
    assert chosen in sweep["validation"]["candidates"] or chosen in sweep["validation"]["tta"]
    assert sweep["selection"]["test"] == {**sweep["test"]["candidates"], **sweep["test"]["tta"]}[chosen]
