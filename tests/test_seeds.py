"""Runs that differ only by seed (fer_core.store.seeds) and how the tables and figures show them.

The run folders here are written by hand (no training): the grouping and the
statistics only read ``config.json``, ``metrics.json`` and ``history.json``.
The scores are made up to test the arithmetic; no page shows them as results.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from fer_core import list_runs
from fer_core.store.seeds import (Spread, group_by_seed, groups_for, seed_of, setting, setting_key, ties,
                            within_spread)

CLASSES = ["a", "b", "c"]
FP = "0123456789abcdef"


def make_run(root: Path, name: str, *, model: str = "baseline", seed: int = 0, acc: float = 0.5, f1: float = 0.4,
             history: dict | None = None, created: float = 1000.0, fingerprint: str = FP, cm=None,
             model_image_size: int = 48, **config) -> Path:
    """A complete run folder (an empty model.keras stands in for the model: nothing here loads it)."""
    folder = root / name
    folder.mkdir(parents=True)
    train_config = {"model": model, "epochs": 3, "batch_size": 16, "learning_rate": 1e-3, "image_size": 48,
                    "weights": "none", "seed": seed, "patience": 2, "init_from": None, **config}
    (folder / "config.json").write_text(json.dumps({
        "train_config": train_config,
        "model": {"name": model, "kind": "scratch", "image_size": model_image_size, "channels": 3},
        "n_classes": len(CLASSES), "class_names": CLASSES}))
    history = history or {"loss": [1.0, 0.8, 0.7], "accuracy": [0.4, 0.5, acc],
                          "val_loss": [1.1, 0.9, 0.8], "val_accuracy": [0.35, 0.45, acc]}
    (folder / "history.json").write_text(json.dumps(history))
    cm = cm or [[4, 1, 0], [1, 3, 1], [0, 1, 4]]
    (folder / "metrics.json").write_text(json.dumps({
        "model": model, "accuracy": acc, "macro_f1": f1, "loss": 0.8, "confusion_matrix": cm,
        "class_names": CLASSES, "split": "test", "n_samples": 15, "created": created,
        "per_class": {c: {"f1": f1 + 0.01 * i, "support": 5} for i, c in enumerate(CLASSES)},
        "dataset": {"name": "toy", "source": "toy.npz", "fingerprint": fingerprint,
                    "split_sizes": {"train": 30, "validation": 15, "test": 15}, "class_names": CLASSES},
        "epochs_run": max(len(v) for v in history.values()), "params": 1234, "model_size_bytes": 10_000,
        "config": train_config}))
    (folder / "model.keras").write_bytes(b"")
    return folder


def runs_of(root: Path) -> dict[str, object]:
    return {r.id: r for r in list_runs(root).runs}


# --------------------------------------------------------------------------- grouping


def test_runs_that_differ_only_by_seed_form_one_group(tmp_path):
    make_run(tmp_path, "b0", seed=0, acc=0.60, created=1)
    make_run(tmp_path, "b1", seed=1, acc=0.62, created=2)
    make_run(tmp_path, "b2", seed=2, acc=0.67, created=3)
    make_run(tmp_path, "lr", seed=1, learning_rate=5e-4, created=4)  # another setting
    make_run(tmp_path, "other-model", model="compact", seed=1, created=5)
    make_run(tmp_path, "other-data", seed=1, fingerprint="feedfacefeedface", created=6)
    groups = group_by_seed(list_runs(tmp_path).runs)
    sizes = {g.id: g.n for g in groups}
    assert sizes == {"b2": 3, "lr": 1, "other-model": 1, "other-data": 1}  # newest run names its group
    three = next(g for g in groups if g.n == 3)
    assert three.seeds == [0, 1, 2]
    assert [r.id for r in three.runs][0] == "b2"


def test_what_the_key_ignores_and_what_it_does_not(tmp_path):
    """image_size null = the size the model was built with; init_from compares the starting run's folder name."""
    make_run(tmp_path, "explicit", seed=0, image_size=48)
    make_run(tmp_path, "default", seed=1, image_size=None, model_image_size=48)
    make_run(tmp_path, "from-a", seed=0, init_from="runs/fer2013/2026_compact_x")
    make_run(tmp_path, "from-a-elsewhere", seed=1, init_from="/home/me/benchmarks/runs/2026_compact_x/")
    make_run(tmp_path, "from-b", seed=2, init_from="runs/fer2013/2026_compact_y")
    make_run(tmp_path, "weights", seed=3, weights="imagenet")  # ignored by a scratch model, but asked for: differs
    r = runs_of(tmp_path)
    assert setting_key(r["explicit"]) == setting_key(r["default"])
    assert setting_key(r["from-a"]) == setting_key(r["from-a-elsewhere"])
    assert setting_key(r["from-a"]) != setting_key(r["from-b"])
    assert setting_key(r["weights"]) != setting_key(r["explicit"])


