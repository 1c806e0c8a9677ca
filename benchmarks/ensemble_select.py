"""Which runs to average into a bundled ensemble, chosen on VALIDATION (FER2013 PublicTest), never on test.

    python benchmarks/ensemble_select.py models/compact benchmarks/results/runs/<run> ... \\
        --data ../shared/datasets/fer2013/fer2013.npz

Each candidate's probabilities on the validation and test splits are computed
once (cached under ``benchmarks/.cache/ensemble/<run id>.npz``, keyed by the
model file's size and mtime); then every subset of the candidates (a single
run too) is scored as the plain mean of its members' probabilities, which is
exactly what ``python -m training.ensemble`` saves. The subset with the best
validation accuracy is the choice (ties: fewer members, cheaper per face); its test
accuracy is reported beside it and is not used to choose. Results go to
``benchmarks/results/ensemble_select.json``.

``--smooth 0,0.5,0.7``: also try each subset behind an input blur of each
sigma (``python -m training.ensemble --smooth``); sigma is chosen on
validation with the members, ties going to less blur. Runs trained with
``--augment`` have seen every face through bilinear resampling, which blurs.
With ONE run this picks the blur for it alone (``training.ensemble RUN --smooth``).

``--photos 600``: the dataset's sharp 48 px crops are not what the app
classifies. With this option, that many validation faces are also pasted
into synthetic photos (:mod:`fer_core.faces.scenes`: the validation scenes of
``benchmarks/fer2013.py --sweep``, faces drawn with seed 0, scenes with seed 1)
and cropped by the app's own detector and crop (``faces.detect_faces`` → ``face_crops``, aligned by the
landmarks → antialiased resize), once, cached. Each candidate is scored on the crops of the faces
found, and the choice is the best **mean of the two validation accuracies**
(crops and photos), so a blur that helps one and hurts the other is weighed.

The candidates must share the input shape and class names (one model family,
e.g. several ``compact`` runs); the dataset must be the one they were trained on.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CACHE = ROOT / "benchmarks" / ".cache" / "ensemble"
RESULTS = ROOT / "benchmarks" / "results" / "ensemble_select.json"
SPLITS = ("validation", "test")
PHOTOS = "validation_photos"  # the split of validation faces seen through synthetic photos (--photos)
PHOTO_SEED = 1  # the validation scenes' seed in benchmarks/fer2013.py --sweep


def photo_crops(ds, n: int, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` validation faces (stratified) pasted into photos and cropped by the app's detector and aligned crop.

    Returns the crops of the faces found, (M, size, size, channels) uint8 as the app resizes them,
    and their labels (M,). A scene where the pasted face is not found is left out: detection does
    not depend on the classifier, so it cannot tell candidates apart. Cached under ``CACHE``.
    """
    path = CACHE / f"photos-aligned-{ds.fingerprint}-{n}-{PHOTO_SEED}-{size}x{channels}.npz"
    if path.is_file():
        cached = np.load(path)
        return cached["x"], cached["y"]
    from fer_core.faces.align import face_crops
    from fer_core.faces.detect import detect_faces
    from fer_core.inference.predictor import to_rgb_array
    from fer_core.data.preprocess import prepare_images, to_channels
    from fer_core.faces.scenes import MATCH_IOU, iou, make_scene, stratified_indices

    x_val, y_val = ds.splits["validation"]
    crops, labels = [], []
    for i in stratified_indices(y_val, n, 0):
        scene = make_scene(x_val[i], PHOTO_SEED, int(i))
        rgb = to_rgb_array(scene.jpeg)  # decoded JPEG, (H, W, 3)
        found = detect_faces(rgb)
        overlaps = [iou(f.box, scene.box) for f in found]
        if overlaps and max(overlaps) >= MATCH_IOU:
            crop = face_crops(rgb, [found[int(np.argmax(overlaps))]])[1][0]  # aligned by its landmarks, as the app
            rgb_s = prepare_images(crop[None], size, 3)  # (1, S, S, 3): resized, then matched to the
            crops.append(to_channels(rgb_s, channels)[0])  # model's channels, in the Predictor's order
            labels.append(int(y_val[i]))
    if not crops:
        return np.zeros((0, size, size, channels), np.uint8), np.zeros(0, np.int64)
    x, y = np.stack(crops), np.asarray(labels)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)
    return x, y


