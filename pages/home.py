"""Home: what FER Studio does, what is trained on which dataset, the leaderboard, the next step."""

import streamlit as st

from fer_core.store import seeds
from ui import bootstrap, state, tables, widgets
from ui.loaders import model_names

bootstrap.through_app()
st.title("FER Studio")
st.markdown(
    "Train facial-expression classifiers, compare them side by side, and try them on your own photos. "
    "Five models — a small CNN trained from scratch and four ImageNet backbones with a new head — "
    "learn on the built-in **demo** faces, FER2013, or your own image folders."
)

cards = st.container(horizontal=True)  # three cards in a row; they wrap on a narrow window instead of squeezing
for title, text, page, icon in [
    ("1 · Train", "Pick a dataset and models; training runs in the background and you can follow it live.",
     "pages/train.py", ":material/model_training:"),
    ("2 · Compare", "Curves, confusion matrices, per-class F1 and a leaderboard for every model of a dataset.",
     "pages/compare.py", ":material/leaderboard:"),
    ("3 · Predict", "Upload a photo or take one: faces are found, numbered and classified by every model.",
     "pages/predict.py", ":material/photo_camera:"),
]:
    with cards.container(border=True, height="stretch"):
        st.markdown(f"**{title}**")
        st.caption(text)
        st.page_link(page, label=title.split('· ')[1], icon=icon)  # short: the cards are narrow on a small window
st.page_link("pages/live.py", label="Live: point your camera at yourself and see each face read as it streams",
             icon=":material/videocam:")

listing, groups = widgets.load_groups()

if not groups:
    st.subheader("Get started")
    widgets.no_runs_state(listing)
    st.stop()

widgets.listing_warnings(listing)

# ------------------------------------------------------------------ coverage
st.subheader("Trained models by dataset")
by_seed = {g.fingerprint: seeds.groups_for(g.runs, listing.seed_pool) for g in groups}  # seed repeats read as one
coverage = tables.coverage_matrix(groups, model_names(), by_seed)
st.caption("Test accuracy of each model on each dataset it was trained on (one column per dataset fingerprint).")
st.dataframe(coverage, key="home_coverage", width="content")
all_note = tables.random_backbone_note([r for g in groups for r in g.runs])
if all_note:
    st.caption(f":orange[:material/warning: {all_note}]")

# ------------------------------------------------------------------ leaderboard
st.subheader("Leaderboard")
group = widgets.pick_group(groups, key=state.HOME_DATASET)
widgets.dataset_caption(group)
widgets.leaderboard(by_seed[group.fingerprint], key="home_leaderboard")
group_note = tables.random_backbone_note(group.runs)
if group_note:
    st.caption(f":orange[:material/warning: {group_note}]")
widgets.not_trained_notice(group)

# ------------------------------------------------------------------ next step
st.subheader("Next step")
best = max(by_seed[group.fingerprint], key=lambda g: g.accuracy.mean)
tied = [b.model_name for a, b in seeds.ties(by_seed[group.fingerprint]) if a is best]
c1, c2 = st.columns(2)
with c1.container(border=True):
    st.markdown(f"**Try the models on a photo.** Best on *{group.name}*: **{tables.model_label(best)}** "
                f"({tables.spread_text(best.accuracy)} accuracy"
                + (f"; tied within seed spread with {', '.join(tied)}" if tied else "") + ").")
    st.page_link("pages/predict.py", label="Predict on a photo", icon=":material/photo_camera:")
with c2.container(border=True):
    if all(g.bundled for g in groups):  # a fresh install: only the models shipped in models/
        st.markdown("**Train your own.** Nothing is trained on this machine yet: train the five models on the "
                    "built-in demo faces (about 5 minutes on 2 CPU cores), or on FER2013 or your own class folders.")
    elif group.source == "demo":
        p = group.runs[0].demo_params()
        st.markdown(f"**Train on more data.** These runs saw {p['demo_per_class']} demo faces per class; "
                    "train longer, on more faces, or point the Train page at FER2013 or your own class folders.")
    else:
        st.markdown("**Train more models or another dataset.** Add the missing models, or try more epochs "
                    "and fine-tuning.")
    st.page_link("pages/train.py", label="Train models", icon=":material/model_training:")