def test_a_key_missing_in_one_config_is_a_difference(tmp_path):
    make_run(tmp_path, "old", seed=0)
    new = make_run(tmp_path, "new", seed=1, tta_flip=False)
    r = runs_of(tmp_path)
    assert setting_key(r["old"]) != setting_key(r["new"])
    assert new.is_dir()


def test_a_run_without_training_config_stands_alone(tmp_path):
    """An ensemble built before its members' settings were recorded groups with nothing."""
    for name in ("ens1", "ens2"):
        folder = make_run(tmp_path, name, model="compact_x2")
        cfg = json.loads((folder / "config.json").read_text())
        del cfg["train_config"]
        (folder / "config.json").write_text(json.dumps(cfg))
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["config"] = {"members": ["x", "y"]}
        (folder / "metrics.json").write_text(json.dumps(metrics))
    assert [g.n for g in group_by_seed(list_runs(tmp_path).runs)] == [1, 1]


def _ensemble(root: Path, name: str, members, *, acc: float, created: float) -> None:
    """An ensemble run folder whose metrics record its members' runs, as ``training.ensemble`` writes it."""
    folder = make_run(root, name, model="compact_x2", acc=acc, created=created)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["train_config"]
    cfg["model"]["kind"] = "ensemble"
    (folder / "config.json").write_text(json.dumps(cfg))
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["config"] = {"seed": seed_of(members[0]), "members": [m.id for m in members]}
    metrics["members"] = [{"run": m.id, "setting": setting(m), "seed": seed_of(m)} for m in members]
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_ensembles_of_the_same_recipes_from_other_seeds_group(tmp_path):
    """An ensemble is set by its members' recipes (in any order); its seeds are its members' seeds."""
    members = tmp_path / "members"
    for name, seed, lr in (("a0", 0, 1e-3), ("b2", 2, 5e-4), ("a10", 10, 1e-3), ("b12", 12, 5e-4),
                           ("a20", 20, 1e-3), ("a21", 21, 1e-3)):
        make_run(members, name, model="compact", seed=seed, learning_rate=lr)
    m = runs_of(members)
    ens = tmp_path / "ens"
    _ensemble(ens, "x2", [m["a0"], m["b2"]], acc=0.68, created=1)
    _ensemble(ens, "x2-repeat", [m["b12"], m["a10"]], acc=0.67, created=2)  # same recipes, listed the other way
    _ensemble(ens, "x2-rebuilt", [m["a0"], m["b2"]], acc=0.68, created=3)  # the same members again: counts once
    _ensemble(ens, "two-a", [m["a20"], m["a21"]], acc=0.66, created=4)  # another recipe mix: apart
    groups = {g.run.id: g for g in group_by_seed(list_runs(ens).runs)}
    assert sorted(groups) == ["two-a", "x2-rebuilt"]
    assert groups["x2-rebuilt"].seeds == [(0, 2), (10, 12)]
    assert groups["x2-rebuilt"].accuracy.mean == pytest.approx(0.675)
    assert groups["two-a"].n == 1


def test_the_same_seed_twice_counts_once_newest_kept(tmp_path):
    make_run(tmp_path, "s0-old", seed=0, acc=0.50, created=1)
    make_run(tmp_path, "s0-new", seed=0, acc=0.55, created=3)
    make_run(tmp_path, "s1", seed=1, acc=0.60, created=2)
    (group,) = group_by_seed(list_runs(tmp_path).runs)
    assert group.n == 2 and group.seeds == [0, 1]
    assert sorted(r.id for r in group.runs) == ["s0-new", "s1"]
    assert group.accuracy.mean == pytest.approx(0.575)


