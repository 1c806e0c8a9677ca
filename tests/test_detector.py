"""The YuNet detector (fer_core.faces.detect) and the aligned crops (fer_core.faces.align) on real and drawn input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fer_core.faces import detect as faces
from fer_core.faces.align import ALIGN_SCALE, align_face, alignment_transform, face_crops, move_landmarks

PHOTO = Path(__file__).resolve().parent.parent / "ui" / "assets" / "astronaut.jpg"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.open(PHOTO).convert("RGB"))  # (512, 512, 3), one face


def _tilt(landmarks: dict) -> float:
    (lx, ly), (rx, ry) = landmarks["left_eye"], landmarks["right_eye"]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def test_finds_the_face_with_its_landmarks_in_order(photo):
    found = faces.detect_faces(photo)
    assert len(found) == 1
    f = found[0]
    x, y, w, h = f.box
    assert 0.85 <= f.confidence <= 1.0 and 60 <= w <= 140 and 80 <= h <= 160
    lm = f.landmarks
    assert set(lm) == set(faces.LANDMARKS)
    assert lm["left_eye"][0] < lm["right_eye"][0]  # image-left eye first
    assert lm["mouth_left"][0] < lm["mouth_right"][0]
    eyes_y = (lm["left_eye"][1] + lm["right_eye"][1]) / 2
    assert y < eyes_y < lm["nose"][1] < lm["mouth_left"][1] < y + h  # eyes above nose above mouth, in the box


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3), (9, 400, 3), (12, 12, 3)])
def test_empty_and_tiny_images_have_no_faces(shape):
    assert faces.detect_faces(np.zeros(shape, np.uint8)) == []


def test_a_huge_image_is_read_at_the_detection_size(photo):
    """8,000 px: detection runs on a ≤ 960 px copy (and a 320 px one for large faces), boxes in full pixels."""
    big = np.asarray(Image.fromarray(photo).resize((8000, 8000), Image.Resampling.BILINEAR))
    found = faces.detect_faces(big)
    assert len(found) == 1
    small = faces.detect_faces(photo)[0].box
    ratio = 8000 / 512
    assert all(abs(a - b * ratio) < 0.03 * 8000 for a, b in zip(found[0].box, small))  # same face, full pixels


def test_a_blank_image_and_a_wrong_shape():
    assert faces.detect_faces(np.full((480, 640, 3), 128, np.uint8)) == []
    with pytest.raises(ValueError, match=r"expects an \(H, W, 3\) RGB image"):
        faces.detect_faces(np.zeros((40, 40), np.uint8))


def test_a_face_that_fills_the_photo_is_found_by_the_small_copy(photo):
    """A selfie-close face, ~700 px of a 1,000 px photo: too large for the main pass, found by the 320 px one."""
    x, y, w, h = faces.detect_faces(photo)[0].box
    pad = 20
    close = photo[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad]
    big = np.asarray(Image.fromarray(close).resize((800, 1000), Image.Resampling.BICUBIC))
    found = faces.detect_faces(big)
    assert len(found) == 1 and found[0].box[3] > 600


def _small_face_in_a_large_photo(photo, face_px: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The astronaut's head, its face ``face_px`` wide, in a 3000×2000 photo: (photo, the pasted head's box)."""
    x, y, w, h = faces.detect_faces(photo)[0].box
    head = Image.fromarray(photo[max(0, y - h // 2):y + h + h // 2, max(0, x - w // 2):x + w + w // 2])
    head = head.resize((head.width * face_px // w, head.height * face_px // w), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (3000, 2000), (120, 130, 140))
    canvas.paste(head, (1500, 900))
    return np.asarray(canvas), (1500, 900, head.width, head.height)


def test_a_second_look_confirms_a_small_face_the_main_pass_scored_low(photo):
    """40 px in a 3,000 px photo is 13 px of the 960 px pass: scored under 0.9 there, over it read closer."""
    big, (hx, hy, hw, hh) = _small_face_in_a_large_photo(photo, 40)
    assert faces.detect_faces(big, min_confidence=0.9, second_look=False) == []
    found = faces.detect_faces(big, min_confidence=0.9)
    assert len(found) == 1 and found[0].confidence >= 0.9
    x, y, w, h = found[0].box
    assert hx <= x and x + w <= hx + hw and hy <= y and y + h <= hy + hh and 25 <= w <= 60  # the face, full pixels
    lm = found[0].landmarks
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in lm.values())  # landmarks in the same pixels
    assert lm["left_eye"][1] < lm["nose"][1] < lm["mouth_left"][1]


def test_second_looks_stay_within_their_pixel_budget(photo, monkeypatch):
    big, _ = _small_face_in_a_large_photo(photo, 40)
    monkeypatch.setattr(faces, "LOOK_BUDGET", 0.0)  # no pixels for a look: the main pass's answer stands
    assert faces.detect_faces(big, min_confidence=0.9) == []


def test_a_closer_look_inside_a_found_face_is_not_a_second_face():
    big = faces.Face((100, 100, 400, 400), 0.95)
    assert faces._overlaps_any((200, 180, 120, 120), [big])  # a part of the face (an eye and a nostril)
    assert faces._overlaps_any((110, 105, 390, 400), [big])  # the same face
    assert not faces._overlaps_any((520, 100, 120, 120), [big])  # beside it


def test_merge_keeps_the_higher_score_of_overlapping_boxes():
    a = faces.Face((10, 10, 100, 100), 0.8)
    b = faces.Face((15, 12, 100, 100), 0.95)
    c = faces.Face((300, 10, 50, 50), 0.9)
    merged = faces.merge_faces([a, c], [b])
    assert sorted(f.confidence for f in merged) == [0.9, 0.95]


def test_loading_the_detector_after_cv2_is_imported_prints_no_opencv_warning():
    """OpenCV 5 warned "Targets are not supported by the new graph engine" on each detector load, in the
    CLI's output, whenever cv2 was imported before the first detector (its log-level variable was late)."""
    import subprocess
    import sys

    code = ("import cv2, numpy as np\nfrom fer_core.faces import detect\nbefore = cv2.utils.logging.getLogLevel()\n"
            f"detect.detect_faces(np.asarray(__import__('PIL.Image').Image.open(r'{PHOTO}').convert('RGB')))\n"
            "print(cv2.utils.logging.getLogLevel() == before)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={k: v for k, v in __import__("os").environ.items() if k != "OPENCV_LOG_LEVEL"})
    assert "WARN" not in proc.stderr, proc.stderr[-500:]
    assert proc.stdout.split() == ["True"]  # the process's own log level is left as it was


def test_altered_model_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "yunet.onnx"
    bad.write_bytes(faces.YUNET_PATH.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(faces, "YUNET_PATH", bad)
    monkeypatch.setattr(faces, "_verified", False)
    with pytest.raises(faces.DetectorError, match="not the bundled YuNet"):
        faces._new_detector()


# --------------------------------------------------------------------------- alignment

def test_alignment_levels_drawn_eyes():
    """Two dark eye dots and a mouth bar, the face turned 20°: in the aligned crop the eyes are level."""
    img = Image.new("RGB", (400, 400), (200, 200, 200))
    theta = np.radians(20)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = np.array([200.0, 200.0])
    pts = {"left_eye": (-35, -30), "right_eye": (35, -30), "nose": (0, 0), "mouth_left": (-25, 35),
           "mouth_right": (25, 35)}
    marks = {k: tuple(centre + rot @ np.array(v, float)) for k, v in pts.items()}
    draw = ImageDraw.Draw(img)
    for k in ("left_eye", "right_eye"):
        x, y = marks[k]
        draw.ellipse([x - 6, y - 6, x + 6, y + 6], fill=(0, 0, 0))
    assert _tilt(marks) == pytest.approx(20, abs=1e-6)
    crop = align_face(np.asarray(img), marks, scale=1.0)  # scale 1: FER2013's own framing, measured
    assert crop.shape[0] == crop.shape[1] and crop.shape[2] == 3
    dark = crop[..., 0] < 100
    ys, xs = np.nonzero(dark)
    left, right = ys[xs < crop.shape[1] / 2].mean(), ys[xs >= crop.shape[1] / 2].mean()
    assert abs(left - right) < 1.5  # level
    # and where FER2013 has its eyes: at ~0.38 of the height, ~0.35 of the side apart
    assert ys.mean() / crop.shape[0] == pytest.approx(0.381, abs=0.03)
    assert (xs[xs >= crop.shape[1] / 2].mean() - xs[xs < crop.shape[1] / 2].mean()) / crop.shape[1] == \
        pytest.approx(0.349, abs=0.03)


def test_face_crops_without_landmarks_are_the_square_crops(photo):
    f = faces.detect_faces(photo)[0]
    plain = faces.Face(f.box, f.confidence)  # no landmarks
    boxes, crops = face_crops(photo, [plain])
    x, y, s, _ = boxes[0]
    assert np.array_equal(crops[0], photo[y:y + s, x:x + s])
    boxes2, aligned = face_crops(photo, [f])
    assert boxes2 == boxes and aligned[0].shape[0] == aligned[0].shape[1]


def test_large_faces_are_returned_at_a_bounded_size():
    marks = {"left_eye": (1000, 1000), "right_eye": (1700, 1000), "mouth_left": (1100, 1700),
             "mouth_right": (1600, 1700), "nose": (1350, 1350)}
    unit, side = alignment_transform(marks, 1.0)
    assert side == pytest.approx(700 / 0.349, rel=0.01)
    assert alignment_transform(marks)[1] == pytest.approx(side * ALIGN_SCALE)  # the default, chosen on validation
    crop = align_face(np.zeros((3000, 3000, 3), np.uint8), marks)
    assert crop.shape == (256, 256, 3)


def test_landmarks_move_with_the_tracked_box():
    marks = {"left_eye": (20.0, 30.0), "right_eye": (60.0, 30.0)}
    moved = move_landmarks(marks, (10, 10, 80, 80), (110, 60, 160, 160))
    assert moved == {"left_eye": (130.0, 100.0), "right_eye": (210.0, 100.0)}


def test_an_idle_pool_is_let_go_and_rebuilt_on_the_next_photo(photo, monkeypatch):
    """A server's detectors keep buffers sized for their last input (issue 28): let go after an idle minute."""
    clock = [1000.0]
    monkeypatch.setattr(faces, "_clock", lambda: clock[0])
    faces.configure_detectors(2)
    first = faces.detect_faces(photo)
    assert faces._pool_size == 1 and faces.release_idle_detectors(60) == 0  # used just now
    pool, lent = faces._borrow()
    clock[0] += 120
    assert faces.release_idle_detectors(60) == 0  # one is lent: a detection is running
    faces._give_back(pool, lent)
    clock[0] += 120
    assert faces.release_idle_detectors(60) == 1 and faces._pool is None
    assert faces.release_idle_detectors(60) == 0  # nothing left to let go
    assert [f.box for f in faces.detect_faces(photo)] == [f.box for f in first]  # built again on demand
    assert faces._pool_size == 1


# --------------------------------------------------------------------------- turned looks (nothing found in a photo)


def test_a_turned_pass_maps_its_boxes_and_landmarks_back_to_the_photo(monkeypatch):
    """A fake YuNet that finds the one bright dot of the canvas it is given: the box comes back on that dot."""
    H, W = 1800, 2700  # larger than the pass: brought to 640 px, then turned
    point = (1950, 600)  # the dot, in the photo's pixels
    photo = np.zeros((H, W, 3), np.uint8)
    photo[point[1] - 6:point[1] + 6, point[0] - 6:point[0] + 6] = 255

    def fake_detect(img, side, min_confidence, max_up=1.0):
        assert max(img.shape[:2]) < 1.5 * side  # the turned canvas of the small copy, not of the photo
        gray = img.astype(float).sum(axis=2)
        ys, xs = np.nonzero(gray > 0.5 * gray.max())
        cx, cy = xs.mean(), ys.mean()
        face = faces.Face(box=(round(cx) - 15, round(cy) - 20, 30, 40), confidence=0.9,
                          landmarks={n: (cx, cy) for n in faces.LANDMARKS})
        return [face], 1.0, img.shape[:2]

    monkeypatch.setattr(faces, "_detect", fake_detect)
    for angle in (35.0, -35.0):
        (face,) = faces._turned_pass(photo, angle, 640, 0.5)
        x, y, bw, bh = face.box
        scale = 640 / W
        assert abs(bw - 30 / scale) <= 1 and abs(bh - 40 / scale) <= 1  # the box's size in the photo's pixels
        assert abs(x + bw / 2 - point[0]) <= 2 / scale and abs(y + bh / 2 - point[1]) <= 2 / scale
        assert all(np.hypot(px - point[0], py - point[1]) <= 2 / scale for px, py in face.landmarks.values())


def test_the_turned_look_keeps_the_best_readable_face_smaller_than_the_share():
    def face(side, score):
        return faces.Face(box=(0, 0, side, side), confidence=score)

    shape = (400, 600, 3)  # shorter side 400: a share of 0.7 is 280 px
    found = [face(300, 0.99), face(15, 0.95), face(100, 0.6), face(120, 0.8)]
    assert faces.best_turned(found, shape, 0.7) == [found[3]]  # too large, too small, then the best score
    assert faces.best_turned(found, shape, 1.01) == [found[0]]
    assert faces.best_turned([face(300, 0.99)], shape, 0.7) == []  # a face that fills the photo: the centred square


def test_a_turned_look_runs_only_when_nothing_was_found(photo, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("turned look on a photo with a face")

    monkeypatch.setattr(faces, "turned_face", refuse)
    assert len(faces.detect_faces(photo, turn=True)) == 1
    monkeypatch.undo()
    blank = np.full((480, 640, 3), 128, np.uint8)
    assert faces.detect_faces(blank, turn=True) == []  # looked again, still nothing
    assert faces.detect_faces(np.zeros((1, 1, 3), np.uint8), turn=True) == []


FER2013 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013" / "fer2013.npz"


@pytest.mark.skipif(not FER2013.is_file(), reason="FER2013 not here (../shared/datasets/fer2013/fer2013.npz)")
def test_a_tilted_face_the_main_pass_misses_is_found_by_the_turned_look():
    """Validation face 376 in its benchmark scene (seed 0): no box passes upright; a turned copy finds it, on the face,
    and Predict reads that face instead of the centred square."""
    import io

    from fer_core.faces.scenes import MATCH_IOU, SceneConfig, iou, make_scene

    with np.load(FER2013) as npz:
        face = npz["validation_images"][376]
    scene = make_scene(face, 0, 376, SceneConfig())
    rgb = np.asarray(Image.open(io.BytesIO(scene.jpeg)).convert("RGB"))
    assert faces.detect_faces(rgb) == []
    (found,) = faces.detect_faces(rgb, turn=True)
    assert iou(found.box, scene.box) >= MATCH_IOU and found.confidence >= faces.SCORE_THRESHOLD
    assert all(found.box[0] <= x <= found.box[0] + found.box[2] and found.box[1] <= y <= found.box[1] + found.box[3]
               for x, y in found.landmarks.values())  # landmarks mapped back with the box
    # the photo paths look again: Predict (and the CLI) and folders / zips
    from fer_core import bundled_runs
    from fer_core.inference import batch
    from fer_core.inference.predictor import Predictor

    predictor = Predictor([r for r in bundled_runs().runs if r.model_name == "compact"])
    try:
        result = predictor.predict(scene.jpeg)
        assert not result.whole_image and iou(result.faces[0].box, scene.box) >= MATCH_IOU
        (row,) = batch.predict_photos([batch.Source(label="scene.jpg", kind="photo", data=scene.jpeg)], predictor)
        assert not row["whole_image"]
    finally:
        predictor.close()
