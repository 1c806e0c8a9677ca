"""Class priors (issue 25): does shifting a crowd-trained model away from the commonest answers make a better default?

    python benchmarks/prior_adjust.py                     # ferplus_x2 against compact_x2_blur
    python benchmarks/prior_adjust.py --run R --against D --splits 20

Writes ``benchmarks/results/prior_adjust.json``.

A model trained on the FER+ crowd's majority calls 40 % of validation photos
neutral and almost never reads the faces FER2013's taggers called fear
(``choose_default.json``). Logit adjustment (Menon et al. 2021, "Long-tail
learning via logit adjustment") divides each class's probability by its
training prior to the power τ: ``p'_c ∝ p_c · π_c^-τ``, with π the crowd
majority's share of each class on the training faces. Contempt (0.6 % of
them, and absent from FER2013) keeps its probability: boosting it only takes
answers from the seven emotions the rule scores.

Everything is on VALIDATION faces, under :mod:`choose_default`'s rule (mean of
four macro recalls; eligible when every class recall through photos is
≥ 0.25). Choosing τ and then the default on the same faces flatters the
adjusted model, so the script also splits the validation faces in halves
(``--splits`` random splits, a face's crop and photo together): τ is chosen
on one half by the rule and the adjusted model is judged against the current
default on the other half. Test faces are not used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import choose_default as cd  # noqa: E402  (imports TensorFlow quietly)

from fer_core import load_run  # noqa: E402
from fer_core.data.ferplus import votes_to_targets  # noqa: E402
from fer_core.faces.scenes import SceneConfig, make_scene, stratified_indices  # noqa: E402
from fer_core.labels import AFFECTNET_8  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "prior_adjust.json"
TAUS = tuple(round(t, 2) for t in np.arange(0.0, 1.51, 0.05))
KEEP_AS_IS = ("contempt",)


def training_prior(data_path) -> np.ndarray:
    """(8,) share of each AFFECTNET_8 class among the crowd majorities of the training faces."""
    with np.load(Path(data_path).parent / cd.VOTES_FILE) as v:
        _, majority, _ = votes_to_targets(v["train_votes"])
    return np.bincount(majority, minlength=len(AFFECTNET_8)) / len(majority)


def adjust(probs: np.ndarray, prior: np.ndarray, tau: float) -> np.ndarray:
    """(N, 8) probabilities → the same divided by prior**tau per class (KEEP_AS_IS untouched), renormalised."""
    w = prior ** -float(tau)
    for name in KEEP_AS_IS:
        w[AFFECTNET_8.index(name)] = 1.0
    out = probs * w
    return out / out.sum(1, keepdims=True)


def sweep_taus(p8, pipe, labels, crop_mask, scene_mask, prior) -> dict[float, dict]:
    """τ → the rule's row for the adjusted model, for every τ of TAUS, judged on the faces of the masks."""
    return {tau: judge_on(adjust(p8, prior, tau), adjust(pipe, prior, tau), labels, crop_mask, scene_mask)
            for tau in TAUS}


def pick_tau(rows: dict[float, dict]) -> tuple[float | None, dict | None]:
    """The τ of a :func:`sweep_taus` with the best rule score among the eligible ones (the first on a tie)."""
    best = (None, None)
    for tau, row in rows.items():
        if row["eligible"] and (best[1] is None or row["score"] > best[1]["score"]):
            best = (tau, row)
    return best


def judge_on(p8, pipe, labels, crop_mask, scene_mask) -> dict:
    """:func:`choose_default.judge` on the faces of ``crop_mask`` (N,) and the photos of ``scene_mask`` (S,)."""
    fer_y8, plus_y8, keep, scene_idx = labels
    sub = np.flatnonzero(crop_mask)  # the photos' faces are indexed into the kept crops below
    where = np.full(len(crop_mask), -1)
    where[sub] = np.arange(len(sub))
    return cd.judge(p8[sub], fer_y8[sub], plus_y8[sub], keep[sub], pipe[scene_mask], where[scene_idx[scene_mask]])


