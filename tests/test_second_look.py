"""The detector's second look: lenient thresholds only when the strict pass found nobody."""

import numpy as np
import pytest

from fer_core import faces
from fer_core.faces import Face


@pytest.fixture
def passes(monkeypatch):
    """Replace the MTCNN pass with a script: strict result, lenient result; record every call."""
    calls = []
    script = {"strict": [], "lenient": []}

    def fake(rgb, max_side, **thresholds):
        calls.append((max_side, thresholds))
        return list(script["lenient" if thresholds else "strict"])

    monkeypatch.setattr(faces, "_detect", fake)
    return calls, script


IMG = np.zeros((480, 640, 3), np.uint8)


def test_strict_faces_are_kept_and_no_second_look(passes):
    calls, script = passes
    script["strict"] = [Face((300, 10, 50, 50), 0.99), Face((10, 10, 50, 50), 0.95), Face((100, 10, 50, 50), 0.6)]
    found = faces.detect_faces(IMG)
    assert [f.box[0] for f in found] == [10, 300]  # 0.6 dropped, left → right
    assert len(calls) == 1 and calls[0][1] == {}


def test_second_look_keeps_only_the_most_confident_face(passes):
    calls, script = passes
    script["lenient"] = [Face((10, 10, 80, 80), 0.75), Face((200, 50, 90, 90), 0.85)]
    found = faces.detect_faces(IMG)
    assert [(f.box, f.confidence) for f in found] == [((200, 50, 90, 90), 0.85)]
    assert [c[0] for c in calls] == [640, *faces.SECOND_LOOK_SIDES]
    assert all(c[1] == faces.SECOND_LOOK_THRESHOLDS for c in calls[1:])


def test_second_look_below_its_floor_finds_nothing(passes):
    _, script = passes
    script["lenient"] = [Face((10, 10, 80, 80), faces.SECOND_LOOK_MIN_CONFIDENCE - 0.01)]
    assert faces.detect_faces(IMG) == []


def test_second_look_can_be_switched_off(passes):
    calls, script = passes
    script["lenient"] = [Face((10, 10, 80, 80), 0.95)]
    assert faces.detect_faces(IMG, second_look=False) == []
    assert len(calls) == 1


def test_real_detector_on_a_blank_image_finds_nothing_in_either_look():
    assert faces.detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []
