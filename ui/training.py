"""The Train page's plumbing: building CLI arguments, storing uploads, following a job.

Training itself is ``python -m training`` in its own process, started and read
back through :mod:`fer_core.fit.jobs`; this module never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fer_core import FERError

from . import charts, settings, state, tables


# --------------------------------------------------------------------------- the form


def cli_args(data_spec, models, *, epochs, weights, image_size, fine_tune_layers, fine_tune_epochs,
             batch_size, class_weight, augment, patience=5, seeds=1, engine="local", ray_address="",
             extra=()) -> list[str]:
    """The ``python -m training`` arguments for the form's values (without ``--out``).

    ``seeds`` > 1 trains every model with seeds 0…seeds-1 (``--seeds``; Compare
    then shows mean ± spread); ``engine="ray"`` runs each (model, seed) as a Ray
    task, on a local Ray or the cluster at ``ray_address``.
    """
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
    if int(seeds) > 1:
        args += ["--seeds", ",".join(str(i) for i in range(int(seeds)))]
    if engine == "ray":
        args += ["--engine", "ray"] + (["--ray-address", ray_address.strip()] if ray_address.strip() else [])
    return args + list(extra)


def ray_available() -> bool:
    """Whether ``--engine ray`` can run here (the optional ``ray`` package, requirements-ray.txt)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


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

    from fer_core.data.upload import save_upload

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
        from fer_core.fit.jobs import latest_job

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
    """Start the trainer; the job records who started it (see :func:`ui.access.visitor_label`)."""
    from fer_core.fit.jobs import start_job

    from .access import visitor_label

    return start_job(args, runs_dir, started_by=visitor_label())


def server_job():
    """The job training anywhere on this server now (one per server, see fer_core.fit.jobs), or None."""
    try:
        from fer_core.fit.jobs import server_job as _server_job

        return _server_job()
    except (FERError, OSError):
        return None


def started_text(job, *, who: bool = True) -> str:
    """'Training in progress — started by X at HH:MM (N min ago)'; ``who=False`` leaves the name out."""
    import time

    from .access import clock_text

    started = job.created or None
    by = f" by {job.started_by}" if who and job.started_by else ""
    if not started:
        return f"Training in progress — started{by}" if by else "Training in progress"
    minutes = max(0, int((time.time() - started) // 60))
    return (f"Training in progress — started{by} at {clock_text(started)} "
            f"({'just now' if minutes == 0 else f'{minutes} min ago'})")


def local_training_command() -> str:
    """What a visitor of a public deployment runs to train on their own machine."""
    url = settings.repo_url() or "<this app's repository URL>"
    return "\n".join([
        f"git clone {url} fer-studio && cd fer-studio",
        "python3 -m venv .venv && . .venv/bin/activate",
        "pip install -r requirements.txt",
        "python -m training --data demo --models all",
        "streamlit run app.py   # your own copy of this app, with training on",
    ])


def _sign_in() -> None:
    try:
        st.login()
    except Exception as exc:  # noqa: BLE001 - no [auth] section in the secrets
        st.session_state[state.TRAIN_FLASH] = f"Sign-in is not configured on this deployment ({exc})."


def render_public_notice() -> None:
    """The Train page on a public deployment: why training is off, and how to train locally."""
    st.info("**Training is off on this deployment.** It is a public demo shared by everyone who opens it: one "
            "training run would take the server's CPU for minutes to hours, and uploaded datasets would pile up "
            "on its disk. Predict and Compare work as usual with the models shown there.",
            icon=":material/lock:")
    st.markdown("Train the five models on your own machine instead (about five minutes on a 2-core CPU with the "
                "built-in demo faces; any dataset of your own works too):")
    st.code(local_training_command(), language="bash", wrap_lines=True)
    if settings.admins():
        from .access import current_email

        if current_email():
            st.caption(f"Signed in as {current_email()}, which is not an admin of this deployment.")
        else:
            st.button("Sign in to train (admins)", key="train_sign_in", icon=":material/login:", on_click=_sign_in)
    flash = st.session_state.pop(state.TRAIN_FLASH, None)
    if flash:
        st.error(flash, icon=":material/error:")


def sidebar_badge() -> None:
    """Sidebar note on every page while a job trains on this server: who started it, and when.

    On a public deployment strangers see that training runs, not who started it
    (an admin's e-mail is not theirs to read).
    """
    from .access import trusted

    job = server_job()
    if job is not None and (job_state(job) or {}).get("status") == "running":
        label = started_text(job, who=trusted())
    else:  # a job of this runs folder registered under another FER_JOBS_DIR (another app instance)
        s = job_state(current_job(settings.runs_dir()))
        if not (s and s.get("status") == "running"):
            return
        label = "Training in progress"
    # No epoch counter here: the sidebar is drawn once per page run and would show a stale number
    # next to the Train page's live one.
    st.page_link("pages/train.py", label=label, icon=":material/progress_activity:",
                 help="Follow it live, or cancel it, on the Train page.")


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
    random = _random_backbone_models(s)  # offline transfer models: say "near chance" before anyone reads a score

    def label(m):
        return f"{m} ({tables.RANDOM_BACKBONE_TAG})" if str(m).split(" · seed ")[0] in random else m

    # Status on the left, its action (Cancel / Compare) on the right; the action never gets squeezed.
    row = st.container(horizontal=True, vertical_alignment="center", wrap=False)
    head = row.container()
    if status == "running":
        shown = s.get("current_label") or model  # "compact · seed 1" when the job trains several seeds
        head.markdown(f"**Training** · model {min(index + 1, total)}/{total}: **{label(shown) if model else '…'}** · "
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
                rows.append({"Model": label(f.get("label") or f.get("model")),
                             "Accuracy": tables.pct_text(f["accuracy"]) if f.get("accuracy") is not None else "",
                             "Macro-F1": tables.pct_text(f["macro_f1"]) if f.get("macro_f1") is not None else "",
                             "Training time (s)": round(f.get("seconds") or 0, 1)})
            else:
                rows.append({"Model": str(f)})
        st.caption("Finished models")
        st.dataframe(rows, key="train_finished_table", hide_index=True, width="content")
    note = tables.random_backbone_note(models=random)  # from the start: before anyone reads their scores
    if note:
        st.caption(f":orange[:material/warning: {note}]")


def _random_backbone_models(s: dict) -> list[str]:
    """The job's models that train with random backbones (``--weights none`` on an ImageNet backbone)."""
    try:
        from .loaders import model_catalog

        return tables.random_backbone_models(s.get("args"), model_catalog())
    except Exception:  # noqa: BLE001 - the registry cannot load: no marks rather than no progress panel
        return []
