"""Pure pandas builders: runs → tables the pages show (unit-testable, no streamlit).

The leaderboard, coverage and per-class builders take runs or
:class:`fer_core.store.seeds.SeedGroup` objects (runs that differ only by seed): a
group of one reads as its run, a group of several as mean ± sample std over
its seeds, and groups whose difference is within that spread are named as
tied rather than ranked (:func:`tie_notes`, rule in :mod:`fer_core.store.seeds`).
"""

from __future__ import annotations

import datetime as dt
import shlex

import pandas as pd

from fer_core.store.seeds import as_group, ties

LEADERBOARD_COLUMNS = ["Model", "Note", "Accuracy", "Accuracy over seeds", "Macro-F1", "Macro-F1 over seeds",
                       "FER+ paper's test set",
                       # cost per face next to the scores: on a laptop-wide screen the rest scrolls
                       "Latency (ms)", "Size (MB)", "Parameters", "Train time (s)", "Epochs", "Trained", "Run"]
#: Columns only multi-seed groups fill; a page drops them when every row is a single run.
SEED_COLUMNS = ("Accuracy over seeds", "Macro-F1 over seeds")
#: Columns only some datasets' runs fill (FER+ runs record the paper's test set); dropped when empty.
OPTIONAL_COLUMNS = ("FER+ paper's test set",)


def paper_set_accuracy(runs) -> float | None:
    """Mean accuracy (%) of ``runs`` on the FER+ paper's test set, over the runs that recorded it; None if none did.

    A FER+ run's own accuracy is on the plurality of the crowd's votes; this is
    the subset published FER+ accuracies are measured on (``metrics["ferplus_paper"]``).
    """
    values = [r.metrics["ferplus_paper"]["accuracy"] for r in runs if (r.metrics.get("ferplus_paper") or {}).get("accuracy") is not None]
    return pct(sum(values) / len(values)) if values else None


def pct(fraction) -> float:
    """A fraction as a percentage rounded to one decimal here, in Python, so a table cell
    (formatted by the browser, which rounds halves up) and a sentence (``f"{x:.1f}"``)
    never show the same score differently (0.1625 → 16.2 in both)."""
    return round(100.0 * float(fraction), 1)


def pct_text(fraction) -> str:
    """The same percentage as text, for sentences and labels: ``0.1625`` → ``"16.2%"``."""
    return f"{pct(fraction):.1f}%"


def spread_text(spread, *, seeds: bool = True) -> str:
    """``"67.0 ± 0.4 %, 3 seeds"`` for a :class:`fer_core.store.seeds.Spread` of ≥ 2 seeds; ``"67.0%"`` for one run."""
    if spread.std is None:
        return pct_text(spread.mean)
    return f"{pct(spread.mean):.1f} ± {pct(spread.std):.1f} %" + (f", {spread.n} seeds" if seeds else "")


def tie_notes(groups, score: str = "accuracy") -> list[str]:
    """One sentence per pair of models whose ``score`` difference is within their seed-to-seed spread."""
    label = "accuracy" if score == "accuracy" else "macro-F1"
    return [f"**{a.model_name}** and **{b.model_name}** differ in {label} by less than their seed-to-seed spread "
            f"({spread_text(getattr(a, score), seeds=False)} vs {spread_text(getattr(b, score), seeds=False)}): "
            "their order here is not a real ranking."
            for a, b in ties(groups, score)]


# --------------------------------------------------------------------------- random backbones
#
# Offline, the transfer models train with random backbones (``--weights none``): their heads then
# score near chance whatever the architecture. Every page that shows their numbers marks them with
# the helpers below (a label, a note, a figure marker) so nobody reads such a score as a verdict on
# ResNet, Inception or VGG.

#: The sentence every page shows next to a random-backbone run's numbers.
RANDOM_BACKBONE_NOTE = "random backbone — ImageNet weights were not available; expect near-chance accuracy"
#: The short mark appended to a model's name in labels, titles and table cells.
RANDOM_BACKBONE_TAG = "random backbone"


def is_random_backbone(run) -> bool:
    """:attr:`fer_core.store.runs.Run.random_backbone`, tolerating run-like objects without it."""
    return bool(getattr(run, "random_backbone", False))


def trained_when(run, *, fallback: str | None = None) -> str:
    """``"Nov 25 19:36"``: when a run finished (its ``created`` time); else ``fallback``, by default its id."""
    created = run.metrics.get("created")
    if created:
        return dt.datetime.fromtimestamp(created).strftime("%b %d %H:%M")
    return run.id if fallback is None else fallback


def model_label(run, *, bundled: bool = True) -> str:
    """A run's model as pages name it: ``"resnet50v2 (random backbone)"``, ``"compact (bundled)"``, ``"baseline"``,
    and for a seed group of several runs ``"compact (3 seeds)"``."""
    tags = (["bundled"] if bundled and getattr(run, "bundled", False) else []) + \
        ([RANDOM_BACKBONE_TAG] if is_random_backbone(run) else []) + \
        ([f"{run.n} seeds"] if getattr(run, "n", 1) > 1 else [])
    return run.model_name + "".join(f" ({t})" for t in tags)


