"""Build a "mixed" votes file: the FER+ crowd's votes plus FER2013's own label as extra votes (train only).

    python benchmarks/mixed_votes.py --weight 10 --out runs/mixed_votes.npz
    python -m training --data ../shared/datasets/fer2013/fer2013.npz --labels runs/mixed_votes.npz ...

Why (issue 25's caution): a model trained on the crowd's votes alone (``ferplus_x2``) agrees with
the crowd best, but calls 40 % of photo faces neutral and finds almost none of FER2013's fear. The
crowd's labels are cleaner; FER2013's keep the expressions the crowd often calls neutral. Adding
FER2013's label to each train face as ``--weight`` extra votes (10 = as much weight as the whole
crowd) gives a target between the two, which the trainer fits as a soft label. Validation and test
keep the crowd's votes unchanged, so early stopping and the reported scores stay "FER+ majority".

The file has the layout of ``ferplus_votes.npz`` (README in ``../shared/datasets/fer2013``), so
``--labels PATH`` reads it as it reads the crowd's. It is derived data: write it under ``runs/``
(ignored by git), never into the project.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "fer2013"


def mixed_votes(fer_labels: np.ndarray, votes: np.ndarray, vote_to_fer2013: np.ndarray, weight: int) -> np.ndarray:
    """(N,) FER2013 labels, (N, 10) crowd votes → (N, 10) votes with ``weight`` added to FER2013's class column.

    Unmatched rows (all -1) stay -1: the loader leaves them out either way.
    """
    col_of_fer = {int(f): c for c, f in enumerate(vote_to_fer2013) if f >= 0}  # FER2013 index → vote column
    out = votes.astype(np.int16).copy()
    matched = (votes >= 0).all(axis=1)
    cols = np.array([col_of_fer[int(y)] for y in fer_labels])
    rows = np.flatnonzero(matched)
    out[rows, cols[rows]] += weight
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA / "fer2013.npz")
    p.add_argument("--weight", type=int, default=10, help="extra votes for FER2013's label on each train face")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    votes_file = a.data.parent / "ferplus_votes.npz"
    with np.load(a.data) as fer, np.load(votes_file) as v:
        arrays = {k: v[k] for k in v.files}
        arrays["train_votes"] = mixed_votes(fer["train_labels"], v["train_votes"], v["vote_to_fer2013"], a.weight)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out, **arrays)
    m = arrays["train_votes"]
    ok = (m >= 0).all(axis=1)
    print(f"{a.out}: train rows {int(ok.sum())} matched, FER2013 label weight {a.weight}; "
          f"validation/test: the crowd's votes unchanged")


if __name__ == "__main__":
    main()
