"""The shared Predictor under concurrent sessions (issue 10 §3).

Streamlit runs each visitor's script in its own thread and ``st.cache_resource``
hands all of them the same Predictor, so everything in it must give the same
answer whether one thread calls it or eight at once. Uses the bundled models
in ``models/`` (no training needed) and variants of the bundled real photo.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models"
THREADS = 8


@pytest.fixture(scope="module")
def predictor():
    from fer_core import load_run
    from fer_core.inference.predictor import Predictor

    names = [n for n in ("compact", "baseline") if (BUNDLED / n / "model.keras").is_file()]
    if not names:
        pytest.skip("no bundled models in models/")
    p = Predictor([load_run(BUNDLED / n, bundled=True) for n in names])
    yield p
    p.close()


@pytest.fixture(scope="module")
def photos():
    from benchmarks.load import photo_variants
    from ui.samples import sample_bytes

    # real-photo variants (one face each) plus a synthetic two-face and a three-face photo
    return photo_variants(6, seed=7) + [sample_bytes("Two friends (happy, surprise)"),
                                        sample_bytes("Group of three (neutral, anger, fear)")]


def _same(a, b) -> None:
    assert a.whole_image == b.whole_image
    assert [f.box for f in a.faces] == [f.box for f in b.faces]
    for fa, fb in zip(a.faces, b.faces):
        assert [p.run_id for p in fa.predictions] == [p.run_id for p in fb.predictions]
        for pa, pb in zip(fa.predictions, fb.predictions):
            np.testing.assert_allclose(pa.probs, pb.probs, atol=1e-5)
        np.testing.assert_allclose(fa.ensemble, fb.ensemble, atol=1e-5)


def test_threads_get_the_serial_answers(predictor, photos):
    """N threads predicting different photos at once = the same photos one by one."""
    serial = [predictor.predict(p) for p in photos]
    assert sum(len(r.faces) for r in serial) >= len(photos)  # the faces are found (not the fallback)
    assert not any(r.whole_image for r in serial[:6])
    jobs = photos * 2  # 16 requests from 8 threads: batches mix different visitors' faces
    barrier = threading.Barrier(THREADS)

    def visit(i):
        if i < THREADS:
            barrier.wait()  # release the first eight together
        return predictor.predict(jobs[i])

    with ThreadPoolExecutor(THREADS) as ex:
        concurrent = list(ex.map(visit, range(len(jobs))))
    for i, result in enumerate(concurrent):
        _same(serial[i % len(photos)], result)


def test_faces_of_concurrent_callers_share_a_compiled_call(predictor):
    """predict_faces from many threads at once: same rows as alone, and fewer model calls than requests."""
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (int(rng.integers(40, 90)),) * 2 + (3,), dtype=np.uint8) for _ in range(24)]
    alone = [predictor.predict_faces([c])[0] for c in crops]
    m = predictor._loaded[0]
    calls0, req0 = m.batcher.calls, m.batcher.requests
    barrier = threading.Barrier(len(crops))

    def one(c):
        barrier.wait()
        return predictor.predict_faces([c])[0]

    with ThreadPoolExecutor(len(crops)) as ex:
        together = list(ex.map(one, crops))
    for a, b in zip(alone, together):
        for pa, pb in zip(a, b):
            np.testing.assert_allclose(pa.probs, pb.probs, atol=1e-5)
    assert m.batcher.requests - req0 == len(crops)
    assert m.batcher.calls - calls0 < len(crops)  # some faces rode together


def test_gradcam_model_cache_is_guarded(predictor, photos):
    """Eight sessions asking for the same Grad-CAM at once build ONE grad model and get equal maps."""
    face = predictor.predict(photos[0]).faces[0]
    run_id = next(m.run.id for m in predictor._loaded if m.gradcam_layer)
    predictor._gradcam_models.pop(run_id, None)
    built = []
    import fer_core.inference.gradcam as gc_mod

    original = gc_mod.gradcam_model

    def counting(model, layer):
        built.append(layer)
        time.sleep(0.05)  # widen the window two unguarded builders would both enter
        return original(model, layer)

    gc_mod.gradcam_model = counting
    try:
        barrier = threading.Barrier(THREADS)

        def one(_):
            barrier.wait()
            return predictor.gradcam(face, run_id)

        with ThreadPoolExecutor(THREADS) as ex:
            maps = list(ex.map(one, range(THREADS)))
    finally:
        gc_mod.gradcam_model = original
    assert len(built) == 1
    for m in maps[1:]:
        assert np.abs(m.astype(int) - maps[0].astype(int)).max() <= 1


def test_detection_from_threads_matches_serial(photos):
    from PIL import Image
    import io

    from fer_core.faces import detect as faces

    imgs = [np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in photos]
    serial = [faces.detect_faces(im) for im in imgs]
    with ThreadPoolExecutor(THREADS) as ex:
        concurrent = list(ex.map(faces.detect_faces, imgs * 2))
    for i, found in enumerate(concurrent):
        assert [(f.box, round(f.confidence, 4)) for f in found] == \
               [(f.box, round(f.confidence, 4)) for f in serial[i % len(imgs)]]
    assert faces._pool_size <= max(1, faces.DETECTORS)


def test_max_faces_keeps_the_largest_and_counts_all(predictor, photos):
    group = photos[-1]  # three faces
    full = predictor.predict(group)
    assert len(full.faces) == full.faces_found == 3
    capped = predictor.predict(group, max_faces=1)
    assert capped.faces_found == 3 and len(capped.faces) == 1
    largest = max(full.faces, key=lambda f: f.box[2] * f.box[3])
    assert capped.faces[0].box == largest.box


def test_micro_batcher_batches_and_delivers_errors():
    from fer_core.inference.batching import MicroBatcher

    sizes, gate = [], threading.Event()

    def fn(x):
        sizes.append(len(x))
        gate.wait(5)  # the first call blocks until the others have queued
        if (x < 0).any():
            raise ValueError("negative input")
        return x * 2

    b = MicroBatcher(fn, max_wait_s=0.001)
    try:
        first = b.submit(np.array([[1.0]]))
        time.sleep(0.05)
        rest = [b.submit(np.array([[float(i)], [float(i) + 0.5]])) for i in range(2, 6)]
        gate.set()
        assert first.result(5).tolist() == [[2.0]]
        for i, f in enumerate(rest, start=2):
            assert f.result(5).tolist() == [[2.0 * i], [2.0 * i + 1.0]]
        assert sizes == [1, 8]  # the four queued requests went through in ONE call
        bad, good = b.submit(np.array([[-1.0]])), None
        with pytest.raises(ValueError, match="negative"):
            bad.result(5)
        good = b.submit(np.array([[3.0]]))
        assert good.result(5).tolist() == [[6.0]]  # the worker survives a failed batch
    finally:
        b.close()
    with pytest.raises(RuntimeError):
        b.submit(np.array([[1.0]])).result(1)


def test_serving_process_keeps_keras_state_between_reruns(monkeypatch):
    """Streamlit's per-rerun keras.backend.clear_session (a full gc.collect) is switched off by ui.loaders."""
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    import ui.loaders  # noqa: F401  applies _serving_process()

    called = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: called.append(1))
    script_runner._clean_problem_modules()
    assert called == [] and getattr(script_runner._clean_problem_modules, "_fer_keeps_keras", False)


def test_run_listing_signature_is_shared_for_a_moment(tmp_path, monkeypatch):
    """Many sessions' reruns within SIGNATURE_TTL_S stat the run folders once; later ones see changes."""
    import ui.loaders as loaders

    calls = []
    real = loaders._folder_signature
    monkeypatch.setattr(loaders, "_folder_signature", lambda root: calls.append(root) or real(root))
    monkeypatch.setattr(loaders, "SIGNATURE_TTL_S", 0.3)
    a = loaders._recent_signature(tmp_path, tmp_path / "b")
    for _ in range(20):
        assert loaders._recent_signature(tmp_path, tmp_path / "b") == a
    assert len(calls) == 2  # runs root + bundled root, once
    (tmp_path / "new-run").mkdir()
    time.sleep(0.35)
    assert loaders._recent_signature(tmp_path, tmp_path / "b") != a