def test_groups_for_keeps_the_shown_run_first_and_adds_its_seed_repeats(tmp_path):
    make_run(tmp_path, "b0", seed=0, created=1)
    make_run(tmp_path, "b1", seed=1, created=2)
    make_run(tmp_path, "c0", model="compact", seed=0, created=3)
    r = runs_of(tmp_path)
    baseline, compact = groups_for([r["b1"], r["c0"]], list(r.values()))
    assert [x.id for x in baseline.runs] == ["b1", "b0"]
    assert compact.n == 1 and compact.run is r["c0"]


# --------------------------------------------------------------------------- statistics


def test_mean_and_sample_std(tmp_path):
    accs, f1s = [0.60, 0.62, 0.67], [0.50, 0.55, 0.51]
    for i, (a, f) in enumerate(zip(accs, f1s)):
        make_run(tmp_path, f"s{i}", seed=i, acc=a, f1=f, created=i)
    (group,) = group_by_seed(list_runs(tmp_path).runs)
    assert group.accuracy.mean == pytest.approx(statistics.mean(accs))
    assert group.accuracy.std == pytest.approx(statistics.stdev(accs))  # ddof=1, not the population std
    assert group.macro_f1.std == pytest.approx(statistics.stdev(f1s))
    assert group.accuracy.n == 3
    single = Spread.of([0.1625])
    assert single.mean == 0.1625 and single.std is None  # one run: exactly its value, spread unknown


def test_confusion_matrices_are_summed(tmp_path):
    make_run(tmp_path, "s0", seed=0, cm=[[5, 0, 0], [1, 4, 0], [0, 0, 5]])
    make_run(tmp_path, "s1", seed=1, cm=[[3, 2, 0], [0, 5, 0], [1, 1, 3]])
    (group,) = group_by_seed(list_runs(tmp_path).runs)
    assert group.confusion_matrix() == [[8, 2, 0], [1, 9, 0], [1, 1, 8]]


def test_curves_of_different_lengths(tmp_path):
    """Early stopping: epoch 3 is the mean of the two seeds that reached it, and says so."""
    make_run(tmp_path, "long1", seed=0, history={"val_accuracy": [0.2, 0.4, 0.6], "loss": [1, 1, 1]})
    make_run(tmp_path, "long2", seed=1, history={"val_accuracy": [0.4, 0.6, 0.8], "loss": [1, 1, 1]})
    make_run(tmp_path, "short", seed=2, history={"val_accuracy": [0.3, 0.5], "loss": [1, 1]})
    (group,) = group_by_seed(list_runs(tmp_path).runs)
    c = group.curve("val_accuracy")
    assert c.epochs == [1, 2, 3]
    assert c.count == [3, 3, 2] and c.full == 2 and c.n == 3
    assert c.mean == pytest.approx([0.3, 0.5, 0.7])
    assert c.low == pytest.approx([0.2, 0.4, 0.6]) and c.high == pytest.approx([0.4, 0.6, 0.8])
    assert c.std[2] == pytest.approx(statistics.stdev([0.6, 0.8]))


# --------------------------------------------------------------------------- the tie rule


def test_tie_rule_overlapping_intervals():
    a = Spread(mean=0.670, std=0.004, n=3)
    assert within_spread(a, Spread(mean=0.676, std=0.003, n=3))  # 0.666–0.674 meets 0.673–0.679
    assert not within_spread(a, Spread(mean=0.680, std=0.003, n=3))  # 0.674 < 0.677
    assert within_spread(a, Spread(mean=0.672, std=None, n=1))  # a single run inside the interval
    assert not within_spread(a, Spread(mean=0.675, std=None, n=1))
    assert not within_spread(Spread(0.5, None, 1), Spread(0.5, None, 1))  # two single runs: spread unknown


def test_ties_pairs_better_first(tmp_path):
    for i, acc in enumerate([0.60, 0.64]):
        make_run(tmp_path, f"b{i}", seed=i, acc=acc, created=i)  # 0.62 ± 0.028
    make_run(tmp_path, "c", model="compact", seed=0, acc=0.63, created=5)  # inside
    make_run(tmp_path, "v", model="vgg19", seed=0, acc=0.80, created=6)  # far above
    groups = group_by_seed(list_runs(tmp_path).runs)
    pairs = [(a.model_name, b.model_name) for a, b in ties(groups)]
    assert pairs == [("compact", "baseline")]


