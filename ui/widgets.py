"""Small page pieces shared by several pages (pickers, notices, empty states)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from fer_core import FERError, RunListing
from fer_core.store.seeds import as_group

from . import settings, state, tables
from .loaders import DatasetGroup, dataset_groups, default_predict_models, model_names, run_listing


def load_groups() -> tuple[RunListing, list[DatasetGroup]]:
    """The run listing and its dataset groups; a broken runs folder never crashes the page."""
    try:
        listing = run_listing()
    except FERError as exc:
        st.error(str(exc))
        listing = RunListing()
    except OSError as exc:
        st.error(f"cannot read the runs folder {settings.display_path(settings.runs_dir())}: {exc.strerror or exc}")
        listing = RunListing()
    return listing, dataset_groups(listing) if listing.runs else []


def prewarm_current() -> None:
    """Begin loading the models of the dataset the user last looked at (or the newest) in the background."""
    from .loaders import prewarm

    try:
        prewarm(run_listing(), st.session_state.get(state.CURRENT_DATASET))
    except Exception:  # noqa: BLE001 - never let warming break a page
        pass


def listing_warnings(listing: RunListing) -> None:
    """Skipped (half-written or hand-edited) run folders, one warning line each."""
    if not listing.warnings:
        return
    n = len(listing.warnings)
    text = "\n".join(f"- {w}" for w in listing.warnings)
    st.warning(f"{n} run folder{'s' if n > 1 else ''} skipped (incomplete or edited by hand):\n{text}",
               icon=":material/warning:")


def pick_group(groups: list[DatasetGroup], key: str, label: str = "Dataset", narrow: bool = True) -> DatasetGroup | None:
    """Selectbox over dataset groups; remembers the choice across pages."""
    if not groups:
        return None
    fps = [g.fingerprint for g in groups]
    by_fp = {g.fingerprint: g for g in groups}
    current = st.session_state.get(state.CURRENT_DATASET)
    if key in st.session_state and st.session_state[key] not in fps:
        del st.session_state[key]  # the dataset's runs are gone
    index = fps.index(current) if current in fps else 0
    where = st.columns([3, 2])[0] if narrow else st
    fp = where.selectbox(label, fps, index=index, key=key, format_func=lambda f: by_fp[f].label,
                      help="Runs are grouped by the fingerprint (content hash) of the data they saw: "
                           "only models trained on exactly the same data are compared.")
    st.session_state[state.CURRENT_DATASET] = fp
    return by_fp[fp]


def pick_models(group: DatasetGroup, key: str) -> list:
    """Multiselect over a dataset's runs (labelled with their accuracy); returns the chosen runs.

    Options are each model's newest run, by model name; when the dataset has
    earlier runs of a model (trained again, another seed or setting), a toggle
    adds them, by run id and labelled with when they were trained.
    """
    by_key = {r.model_name: r for r in group.runs}
    older = bool(group.older) and st.toggle(
        f"Older runs too ({len(group.older)})", key=f"{key}_older",
        help="Each model is offered as its newest run; this adds the earlier runs of this dataset, to compare a "
             "model with itself trained another way.")
    if older:
        by_key.update({r.id: r for r in group.older})
    elif key in st.session_state:  # the toggle went off: drop earlier runs chosen while it was on
        st.session_state[key] = [k for k in st.session_state[key] if k in by_key]

    def label(k: str) -> str:
        run = by_key[k]
        when = "" if k == run.model_name else f" · {tables.trained_when(run)}"
        return f"{tables.model_label(run)}{when} · {tables.pct_text(run.metrics['accuracy'])}"

    chosen = st.multiselect(
        "Models", list(by_key), default=default_predict_models(group), key=key, format_func=label,
        help="Every chosen model classifies each face; with several, the ensemble is the mean of their probabilities. "
             "The percentage is the model's test accuracy.")
    st.caption(f"{len(chosen)} of {len(by_key)} {'runs' if older else 'model(s)'} trained on this dataset"
               + (f" · **{group.bundled_tag}**" if group.bundled else ""))
    return [by_key[k] for k in chosen]


def nesting_groups(groups: list[DatasetGroup], group: DatasetGroup) -> list[DatasetGroup]:
    """The other groups whose emotions include ``group``'s or lie within them (a 7-class FER2013 model beside
    an 8-class FER+ one): the Predictor reads such models together, in the wider class set."""
    from fer_core.labels import canonical

    mine = {canonical(n) for n in group.class_names}
    out = []
    for g in groups:
        theirs = {canonical(n) for n in g.class_names}
        if g.fingerprint != group.fingerprint and (theirs <= mine or mine <= theirs):
            out.append(g)
    return out


def pick_other_models(groups: list[DatasetGroup], group: DatasetGroup, key: str) -> list:
    """Multiselect over the newest runs of other datasets whose emotions nest with ``group``'s; none by default.

    Why: models trained on different labels of the same faces (FER2013's 7 and the FER+ crowd's 8) are
    worth reading side by side on one photo, although Compare keeps them apart (their test sets differ).
    """
    others = nesting_groups(groups, group)
    if not others:
        return []
    by_id = {r.id: (g, r) for g in others for r in g.runs}

    def label(run_id: str) -> str:
        g, run = by_id[run_id]
        return f"{tables.model_label(run)} · {g.name} · {tables.pct_text(run.metrics['accuracy'])}"

    chosen = st.multiselect(
        "Beside them, models trained on other data", list(by_id), default=[], key=key, format_func=label,
        placeholder="None", help="Models of another dataset whose emotions include these models' or lie within "
                                 "them (FER2013's 7 and the FER+ crowd's 8): they read the same faces, in the wider "
                                 "set of emotions (a class a model lacks reads 0 %). The percentage is the model's "
                                 "accuracy on its own dataset's test split.")
    return [by_id[k][1] for k in chosen]


def dataset_caption(group: DatasetGroup) -> None:
    sizes = group.runs[0].metrics["dataset"].get("split_sizes", {})
    split_text = " · ".join(f"{k} {v:,}" for k, v in sizes.items())
    bundled = f" · **{group.bundled_tag}**" if group.bundled else ""
    st.caption(f"Dataset **{group.name}** · fingerprint `{group.fingerprint}` · source `{group.source}` · "
               f"{len(group.class_names)} classes · {split_text}{bundled}")


def missing_models(group: DatasetGroup) -> list[str]:
    have = {r.model_name for r in group.runs}
    return [m for m in model_names() if m not in have]


def not_trained_notice(group: DatasetGroup) -> None:
    """Registered models without a run on this dataset, with the command that trains them."""
    missing = missing_models(group)
    if not missing:
        return
    demo_args = group.runs[0].demo_params() if group.source == "demo" else None
    cmd = tables.train_command(group.source, missing, demo_args=demo_args)
    from . import access

    where = "Use the Train page, or run:" if access.trusted() else "Train them on your own machine:"
    st.info(f"**Not trained yet on this dataset — train them:** {', '.join(missing)}. {where}",
            icon=":material/model_training:")
    st.code(cmd, language="bash", wrap_lines=True)
    if group.bundled and group.name.lower() == "fer2013":
        st.caption("The bundled models were trained on FER2013 (`--data` takes the Kaggle `fer2013.csv` or an "
                   "`.npz` in the seed's layout). The transfer models need their ImageNet weights in Keras' cache "
                   "(`~/.keras/models`); no scores are shown for models that were never trained.")


def no_runs_state(listing: RunListing) -> None:
    """What a new user sees when there is nothing to compare or predict with yet."""
    from fer_core.data.defaults import DEMO_PER_CLASS, EPOCHS as DEMO_EPOCHS

    from . import access

    trusted = access.trusted()  # public deployments show no server paths
    runs_dir = settings.display_path(settings.runs_dir()) if trusted else "runs"
    st.info(("No trained models yet" + (f" in `{runs_dir}`" if trusted else "")) +
            ". Train the five models on the built-in **demo** faces (about five minutes on a 2-core CPU with the "
            "settings below), or point the Train page at your own dataset.", icon=":material/info:")
    cols = st.columns([1, 1, 3])
    cols[0].page_link("pages/train.py", label="Train models", icon=":material/model_training:")
    cols[1].page_link("pages/dataset.py", label="Explore a dataset", icon=":material/dataset:")
    from .loaders import imagenet_weights_cached

    offline = not all(imagenet_weights_cached(model_names()).values())
    st.code(f"python -m training --data demo --demo-per-class {DEMO_PER_CLASS} --models all --epochs {DEMO_EPOCHS} --out {runs_dir}"
            + (" --weights none" if offline else ""), language="bash", wrap_lines=True)
    if offline:
        st.caption("`--weights none`: ImageNet weights are not in Keras' cache (`~/.keras/models`) on this machine. "
                   "With them, the four transfer models score far higher.")
    listing_warnings(listing)


LEADERBOARD_CONFIG = {
    "Model": st.column_config.TextColumn("Model", pinned=True),
    "Accuracy": st.column_config.ProgressColumn("Accuracy", format="%.1f%%", min_value=0, max_value=100, width="small",
                                                help="Share of correctly classified images of the evaluation split"),
    "Accuracy over seeds": st.column_config.TextColumn("Accuracy over seeds",  # sized to its text
                                                       help="Mean ± sample standard deviation over seeds that differ "
                                                            "only by --seed, and how many seeds"),
    "Macro-F1 over seeds": st.column_config.TextColumn("Macro-F1 over seeds",
                                                       help="Mean ± sample standard deviation over the seeds"),
    "FER+ paper's test set": st.column_config.NumberColumn(
        "FER+ paper's set", format="%.1f%%",
        help="Accuracy on the FER+ paper's own test set: votes of one dropped, faces where one emotion then has "
             "more than half the votes. Published FER+ accuracies use this set; the Accuracy column scores every "
             "face whose most-voted answer is an emotion, a larger and harder set"),
    "Macro-F1": st.column_config.ProgressColumn("Macro-F1", format="%.1f%%", min_value=0, max_value=100, width="small",
                                                help="Mean F1 over classes: rare classes count as much as common ones"),
    "Parameters": st.column_config.NumberColumn("Params", format="compact", help="Number of weights (trainable and frozen)"),
    "Size (MB)": st.column_config.NumberColumn("Size (MB)", format="%.1f", help="Size on disk of model.keras (of the head and backbone reference for a published head-only run)"),
    "Train time (s)": st.column_config.NumberColumn("Train time (s)", format="%.1f",
                                                    help="Wall-clock training time, feature extraction included"),
    "Latency (ms)": st.column_config.NumberColumn("Latency (ms)", format="%.1f",
                                                  help="Median time to classify one image, on the training machine"),
    "Epochs": st.column_config.NumberColumn("Epochs", format="%d"),
    "Trained": st.column_config.TextColumn("Trained"),
    "Run": st.column_config.TextColumn("Run folder", width="medium"),
}


def leaderboard(runs, key: str) -> None:
    """The leaderboard table of one dataset's runs or seed groups (best mean accuracy first), and its notes."""
    df = tables.leaderboard(runs)
    for column in ("Note", *tables.SEED_COLUMNS):
        if column in df and not df[column].astype(bool).any():
            df = df.drop(columns=column)  # random backbones, ties, several seeds: an empty column is clutter
    for column in tables.OPTIONAL_COLUMNS:
        if column in df and df[column].isna().all():
            df = df.drop(columns=column)  # a score no run recorded (0.0 % is a score)
    st.dataframe(df, key=key, hide_index=True, column_config=LEADERBOARD_CONFIG, width="stretch")
    first = as_group(runs[0]).run.metrics if runs else {}
    several = any(getattr(r, "n", 1) > 1 for r in runs)
    st.caption(f"Scores on the {first.get('split', 'test')} split ({first.get('n_samples', '?')} images), "
               "never seen in training. Best accuracy first."
               + (" Models trained with several seeds (same settings, only `--seed` changed): mean ± sample "
                  "standard deviation over the seeds; the bar is the mean. Two models are called tied when their "
                  "intervals mean ± std overlap (a single run counts as a point)." if several else ""))
    for note in tables.tie_notes(runs):
        st.caption(f":material/balance: {note}")


