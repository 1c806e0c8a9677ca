"""Runs that differ only by their seed, read as one result with a spread.

Two trainings with the same settings and different seeds (weight
initialisation, shuffling, augmentation draws) score differently; on
FER2013 the bundled ``compact`` moved by about a point between seeds. One
run per model therefore cannot tell a real difference between two models
from seed noise. This module groups such repeats and summarises them; the
pages show the summary instead of pretending one run is the model's score.

**What "differs only by seed" means** (:func:`setting_key`). Two runs belong
together when all of these are equal:

- the model id and the dataset fingerprint (the exact data, splits included),
  and the split the scores were measured on;
- the run's ``train_config`` (``config.json``), every key except ``seed``,
  with two normalisations that do not change what was trained:
  ``image_size: null`` becomes the size the model was built with
  (``config.json: model.image_size``), and ``init_from`` (a path on the machine
  that trained it) becomes **the setting of the starting run** (:func:`start_key`):
  its recorded ``train_config`` without its seed, itself resolved the same way
  when it too was continued. So a recipe of several cycles (``--init-from``
  the previous one) repeated with other seeds at every step is a seed repeat,
  like a one-command recipe; the bundled ``compact`` is such a chain. Records
  written before the chain's configs were kept hold only the starting run's
  command: it stands for the setting with its ``--seed``, ``--out`` and the
  paths' folders dropped. With neither, the starting run's folder name is the
  key, so only runs continued from that very run group.

Everything else counts as a difference, on purpose: a key present in one
config and missing in the other (runs from different code versions), a
setting the model ignores (``--weights`` for a scratch model) or the same
schedule started from two runs of different settings. Rerunning the same command with
only ``--seed`` changed always groups. An ensemble (``python -m training.ensemble``)
is set by its members' settings, taken as a multiset; its "seed" is its members'
seeds: averaging the same recipes trained from other seeds is a seed repeat of
it. An ensemble built before its members' settings were recorded stands alone,
as does any other run without a ``train_config``. Two runs with the same seed
in one group (a rerun) count once: the newest is kept.

Note that on the ``demo`` data and on class folders the seed also draws the
data (faces, splits), so runs with different seeds there have different
fingerprints and never group: they were not scored on the same test images.

**The tie rule** (:func:`within_spread`): two groups' accuracies are within
their seed-to-seed spread when the intervals mean ± sample standard
deviation (ddof=1) overlap; a single run is a point (its spread is unknown),
so two single runs are never called tied. With two or three seeds a
significance test has almost no power; the overlap rule is a plain, visible
statement instead of a p-value.

**Curves of different lengths** (early stopping): :meth:`SeedGroup.curve`
averages each epoch over the seeds that reached it and returns how many did,
so a page can draw the part every seed reached differently from the tail.

No TensorFlow, no streamlit: plain numbers from the runs' JSON files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np

from .runs import Run

#: ``train_config`` keys that are not part of a run's setting: the seed is what varies between repeats.
IGNORED_KEYS = ("seed",)
#: Training-config fields added after runs were recorded, with the value a run
#: that lacks them trained under: an old run and a new one with that value are
#: the same recipe (``augment_mode`` came with the photo-like augmentation).
LATER_DEFAULTS = {"augment_mode": "resample"}


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (ddof=1) of one score over a group's seeds.

    ``std`` is None for a single run: one value says nothing about the spread.
    """

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values) -> "Spread":
        v = [float(x) for x in values]
        if not v:
            raise ValueError("no values")
        mean = math.fsum(v) / len(v)  # a single run's mean is exactly its value
        std = float(np.std(v, ddof=1)) if len(v) >= 2 else None
        return cls(mean=mean, std=std, n=len(v))

    @property
    def low(self) -> float:
        return self.mean - (self.std or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.std or 0.0)


@dataclass(frozen=True)
class Curve:
    """One history metric over a group's seeds, epoch by epoch (epochs start at 1).

    ``count[i]``: how many seeds reached epoch ``i + 1`` (early stopping ends runs
    at different epochs); ``mean``, ``low`` (lowest seed) and ``high`` (highest
    seed) are taken over those seeds only. ``full`` is the number of leading
    epochs every seed reached.
    """

    mean: list[float]
    std: list[float | None]
    low: list[float]
    high: list[float]
    count: list[int]
    n: int

    @property
    def epochs(self) -> list[int]:
        return list(range(1, len(self.mean) + 1))

    @property
    def full(self) -> int:
        return sum(1 for c in self.count if c == self.n)


# --------------------------------------------------------------------------- grouping


def _config(run: Run) -> dict | None:
    cfg = run.config.get("train_config")
    if not isinstance(cfg, dict):
        cfg = run.metrics.get("config")
    return cfg if isinstance(cfg, dict) and "seed" in cfg else None


def _run_folder_name(path) -> str:
    """``runs/fer2013/2026…_compact`` or ``C:\\runs\\2026…_compact`` → ``2026…_compact``."""
    text = str(path).rstrip("/\\")
    return PureWindowsPath(text).name if "\\" in text else PurePosixPath(text).name