# --------------------------------------------------------------------------- tables and figures


def test_leaderboard_rows_for_groups_and_single_runs(tmp_path):
    from ui import tables

    for i, acc in enumerate([0.668, 0.672]):
        make_run(tmp_path, f"b{i}", seed=i, acc=acc, f1=0.6, created=i)
    make_run(tmp_path, "c", model="compact", seed=0, acc=0.669, created=5)
    make_run(tmp_path, "v", model="vgg19", seed=0, acc=0.20, created=6)
    r = runs_of(tmp_path)
    shown = groups_for([r["b1"], r["c"], r["v"]], list(r.values()))
    board = tables.leaderboard(shown).set_index("Model")
    assert board.loc["baseline", "Accuracy over seeds"] == "67.0 ± 0.3 %, 2 seeds"
    assert board.loc["baseline", "Accuracy"] == 67.0  # the bar is the mean
    assert board.loc["compact", "Accuracy over seeds"] == "1 seed"  # beside repeats: its spread is unknown
    assert board.loc["compact", "Accuracy"] == 66.9
    assert "within seed spread of baseline" in board.loc["compact", "Note"]
    assert "within seed spread of compact" in board.loc["baseline", "Note"]
    assert board.loc["vgg19", "Note"] == ""
    assert board.loc["baseline", "Run"] == "b1 (+1 more seed)"
    notes = tables.tie_notes(shown)
    assert len(notes) == 1 and "**baseline** and **compact**" in notes[0]
    # a group of one is read exactly as its run
    assert tables.leaderboard([r["v"]]).equals(tables.leaderboard(groups_for([r["v"]], [r["v"]])))
    # with no repeats anywhere the seed columns stay blank rather than saying "1 seed" on every row
    assert tables.leaderboard([r["c"], r["v"]])["Accuracy over seeds"].tolist() == ["", ""]


def test_figures_draw_a_band_for_several_seeds_only(tmp_path):
    from ui import charts

    make_run(tmp_path, "b0", seed=0, history={"accuracy": [0.3, 0.5, 0.7], "val_accuracy": [0.2, 0.4, 0.6]})
    make_run(tmp_path, "b1", seed=1, history={"accuracy": [0.4, 0.6], "val_accuracy": [0.4, 0.6]})
    make_run(tmp_path, "c", model="compact", seed=0, history={"accuracy": [0.3, 0.5, 0.7],
                                                              "val_accuracy": [0.3, 0.5, 0.7]})
    r = runs_of(tmp_path)
    shown = groups_for([r["b0"], r["c"]], list(r.values()))
    fig = charts.history_figure(shown, "val_accuracy")
    by_name = {t.name: t for t in fig.data}
    band = by_name["baseline" + charts.BAND_SUFFIX]
    assert band.fill == "toself"
    assert list(band.y) == pytest.approx([40.0, 60.0, 60.0, 60.0, 40.0, 20.0])  # highest seed out, lowest back
    assert list(by_name["baseline"].y) == pytest.approx([30.0, 50.0])  # the mean where both seeds ran
    assert list(by_name["baseline (fewer seeds)"].y) == pytest.approx([50.0, 60.0])  # one seed reached epoch 3
    assert list(by_name["compact"].y) == pytest.approx([30.0, 50.0, 70.0])  # single run: unchanged
    assert not any(t.name.startswith("compact") and t.name != "compact" for t in fig.data)
    cm = charts.confusion_figure(shown[0])
    assert "2 seeds" in cm.layout.title.text
    small = charts.small_multiples(shown, "accuracy")
    assert sum(1 for t in small.data if (t.name or "").endswith(charts.BAND_SUFFIX)) == 2  # train + validation


# --------------------------------------------------------------------------- seed repeats shipped without weights


def repeat_of(root: Path, name: str, **kw) -> Path:
    """A metrics-only seed repeat in ``<root>/seeds/`` (what ``training.publish --metrics-only`` writes)."""
    folder = make_run(root / "seeds", name, **kw)
    (folder / "model.keras").unlink()
    return folder


