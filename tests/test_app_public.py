"""Public mode (AppTest): strangers on a public URL can predict and compare, not train, upload datasets or see paths.

Public mode comes from ``FER_PUBLIC=1`` or from ``public = true`` under ``[fer]``
in st.secrets (``at.secrets``); signed-in admins (``at.user``) keep training.
The photo bounds (faces per photo, predictions a minute) are shown as one line.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import APP, TIMEOUT, all_text, assert_clean, data_dir, point_app_at  # noqa: F401
from fer_core.store.runs import BUNDLED_DIR
from fer_core.data.defaults import BUNDLED_PREDICT_DEFAULT


@pytest.fixture
def public_app(tmp_path, data_dir, monkeypatch):  # noqa: F811
    """The app as deployed: no runs of its own, the bundled FER2013 models, a dataset under the data root."""
    runs = tmp_path / "runs"
    runs.mkdir()
    (data_dir / "mine.npz").write_bytes(b"")  # would be listed by the data-root pickers
    point_app_at(monkeypatch, runs, data_dir, bundled_dir=BUNDLED_DIR)
    for key in ("FER_PUBLIC", "FER_MAX_FACES", "FER_PREDICTIONS_PER_MINUTE", "FER_ADMINS"):
        monkeypatch.delenv(key, raising=False)
    from streamlit import config

    upload_cap = config.get_option("server.maxUploadSize")
    yield monkeypatch
    config.set_option("server.maxUploadSize", upload_cap)  # public mode lowers it process-wide


def start(page: str | None = None, *, secrets: dict | None = None, user: dict | None = None,
          timeout: int = TIMEOUT) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    if secrets:
        at.secrets.update(secrets)
    if user:
        at.user = user
    at.run()
    assert_clean(at)
    if page:
        at.switch_page(f"pages/{page}.py").run()
        assert_clean(at)
    return at


def sidebar_text(at: AppTest) -> str:
    return "\n".join(str(c.value) for c in at.sidebar.caption)


def assert_training_off(at: AppTest) -> None:
    text = all_text(at)
    assert "Training is off on this deployment" in text
    code = "\n".join(c.value for c in at.code)
    assert "git clone" in code and "python -m training --data demo --models all" in code
    assert not [b for b in at.button if b.key == "train_start"]
    assert not at.file_uploader and not at.text_input and not at.radio
    assert "data root" not in text.lower()


def test_env_public_mode_turns_training_uploads_and_paths_off(public_app, data_dir):
    public_app.setenv("FER_PUBLIC", "1")
    at = start("train")
    assert_training_off(at)
    assert "Runs:" not in sidebar_text(at) and "Data root:" not in sidebar_text(at)
    assert "Public demo" in sidebar_text(at)
    assert str(data_dir) not in all_text(at) + sidebar_text(at)
    from streamlit import config

    from ui import settings

    assert config.get_option("server.maxUploadSize") == max(settings.PUBLIC_LIMITS.photo_mb, settings.PUBLIC_LIMITS.video_mb)  # the server's own cap

    at.switch_page("pages/dataset.py").run()
    assert_clean(at)
    assert not at.file_uploader and not at.text_input
    assert [s.key for s in at.selectbox if s.key == "dataset_choice"] == []  # no data-root picker
    assert at.number_input(key="dataset_demo_per_class").max == 200
    assert "mine.npz" not in all_text(at) and str(data_dir) not in all_text(at)
    assert "Class distribution" in [s.value for s in at.subheader]  # the demo faces are still explored

    at.switch_page("pages/compare.py").run()
    assert_clean(at)
    assert "bundled, trained on FER2013" in all_text(at)


def test_public_predict_works_on_the_bundled_models_with_bounds(public_app):
    """Predict as usual; more faces than the cap: the largest are classified, and a spent budget says when."""
    public_app.setenv("FER_PUBLIC", "1")
    public_app.setenv("FER_MAX_FACES", "1")
    public_app.setenv("FER_PREDICTIONS_PER_MINUTE", "1")
    at = start("predict", timeout=180)
    uploader = at.file_uploader(key="predict_upload")
    assert uploader.proto.max_upload_size_mb == 10  # public default for photos
    at.segmented_control(key="predict_source").set_value("sample").run(timeout=180)
    at.selectbox(key="predict_sample").set_value("Two friends (happy, surprise)").run(timeout=180)
    assert_clean(at)
    # The first sample (the real photo) was the session's one prediction this minute: the next is refused.
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Too many predictions: at most 1 a minute"), errors
    assert "Try again in " in errors[0] and "\n" not in errors[0]
    # A fresh session (budget reset), same two-face photo: one face classified, and the page says so.
    public_app.setenv("FER_PREDICTIONS_PER_MINUTE", "2")
    at = start("predict", timeout=180)
    at.segmented_control(key="predict_source").set_value("sample").run(timeout=180)
    at.selectbox(key="predict_sample").set_value("Two friends (happy, surprise)").run(timeout=180)
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert "2 faces found; the largest was classified." in [i.value for i in at.info]
    table = next(d.value for d in at.dataframe if "Top emotion" in d.value.columns)
    assert list(table["Model"]) == [f"{BUNDLED_PREDICT_DEFAULT} (bundled)"]
    assert len(at.session_state["predict_result"]["result"].faces) == 1


def test_secrets_public_mode_and_admins(public_app):
    at = start("train", secrets={"fer": {"public": True, "admins": ["boss@lab.org"]}})
    assert_training_off(at)
    assert at.button(key="train_sign_in")  # admins are configured: a way to sign in
    assert "Runs:" not in sidebar_text(at)
    # Signed in, but not an admin: still off.
    at = start("train", secrets={"fer": {"public": True, "admins": ["boss@lab.org"]}},
               user={"is_logged_in": True, "email": "someone@else.org"})
    assert_training_off(at)
    assert "not an admin" in all_text(at)
    # A signed-in admin trains (no dataset uploads on a public deployment) and sees the paths.
    at = start("train", secrets={"fer": {"public": True, "admins": ["boss@lab.org"]}},
               user={"is_logged_in": True, "email": "Boss@Lab.org"})
    assert "Training is off" not in all_text(at)
    assert not at.button(key="train_start").disabled
    assert at.radio(key="train_source").options == ["Built-in demo faces", "A dataset under the data root"]
    assert "Runs:" in sidebar_text(at)


def test_local_mode_is_unchanged(public_app):
    at = start("train")
    assert "Training is off" not in all_text(at)
    assert "Upload .npz or .zip" in at.radio(key="train_source").options
    assert "Runs:" in sidebar_text(at)


# --------------------------------------------------------------------------- private app (require_login)

PRIVATE = {"fer": {"require_login": True, "viewers": ["@lab.example.org"]}}


def test_private_app_shows_only_sign_in_until_signed_in(public_app):
    at = start(secrets=PRIVATE)
    text = all_text(at)
    assert "private: sign in to continue" in text
    assert [b for b in at.button if b.key == "access_sign_in"]
    assert "Train" not in text and not at.file_uploader and not at.selectbox  # no page ran


def test_private_app_lets_listed_viewers_in_and_keeps_others_out(public_app):
    at = start("predict", secrets=PRIVATE, user={"is_logged_in": True, "email": "ada@lab.example.org"})
    assert "private: sign in" not in all_text(at)
    assert at.title and at.title[0].value == "Predict on a photo"
    assert [b for b in at.sidebar.button if b.key == "access_sign_out"]

    stranger = start(secrets=PRIVATE, user={"is_logged_in": True, "email": "eve@elsewhere.example"})
    assert "not on this app's list of viewers" in all_text(stranger)
    assert not [b for b in stranger.button if b.key == "access_sign_in"]
