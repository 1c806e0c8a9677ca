"""Live: the camera as a stream — every face found, followed and read several times a second."""

import streamlit as st

from ui import bootstrap, live, widgets

bootstrap.through_app()
st.title("Live: your camera, read as it streams")

listing, groups = widgets.load_groups()
if not groups:
    widgets.no_runs_state(listing)
    st.stop()
widgets.listing_warnings(listing)
lim = live.live_limits()

top = st.columns([1, 1], gap="medium")
with top[0]:
    group = widgets.pick_group(groups, key=live.DATASET, label="Models trained on", narrow=False)
    with st.container():
        runs = widgets.pick_models(group, key=f"{live.MODELS}_{group.fingerprint}")
        runs += widgets.pick_other_models(groups, group, key=f"{live.OTHER_MODELS}_{group.fingerprint}")
with top[1]:
    st.markdown("Press **Start** and allow the camera: each frame's faces are found, followed and read by the "
                "chosen models, and the picture comes back with numbered boxes and each face's top emotion. "
                "**Stop** gives the stream's table as a CSV.")
    if note := live.limit_text(lim):
        st.caption(f":material/timer: {note}")

if not runs:
    st.info("Choose at least one model to read the faces with.", icon=":material/info:")
    st.stop()

way = live.transport()
if not way.can_stream:
    st.info(way.note, icon=":material/videocam_off:")
    live.still_photo(runs)
    st.stop()
if way.note:
    st.warning(way.note, icon=":material/warning:")

with st.spinner("Loading the models…"):
    predictor, error = live.predictor_or_error(runs)
if error:
    st.error(error, icon=":material/error:")
    st.stop()
classes = predictor.class_names
proc = live.processor(predictor, runs)
status = proc.status()

left, right = st.columns([3, 2], gap="medium")
with left:
    ctx = live.streamer(
        key=live.STREAM, rtc_configuration=way.rtc_configuration,
        media_stream_constraints=live.media_constraints(lim), video_frame_callback=live.frame_callback(proc),
        on_video_ended=proc.end, async_processing=True,
        desired_playing_state=False if status.limit else None,  # the time limit is spent: the stream stays off
        translations={"start": "Start", "stop": "Stop"},
    )
playing = bool(ctx.state.playing)
if not playing and status.running:
    proc.end()  # Stop pressed (the video track's own end may come later)
    status = proc.status()


@st.fragment(run_every=live.REFRESH_S if playing else None)
def panel():
    s = proc.status()
    if playing and s.limit:
        st.rerun(scope="app")  # the time limit stopped the reading: stop the stream, show the table
    if s.frames_processed == 0:
        st.caption("Connecting to the camera…" if playing else "Press Start and allow the camera.")
    else:
        head, faces = live.status_lines(s, classes)
        if not playing:
            avg = s.frames_processed / max(s.elapsed_s, 1e-6)
            head = f"Stopped after {s.elapsed_s:.0f} s · {s.frames_processed} frames read ({avg:.1f} a second)"
        st.markdown(f"**{head}**")
        st.markdown("  \n".join(faces) if faces else "No face in view.")
        if proc.error:
            st.caption(f":orange[:material/warning: last frame not read: {proc.error}]")
    history = proc.history()
    if history:
        st.plotly_chart(live.history_figure(history, classes, s.elapsed_s), key="live_chart",
                        config={"displayModeBar": False})
    if proc.latest()[0] is not None and st.button("Snapshot", key=live.SNAPSHOT_BUTTON, icon=":material/photo_camera:",
                                                  help="Keep the current annotated frame (as a PNG)."):
        st.session_state[live.SNAPSHOT] = live.snapshot_png(proc)
    shot = st.session_state.get(live.SNAPSHOT)
    if shot:
        st.image(shot, width=240, caption="Snapshot")
        st.download_button("Download snapshot", shot, file_name="live_snapshot.png", mime="image/png",
                           key="live_snapshot_download", icon=":material/download:")


with right:
    panel()

if status.limit == "time":
    st.warning(live.time_limit_message(lim), icon=":material/timer:")
if not playing and status.rows:
    st.subheader("This stream's table")
    dropped = f" (the oldest {status.rows_dropped:,} were dropped)" if status.rows_dropped else ""
    st.caption(f"{status.rows:,} rows{dropped}: one per face per frame read, time_s from the stream's start, in the "
               "Video page's CSV layout. Kept in this browser session only, never on the server's disk.")
    row = st.container(horizontal=True)
    row.download_button("Per-frame CSV", data=live.csv_bytes(proc), file_name="live_frames.csv", mime="text/csv",
                        key=live.CSV_BUTTON, icon=":material/download:")
    row.button("Clear", key=live.CLEAR_BUTTON, on_click=live.clear, args=(proc,), icon=":material/delete:",
               help="Forget this stream's table and snapshot now.")