def test_metrics_only_repeats_join_the_group_but_never_the_runs(tmp_path):
    from fer_core.errors import RunStoreError

    make_run(tmp_path, "b0", seed=0, acc=0.60, created=3)
    repeat_of(tmp_path, "b1", seed=1, acc=0.62, created=1)
    repeat_of(tmp_path, "b2", seed=2, acc=0.67, created=2)
    listing = list_runs(tmp_path)
    assert [r.id for r in listing.runs] == ["b0"]  # nothing that loads a model sees the repeats
    assert sorted(r.id for r in listing.repeats) == ["b1", "b2"] and not listing.warnings
    assert all(r.metrics_only for r in listing.repeats)
    with pytest.raises(RunStoreError, match="without its weights"):
        listing.repeats[0].load_model()
    (group,) = groups_for(listing.runs, listing.seed_pool)
    assert group.run.id == "b0" and sorted(group.seeds) == [0, 1, 2]
    assert group.accuracy.mean == pytest.approx(0.63) and group.accuracy.n == 3
    assert groups_for(listing.runs, listing.runs)[0].n == 1  # without the pool: the run alone


def test_a_broken_repeat_is_a_warning_and_a_repeat_needs_no_model_file(tmp_path):
    make_run(tmp_path, "b0", seed=0)
    broken = repeat_of(tmp_path, "b1", seed=1)
    (broken / "metrics.json").write_text("{")
    listing = list_runs(tmp_path)
    assert [r.id for r in listing.runs] == ["b0"] and listing.repeats == []
    (warning,) = listing.warnings
    assert warning.startswith("skipped seed repeat b1: 'metrics.json' is not valid JSON")


# --------------------------------------------------------------------------- recipes of several cycles (--init-from chains)


def continued(root: Path, name: str, *, start: dict, **kw) -> Path:
    """A run continued from another (``--init-from``) whose metrics record the start as the trainer does."""
    folder = make_run(root, name, init_from=f"runs/fer2013/{start['run']}", **kw)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["init_from"] = start
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def cycle1(run: str, seed: int, epochs: int = 60) -> dict:
    cfg = {"model": "compact", "epochs": epochs, "learning_rate": 1e-3, "seed": seed, "init_from": None}
    return {"run": run, "epochs": epochs, "train_config": cfg, "init_from": None,
            "command": f"python -m training --data ../d/fer2013.npz --models compact --epochs {epochs} "
                       f"--seed {seed} --out runs/fer2013"}


def test_chains_of_the_same_recipe_with_other_seeds_group(tmp_path):
    """Cycle 2 from cycle 1, both seeds changed: a seed repeat of the two-cycle recipe; another cycle 1 is not."""
    continued(tmp_path, "chain-a", seed=1, start=cycle1("c1-seed0", 0))
    continued(tmp_path, "chain-b", seed=3, start=cycle1("c1-seed2", 2))
    continued(tmp_path, "chain-45", seed=5, start=cycle1("c1-seed4", 4, epochs=45))  # cycle 1 was shorter
    r = runs_of(tmp_path)
    assert setting_key(r["chain-a"]) == setting_key(r["chain-b"])
    assert setting_key(r["chain-a"]) != setting_key(r["chain-45"])
    (group, other) = sorted(group_by_seed(r.values()), key=lambda g: -g.n)
    assert group.n == 2 and other.n == 1


def test_older_records_compare_the_starting_command_without_seed_and_paths(tmp_path):
    """Runs continued before the chain's configs were recorded: the start's command stands for its setting."""
    old = {k: v for k, v in cycle1("c1-seed0", 0).items() if k not in ("train_config", "init_from")}
    other = dict(cycle1("c1-seed2", 2), train_config=None)
    other["command"] = other["command"].replace("--out runs/fer2013", "--out /elsewhere/runs") + " "
    longer = {k: v for k, v in cycle1("c1-seed4", 4, epochs=45).items() if k != "train_config"}
    continued(tmp_path, "old", seed=1, start=old)
    continued(tmp_path, "other", seed=3, start=other)
    continued(tmp_path, "longer", seed=5, start=longer)
    make_run(tmp_path, "unrecorded", seed=7, init_from="runs/fer2013/c1-seed6")  # no record: its folder name
    r = runs_of(tmp_path)
    assert setting_key(r["old"]) == setting_key(r["other"])
    assert setting_key(r["old"]) != setting_key(r["longer"])
    assert setting_key(r["unrecorded"]) != setting_key(r["old"])


