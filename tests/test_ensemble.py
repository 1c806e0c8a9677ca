"""``python -m training.ensemble``: several runs saved as ONE run folder (tiny demo runs, seconds)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from fer_core import load_dataset, load_run
from fer_core.fit.evaluation import classification_metrics
from fer_core.fit.train import TrainConfig, train_one
from training import ensemble as E

TINY = dict(batch_size=16, patience=0, precision="float32")


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two compact runs on the same demo data (8 classes × 6 faces, 48 px, seed 0); the second with mirror TTA."""
    ds = load_dataset("demo", demo_per_class=6, demo_image_size=48)
    out = tmp_path_factory.mktemp("members")
    a = train_one(ds, TrainConfig(model="compact", epochs=1, **TINY), out, command="tiny a")
    b = train_one(ds, TrainConfig(model="compact", epochs=2, tta_flip=True, **TINY), out, command="tiny b")
    return ds, [load_run(a), load_run(b)]


@pytest.fixture(scope="module")
def ensemble_run(members, tmp_path_factory):
    _, runs = members
    out = tmp_path_factory.mktemp("ensemble")
    lines = []
    path = E.build_ensemble_run(E.check_members([str(r.path) for r in runs]), "demo", out,
                                command="python -m training.ensemble …", echo=lines.append)
    return load_run(path), lines


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.ensemble", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_ensemble_is_one_run_that_equals_the_members_mean(members, ensemble_run):
    ds, runs = members
    run, lines = ensemble_run
    model = run.load_model()  # fer_core.store.runs: safe_mode=True, nested members with FlipConcat/PairMean
    assert model.input_shape == (None, 48, 48, 1)
    nested = model.get_layer("member2_compact")
    assert type(nested.get_layer("tta_flip")).__name__ == "FlipConcat"
    assert type(nested.get_layer("tta_mean")).__name__ == "PairMean"
    member_models = [r.load_model() for r in runs]
    x = np.random.default_rng(1).integers(0, 256, (5, 48, 48, 1)).astype(np.float32)
    want = np.mean([np.asarray(m(x, training=False)) for m in member_models], axis=0)
    assert np.max(np.abs(np.asarray(model(x, training=False)) - want)) <= 1e-5

    # Scored on the members' split: the metrics are those of the members' mean there.
    from fer_core.compute.forward import compiled_forward, predict_batches
    from fer_core.data.preprocess import prepare_images

    xs, ys = ds.splits["test"]
    px = prepare_images(xs, 48, 1)
    mean = np.mean([predict_batches(compiled_forward(m), px, 64) for m in member_models], axis=0)
    expected = classification_metrics(ys, mean, ds.class_names)
    m = run.metrics
    assert m["split"] == "test" and m["accuracy"] == pytest.approx(expected["accuracy"])
    assert m["confusion_matrix"] == expected["confusion_matrix"] and set(m["per_class"]) == set(ds.class_names)
    assert m["model"] == "compact_ensemble" and m["class_names"] == list(ds.class_names)
    assert m["dataset"] == runs[0].metrics["dataset"] and run.fingerprint == runs[0].fingerprint
    assert [x["run"] for x in m["members"]] == [r.id for r in runs]
    assert [x["accuracy"] for x in m["members"]] == [r.metrics["accuracy"] for r in runs]
    assert [x["command"] for x in m["members"]] == ["tiny a", "tiny b"]
    # each member's setting and seed: what groups this ensemble with its seed repeats (fer_core.store.seeds)
    from fer_core.store import seeds

    assert [x["setting"] for x in m["members"]] == [json.loads(seeds.setting_key(r)) for r in runs]
    assert [x["seed"] for x in m["members"]] == [seeds.seed_of(r) for r in runs]
    assert seeds.setting(run)["members"] and seeds.seed_of(run) == tuple(sorted(seeds.seed_of(r) for r in runs))
    assert m["model_size_bytes"] == run.model_path.stat().st_size and m["latency_ms"] > 0
    assert m["params"] == sum(r.metrics["params"] for r in runs) and m["ensemble_check"]["max_abs_diff"] <= 1e-5
    assert m["command"].startswith("python -m training.ensemble")
    assert run.config["model"]["kind"] == "ensemble" and run.config["model"]["gradcam_layer"] is None
    assert not any(p.name.startswith(".tmp-") for p in run.path.parent.iterdir())
    # The report: each member's accuracy, the ensemble's, its size and ms/face.
    text = "\n".join(lines)
    assert all(r.id in text for r in runs) and f"accuracy {m['accuracy']:.4f}" in text
    assert "ms/face" in text and " MB" in text