def setting_key(run: Run) -> str:
    """A string equal for two runs exactly when they differ only by seed (see the module docstring).

    A run without a training config gets its own id as key: it groups with nothing.
    """
    found = setting(run)
    return f"run:{run.id}" if found is None else json.dumps(found, sort_keys=True, default=str)


def setting(run: Run) -> dict | None:
    """The JSON-able setting behind :func:`setting_key`; None for a run that groups with nothing.

    An ensemble's setting is its members' settings (recorded when it was built,
    ``metrics.json: members[].setting``), as a multiset: the same recipes
    averaged, each from other seeds, is a seed repeat of the ensemble.
    """
    where = {"model": run.model_name, "dataset": run.fingerprint, "split": run.metrics.get("split", "test")}
    if run.ensemble_members is not None:
        members = _member_field(run, "setting")
        if not members or not all(isinstance(m, dict) for m in members):
            return None  # built before members' settings were recorded: stands alone
        members = [_filled(m) for m in members]
        blur = run.input_smooth_sigma  # the input blur in front of the members is part of the recipe
        return {**where, "members": sorted(members, key=lambda m: json.dumps(m, sort_keys=True, default=str)),
                **({"smooth": blur} if blur else {})}
    cfg = _config(run)
    if cfg is None:
        return None
    train = _recipe(cfg)
    model = run.config.get("model") if isinstance(run.config.get("model"), dict) else {}
    if train.get("image_size") is None and model.get("image_size") is not None:
        train["image_size"] = model["image_size"]
    if train.get("init_from"):
        train["init_from"] = start_key(run.metrics.get("init_from"), train["init_from"])
    return {**where, "train_config": train}


def _recipe(cfg: dict) -> dict:
    """A training config without its seed, fields it predates filled with :data:`LATER_DEFAULTS`."""
    return {**LATER_DEFAULTS, **{k: v for k, v in cfg.items() if k not in IGNORED_KEYS}}


def _filled(member: dict) -> dict:
    """A recorded member setting with the fields its record predates (:data:`LATER_DEFAULTS`), start included."""
    cfg = member.get("train_config")
    if not isinstance(cfg, dict):
        return member
    cfg = {**LATER_DEFAULTS, **cfg}
    start = cfg.get("init_from")
    if isinstance(start, dict) and isinstance(start.get("setting"), dict):
        cfg["init_from"] = {**start, "setting": _filled({"train_config": start["setting"]})["train_config"]}
    return {**member, "train_config": cfg}


def _member_field(run: Run, key: str) -> list:
    """``key`` of each member an ensemble's ``metrics.json: members`` records (None where a record lacks it)."""
    return [m.get(key) if isinstance(m, dict) else None for m in run.metrics.get("members") or []]


#: ``python -m training`` options whose values are not part of a setting: what varies between
#: seed repeats, and where the run was written.
_COMMAND_IGNORED = ("--seed", "--seeds", "--out")


def start_key(record, init_from: str):
    """The setting a continued run started from (see the module docstring), JSON-able.

    ``record``: the run's ``metrics.json: init_from`` (:func:`fer_core.store.runs.init_from_record`);
    ``init_from``: its ``train_config.init_from`` path, the fallback.
    """
    folder = _run_folder_name(init_from)
    if not isinstance(record, dict) or record.get("run") not in (None, folder):
        return folder
    cfg = record.get("train_config")
    if isinstance(cfg, dict):
        start = _recipe(cfg)
        if start.get("init_from"):
            start["init_from"] = start_key(record.get("init_from"), start["init_from"])
        return {"setting": start}
    command = record.get("command")
    if isinstance(command, str) and command.strip():
        return {"command": _command_setting(command)}
    return folder


def _command_setting(command: str) -> list[str]:
    """A training command as a setting: its tokens without ``--seed``/``--out`` values, paths by their last part."""
    import shlex

    try:
        tokens = shlex.split(command)
    except ValueError:
        return [command]
    out, skip = [], False
    for tok in tokens:
        if skip:
            skip = False
            continue
        name = tok.split("=", 1)[0]
        if name in _COMMAND_IGNORED:
            skip = "=" not in tok
            continue
        out.append(_run_folder_name(tok) if ("/" in tok or "\\" in tok) else tok)
    return out


def seed_of(run: Run) -> int | tuple | None:
    """The run's training seed; for an ensemble, its members' seeds (sorted tuple), which tell repeats apart."""
    if run.ensemble_members is not None:
        seeds = _member_field(run, "seed")
        return tuple(sorted(int(x) for x in seeds)) if seeds and all(isinstance(x, int) for x in seeds) else None
    cfg = _config(run)
    try:
        return int(cfg["seed"]) if cfg is not None else None
    except (TypeError, ValueError):
        return None


def _created(run: Run) -> float:
    return float(run.metrics.get("created", 0) or 0)