def member_probs(run, ds, batch: int = 256, smooth: float = 0.0, photos=None) -> dict[str, np.ndarray]:
    """{split: (N, n_classes) float32} for one run, inputs blurred by ``smooth`` px (0: not), from the
    cache when its model file has not changed. ``photos``: (crops, labels) of :func:`photo_crops`,
    scored as split ``validation_photos``."""
    model_file = run.model_path
    stamp = f"{model_file.stat().st_size}-{int(model_file.stat().st_mtime)}-{ds.fingerprint}"
    if photos is not None:  # the probabilities hold for these exact crops
        stamp += "-photos" + hashlib.sha1(photos[0].tobytes()).hexdigest()[:16]
    path = CACHE / (f"{run.id}-{ds.fingerprint}.npz" if not smooth else f"{run.id}-{ds.fingerprint}-s{smooth:g}.npz")
    if path.is_file():
        cached = np.load(path)
        if str(cached["stamp"]) == stamp:
            return {s: cached[s] for s in (*SPLITS, *([PHOTOS] if photos is not None else []))}
    from fer_core.compute.forward import compiled_forward, predict_batches
    from fer_core.data.preprocess import prepare_images

    forward = compiled_forward(run.load_model())
    spec = run.config["model"]
    out = {}
    inputs = {split: ds.splits[split][0] for split in SPLITS}
    if photos is not None:
        inputs[PHOTOS] = photos[0]
    for split, images in inputs.items():
        # (N, S, S, C) uint8 at the model's input size, as it was evaluated when trained
        x = prepare_images(images, int(spec["image_size"]), int(spec.get("channels", 3)))
        if smooth:  # the layer the ensemble would hold, on float pixels: (N, S, S, C) → same
            from fer_core.models.layers import GaussianSmooth

            x = np.asarray(GaussianSmooth(smooth)(x.astype(np.float32)))
        out[split] = predict_batches(forward, x, batch).astype(np.float32)  # (N, C)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, stamp=stamp, **out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="candidate run folders (one: choose only its input blur)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.npz"),
                   help="the dataset the runs were trained on ('demo': rebuilt from the first run's record)")
    p.add_argument("--labels", default=None, metavar="ferplus|PATH",
                   help="the label set the runs were trained on (as python -m training --labels): 'ferplus' "
                        "scores every split against the FER+ crowd's majority")
    p.add_argument("--max-members", type=int, default=4, help="largest subset tried (cost per face grows with it)")
    p.add_argument("--current", nargs="+", metavar="RUN", default=None,
                   help="members of the ensemble bundled now (among the candidates): the choice is compared with "
                        "it face by face (exact McNemar test), so a switch is made on evidence, not on a few faces")
    p.add_argument("--smooth", default="0", metavar="SIGMAS",
                   help="comma-separated input blurs (pixels) to try in front of each subset, e.g. 0,0.5,0.7 "
                        "(0: none; training.ensemble --smooth)")
    p.add_argument("--current-smooth", type=float, default=0.0, metavar="SIGMA",
                   help="the input blur of the bundled ensemble named by --current")
    p.add_argument("--photos", type=int, default=0, metavar="N",
                   help="also score N validation faces pasted into photos, through the app's detector and crop, "
                        "and choose on the mean of the crop and photo validation accuracies (0: crops only)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    try:
        sigmas = sorted({float(v) for v in args.smooth.split(",")})
    except ValueError:
        print(f"error: --smooth {args.smooth}: give comma-separated numbers, e.g. 0,0.5,0.7", file=sys.stderr)
        return 2
    if any(not 0 <= v <= 3 for v in sigmas) or not 0 <= args.current_smooth <= 3:
        print("error: blurs go from 0 (none) to 3 pixels", file=sys.stderr)
        return 2
    from fer_core.data.datasets import load_dataset
    from fer_core.store.runs import load_run

    t0 = time.time()
    runs = [load_run(r) for r in args.runs]
    ds = (load_dataset("demo", **runs[0].demo_params()) if args.data == "demo"
          else load_dataset(args.data, labels=args.labels))
    if any(r.fingerprint != ds.fingerprint for r in runs):
        print(f"error: the runs were not all trained on {args.data} (dataset fingerprints differ)", file=sys.stderr)
        return 2
    shapes = {(r.config["model"]["image_size"], r.config["model"].get("channels", 3)) for r in runs}
    if len(shapes) != 1 or any(list(r.metrics["class_names"]) != list(ds.class_names) for r in runs):
        print("error: give runs with one input shape and the dataset's class names", file=sys.stderr)
        return 2
    labels = {s: ds.splits[s][1] for s in SPLITS}
    photos = None
    if args.photos:
        (size, channels), = shapes
        photos = photo_crops(ds, args.photos, int(size), int(channels))
        if not len(photos[1]):
            print(f"error: the detector found none of the {args.photos} pasted faces; choose on crops (no --photos)",
                  file=sys.stderr)
            return 2
        labels[PHOTOS] = photos[1]
        print(f"photos: the pasted face found in {len(photos[1])} of {args.photos} validation scenes")
    splits = (*SPLITS, *([PHOTOS] if photos is not None else []))
    probs = {(r.id, v): member_probs(r, ds, smooth=v, photos=photos) for r in runs
             for v in sorted({*sigmas, *([args.current_smooth] if args.current else [])})}
    names = {r.id: str(Path(a)) for r, a in zip(runs, args.runs)}

    def right(ids, split, smooth=0.0) -> np.ndarray:  # (N,) bool: the mean of ids' probabilities picks the label
        return np.mean([probs[i, smooth][split] for i in ids], axis=0).argmax(1) == labels[split]

    def acc(ids, split, smooth=0.0):
        return float(np.mean(right(ids, split, smooth)))

    def paired(current_ids, choice_ids, choice_smooth, split) -> dict:
        """The two ensembles face by face; p: exact two-sided McNemar test on the faces they disagree on."""
        from scipy.stats import binomtest

        a, b = right(current_ids, split, args.current_smooth), right(choice_ids, split, choice_smooth)
        only_b, only_a = int(np.sum(b & ~a)), int(np.sum(a & ~b))
        p = binomtest(only_b, only_a + only_b).pvalue if only_a + only_b else 1.0
        return {"current": round(float(a.mean()), 4), "choice": round(float(b.mean()), 4),
                "only_choice_right": only_b, "only_current_right": only_a, "p_value": round(float(p), 4)}

    def scored(ids, smooth) -> dict:  # accuracy on every split; "score": what the choice maximises
        row = {split: round(acc(ids, split, smooth), 4) for split in splits}
        row["score"] = round((row["validation"] + row[PHOTOS]) / 2, 4) if photos is not None else row["validation"]
        return row

    singles = [{"run": names[r.id], "smooth": v, **scored([r.id], v)} for r in runs for v in sigmas]
    # One run is a subset too (itself, or behind a blur): its rows are the singles', not scored again.
    subsets = [{"members": [row["run"]], **{k: v for k, v in row.items() if k != "run"}} for row in singles]
    for k in range(2, min(args.max_members, len(runs)) + 1):
        for ids in itertools.combinations([r.id for r in runs], k):
            for v in sigmas:
                subsets.append({"members": [names[i] for i in ids], "smooth": v, **scored(ids, v)})
    subsets.sort(key=lambda s: (-s["score"], len(s["members"]), s["smooth"]))
    ids_of = {names[r.id]: r.id for r in runs}
    current = None
    if args.current:
        wanted = [str(Path(c)) for c in args.current]
        if not set(wanted) <= set(ids_of):
            print("error: --current must name candidate run folders, as given", file=sys.stderr)
            return 2
        choice_ids = [ids_of[m] for m in subsets[0]["members"]]
        current = {"members": wanted, "smooth": args.current_smooth,
                   **{s: paired([ids_of[c] for c in wanted], choice_ids, subsets[0]["smooth"], s) for s in splits}}
    result = {"command": "python benchmarks/ensemble_select.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "dataset_fingerprint": ds.fingerprint, "labels": args.labels or "the dataset's own",
              "chosen_on": "validation (PublicTest)" + (": the mean of its crops' and its photos' accuracy"
                                                        if photos is not None else ""),
              "photos": {"scenes": args.photos, "seed": PHOTO_SEED, "found": int(len(photos[1]))} if photos is not None else None,
              "n": {s: int(len(labels[s])) for s in splits}, "singles": singles, "subsets": subsets,
              "choice": subsets[0], "against_current": current, "seconds": round(time.time() - t0, 1), "created": time.time()}
    Path(args.out).write_text(json.dumps(result, indent=1))
    def line(row) -> str:
        photo = f"  val photos {row[PHOTOS]:.4f}" if photos is not None else ""
        return f"σ {row['smooth']:g}  val {row['validation']:.4f}{photo}  test {row['test']:.4f}"

    for row in singles:
        print(f"  single  {line(row)}  {row['run']}")
    for row in subsets[:8]:
        print(f"  {len(row['members'])} runs  {line(row)}  " + " + ".join(Path(m).name for m in row["members"]))
    choice = result["choice"]
    print(f"choice (best validation): {' + '.join(choice['members'])}, input blur σ {choice['smooth']:g}"
          + (" (the run as it is: no blur and no ensemble helps on validation)"
             if len(choice["members"]) == 1 and not choice["smooth"] else "") + f" → {args.out}")
    for split in splits if current else ():
        c = current[split]
        print(f"  vs current on {split}: {c['current']:.4f} → {c['choice']:.4f}; only the choice right on "
              f"{c['only_choice_right']} faces, only the current on {c['only_current_right']}; McNemar p = {c['p_value']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
