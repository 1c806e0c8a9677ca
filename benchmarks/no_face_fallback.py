"""When YuNet finds no face: read the centred square (what Predict does) or the detector's best candidate?

Predict classifies the centred square of a photo in which no face passes the detector's threshold: a
tight face photo often has too little context for the detector, and its face *is* the centre. In a wider
photo the face can be anywhere, and the detector's best box under the threshold is often on it. This
measures both readings of the same photos, on **validation** faces only, with Predict's default model:

- ``scene``: each face pasted into a synthetic photo (``fer_core.faces.scenes.make_scene``, seed 0, as
  the pipeline section of ``benchmarks/fer2013.py`` builds them from test faces);
- ``tight``: each face alone, upscaled to 150–400 px and saved as JPEG (a cropped face photo).

For the photos without a face, each candidate floor says how many would read the candidate instead
(boxes ≥ 20 px from the main pass, scored from 0.02), how many of those lie on the face (IoU ≥ 0.3),
and how many faces each reading gets right.

**Turned looks** (``turned``): the same photos searched again on two copies turned by ± an angle, at a
detection side, at the app's threshold (``fer_core.faces.detect.turned_faces``); the best box is read
when its longer side is under a share of the photo's shorter side, else the centred square. Every
setting of :data:`TURN_GRID` is scored on both kinds of photos together (faces right, against the
centred square's); the best is ``turned_chosen``, which is what ``TURN_DEG``, ``TURN_SIDE`` and
``TURN_MAX_SHARE`` in ``fer_core/faces/detect.py`` are. Face-free backgrounds (the 200 validation ones
of ``benchmarks/detect.py``) say how many a turned look would give a box.

    python benchmarks/no_face_fallback.py --faces 1500   # → benchmarks/results/no_face_fallback.json
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_core import bundled_runs, load_dataset  # noqa: E402
from fer_core.data.defaults import BUNDLED_PREDICT_DEFAULT  # noqa: E402
from fer_core.faces import detect as D  # noqa: E402
from fer_core.faces.align import face_crops  # noqa: E402
from fer_core.faces.scenes import MATCH_IOU, SceneConfig, iou, make_scene, stratified_indices  # noqa: E402
from fer_core.inference.predictor import Predictor  # noqa: E402

FLOORS = (0.02, 0.05, 0.1, 0.2, 0.3)
#: Turned-look settings measured: (angle °, detection side px) × the largest box share read.
TURN_GRID = ((25.0, 480), (35.0, 480), (25.0, 640), (35.0, 640))
TURN_SHARES = (0.3, 0.5, 0.7, 1.01)  # 1.01: any box


def _turn_key(angle: float, side: int, share: float) -> str:
    return f"±{angle:g}° at {side} px, box < {share:g} of the short side"


def tight_photo(face: np.ndarray, index: int) -> np.ndarray:
    """The face alone, upscaled to 150–400 px (seeded by its index), through JPEG → (H, W, 3) uint8."""
    rng = np.random.default_rng([7, int(index)])
    side = int(rng.integers(150, 401))
    im = Image.fromarray(np.asarray(face).squeeze()).resize((side, side), Image.Resampling.LANCZOS).convert("RGB")
    out = io.BytesIO()
    im.save(out, "JPEG", quality=int(rng.integers(70, 96)))
    return np.asarray(Image.open(out).convert("RGB"))


def turned_backgrounds(n: int = 200) -> dict:
    """Of the validation backgrounds of ``benchmarks/detect.py`` in which nothing passes, how many a turned look
    (each setting of :data:`TURN_GRID`, any box share) gives a box."""
    from fer_core.faces.scenes import background_photo

    out = {"backgrounds": 0, "given_a_box": {f"±{a:g}° at {s} px": 0 for a, s in TURN_GRID}}
    for i in range(n):
        data = background_photo(1, i)  # benchmarks/detect.py's validation backgrounds (seed 1)
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        if D.detect_faces(rgb):
            continue
        out["backgrounds"] += 1
        for angle, side in TURN_GRID:
            out["given_a_box"][f"±{angle:g}° at {side} px"] += bool(D.best_turned(
                D.turned_faces(rgb, D.SCORE_THRESHOLD, angle, side), rgb.shape, 1.01))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared/datasets/fer2013/fer2013.npz"))
    p.add_argument("--faces", type=int, default=1500, help="validation faces (stratified, seed 0)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/no_face_fallback.json"))
    args = p.parse_args(argv)

    ds = load_dataset(args.data)
    x, y = ds.splits["validation"]
    idx = stratified_indices(y, args.faces, 0)
    run = {r.model_name: r for r in bundled_runs().runs}[BUNDLED_PREDICT_DEFAULT]
    predictor = Predictor([run])
    assert list(predictor.class_names) == list(ds.class_names)

    def read(rgb, box=None, face=None) -> int:
        crops = face_crops(rgb, [face])[1] if face is not None else [D.crop_face(rgb, box)]
        return int(predictor.predict_faces(crops)[0][0].probs.argmax())

    result = {"command": "python benchmarks/no_face_fallback.py " + " ".join(sys.argv[1:]),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dataset_fingerprint": ds.fingerprint,
              "split": "validation", "model": run.model_name, "faces": int(len(idx)), "kinds": {}}
    for kind in ("scene", "tight"):
        rows = []
        for i in idx:
            if kind == "scene":
                scene = make_scene(x[i], 0, int(i), SceneConfig())
                rgb, truth = np.asarray(Image.open(io.BytesIO(scene.jpeg)).convert("RGB")), scene.box
            else:
                rgb = tight_photo(x[i], int(i))
                truth = (0, 0, rgb.shape[1], rgb.shape[0])
            if D.detect_faces(rgb):
                continue  # a face passed: the fallback does not apply
            # the main pass's boxes from the looks' floor up (≥ MIN_FACE_SIZE), without looks or the large-face pass
            found = D.detect_faces(rgb, min_confidence=D.LOOK_FLOOR, large_face_side=None, second_look=False)
            row = {"index": int(i), "label": int(y[i]), "centre": read(rgb, box=D.centre_square_box(rgb.shape))}
            row["turned"] = {}
            for angle, side in TURN_GRID:
                turned = D.turned_faces(rgb, D.SCORE_THRESHOLD, angle, side)
                for share in TURN_SHARES:
                    pick = D.best_turned(turned, rgb.shape, share)
                    row["turned"][_turn_key(angle, side, share)] = None if not pick else {
                        "on_face": bool(iou(pick[0].box, truth) >= MATCH_IOU), "read": read(rgb, face=pick[0])}
            if found:
                best = max(found, key=lambda f: f.confidence)
                row.update(candidate=round(best.confidence, 3), on_face=bool(iou(best.box, truth) >= MATCH_IOU),
                           candidate_read=read(rgb, face=best))
            rows.append(row)
        per_floor = {}
        for floor in FLOORS:
            use = [r for r in rows if r.get("candidate", -1.0) >= floor]
            right = sum((r["candidate_read"] if r.get("candidate", -1.0) >= floor else r["centre"]) == r["label"]
                        for r in rows)
            per_floor[str(floor)] = {"candidate_read": len(use), "on_face": sum(r["on_face"] for r in use),
                                     "right": int(right)}
        turned = {}
        for key in rows[0]["turned"] if rows else ():
            used = [r for r in rows if r["turned"][key]]
            turned[key] = {"read_turned": len(used), "on_face": sum(r["turned"][key]["on_face"] for r in used),
                           "right": int(sum((r["turned"][key]["read"] if r["turned"][key] else r["centre"]) == r["label"]
                                            for r in rows))}
        result["kinds"][kind] = {"no_face": len(rows), "centre_right": sum(r["centre"] == r["label"] for r in rows),
                                 "per_floor": per_floor, "turned": turned, "rows": rows}
        print(f"{kind}: no face in {len(rows)} of {len(idx)}; centred square right {result['kinds'][kind]['centre_right']}; "
              + "; ".join(f"floor {f}: {v['candidate_read']} read the candidate ({v['on_face']} on the face), "
                          f"{v['right']} right" for f, v in per_floor.items()))
    kinds = result["kinds"].values()
    gains = {key: sum(k["turned"][key]["right"] - k["centre_right"] for k in kinds)
             for key in next(iter(kinds))["turned"]}
    chosen = max(gains, key=lambda k: (gains[k], -list(gains).index(k)))  # ties: the first (cheaper) setting
    result["turned_gain"] = gains
    result["turned_chosen"] = chosen
    result["turned_backgrounds"] = turned_backgrounds()
    print(f"turned looks: chosen {chosen} (+{gains[chosen]} faces right over both kinds); "
          f"backgrounds given a box: {result['turned_backgrounds']['given_a_box']}")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
