"""Pure plotly figure builders: runs (or plain dicts) in, ``go.Figure`` out.

No streamlit here, so every figure is unit-testable: a test can count the
traces of a figure without running the app. Each model keeps one colour in
every figure of a page (:func:`model_colors`).

The run-level figures take runs or :class:`fer_core.store.seeds.SeedGroup` objects
(runs that differ only by seed). A group of one run is drawn exactly as the
run; a group of several is drawn as its mean with a shaded band from the
lowest to the highest seed (:data:`SEED_BAND_NOTE`), its confusion matrix is
the seeds' sum and its per-class F1 bars carry ± std error bars.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fer_core.store.seeds import as_group

PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC"]
ENSEMBLE_COLOR = "#262730"
FONT = dict(size=13)
METRIC_TITLES = {
    "accuracy": "Training accuracy",
    "val_accuracy": "Validation accuracy",
    "loss": "Training loss",
    "val_loss": "Validation loss",
}
#: Emotions keep colours people read at a glance (anger red, sadness blue...), taken from the app's palette.
EMOTION_COLORS = {"angry": "#E45756", "anger": "#E45756", "disgust": "#54A24B", "fear": "#B279A2",
                  "happy": "#F58518", "happiness": "#F58518", "sad": "#4C78A8", "sadness": "#4C78A8",
                  "surprise": "#72B7B2", "neutral": "#BAB0AC", "contempt": "#9D755D"}


def model_colors(names) -> dict[str, str]:
    """Stable colour per model id, in the order given (registry order on every page)."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(names))}


def emotion_colors(class_names) -> dict[str, str]:
    """One colour per emotion, the same in the video timelines, share bars and Predict's bars; other labels take the palette."""
    return {c: EMOTION_COLORS.get(str(c).lower(), PALETTE[i % len(PALETTE)]) for i, c in enumerate(class_names)}


def probability_bars_html(class_names, probs, caption: str = "") -> str:
    """One model's probabilities as plain HTML bars (class order, the top one bold and fully coloured).

    Why not a Plotly figure: on the Predict page the answer for one model (what
    most visitors see) would otherwise load Plotly's 4.7 MB of JavaScript in the
    visitor's browser — about 0.75 s of CPU per visit on this machine's core
    (measured with Chromium's performance counters). Class names may
    come from a user's folder names, so every string is escaped.
    """
    from html import escape

    p = 100.0 * np.asarray(probs, dtype=float)
    top = int(np.argmax(p))
    colors = emotion_colors(class_names)
    rows = []
    for i, (c, v) in enumerate(zip(class_names, p)):
        weight = "600" if i == top else "400"
        rows.append(
            f'<div style="display:flex;align-items:center;gap:8px;margin:3px 0;font-weight:{weight}">'
            f'<span style="width:6.5em;flex:none;overflow:hidden;text-overflow:ellipsis;white-space:nowrap">{escape(str(c))}</span>'
            f'<span style="flex:1;height:14px;background:rgba(128,128,128,0.15);border-radius:3px">'
            f'<span style="display:block;height:100%;width:{v:.1f}%;background:{colors[c]};'
            f'opacity:{1.0 if i == top else 0.45};border-radius:3px"></span></span>'
            f'<span style="width:3.6em;flex:none;text-align:right;font-variant-numeric:tabular-nums">{v:.1f}%</span></div>')
    head = f'<div style="font-size:0.9em;opacity:0.75;margin-bottom:4px">{escape(caption)}</div>' if caption else ""
    return f'<div style="max-width:460px">{head}{"".join(rows)}</div>'


def _layout(fig: go.Figure, *, title: str | None = None, height: int = 360, legend: bool = True,
            legend_rows: int = 1) -> go.Figure:
    """Shared look: title top-left, legend in its own strip under the plot (never over a title)."""
    strip = 26 * legend_rows if legend else 0
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=15)) if title else None,
        height=height + strip, margin=dict(l=10, r=10, t=48 if title else 16, b=10 + strip), font=FONT,
        showlegend=legend,
        legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left",
                    font=dict(size=12)),
        hovermode="x unified",
    )
    return fig


def _epochs(values) -> list[int]:
    return list(range(1, len(values) + 1))


