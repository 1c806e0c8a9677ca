"""FER Studio: train, compare and try facial-expression models in the browser.

    streamlit run app.py

Runs are read from ``$FER_RUNS_DIR`` (default ``runs/``) and datasets from
``$FER_DATA_DIR`` (default ``data/``). The pages live in ``pages/``; this
file only sets the layout and the navigation.
"""

import streamlit as st

from fer_core import __version__, memory
from fer_core.faces.detect import release_idle_detectors
from ui import access, settings, training, widgets

# Memory that comes back (issue 28): few malloc arenas; every minute, ended sessions released (their state and
# uploads), face detectors idle for a minute let go (their buffers), and freed pages returned to the kernel
# (fer_core.memory says why; no-op off glibc). Once per process.
memory.configure_server(hooks=[access.release_ended_sessions, release_idle_detectors])
# First, before anything slower: the server's upload limit for this mode (.streamlit/config.toml holds the
# public cap from the server's start; a lab machine raises it) and the bound on what one session's uploads
# may hold (installed process-wide by the first script run).
access.cap_server_uploads()

st.set_page_config(page_title="FER Studio", page_icon=":material/mood:", layout="wide",
                   initial_sidebar_state="auto")  # open on a desktop, closed on a phone (where it would cover the page)

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/photo_camera:"),
    st.Page("pages/video.py", title="Video", icon=":material/movie:"),
    st.Page("pages/live.py", title="Live", icon=":material/videocam:"),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:"),
]

access.sign_in_gate()  # [fer] require_login = true: nothing but a sign-in button until an allowed visitor signs in

page = st.navigation(PAGES)

with st.sidebar:
    training.sidebar_badge()
    if access.trusted():  # a public deployment shows strangers no server paths
        st.caption(f"Runs: `{settings.display_path(settings.runs_dir())}`  \n"
                   f"Data root: `{settings.display_path(settings.data_root())}`")
    else:
        st.caption("Public demo: read faces and compare the models here; training runs on your own machine.")
    st.caption(f"FER Studio {__version__}")  # CHANGELOG.md says what changed in it

# Start loading the models of the current dataset in the background, so the
# Predict page answers at once when the user gets there (FER_PREWARM=0: off).
widgets.prewarm_current()

page.run()
