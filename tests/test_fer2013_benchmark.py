"""benchmarks/fer2013.py on tiny demo runs: rows per model, an ensemble row, metrics that match the runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from conftest import ROOT
from fer_core import list_runs
from fer_core.demo import make_demo_arrays


def test_benchmark_reevaluates_runs_and_adds_the_ensemble(tiny_runs_dir, tmp_path):
    data = tmp_path / "demo.npz"
    np.savez(data, **make_demo_arrays(per_class=6, image_size=64, seed=0))
    runs = list_runs(tiny_runs_dir).runs
    out = tmp_path / "fer.json"
    proc = subprocess.run([sys.executable, "benchmarks/fer2013.py", "--data", str(data), "--no-peer", "--out", str(out),
                           "--runs", *[str(r.path) for r in runs]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = {r["model"]: r for r in result["rows"]}
    for run in runs:
        row = rows[run.model_name]
        assert np.isclose(row["accuracy"], run.metrics["accuracy"])  # same test split, same model
        assert row["ms_per_face"] > 0 and len(row["confusion_matrix"]) == 8
    ensemble = [r for r in result["rows"] if r["model"].startswith("ensemble")]
    assert len(ensemble) == 1 and 0 <= ensemble[0]["accuracy"] <= 1
    assert "| model | accuracy | macro-F1 |" in proc.stdout