def test_smooth_puts_one_blur_in_front_of_the_members(members, tmp_path):
    """--smooth: the saved ensemble blurs once, then averages the members on the blurred faces."""
    from scipy.ndimage import gaussian_filter

    ds, runs = members
    path = E.build_ensemble_run(E.check_members([str(r.path) for r in runs]), "demo", tmp_path, smooth=0.7,
                                command="python -m training.ensemble … --smooth 0.7", echo=lambda *_: None)
    run = load_run(path)
    model = run.load_model()
    blur = model.get_layer("input_smooth")
    assert type(blur).__name__ == "GaussianSmooth" and blur.sigma == 0.7
    x = np.random.default_rng(2).integers(0, 256, (4, 48, 48, 1)).astype(np.float32)
    seen = gaussian_filter(x, sigma=(0, 0.7, 0.7, 0), mode="nearest", truncate=blur.radius / 0.7)
    want = np.mean([np.asarray(r.load_model()(seen, training=False)) for r in runs], axis=0)
    assert np.max(np.abs(np.asarray(model(x, training=False)) - want)) <= 1e-5
    unblurred = np.mean([np.asarray(r.load_model()(x, training=False)) for r in runs], axis=0)
    assert np.max(np.abs(np.asarray(model(x, training=False)) - unblurred)) > 1e-4  # the blur is really there
    assert run.metrics["config"]["smooth"] == 0.7 and run.config["model"]["input_smooth_sigma"] == 0.7
    from ui import tables  # what Predict's caption says the model is

    assert tables.ensemble_text(run) == "the mean of 2 compact networks behind a 0.7 px input blur"
    assert tables.ensemble_text(runs[0]) is None
    from fer_core.store import seeds  # a blurred ensemble is no seed repeat of the plain one

    plain = E.build_ensemble_run(E.check_members([str(r.path) for r in runs]), "demo", tmp_path / "plain",
                                 echo=lambda *_: None)
    assert seeds.setting_key(run) != seeds.setting_key(load_run(plain))
    assert "smooth" not in seeds.setting(load_run(plain))
    assert tables.ensemble_text(load_run(plain)) == "the mean of 2 compact networks"
    bad = _cli(str(runs[0].path), str(runs[1].path), "--data", "demo", "--out", str(tmp_path / "x"), "--smooth", "5")
    assert bad.returncode == 2 and "--smooth 5" in bad.stderr and not (tmp_path / "x").exists()


def test_app_can_use_the_ensemble(ensemble_run):
    from ui import charts, tables

    run, _ = ensemble_run
    # Compare: no epochs of its own, empty curves rather than a crash; leaderboard row.
    for metric in ("accuracy", "val_loss"):
        charts.history_figure([run], metric)
    small = charts.small_multiples([run])
    # Its panel says why it is empty instead of showing bare axes.
    assert any("mean of 2 trained runs" in (a.text or "") for a in small.layout.annotations)
    assert tables.leaderboard([run]).iloc[0]["Model"] == "compact_ensemble"

    from fer_core.errors import FERError
    from fer_core.inference.predictor import Predictor

    p = Predictor([run], batching=False)
    try:
        face = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
        res = p.predict(face, detect=False)
        probs = res.faces[0].predictions[0].probs
        assert probs.shape == (8,) and abs(float(probs.sum()) - 1) < 1e-4
        with pytest.raises(FERError, match="Grad-CAM is not available for compact_ensemble: it averages 2 models"):
            p.gradcam(res.faces[0], run.id)
    finally:
        p.close()


def test_an_ensemble_can_be_published(ensemble_run, tmp_path):
    from fer_core.store.publish import publish_run

    run, _ = ensemble_run
    pub = publish_run(run.path, tmp_path / "models" / "ensemble")  # checks its outputs against the original
    assert pub.kind == "full" and pub.max_abs_diff <= 1e-5
    assert load_run(pub.dest).model_name == "compact_ensemble"