def _is_accuracy(metric: str) -> bool:
    return metric.endswith("accuracy")


#: What the seed bands mean, for a caption next to any figure that draws them.
SEED_BAND_NOTE = ("Models trained with several seeds: the line is the mean over seeds, the shaded band runs from "
                  "the lowest to the highest seed at each epoch; a dotted tail marks epochs only some seeds reached "
                  "(early stopping), averaged over those.")
#: Name suffix of a seed band trace (one per multi-seed model and metric; tests find bands by it).
BAND_SUFFIX = " seed range"


def _rgba(hex_color: str | None, alpha: float) -> str:
    h = (hex_color or PALETTE[0]).lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _seed_traces(group, metric: str, *, scale: float, color: str | None, name: str, dash: str = "solid",
                 showlegend: bool = True, legendgroup: str | None = None, label: str | None = None) -> list[go.Scatter]:
    """A multi-seed group's ``metric``: band (lowest–highest seed), mean over the epochs every seed
    reached (solid or ``dash``), and a dotted tail over epochs fewer seeds reached. Band first: lines on top."""
    c = group.curve(metric)
    if not c.mean:
        return []
    xs, n, full = c.epochs, group.n, c.full
    fmt = "%{y:.1f}%" if scale == 100.0 else "%{y:.3f}"
    who = label or name
    band = go.Scatter(x=xs + xs[::-1], y=[scale * v for v in c.high] + [scale * v for v in c.low][::-1],
                      fill="toself", fillcolor=_rgba(color, 0.18), line=dict(width=0), mode="lines",
                      name=who + BAND_SUFFIX, legendgroup=legendgroup or name, showlegend=False, hoverinfo="skip")
    mean = go.Scatter(x=xs[:full], y=[scale * v for v in c.mean[:full]], name=name, legendgroup=legendgroup or name,
                      showlegend=showlegend, mode="lines+markers" if full < 30 else "lines",
                      line=dict(color=color, dash=dash, width=2), marker=dict(size=6),
                      hovertemplate=f"{who}: {fmt} (mean of {n} seeds)<extra></extra>")
    traces = [band, mean]
    if full < len(xs):  # joined to the last epoch all seeds reached, so the line does not break
        start = max(full - 1, 0)
        traces.append(go.Scatter(
            x=xs[start:], y=[scale * v for v in c.mean[start:]], customdata=c.count[start:],
            name=who + " (fewer seeds)", legendgroup=legendgroup or name, showlegend=False, mode="lines",
            line=dict(color=color, dash="dot" if dash == "solid" else "dashdot", width=2),  # validation keeps a dash
            hovertemplate=f"{who}: {fmt} (mean of %{{customdata}}/{n} seeds)<extra></extra>"))
    return traces


# --------------------------------------------------------------------------- training curves


def history_figure(runs, metric: str, colors: dict[str, str] | None = None, height: int = 340) -> go.Figure:
    """One figure for ``metric`` (e.g. ``val_accuracy``) with one line per model."""
    colors = colors or model_colors(r.model_name for r in runs)
    fig = go.Figure()
    for item in runs:
        group = as_group(item)
        if group.n > 1:
            for t in _seed_traces(group, metric, scale=100.0 if _is_accuracy(metric) else 1.0,
                                  color=colors.get(group.model_name), name=group.model_name):
                fig.add_trace(t)
            continue
        r = group.run
        ys = r.history.get(metric) or []
        if _is_accuracy(metric):
            ys = [100.0 * v for v in ys]
        fig.add_trace(go.Scatter(
            x=_epochs(ys), y=ys, name=r.model_name, mode="lines+markers" if len(ys) < 30 else "lines",
            line=dict(color=colors.get(r.model_name), width=2), marker=dict(size=6),
            hovertemplate="%{y:.1f}%" if _is_accuracy(metric) else "%{y:.3f}",
        ))
    fig.update_xaxes(title_text="epoch", dtick=_dtick(runs, metric))
    if _is_accuracy(metric):
        fig.update_yaxes(title_text="%", range=[0, 100], ticksuffix="%")
    else:
        fig.update_yaxes(title_text="cross-entropy")
    return _layout(fig, title=METRIC_TITLES.get(metric, metric), height=height, legend_rows=math.ceil(len(runs) / 3))


