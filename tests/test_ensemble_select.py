"""benchmarks/ensemble_select.py: the bundled ensemble is chosen on validation, over every subset of candidates."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import ensemble_select  # noqa: E402


def test_ensemble_select_scores_every_subset_on_validation_and_refuses_mixed_runs(tiny_runs_dir, tmp_path, monkeypatch):
    """benchmarks/ensemble_select.py on three tiny demo runs: singles, all subsets, choice = best validation."""
    monkeypatch.setattr(ensemble_select, "CACHE", tmp_path / "cache")
    runs = {p.name.split("_", 1)[1].rsplit("_", 1)[0]: p for p in tiny_runs_dir.iterdir() if p.is_dir()
            and not p.name.startswith(".")}
    picked = [str(runs[m]) for m in ("baseline", "inception_v3", "vgg19")]  # all at 75 px RGB
    out = tmp_path / "select.json"
    assert ensemble_select.main([*picked, "--data", "demo", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [s["run"] for s in result["singles"]] == picked
    assert len(result["subsets"]) == 7  # each run alone, three pairs and the triple
    best = max(s["validation"] for s in result["subsets"])
    assert result["choice"]["validation"] == best and result["chosen_on"].startswith("validation")
    assert all(0 <= s["test"] <= 1 for s in result["subsets"])
    assert len(list((tmp_path / "cache").iterdir())) == 3  # each member scored once
    # --current: the choice against the bundled ensemble, face by face on the same images
    assert ensemble_select.main([*picked, "--data", "demo", "--out", str(out), "--current", *picked[:2]]) == 0
    vs = json.loads(out.read_text())["against_current"]
    pair = next(s for s in result["subsets"] if s["members"] == picked[:2])
    assert vs["members"] == picked[:2] and vs["validation"]["current"] == pair["validation"]
    assert vs["validation"]["choice"] == best and 0 <= vs["validation"]["p_value"] <= 1
    n = result["n"]["validation"]
    assert vs["validation"]["only_choice_right"] - vs["validation"]["only_current_right"] == round(
        (vs["validation"]["choice"] - vs["validation"]["current"]) * n)
    # --smooth: every subset again behind each input blur; the choice still the best validation
    assert ensemble_select.main([*picked, "--data", "demo", "--out", str(out), "--smooth", "0,0.7",
                                 "--current", *picked[:2]]) == 0
    blurred = json.loads(out.read_text())
    assert len(blurred["subsets"]) == 14 and {s["smooth"] for s in blurred["subsets"]} == {0.0, 0.7}
    assert [s for s in blurred["subsets"] if s["smooth"] == 0] == [
        {**s, "smooth": 0.0} for s in sorted(result["subsets"], key=lambda s: (-s["validation"], len(s["members"])))]
    assert blurred["choice"]["validation"] == max(s["validation"] for s in blurred["subsets"])
    assert blurred["against_current"]["validation"]["choice"] == blurred["choice"]["validation"]
    assert len(list((tmp_path / "cache").iterdir())) == 6  # each member once per blur
    assert ensemble_select.main([*picked, "--data", "demo", "--out", str(out), "--smooth", "0,x"]) == 2
    # --photos: validation faces pasted into photos, through the app's detector and crop; the choice
    # maximises the mean of the crops' and the photos' validation accuracy
    assert ensemble_select.main([*picked, "--data", "demo", "--out", str(out), "--photos", "8"]) == 0
    photos = json.loads(out.read_text())
    found = photos["photos"]["found"]
    assert 0 < found <= 8 and photos["n"]["validation_photos"] == found and "photos" in photos["chosen_on"]
    for row in photos["subsets"] + photos["singles"]:
        assert row["score"] == pytest.approx((row["validation"] + row["validation_photos"]) / 2, abs=1e-4)
    assert photos["choice"]["score"] == max(s["score"] for s in photos["subsets"])
    assert [p.name for p in (tmp_path / "cache").glob("photos-*.npz")]  # the crops are cached
    assert ensemble_select.main([*picked, "--data", "demo", "--out", str(out), "--current", "nope"]) == 2
    # one run: only its input blur is chosen (training.ensemble RUN --smooth builds it)
    assert ensemble_select.main([picked[0], "--data", "demo", "--out", str(out), "--smooth", "0,0.5,1"]) == 0
    alone = json.loads(out.read_text())
    assert {tuple(s["members"]) for s in alone["subsets"]} == {(picked[0],)} and len(alone["subsets"]) == 3
    assert alone["choice"]["validation"] == max(s["validation"] for s in alone["singles"])
