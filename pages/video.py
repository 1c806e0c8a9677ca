"""Video: follow every face through a clip — each emotion's probability over time, shares, per-frame CSV."""

import streamlit as st

from fer_core.inference.video import DEFAULT_FPS, VIDEO_TYPES
from ui import bootstrap, settings, state, video, widgets

bootstrap.through_app()
st.title("Follow faces through a video")

listing, groups = widgets.load_groups()
if not groups:
    widgets.no_runs_state(listing)
    st.stop()
widgets.listing_warnings(listing)
limits = settings.limits()  # video size and seconds analysed, faces per frame (env / st.secrets)

top = st.columns([1, 1], gap="medium")
with top[0]:
    group = widgets.pick_group(groups, key=state.VIDEO_DATASET, label="Models trained on", narrow=False)
    with st.container():
        runs = widgets.pick_models(group, key=f"{state.VIDEO_MODELS}_{group.fingerprint}")
        runs += widgets.pick_other_models(groups, group, key=f"{state.VIDEO_OTHER_MODELS}_{group.fingerprint}")
with top[1]:
    source = st.segmented_control("Video", ["upload", "sample"], default="upload", required=True,
                                  key=state.VIDEO_SOURCE, format_func={"upload": "Upload", "sample": "Sample"}.get,
                                  help="Upload a clip, or use a sample made from the real astronaut photo.")
    data, name = None, None
    seconds_note = f" Only the first {limits.video_seconds:g} s are analysed." if limits.video_seconds else ""
    if source == "upload":
        up = st.file_uploader("Video (MP4, MOV, WebM, MKV, AVI or animated GIF)", type=VIDEO_TYPES,
                              key=state.VIDEO_UPLOAD, max_upload_size=limits.video_mb,
                              help=f"Up to {limits.video_mb} MB.{seconds_note}")
        if up is not None:
            data, name = up.getvalue(), up.name
    else:
        data, name = video.sample_clip(), video.SAMPLE_NAME
        st.caption("A camera panning across NASA's portrait of Eileen Collins (public domain), out of focus "
                   "from 1.6 to 2.4 s: 4 s, 480×360, 10 fps.")
    c1, c2 = st.columns(2)
    choices = video.fps_choices(limits)
    fps = c1.select_slider("Samples per second", choices, value=min(DEFAULT_FPS, choices[-1]), key=state.VIDEO_FPS,
                           format_func=lambda v: f"{v:g}",
                           help="Frames analysed per second of video time (the first frame at or after each "
                                "step). Each costs a face detection: 5 follows expressions at a fifth of a "
                                "25 fps clip's work.")
    window = c2.select_slider("Smoothing", video.SMOOTH_CHOICES, value=1, key=state.VIDEO_SMOOTH,
                              format_func=lambda w: "off" if w == 1 else f"{w} samples",
                              help="Moving average of each face's probabilities in the charts (the CSV keeps "
                                   "the raw values).")
    annotate = st.toggle("Also make an annotated video (numbered boxes and top emotion)", key=state.VIDEO_ANNOTATE)

if not runs:
    st.info("Choose at least one model to classify the faces with.", icon=":material/info:")
    st.stop()
if data is None:
    st.info("Upload a clip or pick the sample, then press Analyse.", icon=":material/movie:")
    st.stop()

key = video.analysis_key(data, runs, fps, annotate)
start = st.button("Analyse", type="primary", key=state.VIDEO_ANALYSE, icon=":material/play_arrow:")
out = video.cached(key)
if out is None or start:
    if not start:
        if video.was_cancelled(key):
            st.warning("Analysis cancelled. Press Analyse to start again.", icon=":material/cancel:")
        else:
            st.info(f"Press Analyse to read {name} at {fps:g} samples per second.{seconds_note}",
                    icon=":material/movie:")
        st.stop()
    out = video.analyse(runs, data, name, fps=fps, annotate=annotate)
if out["error"]:
    st.error(out["error"], icon=":material/error:")
    st.stop()

result = out["result"]
stats, info, classes = result.stats, result.info, result.class_names
n_faces = len(result.timelines)
st.caption(f"{name}: {info.width}×{info.height}, {info.duration_s or 0:.1f} s, {info.codec} · "
           f"{stats.frames_sampled} frames analysed of {stats.frames_decoded} decoded · "
           f"{n_faces} face{'s' if n_faces != 1 else ''} followed · decode {stats.decode:.1f} s · "
           f"detection {stats.detect:.1f} s · classification {stats.classify:.1f} s")
if result.truncated:
    st.info(f"Only the first {stats.seconds:.0f} s were analysed (this app's limit for videos: "
            f"{limits.video_seconds:g} s, fewer for very large or fast clips).", icon=":material/timer:")
if not result.timelines:
    st.info("No face was found in any analysed frame; the CSV still lists every sampled frame.",
            icon=":material/info:")
else:
    faces = video.shown_faces(result)
    if len(faces) < n_faces:
        st.caption(f"Charted: the {len(faces)} longest-followed face{'s' if len(faces) > 1 else ''}; the other "
                   f"{n_faces - len(faces)} (mostly single-frame detections) are in the CSV.")
    st.subheader("Each emotion through the clip")
    span = info.duration_s if not result.truncated else stats.seconds
    tabs = st.tabs([f"Face {i}" for i in faces], key="video_face_tabs") if len(faces) > 1 else [st.container()]
    for tab, face_id in zip(tabs, faces):
        with tab:
            st.plotly_chart(video.timeline_figure(result.timelines[face_id], classes, fps=result.fps, window=window,
                                                  duration=span),
                            key=f"video_timeline_{face_id}", config={"displayModeBar": False})
    st.plotly_chart(video.shares_figure(result, faces), key="video_shares", config={"displayModeBar": False})

stem = name.rsplit(".", 1)[0]
row = st.container(horizontal=True)
row.download_button("Per-frame CSV", data=out["csv"], file_name=f"{stem}_frames.csv", mime="text/csv",
                    key="video_csv", icon=":material/download:",
                    help="One row per face per analysed frame (frame, time_s, face_id, box, every emotion, top); "
                         "a frame without a face has one row with an empty face_id.")
if out["annotated"]:
    row.download_button("Annotated video", data=out["annotated"], file_name=f"{stem}_annotated.mp4",
                        mime="video/mp4", key="video_annotated_download", icon=":material/download:")
    st.video(out["annotated"], format="video/mp4", width=min(720, max(320, info.width)),
             alt="The analysed frames with each face's number, box and top emotion")