@dataclass(frozen=True)
class SeedGroup:
    """Runs of one model, dataset and setting that differ only by seed; one run per seed.

    ``runs[0]`` is the newest run: the one the pages showed before seeds were
    grouped, and the one whose model is downloaded, exported and predicted with.
    A group of one run reads exactly like that run.
    """

    runs: tuple[Run, ...]
    key: str = field(default="", compare=False)

    @classmethod
    def of(cls, runs) -> "SeedGroup":
        """The runs as one group (newest first, one per seed); the caller vouches they share a setting."""
        kept: dict = {}
        for r in sorted(runs, key=_created, reverse=True):
            kept.setdefault(seed_of(r) if seed_of(r) is not None else r.id, r)
        if not kept:
            raise ValueError("a seed group needs at least one run")
        first = next(iter(kept.values()))
        return cls(runs=tuple(kept.values()), key=setting_key(first))

    # ---- what pages read, named as on a Run so both can be shown by the same code
    @property
    def run(self) -> Run:
        return self.runs[0]

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def model_name(self) -> str:
        return self.run.model_name

    @property
    def bundled(self) -> bool:
        return all(r.bundled for r in self.runs)

    @property
    def random_backbone(self) -> bool:
        return bool(getattr(self.run, "random_backbone", False))

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def seeds(self) -> list[int | tuple | None]:
        return sorted((seed_of(r) for r in self.runs), key=lambda s: (s is None, s))

    # ---- summaries
    @property
    def accuracy(self) -> Spread:
        return Spread.of(r.metrics["accuracy"] for r in self.runs)

    @property
    def macro_f1(self) -> Spread:
        return Spread.of(r.metrics["macro_f1"] for r in self.runs)

    def per_class_f1(self, cls: str) -> Spread:
        return Spread.of(float(((r.metrics.get("per_class") or {}).get(cls) or {}).get("f1", 0.0)) for r in self.runs)

    def curve(self, metric: str) -> Curve:
        """``metric`` (e.g. ``val_accuracy``) per epoch over the seeds; see :class:`Curve`."""
        series = [[float(v) for v in (r.history.get(metric) or []) if v is not None] for r in self.runs]
        length = max((len(s) for s in series), default=0)
        mean, std, low, high, count = [], [], [], [], []
        for i in range(length):
            values = [s[i] for s in series if len(s) > i]
            spread = Spread.of(values)
            mean.append(spread.mean)
            std.append(spread.std)
            low.append(min(values))
            high.append(max(values))
            count.append(len(values))
        return Curve(mean=mean, std=std, low=low, high=high, count=count, n=self.n)

    def confusion_matrix(self) -> list[list[int]]:
        """The seeds' confusion matrices summed: every seed scored the same test images, so each row
        holds ``n`` × that class's images and, row-normalised, gives the recall averaged over seeds."""
        return np.sum([np.asarray(r.metrics["confusion_matrix"], dtype=np.int64) for r in self.runs], axis=0).tolist()


def group_by_seed(runs) -> list[SeedGroup]:
    """``runs`` split into groups of runs that differ only by seed, newest group first."""
    by_key: dict[str, list[Run]] = {}
    for r in runs:
        by_key.setdefault(setting_key(r), []).append(r)
    groups = [SeedGroup.of(rs) for rs in by_key.values()]
    return sorted(groups, key=lambda g: _created(g.run), reverse=True)


def groups_for(shown, all_runs) -> list[SeedGroup]:
    """One group per run in ``shown`` (the run a page shows per model), in the same order.

    Each run's group holds it and every run in ``all_runs`` that differs from it
    only by seed; a run without such siblings becomes a group of one, which
    reads exactly as the run did.
    """
    by_key: dict[str, list[Run]] = {}
    for r in all_runs:
        by_key.setdefault(setting_key(r), []).append(r)
    out = []
    for r in shown:
        others: dict = {}
        for s in sorted(by_key.get(setting_key(r), []), key=_created, reverse=True):
            if seed_of(s) is not None and seed_of(s) != seed_of(r):
                others.setdefault(seed_of(s), s)  # the newest run of each other seed
        out.append(SeedGroup(runs=(r, *others.values()), key=setting_key(r)))
    return out


def as_group(item) -> SeedGroup:
    """A :class:`SeedGroup` as is; a :class:`Run` as a group of one (how pages that take either handle both)."""
    return item if isinstance(item, SeedGroup) else SeedGroup(runs=(item,), key="")


# --------------------------------------------------------------------------- ties


def within_spread(a: Spread, b: Spread) -> bool:
    """True when the intervals mean ± std of ``a`` and ``b`` overlap (the module's tie rule).

    A single run is a point (std unknown, not zero-by-evidence), so two single
    runs are never tied by this rule: nothing is known about their spread.
    """
    if a.std is None and b.std is None:
        return False
    return a.low <= b.high and b.low <= a.high


def ties(groups, score: str = "accuracy") -> list[tuple[SeedGroup, SeedGroup]]:
    """Pairs of groups (better first, by mean) whose ``score`` difference is within their seed spread."""
    groups = sorted((as_group(g) for g in groups), key=lambda g: -getattr(g, score).mean)
    return [(a, b) for i, a in enumerate(groups) for b in groups[i + 1:]
            if within_spread(getattr(a, score), getattr(b, score))]
