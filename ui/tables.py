"""Pure pandas builders: runs → tables the pages show (unit-testable, no streamlit)."""

from __future__ import annotations

import datetime as dt
import shlex

import pandas as pd

LEADERBOARD_COLUMNS = ["Model", "Accuracy", "Macro-F1", "Parameters", "Size (MB)", "Train time (s)",
                       "Latency (ms)", "Epochs", "Trained", "Run"]


def pct(fraction) -> float:
    """A fraction as a percentage rounded to one decimal here, in Python, so a table cell
    (formatted by the browser, which rounds halves up) and a sentence (``f"{x:.1f}"``)
    never show the same score differently (0.1625 → 16.2 in both)."""
    return round(100.0 * float(fraction), 1)


def pct_text(fraction) -> str:
    """The same percentage as text, for sentences and labels: ``0.1625`` → ``"16.2%"``."""
    return f"{pct(fraction):.1f}%"


def leaderboard(runs) -> pd.DataFrame:
    """One row per run, best accuracy first. Accuracy and macro-F1 in %, sizes in MB."""
    rows = []
    runs = sorted(runs, key=lambda r: (-float(r.metrics["accuracy"]), -float(r.metrics["macro_f1"])))  # unrounded
    for r in runs:
        m = r.metrics
        created = m.get("created")
        rows.append({
            "Model": r.model_name + (" (bundled)" if r.bundled else ""),
            "Accuracy": pct(m["accuracy"]),
            "Macro-F1": pct(m["macro_f1"]),
            "Parameters": m.get("params"),
            "Size (MB)": (m["model_size_bytes"] / 1e6) if m.get("model_size_bytes") else None,
            "Train time (s)": m.get("train_seconds_total", m.get("train_seconds")),  # all cycles of --init-from
            "Latency (ms)": m.get("latency_ms"),
            "Epochs": m.get("epochs_run"),
            "Trained": dt.datetime.fromtimestamp(created).strftime("%b %d %H:%M") if created else "",
            "Run": r.id,
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
            "Status": ("bundled" if r.bundled else "trained") if r else "not trained yet — train it",
            "Accuracy": pct(r.metrics["accuracy"]) if r else None,
            "Macro-F1": pct(r.metrics["macro_f1"]) if r else None,
        })
    return pd.DataFrame(rows, columns=["Model", "Status", "Accuracy", "Macro-F1"])


def per_class_f1(runs) -> pd.DataFrame:
    """Long table: model, class, F1 (%) — the data behind the per-class chart."""
    rows = []
    for r in runs:
        for cls in r.metrics["class_names"]:
            pc = (r.metrics.get("per_class") or {}).get(cls) or {}
            rows.append({"Model": r.model_name, "Class": cls, "F1": pct(pc.get("f1", 0.0)),
                         "Support": pc.get("support")})
    return pd.DataFrame(rows, columns=["Model", "Class", "F1", "Support"])


def coverage_matrix(groups, model_names: list[str]) -> pd.DataFrame:
    """Models × datasets: accuracy where a model is trained on a dataset, else "not trained yet"."""
    extra = sorted({r.model_name for g in groups for r in g.runs} - set(model_names))
    rows = list(model_names) + extra
    data = {}
    for g in groups:
        by_model = {r.model_name: r for r in g.runs}
        data[g.label] = [pct_text(by_model[m].metrics["accuracy"]) if m in by_model else "not trained yet"
                         for m in rows]
    df = pd.DataFrame(data, index=pd.Index(rows, name="Model"))
    return df