def _dtick(runs, metric: str):
    n = max((len(r.history.get(metric) or []) for item in runs for r in as_group(item).runs), default=0)
    return 1 if n <= 12 else None


def small_multiples(runs, metric: str = "accuracy", colors: dict[str, str] | None = None, cols: int = 5) -> go.Figure:
    """One panel per model: train (solid) and validation (dashed) ``metric``; fine-tuning shaded."""
    colors = colors or model_colors(r.model_name for r in runs)
    n = max(1, len(runs))
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    height = 260 * rows + 40
    gap = 110  # px between rows of panels: tick labels and "epoch" of one row, the panel titles of the next
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[r.model_name for r in runs] or [""],
                        shared_yaxes=True, horizontal_spacing=0.03,
                        vertical_spacing=gap / (height - 60) if rows > 1 else 0.0)
    scale = 100.0 if metric == "accuracy" else 1.0
    for i, item in enumerate(runs):
        group = as_group(item)
        r = group.run
        row, col = i // cols + 1, i % cols + 1
        color = colors.get(r.model_name)
        for key, dash, label in ((metric, "solid", "train"), (f"val_{metric}", "dash", "validation")):
            if group.n > 1:
                for t in _seed_traces(group, key, scale=scale, color=color, name=label, dash=dash,
                                      showlegend=(i == 0), legendgroup=label, label=f"{r.model_name} {label}"):
                    fig.add_trace(t, row=row, col=col)
                continue
            ys = [scale * v for v in (r.history.get(key) or [])]
            fig.add_trace(go.Scatter(x=_epochs(ys), y=ys, name=label, legendgroup=label, showlegend=(i == 0),
                                     mode="lines+markers" if len(ys) < 30 else "lines",
                                     line=dict(color=color, dash=dash, width=2), marker=dict(size=5),
                                     hovertemplate=f"{r.model_name} {label}: " + ("%{y:.1f}%" if scale == 100 else "%{y:.3f}")
                                     + "<extra></extra>"),
                          row=row, col=col)
        if not any(r.history.get(k) for run in group.runs for k in (metric, f"val_{metric}")):
            fig.add_annotation(text=_no_curves_text(r), xref="x domain", yref="y domain", x=0.5, y=0.5,
                               showarrow=False, font=dict(size=12, color="#777"), row=row, col=col)
            fig.update_xaxes(showticklabels=False, row=row, col=col)
        stages = r.history.get("stage") or []
        if 2 in stages:
            start = stages.index(2) + 0.5
            fig.add_vrect(x0=start, x1=len(stages) + 0.5, fillcolor="#999", opacity=0.12, line_width=0,
                          row=row, col=col)
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 100], ticksuffix="%")
    fig.update_xaxes(title_text="epoch", dtick=_dtick(runs, metric))
    _layout(fig, height=height, legend=True)
    fig.update_layout(hovermode="closest")
    fig.update_annotations(font_size=13)  # panel titles: long ids such as inception_resnet_v2 stay within their panel
    return fig


def _no_curves_text(run) -> str:
    """What an empty per-model panel says instead of showing bare axes."""
    members = run.ensemble_members
    if members is not None:
        if len(members) == 1:  # training.ensemble RUN --smooth: the curves are that run's
            return f"no curves of its own:<br>run {members[0].get('run', '?')} behind an input blur"
        return f"no curves of its own:<br>the mean of {len(members)} trained runs" if members else "no curves of its own:<br>an ensemble"
    return "no training history<br>recorded for this run"


def live_history_figure(history: dict[str, dict], colors: dict[str, str] | None = None) -> go.Figure:
    """Training page: loss and accuracy so far, one colour per model, validation dashed.

    ``history`` is ``{model: {"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...]}}``.
    """
    colors = colors or model_colors(history)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Loss", "Accuracy"], horizontal_spacing=0.08)
    for model, h in history.items():
        for col, metric, scale in ((1, "loss", 1.0), (2, "accuracy", 100.0)):
            for key, dash, suffix in ((metric, "solid", "train"), (f"val_{metric}", "dash", "val")):
                ys = [scale * float(v) for v in (h.get(key) or []) if v is not None]
                if not ys:
                    continue
                fig.add_trace(go.Scatter(x=_epochs(ys), y=ys, name=f"{model} {suffix}", mode="lines+markers",
                                         line=dict(color=colors.get(model), dash=dash, width=2), marker=dict(size=6),
                                         legendgroup=model, showlegend=(col == 1)),
                              row=1, col=col)
    fig.update_yaxes(range=[0, 100], ticksuffix="%", row=1, col=2)
    n = max((len(h.get("loss") or []) for h in history.values()), default=0)
    fig.update_xaxes(title_text="epoch", dtick=1 if n <= 12 else None)  # whole epochs, never 1.2, 1.4…
    _layout(fig, height=340)
    fig.update_layout(hovermode="closest")
    return fig


