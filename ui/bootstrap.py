"""Make every page run through ``app.py``, even when it is the first URL a fresh server sees.

Streamlit still honours the legacy ``pages/`` folder convention until the first
``st.navigation`` call of the process. If the very first request after a server
start is a page URL (a bookmark of ``/predict``), Streamlit runs that page file
directly — without ``app.py``'s wide layout and navigation. Each page calls
:func:`through_app` first: in that case it switches the legacy mode off and
reruns, so ``app.py`` runs and routes to the same page.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def through_app() -> None:
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
