"""Predict: find faces in a photo and show what every trained model reads in each.

Several photos at once (more than one upload, or a zip of them) give a table instead:
one row per face in the fer_core.inference.rows layout, with a CSV download.
"""

import io

import numpy as np
import pandas as pd
import streamlit as st

from fer_core.inference.predictor import draw_boxes
from fer_core.inference.rows import to_frame, write_csv
from ui import access, bootstrap, charts, inference, samples, settings, state, tables, widgets
from ui.loaders import default_predict_models, photo_scores
from ui.tables import random_backbone_note

bootstrap.through_app()
GRADCAM_PX = 170  # side of one Grad-CAM image: five fit in a row on a laptop screen
SKIPPED_LINES = 8  # skipped files named one per line; more are counted on one further line
st.title("Predict on a photo")

listing, groups = widgets.load_groups()
if not groups:
    widgets.no_runs_state(listing)
    st.stop()
widgets.listing_warnings(listing)

top = st.columns([1, 1], gap="medium")
with top[0]:
    group = widgets.pick_group(groups, key=state.PREDICT_DATASET, label="Models trained on", narrow=False)
    with st.container():  # directly in a column the chosen models' chips scroll out of sight; here they wrap
        runs = widgets.pick_models(group, key=f"{state.PREDICT_MODELS}_{group.fingerprint}")
        runs += widgets.pick_other_models(groups, group, key=f"{state.PREDICT_OTHER_MODELS}_{group.fingerprint}")
    if group.source == "demo" and any(g.source != "demo" for g in groups):
        st.caption(":material/info: These models learned from the synthetic *demo* faces; on real photos they "
                   "mostly guess. For real faces choose a dataset of real ones above (e.g. the bundled FER2013 models).")
    best = default_predict_models(group)[0]
    if group.bundled and best in (scores := photo_scores(group)) and len(group.runs) > 1:  # why this default
        n_photos = scores.pop("n")
        verdict = "the best bundled choice for photos" if scores.get(best) == max(scores.values()) else "the default"
        others = " · ".join(f"{'all averaged' if m == 'ensemble' else m} {tables.pct_text(a)}"  # the mean of every model
                            for m, a in scores.items() if m != best)
        what = next((tables.ensemble_text(r) for r in group.runs if r.model_name == best), None)
        st.caption(f":material/verified: Starts with **{best}**{f' ({what})' if what else ''}, {verdict}: it reads "
                   f"**{tables.pct_text(scores[best])}** of {n_photos:,} FER2013 test faces pasted into photos "
                   f"right through this page's detector and crop ({others}; `benchmarks/fer2013.py`).")
    if backbone_note := random_backbone_note(group.runs):  # offline transfer runs: near chance, say so by the picker
        st.caption(f":orange[:material/warning: {backbone_note}]")
with top[1]:
    source = st.segmented_control("Photo", ["upload", "camera", "sample"], default="upload", required=True,
                                  key=state.PREDICT_SOURCE, wrap=True,  # in a column it would scroll, hiding "Upload"
                                  format_func={"upload": "Upload", "camera": "Camera", "sample": "Sample"}.get,
                                  help="Upload a photo, take one with your camera, or use a synthetic sample photo.")

data, name, files = None, None, []
limits = settings.limits()  # photo size, pixels, faces, predictions a minute, photos a batch (env / st.secrets)
with top[1]:
    if source == "upload":
        ups = st.file_uploader(
            "Photo (JPEG, PNG, WebP, BMP or GIF) — or several, or a zip of them",
            type=settings.PHOTO_TYPES + ["heic", "heif", "zip"], accept_multiple_files=True,
            key=state.PREDICT_UPLOAD, max_upload_size=limits.photo_mb,
            help=f"Up to {limits.photo_mb} MB and {limits.megapixels:g} megapixels a photo. Only the first frame of "
                 "a GIF is used; phone rotation (EXIF) is respected. Several photos or a zip give a table of every "
                 f"face with a CSV download (up to {limits.batch_photos or 'any number of'} photos; for whole folders "
                 "use `python -m predict`).")
        files = [(u.name, u.getvalue()) for u in ups or []]
        if dropped := access.dropped_uploads():  # past the per-visitor bound the server let the oldest go
            st.info(dropped, icon=":material/info:")
        if len(files) == 1 and not inference.is_batch(files):
            name, data = files[0]
    elif source == "camera":
        shot = st.camera_input("Take a photo", key=state.PREDICT_CAMERA)
        if shot is not None:
            data, name = shot.getvalue(), "camera photo"
    else:
        pick = st.selectbox("Sample photo", samples.sample_names(), key=state.PREDICT_SAMPLE,
                            help="The first is a real photo (NASA, public domain); the others are synthetic faces drawn by the demo generator.")
        data, name = samples.sample_bytes(pick), pick

if not runs:
    st.info("Choose at least one model to classify the faces with.", icon=":material/info:")
    st.stop()


def show_batch(runs, files) -> None:
    """Several photos: one line per file left out, then a table of every face and its CSV."""
    bar = st.progress(0.0, text="Finding faces and classifying them…")
    out = inference.predict_batch(runs, files, progress=lambda f, text: bar.progress(min(1.0, f), text=text))
    bar.empty()
    skipped = out.get("skipped") or []
    for line in skipped[:SKIPPED_LINES]:
        st.warning(line, icon=":material/block:")
    if len(skipped) > SKIPPED_LINES:
        st.warning(f"… and {len(skipped) - SKIPPED_LINES} more files skipped.", icon=":material/block:")
    if out.get("error"):
        st.error(out["error"], icon=":material/error:")
        return
    classes, rows = out["class_names"], out["rows"]
    table = to_frame(rows, classes).drop(columns=["frame", "time_s"])  # photos: no frame, no time
    tops = table.loc[~table["whole_image"], "top"].value_counts()
    st.subheader(f"{out['photos']} photos · {out['faces']} faces")
    st.caption(f"Read in {out['seconds']:.1f} s ({out['photos'] / max(out['seconds'], 1e-9):.1f} photos/s) · "
               + (f"{len(runs)} models' mean · " if len(runs) > 1 else f"{runs[0].model_name} · ")
               + (f"no face found in {out['whole_image']}: the whole image was classified (whole_image) · "
                  if out["whole_image"] else "")
               + "top emotions: " + (" · ".join(f"{c} {n}" for c, n in tops.items()) or "none"))
    st.dataframe(table, key=state.PREDICT_BATCH_TABLE, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(c, format="percent") for c in classes})
    buf = io.StringIO()
    write_csv(rows, classes, buf)
    st.download_button("Download CSV", buf.getvalue(), file_name="predictions.csv", mime="text/csv",
                       key=state.PREDICT_BATCH_DOWNLOAD, icon=":material/download:",
                       help="One row per face: file, frame, time_s, face_id, box, every class's probability, top, "
                            "whole_image — the layout python -m predict writes.")


if source == "upload" and data is None and files:
    show_batch(runs, files)
    st.stop()
if data is None:
    st.info("Upload a photo (or several, or a zip of them), take one with your camera, or pick a sample to see what "
            "each model reads in every face.", icon=":material/photo_camera:")
    st.stop()

result, error = inference.predict(runs, data, name)
if error:
    st.error(error, icon=":material/error:")
    st.stop()

classes = result.class_names
colors = charts.model_colors(r.model_name for r in runs)
n = len(result.faces)
if result.whole_image:
    st.info("No face found — the whole image (its centred square) was classified instead.", icon=":material/info:")
cap_note = inference.face_cap_note()  # more faces than limits.faces: only the largest were classified
if cap_note:
    st.info(cap_note, icon=":material/groups:")

top_row = st.container(horizontal=True, gap="large")  # photo and face list; the list wraps below on a narrow window
left, right = top_row.container(), top_row.container(width=380)
with left:
    t = result.timings
    st.image(draw_boxes(result.image, result.faces), width="stretch",
             caption=(f"{n} face{'s' if n != 1 else ''} {'classified' if cap_note else 'found'}"
                      if not result.whole_image else "whole image")
             + f" · detection {t.get('detect', 0):.2f} s · classification {t.get('classify', 0):.2f} s")