# --------------------------------------------------------------------------- evaluation


def confusion_figure(run, normalise: bool = False, height: int = 380) -> go.Figure:
    """Confusion matrix of one run (rows = true class), counts or row-normalised %."""
    group = as_group(run)
    run = group.run
    names = list(run.metrics["class_names"])
    cm = np.asarray(group.confusion_matrix() if group.n > 1 else run.metrics["confusion_matrix"], dtype=float)
    seeds = f" over {group.n} seeds" if group.n > 1 else ""
    if normalise:
        sums = cm.sum(axis=1, keepdims=True)
        z = np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0) * 100.0
        text = [[f"{v:.0f}%" if s else "–" for v in row] for row, s in zip(z, sums[:, 0])]
        hover = "true %{y}<br>predicted %{x}<br>%{z:.1f}% of the row<extra></extra>"
        zmax = 100.0
    else:
        z = cm
        text = [[f"{int(v)}" for v in row] for row in z]
        what = f"predictions{seeds}" if seeds else "images"
        hover = f"true %{{y}}<br>predicted %{{x}}<br>%{{z:.0f}} {what}<extra></extra>"
        zmax = max(1.0, float(z.max()))
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, text=text, texttemplate="%{text}", zmin=0, zmax=zmax,
                               colorscale="Blues", showscale=False, hovertemplate=hover,
                               textfont=dict(size=11 if len(names) <= 8 else 9)))
    fig.update_yaxes(autorange="reversed", title_text="true", tickfont=dict(size=11))
    fig.update_xaxes(title_text="predicted", tickangle=-40, tickfont=dict(size=11))
    acc = group.accuracy
    title = (f"{run.model_name} · {100 * acc.mean:.1f} ± {100 * acc.std:.1f}% accuracy<br>"
             f"<sup>{group.n} seeds, matrices summed</sup>" if group.n > 1 else
             f"{run.model_name} · {100 * acc.mean:.1f}% accuracy")
    _layout(fig, title=title, height=height, legend=False)
    fig.update_layout(hovermode="closest", margin=dict(l=10, r=10, t=64 if group.n > 1 else 48, b=10))
    return fig


def per_class_f1_figure(runs, colors: dict[str, str] | None = None, height: int = 380) -> go.Figure:
    """Grouped bars: F1 (%) per class, one bar colour per model."""
    colors = colors or model_colors(r.model_name for r in runs)
    fig = go.Figure()
    for item in runs:
        group = as_group(item)
        r = group.run
        names = list(r.metrics["class_names"])
        if group.n > 1:  # mean over seeds, ± sample std as error bars
            spreads = [group.per_class_f1(c) for c in names]
            fig.add_trace(go.Bar(x=names, y=[100.0 * s.mean for s in spreads], name=r.model_name,
                                 marker_color=colors.get(r.model_name),
                                 error_y=dict(type="data", array=[100.0 * s.std for s in spreads],
                                              thickness=1.2, width=3),
                                 customdata=[100.0 * s.std for s in spreads],
                                 hovertemplate=f"{r.model_name}<br>%{{x}}: %{{y:.1f}}% ± %{{customdata:.1f}} "
                                               f"(mean of {group.n} seeds)<extra></extra>"))
            continue
        pc = r.metrics.get("per_class") or {}
        f1 = [100.0 * float((pc.get(c) or {}).get("f1", 0.0)) for c in names]
        fig.add_trace(go.Bar(x=names, y=f1, name=r.model_name, marker_color=colors.get(r.model_name),
                             hovertemplate=f"{r.model_name}<br>%{{x}}: %{{y:.1f}}%<extra></extra>"))
    fig.update_yaxes(range=[0, 100], ticksuffix="%", title_text="F1")
    fig.update_layout(barmode="group", bargap=0.2)
    _layout(fig, title="Per-class F1 by model", height=height)
    fig.update_layout(hovermode="closest")
    return fig


