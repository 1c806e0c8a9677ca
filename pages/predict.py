"""Predict: find faces in a photo and show what every trained model reads in each."""

import numpy as np
import pandas as pd
import streamlit as st

from fer_core.predict import draw_boxes
from ui import bootstrap, charts, inference, samples, settings, state, widgets

bootstrap.through_app()
st.title("Predict on a photo")

listing, groups = widgets.load_groups()
if not groups:
    widgets.no_runs_state(listing)
    st.stop()
widgets.listing_warnings(listing)

top = st.columns([2, 3])
with top[0]:
    group = widgets.pick_group(groups, key=state.PREDICT_DATASET, label="Models trained on", narrow=False)
    runs = list(group.runs)
    st.caption(f"{len(runs)} model(s): " + ", ".join(r.model_name for r in runs)
               + (" · **bundled, trained on FER2013**" if group.bundled else ""))
with top[1]:
    source = st.segmented_control("Photo", ["upload", "camera", "sample"], default="upload", required=True,
                                  key=state.PREDICT_SOURCE,
                                  format_func={"upload": "Upload a photo", "camera": "Take a photo",
                                               "sample": "Use a sample"}.get)

data, name = None, None
with top[1]:
    if source == "upload":
        up = st.file_uploader(
            "Photo (JPEG, PNG, WebP, BMP or GIF)", type=settings.PHOTO_TYPES + ["heic", "heif"],
            key=state.PREDICT_UPLOAD, max_upload_size=settings.MAX_PHOTO_MB,
            help=f"Up to {settings.MAX_PHOTO_MB} MB. Only the first frame of a GIF is used; phone rotation (EXIF) is respected.")
        if up is not None:
            data, name = up.getvalue(), up.name
    elif source == "camera":
        shot = st.camera_input("Take a photo", key=state.PREDICT_CAMERA)
        if shot is not None:
            data, name = shot.getvalue(), "camera photo"
    else:
        pick = st.selectbox("Sample photo", samples.sample_names(), key=state.PREDICT_SAMPLE,
                            help="Synthetic faces drawn by the demo generator: no real people.")
        data, name = samples.sample_bytes(pick), pick

if data is None:
    st.info("Upload a photo, take one with your camera, or pick a sample to see what each model reads in every face.",
            icon=":material/photo_camera:")
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

left, right = st.columns([3, 2], gap="large")
with left:
    t = result.timings
    st.image(draw_boxes(result.image, result.faces), width="stretch",
             caption=(f"{n} face{'s' if n != 1 else ''} found" if not result.whole_image else "whole image")
             + f" · detection {t.get('detect', 0):.2f} s · classification {t.get('classify', 0):.2f} s")
with right:
    st.markdown("**Faces** — what the ensemble (mean of all models) reads")
    for face in result.faces:
        c1, c2 = st.columns([1, 3], vertical_alignment="center")
        c1.image(face.crop, width="stretch")
        order = np.argsort(face.ensemble)[::-1]
        second = classes[order[1]] if len(order) > 1 else ""
        conf = (f"detector confidence {face.confidence:.0%}" if face.confidence is not None
                else "no face detected: whole image")
        c2.markdown(f"**Face {face.index}: {classes[order[0]]} {100 * face.ensemble[order[0]]:.0f}%**  \n"
                    f"then {second} {100 * face.ensemble[order[1]]:.0f}% · {conf}")

st.subheader("Every model's probabilities")
tabs = st.tabs([f"Face {f.index}" for f in result.faces], key="predict_face_tabs") if n > 1 else [st.container()]
for tab, face in zip(tabs, result.faces):
    with tab:
        c1, c2 = st.columns([1, 3], gap="medium")
        c1.plotly_chart(charts.ensemble_figure(classes, face.ensemble, title=f"Ensemble · mean of {len(face.predictions)}"),
                        key=f"predict_ensemble_{face.index}", config={"displayModeBar": False})
        c2.plotly_chart(charts.model_probs_figure(classes, face.predictions, colors, cols=min(len(face.predictions), 3)),
                        key=f"predict_models_{face.index}", config={"displayModeBar": False})
        emotion, _ = face.top()
        rows = [{"Model": pr.label, "Top emotion": classes[int(np.argmax(pr.probs))],
                 **{c: 100 * float(v) for c, v in zip(classes, pr.probs)}} for pr in face.predictions]
        rows.append({"Model": "ensemble (mean)", "Top emotion": emotion,
                     **{c: 100 * float(v) for c, v in zip(classes, face.ensemble)}})
        with st.expander("All probabilities as a table", key=f"predict_table_expander_{face.index}"):
            st.dataframe(pd.DataFrame(rows), key=f"predict_table_{face.index}", hide_index=True, width="stretch",
                         column_config={c: st.column_config.NumberColumn(c, format="%.1f%%") for c in classes})

# ------------------------------------------------------------------ Grad-CAM
st.subheader("Where do the models look?")
g1, g2 = st.columns([1, 3], vertical_alignment="bottom")
face_no = g1.selectbox("Face", [f.index for f in result.faces], key=state.PREDICT_GRADCAM_FACE,
                       format_func=lambda i: f"Face {i}") if n > 1 else result.faces[0].index
show = g2.toggle("Show Grad-CAM for every model", key=state.PREDICT_GRADCAM,
                 help="Grad-CAM colours the regions that pushed each model towards its top emotion (red = most).")
if show:
    face = next(f for f in result.faces if f.index == face_no)
    cols = st.columns(min(len(face.predictions), 5))
    with st.spinner("Computing Grad-CAM…"):
        for i, pr in enumerate(face.predictions):
            out = inference.gradcam(runs, face, pr.run_id)
            col = cols[i % len(cols)]
            if isinstance(out, str):
                col.error(out, icon=":material/error:")
            else:
                col.image(out, width="stretch",
                          caption=f"{pr.label}: {classes[int(np.argmax(pr.probs))]} {100 * float(np.max(pr.probs)):.0f}%")
else:
    st.caption("Turn on Grad-CAM to see, for each model, which parts of the face drove its answer.")
