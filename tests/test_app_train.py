"""Train page (AppTest): the form, safe dataset choices, and a real job started, followed and cancelled."""

import io
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from app_helpers import MODELS, all_text, data_dir, no_runs, open_page, png_bytes, with_runs  # noqa: F401


def start_button(at):
    return at.button(key="train_start")


def command(at) -> str:
    return next(c.value for c in at.code if c.value.startswith("python -m training"))


def wait_for(at, predicate, timeout: float = 120, what: str = ""):
    """Rerun the page (what the fragment's timer does in a browser) until ``predicate(at)`` holds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if predicate(at):
            return at
        time.sleep(1.0)
    pytest.fail(f"timed out waiting for {what}: {all_text(at)[-1500:]}")


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _face_png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return png_bytes(Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)))


def test_train_form_defaults(no_runs):
    at = open_page("train")
    assert at.radio(key="train_source").value == "demo"
    assert at.multiselect(key="train_models").value == MODELS  # all five by default
    from fer_core.data import defaults  # the CLI's defaults: page and command line train the same thing

    assert at.number_input(key="train_epochs").value == defaults.EPOCHS
    assert at.number_input(key="train_demo_per_class").value == defaults.DEMO_PER_CLASS
    from ui.loaders import imagenet_weights_cached

    cached = all(imagenet_weights_cached(MODELS).values())
    assert at.segmented_control(key="train_weights").value == ("imagenet" if cached else "none")
    assert not start_button(at).disabled
    cmd = command(at)
    assert "--data demo" in cmd and "--models " + ",".join(MODELS) in cmd and f"--out {no_runs}" in cmd
    # Every option reaches the command line.
    at.segmented_control(key="train_weights").set_value("imagenet").run()
    at.selectbox(key="train_image_size").set_value(96).run()
    at.number_input(key="train_fine_tune_layers").set_value(10).run()
    at.multiselect(key="train_models").set_value(["baseline"]).run()
    cmd = command(at)
    for part in ("--weights imagenet", "--image-size 96", "--fine-tune-layers 10", "--models baseline"):
        assert part in cmd, cmd
    at.number_input(key="train_seeds").set_value(3).run()
    assert "--seeds 0,1,2" in command(at)
    from ui.training import ray_available

    if ray_available():  # optional dependency (requirements-ray.txt); without it the choice is disabled
        at.segmented_control(key="train_engine").set_value("ray").run()
        at.text_input(key="train_ray_address").set_value("ray://head:10001").run()
        assert "--engine ray --ray-address ray://head:10001" in command(at)
    else:
        assert at.segmented_control(key="train_engine").disabled
    at.multiselect(key="train_models").set_value([]).run()
    assert start_button(at).disabled and "Choose at least one model." in all_text(at)


def test_train_dataset_path_outside_data_root_is_refused(no_runs, data_dir):
    at = open_page("train")
    at.radio(key="train_source").set_value("root").run()
    at.selectbox(key="train_data_path").set_value("__other__").run()
    at.text_input(key="train_path_text").input("../../etc/passwd").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "data root" in errors[0] and "\n" not in errors[0], errors
    assert start_button(at).disabled


def test_train_zip_with_parent_entries_is_refused(no_runs, data_dir):
    evil = _zip({"happy/a.png": _face_png(0), "../../evil.txt": b"gotcha"})
    at = open_page("train")
    at.radio(key="train_source").set_value("upload").run()
    at.file_uploader(key="train_upload").set_value(("evil.zip", evil, "application/zip")).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "evil.zip" in errors[0] and "\n" not in errors[0], errors
    assert not (data_dir.parent / "evil.txt").exists() and not (data_dir / "evil.txt").exists()
    assert start_button(at).disabled


def test_train_zip_of_class_folders_is_unpacked_under_the_data_root(no_runs, data_dir):
    good = _zip({f"{cls}/{i}.png": _face_png(10 * k + i) for k, cls in enumerate(("happy", "sad")) for i in range(4)})
    at = open_page("train")
    at.radio(key="train_source").set_value("upload").run()
    at.file_uploader(key="train_upload").set_value(("faces.zip", good, "application/zip")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    cmd = command(at)
    assert f"--data {data_dir}" in cmd and not start_button(at).disabled


def test_train_start_follow_and_cancel(no_runs, data_dir):
    """A real job: runs as its own process, followed live, blocks a second start, and cancels cleanly."""
    at = open_page("train")
    at.number_input(key="train_demo_per_class").set_value(8).run()
    at.multiselect(key="train_models").set_value(["baseline"]).run()
    at.number_input(key="train_epochs").set_value(300).run()  # long enough to cancel mid-way
    at.number_input(key="train_patience").set_value(0).run()  # no early stop
    at.segmented_control(key="train_weights").set_value("none").run()
    at.selectbox(key="train_image_size").set_value(48).run()
    start_button(at).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    def training_epochs(a):
        return any("**Training**" in m.value and "epoch" in m.value and "epoch 0/" not in m.value for m in a.markdown)

    wait_for(at, training_epochs, what="the first epochs")
    assert "train_live_chart" in " ".join(e.proto.id for e in at.get("plotly_chart"))  # live loss/accuracy chart
    assert at.button(key="train_cancel")

    # A reload (a new session) picks the running job up; nobody can start a second one into the folder.
    other = open_page("train")
    assert any("**Training**" in m.value for m in other.markdown)
    assert start_button(other).disabled
    from fer_core import FERError
    from fer_core.fit.jobs import start_job

    with pytest.raises(FERError):
        start_job(["--data", "demo", "--models", "baseline", "--epochs", "1", "--weights", "none"], no_runs)

    at.button(key="train_cancel").click().run()
    wait_for(at, lambda a: "Training was cancelled" in all_text(a), timeout=60, what="the cancellation")
    assert not start_button(at).disabled
    assert not [p for p in no_runs.iterdir() if p.is_dir() and not p.name.startswith(".")]  # no half-written run


def test_train_failed_job_shows_one_line_reason(no_runs, data_dir):
    (data_dir / "broken.npz").write_bytes(b"this is not a zip archive")
    at = open_page("train")
    at.radio(key="train_source").set_value("root").run()
    at.selectbox(key="train_data_path").set_value("broken.npz").run()
    at.multiselect(key="train_models").set_value(["baseline"]).run()
    at.segmented_control(key="train_weights").set_value("none").run()
    start_button(at).click().run()
    wait_for(at, lambda a: any("Training failed" in e.value for e in a.error), timeout=120, what="the failure")
    message = next(e.value for e in at.error if "Training failed" in e.value)
    assert "broken.npz" in message and "\n" not in message and "Traceback" not in message


def test_train_page_with_runs_renders(with_runs):
    at = open_page("train")
    assert not at.error and not start_button(at).disabled