def test_cli_writes_the_run_and_prints_every_accuracy(members, tmp_path):
    _, (a, b) = members
    proc = _cli(str(a.path), str(b.path), "--data", "demo", "--out", str(tmp_path), "--name", "duo")
    assert proc.returncode == 0, proc.stderr
    (path,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    run = load_run(path)
    assert run.model_name == "duo" and path.name.split("_")[1] == "duo"
    assert run.metrics["command"] == f"python -m training.ensemble {a.path} {b.path} --data demo --out {tmp_path} --name duo"
    out = proc.stdout
    for r in (a, b):
        assert f"{r.id}  accuracy {r.metrics['accuracy']:.4f}" in out
    assert f"accuracy {run.metrics['accuracy']:.4f}" in out and "ms/face" in out and f"saved {path}" in out


def _copy(run, dst, edit_metrics=None, edit_config=None):
    shutil.copytree(run.path, dst)
    for name, edit in (("metrics.json", edit_metrics), ("config.json", edit_config)):
        if edit:
            data = json.loads((dst / name).read_text())
            edit(data)
            (dst / name).write_text(json.dumps(data))
    return str(dst)


def _swap_classes(m):
    m["class_names"][0], m["class_names"][1] = m["class_names"][1], m["class_names"][0]


@pytest.mark.parametrize("case, needle", [
    ("classes", "different classes"),
    ("fingerprint", "different data"),
    ("shape", "different inputs"),
    ("missing", "does not exist"),
    ("one", "at least two"),
    ("twice", "given twice"),
])
def test_members_that_cannot_be_averaged_exit_2_with_one_line(members, tmp_path, case, needle):
    _, (a, b) = members
    other = {
        "classes": lambda: _copy(b, tmp_path / "b", edit_metrics=_swap_classes),
        "fingerprint": lambda: _copy(b, tmp_path / "b", edit_metrics=lambda m: m["dataset"].update(fingerprint="0" * 16)),
        "shape": lambda: _copy(b, tmp_path / "b", edit_config=lambda c: c["model"].update(image_size=64)),
        "missing": lambda: str(tmp_path / "nope"),
        "one": lambda: None,
        "twice": lambda: str(a.path),
    }[case]()
    out = tmp_path / "out"
    proc = _cli(str(a.path), *([other] if other else []), "--data", "demo", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_wrong_data_is_refused_before_anything_is_written(members, tmp_path):
    _, (a, b) = members
    out = tmp_path / "out"
    proc = _cli(str(a.path), str(b.path), "--data", "demo", "--seed", "3", "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "dataset fingerprint" in lines[0] and "members'" in lines[0], proc.stderr
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]


def test_one_run_with_smooth_is_that_run_behind_the_blur(members, tmp_path):
    """training.ensemble RUN --smooth SIGMA: a single run (e.g. the user's own --augment run) behind the input blur."""
    from scipy.ndimage import gaussian_filter

    from fer_core.store import seeds
    from ui import tables

    _, (a, b) = members
    proc = _cli(str(b.path), "--smooth", "0.5", "--data", "demo", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "compact_blur" in proc.stdout and "vs the run without the blur" in proc.stdout
    (path,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    run = load_run(path)
    assert run.model_name == "compact_blur" and run.input_smooth_sigma == 0.5
    model, member = run.load_model(), b.load_model()
    x = np.random.default_rng(3).integers(0, 256, (4, 48, 48, 1)).astype(np.float32)
    radius = model.get_layer("input_smooth").radius
    seen = gaussian_filter(x, sigma=(0, 0.5, 0.5, 0), mode="nearest", truncate=radius / 0.5)
    got = np.asarray(model(x, training=False))
    assert np.max(np.abs(got - np.asarray(member(seen, training=False)))) <= 1e-5
    assert np.max(np.abs(got - np.asarray(member(x, training=False)))) > 1e-4  # the blur is really there
    assert tables.ensemble_text(run) == "one compact network behind a 0.5 px input blur"
    assert tables.single_text(run) == "1 seed"
    # its seed repeats are other runs of the same recipe behind the same blur
    assert seeds.setting(run)["members"] == [json.loads(seeds.setting_key(b))] and seeds.setting(run)["smooth"] == 0.5
    # without --smooth, one run is refused: it would be a copy of that run
    bad = _cli(str(b.path), "--data", "demo", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--smooth" in bad.stderr and not (tmp_path / "x").exists()