def brief(row: dict) -> dict:
    keys = [("crops", "fer2013"), ("crops", "ferplus"), ("photos", "fer2013"), ("photos", "ferplus")]
    return {"score": row["score"], "eligible": row["eligible"],
            "macro_recall": [row[a][b]["macro_recall"] for a, b in keys],
            "accuracy": [row[a][b]["accuracy"] for a, b in keys],
            "min_photo_recall": min(row["photos"][b]["min_recall"] for b in ("fer2013", "ferplus")),
            "photos_neutral_share": row["photos"]["fer2013"]["neutral_share"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(cd.DEFAULT_DATA))
    p.add_argument("--run", default=str(ROOT / "models" / "ferplus_x2"), help="the crowd-trained run to adjust")
    p.add_argument("--against", default=str(ROOT / "models" / "compact_x2_blur"), help="the current default")
    p.add_argument("--scenes", type=int, default=600)
    p.add_argument("--splits", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if not Path(args.data).is_file() or not (Path(args.data).parent / cd.VOTES_FILE).is_file():
        print(f"error: needs {args.data} and {cd.VOTES_FILE} beside it", file=sys.stderr)
        return 2
    t0 = time.time()
    x, y7, fer_y8, plus_y8, keep = cd.load_validation(args.data)
    prior = training_prior(args.data)
    scene_idx = stratified_indices(y7, args.scenes, args.seed)
    scenes = [make_scene(x[i], args.seed, int(i), SceneConfig()) for i in scene_idx]
    run, ref = load_run(args.run), load_run(args.against)
    p8, pipe = cd.candidate_probs(run, x, scenes)
    r8, rpipe = cd.candidate_probs(ref, x, scenes)
    labels = (fer_y8, plus_y8, keep, scene_idx)
    every, all_scenes = np.ones(len(x), bool), np.ones(len(scene_idx), bool)

    rows = sweep_taus(p8, pipe, labels, every, all_scenes, prior)
    sweep = {str(t): brief(r) for t, r in rows.items()}
    tau, row = pick_tau(rows)
    reference = brief(judge_on(r8, rpipe, labels, every, all_scenes))
    print(f"whole validation: best eligible tau {tau}: {row and row['score']} vs {ref.model_name} "
          f"{reference['score']}", file=sys.stderr)

    rng = np.random.default_rng(args.seed)
    halves = []
    for _ in range(args.splits):
        pick = rng.random(len(x)) < 0.5
        for a in (pick, ~pick):
            b = ~a
            t, _ = pick_tau(sweep_taus(p8, pipe, labels, a, a[scene_idx], prior))
            if t is None:
                halves.append({"tau": None})
                continue
            mine = brief(judge_on(adjust(p8, prior, t), adjust(pipe, prior, t), labels, b, b[scene_idx]))
            theirs = brief(judge_on(r8, rpipe, labels, b, b[scene_idx]))
            wins = mine["eligible"] and (not theirs["eligible"] or mine["score"] > theirs["score"])
            halves.append({"tau": t, "adjusted": mine, "reference": theirs, "adjusted_wins": bool(wins)})
    won = sum(h.get("adjusted_wins", False) for h in halves)
    acc_gap = [np.subtract(h["adjusted"]["accuracy"], h["reference"]["accuracy"]).tolist()
               for h in halves if h["tau"] is not None]
    result = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "command": "python " + " ".join(sys.argv),
              "data": str(args.data), "split": "validation (PublicTest)", "run": run.id, "against": ref.id,
              "prior": dict(zip(AFFECTNET_8, np.round(prior, 4).tolist())), "kept_as_is": list(KEEP_AS_IS),
              "whole_validation": {"chosen_tau": tau, "adjusted": brief(row) if row else None,
                                   "reference": reference, "sweep": sweep},
              "held_out_halves": {"n": len(halves), "adjusted_wins": won,
                                  "mean_accuracy_gap": np.round(np.mean(acc_gap, 0), 4).tolist() if acc_gap else None,
                                  "accuracy_gap_order": "crops FER2013, crops FER+, photos FER2013, photos FER+",
                                  "halves": halves},
              "seconds": round(time.time() - t0, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"held-out halves: the adjusted {run.model_name} beat {ref.model_name} in {won} of {len(halves)}; "
          f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
