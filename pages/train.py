"""Train: choose data, models and settings; training runs as its own process and the page follows it live."""

import streamlit as st

from fer_core import FERError
from fer_core.data import defaults as train_defaults  # the CLI's defaults too: one source of truth
from ui import access, bootstrap, settings, state, tables, training, widgets
from ui.loaders import dataset_candidates, has_crowd_votes, imagenet_weights_cached, model_catalog, model_names

bootstrap.through_app()
st.title("Train models")
if not access.trusted():  # public deployment: no training, uploads or server paths for strangers
    training.render_public_notice()
    st.stop()
public = settings.public_mode()  # here: a signed-in admin of a public deployment (no dataset uploads)
runs_dir = settings.runs_dir()
st.caption(f"Each model is trained by `python -m training` in its own process, so training keeps going when you "
           f"switch pages or reload the browser. Finished runs land in `{settings.display_path(runs_dir)}`.")

job = training.current_job(runs_dir)
job_state = training.job_state(job)
running = bool(job_state and job_state.get("status") == "running")
# One training job per server (fer_core.fit.jobs): one started elsewhere (another runs folder, another
# app instance) also keeps the Start button off, and everyone sees who started it and when.
server_job = training.server_job()
server_busy = (training.job_state(server_job) or {}).get("status") == "running"
busy_text = training.started_text(server_job) if server_busy else None


# ------------------------------------------------------------------ live progress
@st.fragment(run_every=1.0 if running else None)
def progress_panel():
    current = training.job_state(training.current_job(runs_dir))
    if current is None:
        return
    status = current.get("status")
    seen = st.session_state.get(state.TRAIN_SEEN_STATUS)
    st.session_state[state.TRAIN_SEEN_STATUS] = status
    if seen == "running" and status != "running":
        st.rerun(scope="app")  # job ended: refresh the form and the run listings
    if status == "running":
        st.caption(training.started_text(training.current_job(runs_dir)))
    training.render_progress(current, show_cancel=(status == "running"))


if job_state is not None:
    with st.container(border=True):
        progress_panel()

# ------------------------------------------------------------------ the form
st.subheader("1 · Data")
source = st.radio("Dataset", ["demo", "root"] if public else ["demo", "root", "upload"], horizontal=True,
                  key=state.TRAIN_SOURCE,
                  format_func={"demo": "Built-in demo faces", "root": "A dataset under the data root",
                               "upload": "Upload .npz or .zip"}.get)
data_spec, extra_args = None, []
if source == "demo":
    c1, c2 = st.columns([1, 3])
    per_class = c1.number_input("Faces per class", 2, 2000, train_defaults.DEMO_PER_CLASS, step=10,
                                key=state.TRAIN_DEMO_PER_CLASS,
                                help="8 expression classes; 70 % train, 15 % validation, 15 % test.")
    c2.caption("Synthetic cartoon faces drawn on the fly: no download, same images on every machine. "
               f"{train_defaults.DEMO_PER_CLASS} per class and {train_defaults.EPOCHS} epochs (the defaults, also "
               "the command line's) train all five models in about 5 minutes on a 2-core CPU; with fewer faces "
               "the baseline may not get past chance.")
    data_spec, extra_args = "demo", ["--demo-per-class", str(int(per_class))]
elif source == "root":
    data_spec = widgets.data_root_picker(dataset_candidates(), select_key=state.TRAIN_DATA_PATH,
                                         text_key=state.TRAIN_PATH_TEXT)
    if data_spec and has_crowd_votes(data_spec):
        labels = st.radio("Labels", ["own", "ferplus"], horizontal=True, key=state.TRAIN_LABELS,
                          format_func={"own": "The file's own labels",
                                       "ferplus": "FER+ crowd votes (8 emotions, soft targets)"}.get,
                          help="FER+ votes sit beside this file: train on the 10 taggers' vote distribution "
                               "(`--labels ferplus`), scored against their majority.")
        if labels == "ferplus":
            extra_args = ["--labels", "ferplus"]
else:
    up = st.file_uploader("Dataset archive", type=["npz", "zip"], key=state.TRAIN_UPLOAD,
                          max_upload_size=settings.MAX_DATASET_MB,
                          help="An .npz with train_images/train_labels/validation_images/validation_labels "
                               "(test_* optional), or a .zip of class folders (optionally inside train/, "
                               f"validation/, test/). Up to {settings.MAX_DATASET_MB} MB.")
    if up is not None:
        try:
            data_spec = training.store_upload(up.name, up.getvalue())
            st.success(f"Saved as `{settings.display_path(data_spec)}`", icon=":material/check_circle:")
        except FERError as exc:
            st.error(str(exc), icon=":material/error:")

st.subheader("2 · Models")
catalog = model_catalog()
default_models = model_names()
chosen = st.multiselect("Models to train", list(catalog), default=default_models, key=state.TRAIN_MODELS,
                        format_func=lambda m: f"{m}" + ("" if catalog[m]["in_all"] else " (extra)"),
                        help="All five by default: the baseline CNN and four frozen ImageNet backbones.")
with st.expander("What are these models?", key="train_models_help"):
    st.dataframe({"model": list(catalog), "what it is": [c["description"] for c in catalog.values()]},
                 key="train_models_table", hide_index=True, width="stretch")

