"""Dataset: split sizes, class balance, sample images per class, and leakage between splits."""

import numpy as np
import streamlit as st

from fer_core import FERError
from ui import access, bootstrap, charts, state, widgets
from ui.loaders import crowd_agreement_cached, dataset_report_cached, has_crowd_votes, load_dataset_cached

bootstrap.through_app()
st.title("Dataset explorer")
st.caption("Check a dataset before training on it: how big each split is, whether classes are balanced, "
           "what the images look like, and whether the same image sits in two splits (leakage that inflates "
           "test accuracy).")

#: Public mode: the demo faces only, and at most this many per class (drawing them costs the shared CPU).
PUBLIC_DEMO_MAX_PER_CLASS = 200


def public_demo_choice() -> widgets.DatasetChoice:
    """A public deployment's picker: the built-in demo faces; no server paths are listed or typed."""
    per_class = st.columns([1, 2])[0].number_input(
        "Demo faces per class", 2, PUBLIC_DEMO_MAX_PER_CLASS, 50, step=10, key=state.DATASET_DEMO_PER_CLASS,
        help="The demo set draws this many synthetic faces per class (8 classes).")
    st.caption("This public demo explores the built-in demo faces. Run the app on your own machine to explore "
               "your own datasets.")
    return widgets.DatasetChoice("demo", {"demo_per_class": int(per_class), "demo_image_size": 128},
                                 f"demo ({per_class} per class)")


if access.trusted():
    listing, groups = widgets.load_groups()
    choice = widgets.dataset_choice(groups, prefix="dataset")
else:
    choice = public_demo_choice()
if choice is None:
    st.stop()
if has_crowd_votes(choice.spec):  # FER2013 with the FER+ crowd's votes beside it: two label sets for one set of faces
    label_set = st.radio("Labels", ["own", "ferplus"], horizontal=True, key=state.DATASET_LABELS,
                         format_func={"own": "The file's own labels", "ferplus": "FER+ crowd majority (8 emotions)"}.get,
                         help="FER+ (Barsoum et al. 2016) had each FER2013 face labelled by 10 people; "
                              "`ferplus_votes.npz` beside the file holds their votes. Training with "
                              "`--labels ferplus` fits the vote distribution.")
    if label_set == "ferplus":
        choice = widgets.DatasetChoice(choice.spec, {**choice.kwargs, "labels": "ferplus"},
                                       f"{choice.label} with FER+ labels")

try:
    report = dataset_report_cached(choice.spec, **choice.kwargs)
    ds = load_dataset_cached(choice.spec, **choice.kwargs)
except FERError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
except Exception as exc:  # last resort: a file the loaders did not anticipate
    st.error(f"{choice.label}: cannot load this dataset ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
             icon=":material/error:")
    st.stop()

for w in report.get("warnings", []):
    st.warning(w, icon=":material/warning:")

# ------------------------------------------------------------------ overview
sizes = report["split_sizes"]
h, w_, c = report["image_shape"]
with st.container(horizontal=True):  # cards wrap onto a second row on a narrow window instead of truncating
    st.metric("Classes", len(report["class_names"]), border=True)
    st.metric("Image size", f"{h} px" if h == w_ else f"{w_}×{h}", help=f"{w_}×{h} pixels, {'grayscale' if c == 1 else 'RGB'}",
              border=True)
    st.metric("Images", f"{sum(sizes.values()):,}", border=True)
    for split, n in sizes.items():
        st.metric(split.capitalize(), f"{n:,}", help=f"{100 * n / max(1, sum(sizes.values())):.0f}% of all images",
                  border=True)
st.caption(f"Fingerprint `{report['fingerprint']}` · source `{report['source']}` — runs trained on this exact data "
           "are grouped under this fingerprint.")

# ------------------------------------------------------------------ class balance
st.subheader("Class distribution")
row = st.container(horizontal=True, gap="large")  # chart and table side by side; stacked on a narrow window
row.plotly_chart(charts.class_distribution_figure(report), key="dataset_distribution",
                 config={"displaylogo": False})
