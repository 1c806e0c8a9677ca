"""One version number: ``fer_core.__version__``, shown in the app's sidebar and described in CHANGELOG.md."""

import re

from app_helpers import ROOT, data_dir, no_runs, open_page  # noqa: F401

import fer_core


def test_the_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", fer_core.__version__)


def test_the_changelog_has_an_entry_for_the_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{fer_core.__version__}]" in text


def test_the_sidebar_shows_the_version(no_runs):
    at = open_page()
    assert not at.exception
    assert f"FER Studio {fer_core.__version__}" in [c.value for c in at.sidebar.caption]
