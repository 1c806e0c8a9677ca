"""Compare: every model trained on one dataset, side by side."""

import streamlit as st

from fer_core.store import seeds
from ui import bootstrap, charts, export, state, tables, widgets

bootstrap.through_app()
CM_WIDTH = 440  # px per confusion matrix: room for "100%" in every cell of an 8-class matrix
st.title("Compare models")

listing, groups = widgets.load_groups()
if not groups:
    widgets.no_runs_state(listing)
    st.stop()
widgets.listing_warnings(listing)

group = widgets.pick_group(groups, key=state.COMPARE_DATASET, label="Dataset to compare on")
widgets.dataset_caption(group)
runs = list(group.runs)
shown = seeds.groups_for(runs, listing.seed_pool)  # each model's newest run with its seed repeats (a group of one if none)
several = any(g.n > 1 for g in shown)
colors = charts.model_colors(r.model_name for r in runs)
random_note = tables.random_backbone_note(runs)  # transfer runs trained offline: near chance, not the architecture


def mark(fig):
    """Titles name random-backbone models as such (ui.tables.mark_random_backbones)."""
    return tables.mark_random_backbones(fig, runs)

# ------------------------------------------------------------------ leaderboard
st.subheader("Leaderboard")
widgets.leaderboard(shown, key="compare_leaderboard")
if random_note:
    st.caption(f":orange[:material/warning: {random_note}]")
widgets.not_trained_notice(group)  # after the scores, as on Home: what is there first, then what is missing

tab_curves, tab_cm, tab_f1, tab_dl = st.tabs(["Training curves", "Confusion matrices", "Per-class F1", "Downloads"],
                                             key="compare_tabs")

# ------------------------------------------------------------------ curves
with tab_curves:
    curved = [g for g in shown if seeds.as_group(g).run.history.get("accuracy")]
    flat = [tables.model_label(g, bundled=False) for g in shown if g not in curved]
    if curved:
        st.caption("One line per model. Accuracy in %, loss is the cross-entropy; validation data was never trained on."
                   + (" " + charts.SEED_BAND_NOTE if several else ""))
    if random_note:
        st.caption(f":orange[:material/warning: {random_note}]")
    if flat:  # an ensemble averages networks trained elsewhere: it has no epochs, so no line, rather than an empty chart
        st.caption(f"No curves for {', '.join(flat)}: "
                   + ("it averages networks trained in other runs and has" if len(flat) == 1 else
                      "these average networks trained in other runs and have") + " no epochs of its own.")
    if curved:
        top = st.columns(2)
        bottom = st.columns(2)
        for col, metric in zip([*top, *bottom], ["accuracy", "val_accuracy", "loss", "val_loss"]):
            col.plotly_chart(mark(charts.history_figure(curved, metric, colors)), key=f"compare_curve_{metric}",
                             config={"displaylogo": False})
        st.markdown("**Per model** — train (solid) against validation (dashed); a grey band marks fine-tuning epochs.")
        metric = st.segmented_control("Metric", ["accuracy", "loss"], default="accuracy", key=state.COMPARE_SMALL_METRIC,
                                      format_func=str.capitalize, required=True)
        st.plotly_chart(mark(charts.small_multiples(curved, metric or "accuracy", colors, cols=3)),
                        key="compare_small_multiples", config={"displaylogo": False})

# ------------------------------------------------------------------ confusion matrices
with tab_cm:
    mode = st.segmented_control("Show", ["counts", "row-normalised"], default="counts", key=state.COMPARE_CM_MODE,
                                required=True,
                                help="Row-normalised: each row (true class) sums to 100 %, i.e. the recall of that class.")
    st.caption(f"Rows: true class · columns: predicted class · on the {runs[0].metrics.get('split', 'test')} split."
               + (" A model trained with several seeds shows its seeds' matrices summed (every seed scored the same "
                  "images; row-normalised, the recall averaged over seeds)." if several else ""))
    # Fixed-width matrices in a wrapping row: two per row on a laptop, one on a narrow window, never squeezed.
    with st.container(horizontal=True, gap="medium"):
        for item in shown:
            st.plotly_chart(mark(charts.confusion_figure(item, normalise=(mode == "row-normalised"))), width=CM_WIDTH,
                            key=f"compare_cm_{item.id}", config={"displaylogo": False})

# ------------------------------------------------------------------ per-class F1
with tab_f1:
    if several:
        st.caption("Models trained with several seeds: mean F1 over the seeds, error bars ± sample standard deviation.")
    st.plotly_chart(mark(charts.per_class_f1_figure(shown, colors)), key="compare_f1", config={"displaylogo": False})
    f1 = tables.per_class_f1(shown).pivot(index="Class", columns="Model", values="F1")
    f1 = f1.reindex(index=group.class_names, columns=[r.model_name for r in runs])
    f1.columns = [tables.model_label(g, bundled=False) for g in shown]
    st.dataframe(f1, key="compare_f1_table", width="stretch",
                 column_config={c: st.column_config.NumberColumn(c, format="%.1f%%") for c in f1.columns})

# ------------------------------------------------------------------ downloads
with tab_dl:
    st.caption("Each run folder is self-describing: `model.keras` takes raw 0–255 pixels and returns probabilities; "
               "`metrics.json` holds the scores, confusion matrix and the exact training command.")
    for run in runs:
        c1, c2, c3, _ = st.columns([2, 1, 1, 1], vertical_alignment="center")
        size = run.metrics.get("model_size_bytes") or 0
        c1.markdown(f"**{run.model_name}**{tables.model_label(run)[len(run.model_name):]}  \n`{run.id}`")
        if run.head_only:  # published: head weights + a pinned reference to the ImageNet backbone, no model.keras
            c2.download_button(f"run folder (.zip) · {size / 1e6:.1f} MB", data=lambda r=run: tables.run_zip(r),
                               file_name=f"{run.id}.zip", mime="application/zip",
                               key=f"{state.COMPARE_DOWNLOAD_PREFIX}model_{run.id}", icon=":material/download:",
                               on_click="ignore", help="A published run: its head's weights and backbone.json "
                               "(the ImageNet backbone it sits on). fer_core.load_run(folder).load_model() rebuilds it.")
        else:
            c2.download_button(f"model.keras · {size / 1e6:.1f} MB", data=run.model_path.read_bytes,
                               file_name=f"{run.id}_model.keras", mime="application/octet-stream",
                               key=f"{state.COMPARE_DOWNLOAD_PREFIX}model_{run.id}", icon=":material/download:",
                               on_click="ignore")
        c3.download_button("metrics.json", data=(run.path / "metrics.json").read_bytes,
                           file_name=f"{run.id}_metrics.json", mime="application/json",
                           key=f"{state.COMPARE_DOWNLOAD_PREFIX}metrics_{run.id}", icon=":material/download:",
                           on_click="ignore")
    st.divider()
    export.export_section(runs)  # the model as keras / saved_model / tflite / tflite_int8 / onnx + labels.json