# --------------------------------------------------------------------------- dataset


def class_distribution_figure(report: dict, height: int = 360) -> go.Figure:
    """Bars: images per class, one bar group per split."""
    fig = go.Figure()
    split_colors = {"train": "#4C78A8", "validation": "#F58518", "test": "#54A24B"}
    for split, counts in report["class_counts"].items():
        fig.add_trace(go.Bar(x=list(counts), y=list(counts.values()), name=split, text=list(counts.values()),
                             textposition="outside", marker_color=split_colors.get(split),
                             hovertemplate=f"{split}<br>%{{x}}: %{{y}} images<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="images")
    _layout(fig, title="Class distribution per split", height=height)
    fig.update_layout(hovermode="closest")
    return fig


# --------------------------------------------------------------------------- prediction


def ensemble_figure(class_names, probs, title: str = "Ensemble (mean of the models)", height: int | None = None) -> go.Figure:
    """Horizontal bars of one probability vector in %, the top class highlighted."""
    p = 100.0 * np.asarray(probs, dtype=float)
    top = int(np.argmax(p))
    colors = [ENSEMBLE_COLOR if i == top else "#A3A8B8" for i in range(len(p))]
    fig = go.Figure(go.Bar(x=p, y=list(class_names), orientation="h", marker_color=colors,
                           text=[f"{v:.1f}%" for v in p], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.1f}%<extra></extra>"))
    fig.update_xaxes(range=[0, 115], ticksuffix="%", showgrid=True)
    fig.update_yaxes(autorange="reversed")
    _layout(fig, title=title, height=height or (60 + 30 * len(p)), legend=False)
    fig.update_layout(hovermode="closest")
    return fig


def model_probs_figure(class_names, predictions, colors: dict[str, str] | None = None, cols: int | None = None) -> go.Figure:
    """One bar panel per model: probabilities in % with the model id and its top emotion as the title."""
    n = max(1, len(predictions))
    cols = cols or min(n, 3)
    rows = math.ceil(n / cols)
    colors = colors or model_colors(p.model for p in predictions)  # keyed by registry id
    titles = []
    for p in predictions:
        probs = np.asarray(p.probs, dtype=float)
        k = int(np.argmax(probs))
        titles.append(f"<b>{p.label}</b><br>{class_names[k]} {100 * probs[k]:.0f}%")
    panel = 40 + 22 * len(class_names)  # px per row of panels
    gap = 70  # px between rows: room for the two-line titles
    height = rows * panel + (rows - 1) * gap + 60
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles or [""], shared_yaxes=True,
                        horizontal_spacing=0.05, vertical_spacing=gap / height if rows > 1 else 0.0)
    for i, p in enumerate(predictions):
        probs = 100.0 * np.asarray(p.probs, dtype=float)
        top = int(np.argmax(probs))
        color = colors.get(p.model, PALETTE[0])
        fig.add_trace(go.Bar(x=probs, y=list(class_names), orientation="h", name=p.label, showlegend=False,
                             marker_color=[color if k == top else _fade(color) for k in range(len(probs))],
                             text=[f"{v:.0f}%" for v in probs], textposition="outside", cliponaxis=False,
                             hovertemplate=f"{p.label}<br>%{{y}}: %{{x:.1f}}%<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(range=[0, 125], ticksuffix="%", showticklabels=False, showgrid=False)
    fig.update_yaxes(autorange="reversed")
    _layout(fig, height=height, legend=False)
    fig.update_layout(hovermode="closest", margin=dict(l=10, r=10, t=50, b=10))
    fig.update_annotations(font_size=13)
    return fig


def _fade(hex_color: str, amount: float = 0.55) -> str:
    """Mix a colour with white (non-top bars of a model's panel)."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    mix = lambda c: int(round(c + (255 - c) * amount))  # noqa: E731
    return f"#{mix(r):02x}{mix(g):02x}{mix(b):02x}"
