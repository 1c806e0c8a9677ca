"""FER+ : FER2013's faces with a 10-person crowd's votes as labels (8 emotions).

Why: FER2013's own labels disagree with the FER+ crowd (Barsoum et al. 2016,
labels MIT, microsoft/FERPlus) on about 38 % of its faces, most often calling
a neutral face sad or fearful. The crowd's vote distribution is a cleaner
training target (soft labels) and its majority a second, widely used
benchmark (FER+ test majority accuracy).

The votes live beside ``fer2013.npz`` as ``ferplus_votes.npz`` (one row of 10
vote counts per FER2013 row: neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown, not-a-face; all -1 where no FER+ image
matched). :func:`attach_ferplus` turns a loaded FER2013 :class:`Dataset` into
the FER+ one:

* rows without a FER+ match, and rows the crowd mostly called *unknown* or
  *not a face*, are left out (the FER+ paper's protocol);
* classes are the seed's 8 in :data:`~fer_core.labels.AFFECTNET_8` order;
* ``labels`` is the crowd's majority over the 8 emotions (ties: the first in
  that order), which is what accuracy is scored against;
* ``targets`` is the vote distribution over the 8 emotions (rows sum to 1):
  what the trainer fits when a dataset carries targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..digest import sha256_file
from ..errors import DatasetError
from ..labels import AFFECTNET_8

#: FER+ vote columns, in the file's order.
VOTE_NAMES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
#: Vote column → index in AFFECTNET_8 for the 8 emotions (unknown and NF have none).
_TO_AFFECTNET = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                 "anger": "anger", "disgust": "disgust", "fear": "fear", "contempt": "contempt"}
VOTES_FILE = "ferplus_votes.npz"
#: The label-set names ``load_dataset(..., labels=...)`` accepts besides a path.
LABEL_SETS = ("ferplus",)


def votes_path(dataset_source: str | Path, labels: str) -> Path:
    """``labels`` ('ferplus' → the votes file beside the dataset, or a path to one) as a path, checked."""
    path = Path(dataset_source).expanduser().parent / VOTES_FILE if labels == "ferplus" else Path(labels).expanduser()
    if not path.is_file():
        raise DatasetError(f"{path}: no FER+ votes file here (FER+ labels need {VOTES_FILE} beside fer2013.npz, "
                           f"or --labels PATH to it)")
    return path


def emotion_columns() -> np.ndarray:
    """(8,) vote column of each AFFECTNET_8 class: ``votes[:, emotion_columns()]`` is in AFFECTNET_8 order."""
    col = {_TO_AFFECTNET[name]: i for i, name in enumerate(VOTE_NAMES[:8])}
    return np.array([col[c] for c in AFFECTNET_8])


def _votes_array(votes) -> np.ndarray:
    """``votes`` as an (N, 10) array in FER+ column order, or :class:`DatasetError`."""
    votes = np.asarray(votes)
    if votes.ndim != 2 or votes.shape[1] != len(VOTE_NAMES):
        raise DatasetError(f"FER+ votes must be (N, {len(VOTE_NAMES)}), got {votes.shape}")
    return votes


def votes_to_targets(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 10) vote counts → (keep mask (N,), majority (M,) int64, distribution (M, 8) float32), AFFECTNET_8 order.

    A row is kept when it was matched (no -1) and its most-voted column is one
    of the 8 emotions (not *unknown* or *not a face*).
    """
    votes = _votes_array(votes)
    matched = (votes >= 0).all(axis=1)
    emotions = votes[:, emotion_columns()].astype(np.float32)  # (N, 8) AFFECTNET_8 order
    keep = matched & (votes.argmax(axis=1) < 8) & (emotions.sum(axis=1) > 0)
    kept = emotions[keep]
    dist = kept / kept.sum(axis=1, keepdims=True)
    return keep, kept.argmax(axis=1).astype(np.int64), dist.astype(np.float32)