with right:
    st.markdown("**Faces** — " + ("what the ensemble (mean of all models) reads" if len(runs) > 1 else
                                  f"what {runs[0].model_name} reads"))
    for face in result.faces:
        # One row per face: the crop keeps its size, the text wraps beside it (also on a narrow window).
        row = st.container(horizontal=True, vertical_alignment="center", wrap=False)
        row.image(face.crop, width=72)
        order = np.argsort(face.ensemble)[::-1]
        second = classes[order[1]] if len(order) > 1 else ""
        conf = (f"detector confidence {face.confidence:.0%}" if face.confidence is not None
                else "no face detected: whole image")
        row.markdown(f"**Face {face.index}: {classes[order[0]]} {100 * face.ensemble[order[0]]:.0f}%**  \n"
                     f"then {second} {100 * face.ensemble[order[1]]:.0f}% · {conf}")

st.subheader("Every model's probabilities")
tabs = st.tabs([f"Face {f.index}" for f in result.faces], key="predict_face_tabs") if n > 1 else [st.container()]
for tab, face in zip(tabs, result.faces):
    with tab:
        k = len(face.predictions)
        if k > 1:  # the model panels beside the ensemble; below it on a narrow window
            row = st.container(horizontal=True, gap="medium")
            row.plotly_chart(charts.ensemble_figure(classes, face.ensemble, title=f"Ensemble · mean of {k} models"),
                             key=f"predict_ensemble_{face.index}", config={"displayModeBar": False}, width=300)
            row.plotly_chart(charts.model_probs_figure(classes, face.predictions, colors, cols=min(k, 3)),
                             key=f"predict_models_{face.index}", config={"displayModeBar": False})
        else:  # one model (the default): plain HTML bars, no chart library for the visitor's browser to load
            st.html(charts.probability_bars_html(classes, face.predictions[0].probs, caption=face.predictions[0].label))
        emotion, _ = face.top()
        rows = [{"Model": pr.label, "Top emotion": classes[int(np.argmax(pr.probs))],
                 **{c: 100 * float(v) for c, v in zip(classes, pr.probs)}} for pr in face.predictions]
        if k > 1:
            rows.append({"Model": "ensemble (mean)", "Top emotion": emotion,
                         **{c: 100 * float(v) for c, v in zip(classes, face.ensemble)}})
        with st.expander("All probabilities as a table", key=f"predict_table_expander_{face.index}"):
            st.dataframe(pd.DataFrame(rows), key=f"predict_table_{face.index}", hide_index=True, width="stretch",
                         column_config={c: st.column_config.NumberColumn(c, format="%.1f%%") for c in classes})

# ------------------------------------------------------------------ Grad-CAM
st.subheader("Where do the models look?")
g1, g2 = st.columns([1, 3], vertical_alignment="bottom") if n > 1 else (None, st.container())  # no empty column
face_no = g1.selectbox("Face", [f.index for f in result.faces], key=state.PREDICT_GRADCAM_FACE,
                       format_func=lambda i: f"Face {i}") if n > 1 else result.faces[0].index
show = g2.toggle("Show Grad-CAM for every model", key=state.PREDICT_GRADCAM,
                 help="Grad-CAM colours the regions that pushed each model towards its top emotion (red = most).")
if show:
    face = next(f for f in result.faces if f.index == face_no)
    grid = st.container(horizontal=True)  # fixed-size heat maps that wrap onto more rows on a narrow window
    with st.spinner("Computing Grad-CAM…"):
        for pr in face.predictions:
            out = inference.gradcam(runs, face, pr.run_id)
            cell = grid.container(width=GRADCAM_PX)
            if isinstance(out, str):
                cell.error(out, icon=":material/error:")
            else:
                cell.image(out, width="stretch",
                           caption=f"{pr.label}: {classes[int(np.argmax(pr.probs))]} {100 * float(np.max(pr.probs)):.0f}%")
else:
    st.caption("Turn on Grad-CAM to see, for each model, which parts of the face drove its answer.")
