"""Make every page run through ``app.py``, even when Streamlit runs the page file directly.

Streamlit still honours the legacy ``pages/`` folder convention until the first
``st.navigation`` call of the process: if the very first request after a server
start is a page URL (a bookmark of ``/predict``), Streamlit runs that page file
on its own — without ``app.py``'s wide layout, navigation and sidebar.
``AppTest`` does the same on every run. Each page calls :func:`through_app`
first: in that case it switches the legacy mode off, runs ``app.py`` in place
(which routes back to this same page, now properly wrapped) and stops the
direct run. Running in place instead of rerunning keeps a button click that
triggered this run.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from .settings import ROOT

APP = ROOT / "app.py"


def through_app() -> None:
    if not PagesManager.uses_pages_directory:
        return  # normal case: app.py's st.navigation is running this page
    PagesManager.uses_pages_directory = False
    code = compile(APP.read_text(), str(APP), "exec")
    exec(code, {"__name__": "__main__", "__file__": str(APP)})  # noqa: S102 - our own app.py
    st.stop()
