"""How the detector's second look was chosen: variants scored on VALIDATION scenes, plus face-free photos.

    python benchmarks/second_look.py        # → benchmarks/results/second_look.json (~3 min on 2 cores)

``fer_core.faces.detect_faces`` looks a second time, with lenient MTCNN
thresholds, when its strict pass (confidence ≥ 0.9 at 640 px) finds no face.
This script builds the scenes ``benchmarks/fer2013.py`` builds, but from
FER2013 *validation* faces (seed 1, 600 stratified), runs the strict pass on
each, and on the scenes where it found nothing runs every candidate look
(sizes × thresholds); each candidate rule (which sizes, which threshold, which
minimum confidence for the single best box) is then scored as: pasted face
found (IoU ≥ 0.3), a wrong box, or nothing. It also counts boxes the rules
would return on 150 face-free synthetic backgrounds. Test scenes are never
used here: ``benchmarks/fer2013.py`` reports the chosen rule on them.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fer_core import faces as F  # noqa: E402
from fer_core.data import load_dataset  # noqa: E402
from fer_core.scenes import MATCH_IOU, background, iou, make_scene, stratified_indices  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.npz"
OUT = ROOT / "benchmarks" / "results" / "second_look.json"
SIDES = (640, 480, 320, 240)
THRESHOLDS = (0.5, 0.3)
RULE_SIDES = [(640, 320), (640, 480, 320), (640, 480, 320, 240), (480, 320), (640,), (320,)]
MIN_CONFIDENCE = (0.7, 0.6, 0.5)


def _rgb(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))  # (H, W, 3) uint8


def _looks(rgb: np.ndarray, truth=None) -> dict:
    """Every candidate look's boxes as (confidence, IoU with the pasted face or 0)."""
    out = {}
    for side in SIDES:
        for th in THRESHOLDS:
            found = F._detect(rgb, side, threshold_pnet=th, threshold_rnet=th, threshold_onet=th)
            out[f"{side}@{th}"] = [(f.confidence, iou(f.box, truth) if truth else 0.0) for f in found]
    return out


def _rule(looks: dict, sides, th, min_conf):
    """'face', 'wrong' or 'none': what the rule's single most confident box is."""
    best = max((c for s in sides for c in looks[f"{s}@{th}"]), key=lambda c: c[0], default=None)
    if best is None or best[0] < min_conf:
        return "none"
    return "face" if best[1] >= MATCH_IOU else "wrong"


def main() -> int:
    if not DATA.is_file():
        print(f"error: FER2013 not found at {DATA}", file=sys.stderr)
        return 2
    t0 = time.time()
    x, y = load_dataset(DATA).splits["validation"]
    strict_hits, missed = 0, []
    for i in stratified_indices(y, 600, 1):
        scene = make_scene(x[i], 1, int(i))
        rgb = _rgb(scene.jpeg)
        strict = [f for f in F._detect(rgb, 640) if f.confidence >= 0.9]
        strict_hits += any(iou(f.box, scene.box) >= MATCH_IOU for f in strict)
        if not strict:
            missed.append(_looks(rgb, scene.box))
    empty = []
    for i in range(150):
        w, h = [(640, 480), (800, 600), (1024, 768), (1280, 720)][i % 4]
        buf = io.BytesIO()
        Image.fromarray(background(np.random.default_rng([7, i]), w, h)).save(buf, "JPEG", quality=85)
        rgb = _rgb(buf.getvalue())
        if not [f for f in F._detect(rgb, 640) if f.confidence >= 0.9]:
            empty.append(_looks(rgb))
    n = 600
    rules = []
    for sides in RULE_SIDES:
        for th in THRESHOLDS:
            for mc in MIN_CONFIDENCE:
                outcome = [_rule(lk, sides, th, mc) for lk in missed]
                rules.append({"sides": list(sides), "threshold": th, "min_confidence": mc,
                              "face": outcome.count("face"), "wrong": outcome.count("wrong"),
                              "none": outcome.count("none"),
                              "detection_rate": round((strict_hits + outcome.count("face")) / n, 4),
                              "boxes_on_face_free": sum(_rule(lk, sides, th, mc) != "none" for lk in empty)})
    current = {"sides": list(F.SECOND_LOOK_SIDES), "threshold": F.SECOND_LOOK_THRESHOLDS["threshold_pnet"],
               "min_confidence": F.SECOND_LOOK_MIN_CONFIDENCE}
    result = {"command": "python benchmarks/second_look.py", "scenes": "FER2013 validation (PublicTest), 600 "
              "stratified, seed 1, fer_core.scenes defaults", "n": n, "strict_hits": strict_hits,
              "strict_found_nothing": len(missed), "face_free_photos": 150, "rules": rules,
              "fer_core_faces": current, "seconds": round(time.time() - t0, 1)}
    OUT.write_text(json.dumps(result, indent=1))
    for r in sorted(rules, key=lambda r: -r["detection_rate"])[:10]:
        print(r)
    print("fer_core.faces uses", current, "→", OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