# --------------------------------------------------------------------------- dataset choice


@dataclass(frozen=True)
class DatasetChoice:
    """What to load: ``fer_core.load_dataset(spec, **kwargs)``, and how to name it."""

    spec: str
    kwargs: dict
    label: str


OTHER_PATH = "__other__"


def resolve_under_data_root(text: str):
    """A user-typed dataset path → absolute path inside the data root (:class:`FERError` if it escapes)."""
    from fer_core.data.upload import resolve_data_path

    return resolve_data_path(text, settings.data_root())


def dataset_choice(groups: list[DatasetGroup], prefix: str = "dataset") -> DatasetChoice | None:
    """Dataset page picker: the demo faces, datasets under the data root, those of existing runs, or a typed path."""
    from .loaders import dataset_candidates

    root = settings.data_root()
    options: dict[str, DatasetChoice | None] = {"demo": None}
    for rel in dataset_candidates(root):
        options[f"root:{rel}"] = DatasetChoice(str(root / rel), {}, f"{settings.display_path(root)}/{rel}")
    for g in groups:
        if g.source == "demo":
            p = g.runs[0].demo_params()
            options[f"run:{g.fingerprint}"] = DatasetChoice("demo", p, f"demo as trained by runs {g.fingerprint[:8]} "
                                                            f"({p['demo_per_class']} per class, {p['demo_image_size']} px)")
        elif Path(g.source).exists() and not any(
                isinstance(c, DatasetChoice) and Path(c.spec).resolve() == Path(g.source).resolve() for c in options.values()):
            options[f"run:{g.fingerprint}"] = DatasetChoice(g.source, {}, f"{g.source} (runs {g.fingerprint[:8]})")
    options[OTHER_PATH] = None

    def fmt(key: str) -> str:
        if key == "demo":
            return "Built-in demo faces"
        if key == OTHER_PATH:
            return "Another path under the data root…"
        return options[key].label

    c1, c2 = st.columns([2, 1])
    below = st.container()  # a path error gets the page's full width, not the narrow column
    key = c1.selectbox("Dataset", list(options), format_func=fmt, key=state.DATASET_CHOICE)
    if key == "demo":
        per_class = c2.number_input("Faces per class", 2, 2000, 50, step=10, key=state.DATASET_DEMO_PER_CLASS,
                                    help="The demo set draws this many synthetic faces per class (8 classes).")
        return DatasetChoice("demo", {"demo_per_class": int(per_class), "demo_image_size": 128},
                             f"demo ({per_class} per class)")
    if key == OTHER_PATH:
        with c2:
            path = typed_data_path(state.DATASET_PATH_TEXT, error_area=below)
        return DatasetChoice(path, {}, path) if path else None
    return options[key]