counts = report["class_counts"]
train_counts = counts.get("train", {})
if train_counts:
    lo, hi = min(train_counts.values()), max(train_counts.values())
    with row.container(width=340):
        st.dataframe({"class": list(train_counts), **{s: list(v.values()) for s, v in counts.items()}},
                     key="dataset_counts", hide_index=True, width="stretch")
        if lo == 0:
            st.error("A class has no training images: the models cannot learn it.", icon=":material/error:")
        elif hi / lo >= 3:
            st.warning(f"Classes are imbalanced ({hi:,} vs {lo:,} training images). Consider "
                       "`--class-weight balanced` when training, and read macro-F1 rather than accuracy.",
                       icon=":material/balance:")
        else:
            st.success("Classes are roughly balanced.", icon=":material/check_circle:")

# ------------------------------------------------------------------ the crowd's view
crowd = None if choice.kwargs.get("labels") else crowd_agreement_cached(choice.spec)
if crowd:
    st.subheader("These labels against a 10-person crowd (FER+)")
    split_name = "test" if "test" in crowd else next(iter(crowd))
    agree = crowd[split_name]
    st.caption(f"For each face of the {split_name} split, the majority of 10 FER+ taggers against the file's label "
               f"({agree['n']:,} faces the crowd kept). Overall they agree on {100 * agree['overall']:.0f} % of "
               "faces; where they disagree, the crowd most often calls the face neutral.")
    rows = []
    for name, r in agree["per_class"].items():
        others = sorted(((n, c) for n, c in r["crowd_says"].items() if n != ("anger" if name == "angry" else name)),
                        key=lambda t: -t[1])[:2]
        rows.append({"label": name, "faces": r["n"], "crowd agrees": r["agree"],
                     "crowd says instead": ", ".join(f"{n} {c}" for n, c in others if c)})
    st.dataframe(rows, key="dataset_crowd", hide_index=True, width="content",
                 column_config={"crowd agrees": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                               max_value=1)})

# ------------------------------------------------------------------ samples
st.subheader("Sample images per class")
c1, c2 = st.columns([1, 3])
split = c1.selectbox("Split", list(ds.splits), key=state.DATASET_SAMPLE_SPLIT)
per_class = c2.slider("Images per class", 2, 16, 6, key=state.DATASET_SAMPLES_PER_CLASS)
x, y = ds.splits[split]
rng = np.random.default_rng(0)
grid = st.columns(2, gap="large")
for k, name in enumerate(ds.class_names):
    idx = np.flatnonzero(y == k)
    with grid[k % 2]:
        if idx.size == 0:
            st.markdown(f"**{name}** · no images in {split}")
            continue
        pick = np.sort(rng.choice(idx, size=min(per_class, idx.size), replace=False))
        st.markdown(f"**{name}** · {idx.size:,} images")
        st.image([x[i][..., 0] if x.shape[-1] == 1 else x[i] for i in pick], width=64)

# ------------------------------------------------------------------ leakage
st.subheader("Duplicates across splits")
leak = report["leakage"]
if leak["total"] == 0:
    st.success("No image appears in two splits (byte-identical check).", icon=":material/check_circle:")
else:
    st.error(f"{leak['total']:,} image(s) appear in more than one split: test scores on this data are optimistic. "
             "Remove the duplicates from the evaluation splits.", icon=":material/content_copy:")
st.dataframe({"splits": list(leak["pairs"]), "identical images": list(leak["pairs"].values())},
             key="dataset_leakage", hide_index=True, width="content")
if leak["examples"]:
    st.caption("Examples (left: first split, right: second split):")
    pairs = leak["examples"][:6]
    cols = st.columns(len(pairs))
    for col, ex in zip(cols, pairs):
        a = ds.splits[ex["split_a"]][0][ex["index_a"]]
        b = ds.splits[ex["split_b"]][0][ex["index_b"]]
        pair = np.concatenate([a, np.full((a.shape[0], 4, a.shape[2]), 255, np.uint8), b], axis=1)
        col.image(pair[..., 0] if pair.shape[-1] == 1 else pair, width="stretch",
                  caption=f"{ex['split_a']} #{ex['index_a']} = {ex['split_b']} #{ex['index_b']}")