def paper_majority(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 10) vote counts → (keep mask (N,), label (M,) int64 in AFFECTNET_8 order): the FER+ paper's test set.

    Why a second rule: the paper's VGG13 (0.85), and any result that uses the
    paper's code, is scored on the test set its own reader
    (microsoft/FERPlus, ``src/ferplus.py``, "majority" mode, used for
    validation and test whatever the training mode) builds: a
    single vote for a column is dropped as an outlier, and a face is kept
    only when one column then holds *more than half* of the remaining votes
    and that column is an emotion. :func:`votes_to_targets` keeps every face
    whose most-voted column is an emotion (ties included), a harder and larger
    set; both are reported, each under its own name.
    """
    votes = _votes_array(votes)
    matched = (votes >= 0).all(axis=1)
    kept_votes = np.where(votes > 1, votes, 0)  # (N, 10): single votes dropped as outliers
    top = kept_votes.argmax(axis=1)
    clear = kept_votes.max(axis=1) > 0.5 * kept_votes.sum(axis=1)  # strictly more than half: unique
    keep = matched & clear & (top < 8)
    to_affectnet = np.argsort(emotion_columns())  # vote column (0..7) → AFFECTNET_8 index
    return keep, to_affectnet[top[keep]].astype(np.int64)


def attach_ferplus(ds, votes_file: str | Path):
    """The FER+ version of ``ds`` (FER2013 in its canonical splits, 7 classes): 8 classes, majority labels, vote targets."""
    Dataset = type(ds)  # FER2013 as fer_core.data.datasets loaded it (no import back: fer_core.data.datasets imports this module)

    try:
        with np.load(votes_file, allow_pickle=False) as npz:
            votes = {s: npz[f"{s}_votes"] for s in ds.splits if f"{s}_votes" in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{votes_file}: not a readable FER+ votes file ({exc})") from None
    splits, targets, dropped, paper_rows = {}, {}, {}, {}
    for split, (x, _) in ds.splits.items():
        v = votes.get(split)
        if v is None or len(v) != len(x):
            have = "none" if v is None else f"{len(v)} rows"
            raise DatasetError(f"{votes_file}: '{split}_votes' ({have}) does not match {ds.source}'s {split} split "
                               f"({len(x)} faces); FER+ votes fit fer2013.npz's canonical splits only")
        keep, majority, dist = votes_to_targets(v)
        splits[split] = (x[keep], majority)
        targets[split] = dist
        paper_rows[split] = paper_majority(v)[0][keep]  # the paper's set lies inside the plurality one
        dropped[split] = int((~keep).sum())
    out = Dataset(name=f"{ds.name}+ferplus", source=ds.source, class_names=AFFECTNET_8, splits=splits,
                  warnings=list(ds.warnings), targets=targets, labels="ferplus",
                  labels_file={"file": Path(votes_file).name, "sha256": sha256_file(votes_file)[:16]},
                  paper_rows=paper_rows)
    out.warnings.append("FER+ labels: left out faces without a FER+ match or voted unknown / not a face ("
                        + ", ".join(f"{s} {n}" for s, n in dropped.items()) + ")")
    return out


def agreement(fer2013_labels: np.ndarray, votes: np.ndarray) -> dict:
    """Where FER2013's label and the crowd's majority agree, per FER2013 class (for the Dataset page).

    ``votes`` (N, 10) in FER+ column order for the same N faces. Returns
    ``{"overall": share, "per_class": {fer2013 class: {"n", "agree", "crowd_says": {emotion: count}}}}``
    over the faces the crowd kept (see :func:`votes_to_targets`).
    """
    from ..labels import FER2013_7, index_map

    keep, majority, _ = votes_to_targets(votes)
    fer = np.asarray(fer2013_labels)[keep]
    to8 = index_map(FER2013_7, AFFECTNET_8)  # FER2013 index → AFFECTNET_8 index ("angry" is "anger" there)
    per_class = {}
    for i, name in enumerate(FER2013_7):
        rows = majority[fer == i]
        counts = np.bincount(rows, minlength=8)
        per_class[name] = {"n": int(len(rows)), "agree": float(np.mean(rows == to8[i])) if len(rows) else float("nan"),
                           "crowd_says": {c: int(n) for c, n in zip(AFFECTNET_8, counts)}}
    same = majority == to8[fer]
    return {"overall": float(same.mean()) if len(same) else float("nan"), "n": int(len(same)), "per_class": per_class}


def crowd_agreement(ds) -> dict | None:
    """:func:`agreement` for every split of a FER2013 :class:`Dataset` whose votes file sits beside it.

    None when there is no votes file or its splits do not fit the dataset (a
    dataset that is not FER2013 in its canonical splits).
    """
    path = Path(ds.source).parent / VOTES_FILE
    if ds.labels or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            votes = {s: npz[f"{s}_votes"] for s in ds.splits if f"{s}_votes" in npz.files}
    except (OSError, ValueError, EOFError):
        return None
    if set(votes) != set(ds.splits) or any(len(votes[s]) != len(ds.splits[s][1]) for s in ds.splits):
        return None
    from ..labels import FER2013_7

    if tuple(ds.class_names) != FER2013_7:
        return None
    return {s: agreement(ds.splits[s][1], votes[s]) for s in ds.splits}