def test_the_bundled_compact_recipe_repeated_with_other_seeds_is_its_seed_repeat(tmp_path):
    """Both cycles of models/compact's recorded commands, rerun with other seeds as a user would: one group."""
    import shlex
    from dataclasses import asdict

    from fer_core.store.runs import BUNDLED_DIR, load_run
    from training.cli import build_parser, train_configs

    bundled = load_run(BUNDLED_DIR / "compact")

    def config_of(command: str, seed: int, init_from: str | None = None) -> dict:
        argv = shlex.split(command)[3:]
        i = argv.index("--seed")
        argv[i + 1] = str(seed)
        if init_from:
            argv[argv.index("--init-from") + 1] = init_from
        args = build_parser().parse_args(argv)
        return asdict(train_configs(args, [args.models], [seed])[0])

    c1 = config_of(bundled.metrics["init_from"]["command"], seed=10)
    c2 = config_of(bundled.metrics["command"], seed=11, init_from="runs/again/c1-seed10")
    folder = make_run(tmp_path, "again", model="compact", seed=11)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["train_config"], cfg["model"] = c2, bundled.config["model"]
    (folder / "config.json").write_text(json.dumps(cfg))
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.update(dataset=bundled.metrics["dataset"], split=bundled.metrics["split"],
                   init_from={"run": "c1-seed10", "train_config": c1, "init_from": None, "command": "…"})
    (folder / "metrics.json").write_text(json.dumps(metrics))
    again = load_run(folder)
    assert setting_key(again) == setting_key(bundled)
    assert sorted(groups_for([bundled], [bundled, again])[0].seeds) == [1, 11]
    c2["epochs"] = 30  # a shorter second cycle is another recipe
    cfg["train_config"] = c2
    (folder / "config.json").write_text(json.dumps(cfg))
    assert setting_key(load_run(folder)) != setting_key(bundled)


def test_the_bundled_ensemble_groups_with_an_ensemble_of_its_recipes_from_other_seeds(tmp_path):
    """models/compact_x2_blur records its members' settings, so the same recipes averaged from other seeds
    (built by ``training.ensemble``, published with ``--metrics-only``) read as its seed repeat."""
    from fer_core.store.runs import BUNDLED_DIR, load_run

    bundled = load_run(BUNDLED_DIR / "compact_x2_blur")
    assert seed_of(bundled) == (11, 13) and all(m["setting"] for m in bundled.metrics["members"])
    repeat = tmp_path / "repeat"
    shutil.copytree(BUNDLED_DIR / "compact_x2_blur", repeat)
    metrics = json.loads((repeat / "metrics.json").read_text())
    metrics["members"] = [dict(m, seed=m["seed"] + 100) for m in reversed(metrics["members"])]
    metrics["accuracy"], metrics["created"] = 0.675, metrics["created"] + 1
    (repeat / "metrics.json").write_text(json.dumps(metrics))
    for key in ("published_from", "bundled_from"):  # a freshly built ensemble, not a published one
        metrics.pop(key, None)
    (repeat / "metrics.json").write_text(json.dumps(metrics))
    group = groups_for([bundled], [bundled, load_run(repeat)])[0]
    assert group.seeds == [(11, 13), (111, 113)] and group.n == 2
    # shipped as the README says (publish --metrics-only), the app's listing reads it as the repeat
    from fer_core.store.publish import publish_metrics

    into = tmp_path / "models"
    shutil.copytree(BUNDLED_DIR / "compact_x2_blur", into / "compact_x2_blur")
    publish_metrics(repeat, into)
    listing = list_runs(bundled_roots=(into,))
    assert [r.id for r in listing.repeats] == ["repeat"]
    assert groups_for(listing.runs, listing.seed_pool)[0].accuracy.n == 2
    # one member of another recipe (a longer second cycle): not a repeat
    metrics["members"][0]["setting"]["train_config"]["epochs"] += 10
    (repeat / "metrics.json").write_text(json.dumps(metrics))
    assert groups_for([bundled], [bundled, load_run(repeat)])[0].n == 1