def random_backbone_note(runs=(), *, models=()) -> str | None:
    """``"**resnet50v2, vgg19**: random backbone — …"`` naming the random-backbone runs (or ``models``), else None."""
    names = list(dict.fromkeys([r.model_name for r in runs if is_random_backbone(r)] + list(models)))
    if not names:
        return None
    return f"**{', '.join(names)}**: {RANDOM_BACKBONE_NOTE} (a score of these runs is not a verdict on the architecture)."


def random_backbone_models(args, catalog: dict) -> list[str]:
    """Models of a ``python -m training`` argument list that train with random backbones.

    ``catalog``: the model registry as ``{id: {"weights_file": …, "in_all": …}}``
    (``ui.loaders.model_catalog``); a model with an ImageNet ``weights_file`` gets a random
    backbone under ``--weights none``. ``--weights`` defaults to ``imagenet`` and ``--models`` to ``all``.
    """
    args = [str(a) for a in (args or [])]

    def value(flag):
        for i, a in enumerate(args):
            if a == flag and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(flag + "="):
                return a.split("=", 1)[1]
        return None

    if (value("--weights") or "imagenet").strip().lower() != "none":
        return []
    imagenet = [m for m, c in catalog.items() if (c or {}).get("weights_file")]
    models = (value("--models") or "all").strip()
    if models.lower() == "all":
        return [m for m in imagenet if catalog[m].get("in_all", True)]
    chosen = [m.strip() for m in models.split(",")]
    return [m for m in imagenet if m in chosen]


def mark_random_backbones(fig, runs):
    """Mark a Plotly figure of ``runs`` whose random-backbone models appear in it (returns ``fig``).

    Legends keep the model ids (colours and tests key on them); the marks go where a model's
    name is a title: a one-model title (confusion matrix) and subplot titles get
    ``" (random backbone)"``; a figure with one trace per model gets a subtitle naming them.
    Duck-typed (``fig.layout``), so this module needs no plotly import.
    """
    random = [r.model_name for r in runs if is_random_backbone(r)]
    if not random:
        return fig
    tag = f" ({RANDOM_BACKBONE_TAG})"
    title = (fig.layout.title.text or "") if fig.layout.title else ""
    for a in fig.layout.annotations or ():
        if a.text in random:
            a.text = a.text + tag
    one = [m for m in random if title.startswith(m + " ") or title == m]
    if one:
        m = max(one, key=len)  # inception_resnet_v2 before inception…
        fig.update_layout(title_text=m + tag + title[len(m):])
    elif title and any(getattr(t, "name", None) in random for t in fig.data):
        top = fig.layout.margin.t if fig.layout.margin and fig.layout.margin.t is not None else 48
        fig.update_layout(title_text=f"{title}<br><sup>{RANDOM_BACKBONE_TAG}, near chance expected: "
                                     f"{', '.join(random)}</sup>", margin_t=top + 18)  # room for the second line
    return fig


def single_text(run) -> str:
    """A single run's "… over seeds" cell: "1 seed", or for an ensemble how many networks its one run averages
    (the bundled compact_x2_blur averages two seeds; "1 seed" would read as one network)."""
    members = run.ensemble_members
    return f"1 run (mean of {len(members)} networks)" if members and len(members) > 1 else "1 seed"


def ensemble_text(run) -> str | None:
    """What an ensemble run is, in words ("the mean of 2 compact networks behind a 0.5 px input blur"); None for
    one network. Read from config.json (members, ``input_smooth_sigma``) as ``python -m training.ensemble`` wrote it."""
    members = run.ensemble_members
    if not members:
        return None
    kinds = sorted({str(m.get("model") or "?") for m in members})
    text = (f"one {kinds[0]} network" if len(members) == 1  # a run behind a blur (training.ensemble RUN --smooth)
            else f"the mean of {len(members)} {' / '.join(kinds)} networks")
    blur = run.input_smooth_sigma
    return text + (f" behind a {blur:g} px input blur" if blur else "")