st.subheader("3 · Settings")
settings_row = st.container(horizontal=True)  # wraps onto two rows on a narrow window instead of clipping
epochs = settings_row.number_input("Epochs", 1, 500, train_defaults.EPOCHS, key=state.TRAIN_EPOCHS,
                                   help="Training epochs (for transfer models: epochs of the new head). Early "
                                        "stopping keeps the best epoch.")
offline = not all(imagenet_weights_cached(default_models).values())  # no cached ImageNet weights here
weights = settings_row.segmented_control("Backbone weights", ["imagenet", "none"],
                                         default="none" if offline else "imagenet", required=True, key=state.TRAIN_WEIGHTS,
                                         help="imagenet: start from ImageNet features (much better); none: random init. "
                                              "Defaults to none when the ImageNet weight files are not in Keras' cache.")
sizes = [0, 48, 64, 75, 96, 128, 160, 224]  # 0 = each model's own default
image_size = settings_row.selectbox("Image size", sizes, index=0, key=state.TRAIN_IMAGE_SIZE,
                                    format_func=lambda s: "model default" if not s else f"{s} px",
                                    help="Side of the square image each model sees. Model default: 128 px "
                                         "(compact: 48 px). Inception models need at least 75 px.")
fine_tune = settings_row.number_input("Fine-tune layers", 0, 400, 0, key=state.TRAIN_FINE_TUNE_LAYERS,
                                      help="After the head is trained, unfreeze the top K backbone layers and train "
                                           "them at a low learning rate. 0 = off (fast).")
fine_tune_epochs = 5
if fine_tune:
    fine_tune_epochs = settings_row.number_input("Fine-tune epochs", 1, 200, 5, key=state.TRAIN_FINE_TUNE_EPOCHS)
with st.expander("More options", key="train_more_options"):
    more = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
    batch = more.number_input("Batch size", 4, 1024, 64, key=state.TRAIN_BATCH_SIZE)
    patience = more.number_input("Early-stopping patience", 0, 100, 5, key=state.TRAIN_PATIENCE,
                                 help="Stop when validation accuracy has not improved for this many epochs and keep "
                                      "the best epoch's weights. 0 = train every epoch.")
    balanced = more.toggle("Balance class weights", key=state.TRAIN_CLASS_WEIGHT,
                           help="Weight classes by inverse frequency (skewed data such as FER2013).")
    augment = more.toggle("Augment images", key=state.TRAIN_AUGMENT, help="Flips, small rotations, zoom and contrast.")
    scale = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
    n_seeds = scale.number_input("Seeds", 1, 10, 1, key=state.TRAIN_SEEDS, width=148,
                                 help="Train every model this many times, with seeds 0, 1, …; Compare then shows "
                                      "mean ± spread over the seeds instead of one run's luck.")
    has_ray = training.ray_available()
    engine = scale.segmented_control(
        "Engine", ["local", "ray"], default="local", key=state.TRAIN_ENGINE, disabled=not has_ray,
        help=("local: one model after the other in this server's training process. ray: each (model, seed) is "
              "a Ray task, on a local Ray or on a cluster." if has_ray else
              "Ray is not installed here: pip install -r requirements-ray.txt")) or "local"
    ray_address = ""
    if engine == "ray":
        ray_address = scale.text_input("Ray address", key=state.TRAIN_RAY_ADDRESS, placeholder="empty = a local Ray",
                                       width=320,
                                       help="ray://head:10001 or host:6379 of a running cluster; empty starts Ray "
                                            "on this machine.")

if weights == "none" and offline:
    st.caption("ImageNet weights are not in Keras' cache (`~/.keras/models`) on this machine, so the transfer "
               "models start from random weights. Copy the weight files there for much better accuracy.")
if weights == "imagenet":
    cached = imagenet_weights_cached(chosen)
    missing = [m for m, ok in cached.items() if not ok]
    if missing:
        st.warning(f"ImageNet weights are not in Keras' cache for: {', '.join(missing)}. Without internet these "
                   "models will fail; choose **none** or copy the weight files into `~/.keras/models`.",
                   icon=":material/cloud_off:")

# ------------------------------------------------------------------ start
args = training.cli_args(data_spec, chosen, epochs=epochs, weights=weights, image_size=image_size,
                         fine_tune_layers=fine_tune, fine_tune_epochs=fine_tune_epochs, batch_size=batch, patience=patience,
                         class_weight="balanced" if balanced else "none", augment=augment, seeds=n_seeds,
                         engine=engine, ray_address=ray_address, extra=extra_args)
problems = training.form_problems(data_spec, chosen, image_size, catalog)
for p in problems:
    st.caption(f":orange[{p}]")
if data_spec:
    st.code(tables.shell_join(["python", "-m", "training", *args, "--out", settings.display_path(runs_dir)]),
            language="bash", wrap_lines=True)
start_disabled = running or busy_text is not None or bool(problems)
if st.button("Start training", type="primary", key=state.TRAIN_START, disabled=start_disabled,
             icon=":material/play_arrow:",
             help=(f"{busy_text}. One training job runs on this server at a time." if busy_text else
                   "A training job is already running into this runs folder." if running else None)):
    try:
        training.start(args, runs_dir)
        st.session_state[state.TRAIN_SEEN_STATUS] = "running"
        st.rerun()
    except FERError as exc:
        st.error(str(exc), icon=":material/error:")
if busy_text and not running:
    st.caption(f"{busy_text}, into another runs folder on this server. One training job runs at a time; "
               "wait for it to finish.")
elif running:
    st.caption("A training job is running into this runs folder; wait for it or cancel it above.")
