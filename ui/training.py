"""The Train page's plumbing: building CLI arguments, storing uploads, following a job.

Training itself is ``python -m training`` in its own process, started and read
back through :mod:`fer_core.jobs`; this module never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fer_core import FERError

from . import charts, settings, state, tables


# --------------------------------------------------------------------------- the form


def cli_args(data_spec, models, *, epochs, weights, image_size, fine_tune_layers, fine_tune_epochs,
             batch_size, class_weight, augment, patience=5, extra=()) -> list[str]:
    """The ``python -m training`` arguments for the form's values (without ``--out``)."""
    args = ["--data", str(data_spec or "?"), "--models", ",".join(models) if models else "?",
            "--epochs", str(int(epochs)), "--weights", str(weights or "imagenet")]
    if image_size:
        args += ["--image-size", str(int(image_size))]
    if fine_tune_layers:
        args += ["--fine-tune-layers", str(int(fine_tune_layers)), "--fine-tune-epochs", str(int(fine_tune_epochs))]
    if int(batch_size) != 64:
        args += ["--batch-size", str(int(batch_size))]
    if int(patience) != 5:
        args += ["--patience", str(int(patience))]
    if class_weight != "none":
        args += ["--class-weight", class_weight]
    if augment:
        args += ["--augment"]
    return args + list(extra)


def form_problems(data_spec, models, image_size, catalog: dict) -> list[str]:
    """What keeps the Start button disabled, in words."""
    problems = []
    if not data_spec:
        problems.append("Choose a dataset first.")
    if not models:
        problems.append("Choose at least one model.")
    if image_size:
        small = [m for m in models if m in catalog and image_size < catalog[m]["min_image_size"]]
        if small:
            problems.append(f"{image_size} px is below the minimum of {', '.join(small)} "
                            f"({max(catalog[m]['min_image_size'] for m in small)} px).")
    return problems


def store_upload(name: str, data: bytes) -> str:
    """Save an uploaded .npz, or unpack a .zip safely, under ``<data root>/uploads``; returns the dataset path.

    Done once per distinct upload in a session (the uploader hands the same file
    to every rerun); a refused archive raises :class:`FERError` every time.
    """
    import hashlib

    from fer_core.upload import save_upload

    key = (name, hashlib.sha1(data).hexdigest())
    saved = st.session_state.get(state.TRAIN_UPLOADED_PATH)
    if saved and saved[0] == key and Path(saved[1]).exists():
        return saved[1]
    limit = settings.MAX_DATASET_MB * 1024 * 1024
    if len(data) > limit:
        raise FERError(f"{name}: {len(data) / 1024 / 1024:.1f} MB is over the {settings.MAX_DATASET_MB} MB upload limit")
    path = str(save_upload(name, data, settings.data_root() / "uploads"))
    st.session_state[state.TRAIN_UPLOADED_PATH] = (key, path)
    return path


# --------------------------------------------------------------------------- the job


def current_job(runs_dir: Path):
    """The newest training job of ``runs_dir`` (running or finished), or None."""
    try:
        from fer_core.jobs import latest_job

        return latest_job(runs_dir)
    except FERError:
        return None
    except OSError:
        return None


def job_state(job) -> dict | None:
    if job is None:
        return None
    try:
        return job.state()
    except (FERError, OSError, ValueError) as exc:
        return {"status": "failed", "message": f"cannot read the job's progress ({exc})"}


def start(args: list[str], runs_dir: Path):
    from fer_core.jobs import start_job

    return start_job(args, runs_dir)


def _cancel(runs_dir: Path) -> None:
    job = current_job(runs_dir)
    if job is not None:
        try:
            job.cancel()
        except FERError as exc:
            st.session_state[state.TRAIN_FLASH] = str(exc)


def render_progress(s: dict, *, show_cancel: bool) -> None:
    """Status, progress bar, live curves and finished models of one job state."""
    status = s.get("status", "running")
    total = max(1, int(s.get("total") or 1))
    index = int(s.get("model_index") or 0)
    epoch, epochs = int(s.get("epoch") or 0), max(1, int(s.get("epochs") or 1))
    model = s.get("current_model")
    finished = s.get("finished_models") or []

    # Status on the left, its action (Cancel / Compare) on the right; the action never gets squeezed.
    row = st.container(horizontal=True, vertical_alignment="center", wrap=False)
    head = row.container()
    if status == "running":
        head.markdown(f"**Training** · model {min(index + 1, total)}/{total}: **{model or '…'}** · "
                      f"epoch {epoch}/{epochs}")
        if show_cancel:
            row.button("Cancel", key=state.TRAIN_CANCEL, icon=":material/stop:", on_click=_cancel,
                       args=(settings.runs_dir(),))
        done = (len(finished) + epoch / epochs) / total if model else len(finished) / total
        st.progress(min(1.0, max(0.0, done)), text=s.get("message") or "starting…")
    elif status == "ok":
        head.success(f"Training finished: {len(finished)} model(s) trained and added to Compare and Predict.",
                     icon=":material/check_circle:")
        row.page_link("pages/compare.py", label="Compare", icon=":material/leaderboard:")
    elif status == "cancelled":
        reason = s.get("message")
        head.warning("Training was cancelled" + (f" ({reason})." if reason else "."), icon=":material/cancel:")
    else:
        head.error(f"Training failed: {s.get('message') or 'unknown reason'}", icon=":material/error:")
    flash = st.session_state.pop(state.TRAIN_FLASH, None)
    if flash:
        st.error(flash)

    history = s.get("history") or {}
    if any((h or {}).get("loss") for h in history.values()):
        st.plotly_chart(charts.live_history_figure(history), key="train_live_chart", config={"displayModeBar": False})
    if finished:
        rows = []
        for f in finished:
            if isinstance(f, dict):
                rows.append({"Model": f.get("model"),
                             "Accuracy": tables.pct_text(f["accuracy"]) if f.get("accuracy") is not None else "",
                             "Macro-F1": tables.pct_text(f["macro_f1"]) if f.get("macro_f1") is not None else "",
                             "Training time (s)": round(f.get("seconds") or 0, 1)})
            else:
                rows.append({"Model": str(f)})
        st.caption("Finished models")
        st.dataframe(rows, key="train_finished_table", hide_index=True, width="content")