def leaderboard(runs) -> pd.DataFrame:
    """One row per run or seed group, best (mean) accuracy first. Accuracy and macro-F1 in %, sizes in MB.

    A seed group's Accuracy and Macro-F1 are its means; "… over seeds" spell out
    mean ± std and the number of seeds ("1 seed" for a single run when others have several); its Note names the models it is tied with
    (:func:`fer_core.store.seeds.within_spread`). The other columns are its newest run's.
    """
    groups = sorted((as_group(r) for r in runs), key=lambda g: (-g.accuracy.mean, -g.macro_f1.mean))  # unrounded
    tied: dict[str, list[str]] = {}
    for a, b in ties(groups):
        tied.setdefault(a.id, []).append(b.model_name)
        tied.setdefault(b.id, []).append(a.model_name)
    # Beside repeated models, a single run says "1 seed": its spread is unknown, not zero.
    single = "1 seed" if any(g.n > 1 for g in groups) else ""
    rows = []
    for g in groups:
        r, m = g.run, g.run.metrics
        notes = ([RANDOM_BACKBONE_TAG + ": near chance expected"] if is_random_backbone(r) else []) + \
            ([f"within seed spread of {', '.join(tied[g.id])}"] if g.id in tied else [])
        rows.append({
            "Model": r.model_name + (" (bundled)" if g.bundled else ""),
            # A column of its own, next to Model: the ids stay ids (sorting, links, tests).
            "Note": "; ".join(notes),
            "Accuracy": pct(g.accuracy.mean),
            "Accuracy over seeds": spread_text(g.accuracy) if g.n > 1 else single and single_text(r),
            "Macro-F1": pct(g.macro_f1.mean),
            "Macro-F1 over seeds": spread_text(g.macro_f1, seeds=False) if g.n > 1 else "",
            "FER+ paper's test set": paper_set_accuracy(g.runs),
            "Parameters": m.get("params"),
            "Size (MB)": (m["model_size_bytes"] / 1e6) if m.get("model_size_bytes") else None,
            "Train time (s)": m.get("train_seconds_total", m.get("train_seconds")),  # all cycles of --init-from
            "Latency (ms)": m.get("latency_ms"),
            "Epochs": m.get("epochs_run"),
            "Trained": trained_when(r, fallback=""),
            "Run": r.id + (f" (+{g.n - 1} more seed{'s' if g.n > 2 else ''})" if g.n > 1 else ""),
        })
    return pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)


def shell_join(args) -> str:
    """A command line a user can paste into a shell."""
    return shlex.join(str(a) for a in args)


def train_command(source: str, models: list[str], *, demo_args: dict | None = None) -> str:
    """The CLI command that trains ``models`` on ``source`` (what 'train them' means)."""
    args = ["python", "-m", "training", "--data", source, "--models", ",".join(models) if models else "all"]
    if source == "demo" and demo_args:
        args += ["--demo-per-class", str(demo_args["demo_per_class"]), "--demo-size", str(demo_args["demo_image_size"])]
    return shlex.join(args)


def coverage(group_runs, model_names: list[str]) -> pd.DataFrame:
    """Which registered models are trained on one dataset: a row per model, untrained ones say so."""
    by_model = {r.model_name: r for r in group_runs}
    rows = []
    for name in model_names + sorted(set(by_model) - set(model_names)):
        r = by_model.get(name)
        rows.append({
            "Model": name,
            "Status": (("bundled" if r.bundled else "trained")
                       + (f" ({RANDOM_BACKBONE_TAG})" if is_random_backbone(r) else "")) if r else "not trained yet — train it",
            "Accuracy": pct(r.metrics["accuracy"]) if r else None,
            "Macro-F1": pct(r.metrics["macro_f1"]) if r else None,
        })
    return pd.DataFrame(rows, columns=["Model", "Status", "Accuracy", "Macro-F1"])


def per_class_f1(runs) -> pd.DataFrame:
    """Long table: model, class, F1 (%) — the data behind the per-class chart (a seed group's mean)."""
    rows = []
    for item in runs:
        g = as_group(item)
        r = g.run
        for cls in r.metrics["class_names"]:
            pc = (r.metrics.get("per_class") or {}).get(cls) or {}
            rows.append({"Model": r.model_name, "Class": cls, "F1": pct(g.per_class_f1(cls).mean),
                         "Support": pc.get("support")})
    return pd.DataFrame(rows, columns=["Model", "Class", "F1", "Support"])


def coverage_matrix(groups, model_names: list[str], seed_groups: dict | None = None) -> pd.DataFrame:
    """Models × datasets: accuracy where a model is trained on a dataset, else "not trained yet".

    ``seed_groups``: {dataset fingerprint: seed groups of its runs}; a model with
    several seeds then reads "67.0 ± 0.4 %, 3 seeds" as on the leaderboard.
    """
    extra = sorted({r.model_name for g in groups for r in g.runs} - set(model_names))
    rows = list(model_names) + extra
    data = {}
    for g in groups:
        shown = (seed_groups or {}).get(getattr(g, "fingerprint", None)) or g.runs
        by_model = {r.model_name: r for r in shown}
        data[g.label] = [_coverage_cell(by_model[m]) if m in by_model else "not trained yet" for m in rows]
    df = pd.DataFrame(data, index=pd.Index(rows, name="Model"))
    return df


def _coverage_cell(run) -> str:
    """``"81.2%"``, ``"67.0 ± 0.4 %, 3 seeds"`` or ``"12.5% (random backbone)"``: the mark travels with the number."""
    return spread_text(as_group(run).accuracy) + (f" ({RANDOM_BACKBONE_TAG})" if is_random_backbone(run) else "")


def run_zip(run) -> bytes:
    """A run folder's files as one .zip (what Compare offers for a published head-only run)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(run.path.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                zf.write(f, f"{run.id}/{f.name}")
    return buf.getvalue()