def typed_data_path(text_key: str, error_area=None) -> str | None:
    """A text input for a path under the data root → the resolved path, or None (with a message).

    ``error_area``: where a refused path's message goes (default: right under the input).
    """
    root = settings.data_root()
    text = st.text_input("Path under the data root", key=text_key, placeholder="fer2013/fer2013.npz",
                         help=f"Relative to {settings.display_path(root)} (set FER_DATA_DIR to change the data root).")
    if not text.strip():
        st.caption(f"An .npz, a FER2013 .csv, a folder of .npy files or of class folders, inside "
                   f"`{settings.display_path(root)}`.")
        return None
    try:
        return str(resolve_under_data_root(text.strip()))
    except FERError as exc:
        (error_area or st).error(str(exc), icon=":material/error:")
        return None


def data_root_picker(candidates: list[str], *, select_key: str, text_key: str) -> str | None:
    """Train page: a dataset found under the data root, or a typed path inside it."""
    root = settings.data_root()
    options = candidates + [OTHER_PATH]
    c1, c2 = st.columns([2, 2])
    below = st.container()
    choice = c1.selectbox("Dataset under the data root", options, key=select_key,
                          format_func=lambda k: "Type a path…" if k == OTHER_PATH else k,
                          help=f"Found in {settings.display_path(root)}: .npz and .csv files, dataset folders.")
    if not candidates:
        c1.caption(f"Nothing found in `{settings.display_path(root)}` yet.")
    if choice == OTHER_PATH:
        with c2:
            return typed_data_path(text_key, error_area=below)
    try:
        return str(resolve_under_data_root(choice))
    except FERError as exc:
        st.error(str(exc), icon=":material/error:")
        return None
