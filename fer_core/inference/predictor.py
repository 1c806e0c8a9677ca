"""Predicting expressions on photos with one or more trained runs.

The face pipeline, in the order it runs (after paz's face classifier)::

    bytes / path / PIL / array → upright RGB (H, W, 3) uint8       images.open_image
    → faces (x, y, w, h)                                            faces.detect_faces
    → square boxes (drawn) and crops aligned by the eyes/mouth      align.face_crops
    → per model: crops resized to (S, S, C), ONE compiled call      Predictor.predict_faces
    → per face: each model's probabilities + their mean (ensemble)
    → numbered boxes drawn on the photo                             draw_boxes

When no face is found the centred square of the whole image is classified
instead (``whole_image=True``): a tight face photo often has too little
context around the face for the detector, and the user still gets an answer.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from .batching import MicroBatcher
from ..errors import FERError, ImageInputError
from ..compute.forward import BATCH_BUCKETS, run_bucketed
from ..faces.align import face_crops
from ..faces.detect import centre_square_box, crop_face, detect_faces, largest_faces, warm_up_detector
from ..data.images import MAX_PIXELS, MIN_SIDE, open_image, to_array, to_rgb_or_gray
from ..store.runs import Run


@dataclass
class ModelPrediction:
    run_id: str
    model: str  # registry id, e.g. "baseline"
    label: str  # shown in the UI: "baseline", "baseline (bundled)"
    probs: np.ndarray  # (C,) float32, sums to 1


@dataclass
class FaceResult:
    index: int  # 1-based, the number drawn next to the box
    box: tuple[int, int, int, int]  # (x, y, w, h) of the square crop, original image pixels
    confidence: float | None  # detector confidence; None for the whole-image fallback
    crop: np.ndarray  # (h, w, 3) uint8, what the models classified
    predictions: list[ModelPrediction]
    ensemble: np.ndarray  # (C,) mean of the models' probabilities
    class_names: list[str] = field(default_factory=list)

    def top(self) -> tuple[str, float]:
        """The ensemble's most likely emotion and its probability."""
        k = int(np.argmax(self.ensemble))
        name = self.class_names[k] if k < len(self.class_names) else str(k)
        return name, float(self.ensemble[k])


#: The longest side of the photo a page keeps with a result (:meth:`PredictionResult.for_display`).
DISPLAY_SIDE = 2048


@dataclass
class PredictionResult:
    image: np.ndarray  # (H, W, 3) uint8, upright RGB
    faces: list[FaceResult]
    whole_image: bool  # True: no face found, the centred square of the image was classified
    class_names: list[str]
    timings: dict[str, float]  # seconds: decode, detect, classify, total
    faces_found: int = -1  # faces the detector found; > len(faces) when max_faces capped them

    @property
    def cap_note(self) -> str | None:
        """"12 faces found; the 8 largest were classified." when ``max_faces`` left faces out, else None."""
        found, kept = max(self.faces_found, len(self.faces)), len(self.faces)
        if self.whole_image or found <= kept:
            return None
        return (f"{found} faces found; the {kept} largest were classified." if kept > 1 else
                f"{found} faces found; the largest was classified.")

    def for_display(self, max_side: int = DISPLAY_SIDE) -> "PredictionResult":
        """This result with its photo scaled to at most ``max_side`` px and each box with it (a copy; crops,
        probabilities and timings unchanged).

        What a page keeps per visitor (issue 28): a 24 MP photo's pixels are
        72 MB, and a page shows at most a screen's width of them. The boxes of
        the copy are in the copy's pixels.
        """
        h, w = self.image.shape[:2]
        scale = max_side / max(h, w)
        if scale >= 1:
            return self
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(self.image).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
        faces = [replace(f, box=tuple(round(v * scale) for v in f.box)) for f in self.faces]
        return replace(self, image=small, faces=faces)


@dataclass
class _Loaded:
    """One run ready to classify: its model, compiled forward pass and input shape."""

    run: Run
    model: object  # keras.Model
    forward: object  # tf.function (B, S, S, C) uint8 → (B, n_classes)
    batcher: object  # MicroBatcher over ``forward`` or None (then ``forward`` is called directly)
    image_size: int
    channels: int
    label: str
    gradcam_layer: str | None


def run_label(run: Run) -> str:
    """How a run is named in the UI: its model id, marked when it ships with the app."""
    return f"{run.model_name} (bundled)" if run.bundled else run.model_name


class Predictor:
    """Classifies faces with every given run; build once and keep (``st.cache_resource``).

    The runs' probabilities are averaged class by class into the ensemble, so
    they must share their emotions, or one run's must include all the others'
    (FER2013's 7 beside FER+'s 8: :meth:`_check_classes`).

    Thread-safe: one instance serves every Streamlit session of the process.
    Each model's compiled forward pass is a ``tf.function`` (safe to call from
    several threads, unlike ``model.predict``); with ``batching`` (default) the
    faces of concurrent callers are gathered by a :class:`MicroBatcher` into
    one call per model. Detection borrows a detector from
    :mod:`fer_core.faces.detect`' pool; Grad-CAM models are built under a lock.
    """

    def __init__(self, runs: list[Run], *, batching: bool = True):
        if not runs:
            raise FERError("no model selected: choose at least one trained run")
        self._class_names = self._check_classes(runs)
        from .._quiet import import_tensorflow_quietly

        import_tensorflow_quietly()
        from ..compute.forward import compiled_forward

        labels = _unique_labels(runs)
        self._loaded: list[_Loaded] = []
        for run, label in zip(runs, labels):
            spec = run.config.get("model", {})
            model = run.load_model()
            size, channels = _input_shape(model, spec)
            loaded = _Loaded(run=run, model=model, forward=compiled_forward(model), batcher=None, image_size=size,
                             channels=channels, label=label, gradcam_layer=spec.get("gradcam_layer"))
            if batching:  # looks ``forward`` up per call, so a test may wrap it
                loaded.batcher = MicroBatcher(lambda x, m=loaded: run_bucketed(m.forward, x), name=f"fer-batch-{label}")
            _warm_up(loaded)
            self._loaded.append(loaded)
        warm_up_detector()
        self._gradcam_models: dict[str, object] = {}
        self._gradcam_lock = threading.Lock()

    def close(self) -> None:
        """Stop the micro-batcher threads (tests and benchmarks; the app keeps its predictors)."""
        for m in self._loaded:
            if m.batcher is not None:
                m.batcher.close()

    @staticmethod
    def _check_classes(runs: list[Run]) -> list[str]:
        """The class names every run's probabilities are shown in; raises when the runs cannot be compared.

        Runs compare when one run's emotions include every other run's (by
        name, 'angry' = 'anger'): a 7-class FER2013 model beside an 8-class
        FER+ model reads in the 8 classes, its contempt at 0.
        """
        from ..labels import canonical

        names = [list(r.metrics["class_names"]) for r in runs]
        sets = [{canonical(n) for n in ns} for ns in names]
        widest = max(range(len(runs)), key=lambda i: len(sets[i]))
        for run, ns, cs in zip(runs, names, sets):
            if not cs <= sets[widest]:
                first = runs[widest]
                raise FERError(
                    f"runs '{first.id}' and '{run.id}' predict different classes "
                    f"({', '.join(names[widest])} vs {', '.join(ns)}); "
                    "compare only models trained on the same label set (or one whose emotions include the other's)")
        return names[widest]

    @property
    def runs(self) -> list[Run]:
        return [m.run for m in self._loaded]

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    # ----------------------------------------------------------------- pipeline

    def predict(self, image, *, detect: bool = True, max_faces: int | None = None) -> PredictionResult:
        """Detect faces in ``image`` and classify each with every run.

        ``image``: encoded bytes, a path, a PIL image or an (H, W[, C]) uint8
        array. Undecodable, too large or too small input raises
        :class:`ImageInputError` with a one-line reason. ``max_faces``: classify
        only the K largest faces (a crowd photo must not cost a visitor, or
        the others, a hundred crops); ``faces_found`` still counts them all.
        """
        t0 = time.perf_counter()
        rgb = to_rgb_array(image)  # (H, W, 3) uint8
        t1 = time.perf_counter()
        faces = detect_faces(rgb, turn=True) if detect else []  # a photo: a missed, tilted face gets a turned look
        found = len(faces)
        faces = largest_faces(faces, max_faces)
        t2 = time.perf_counter()
        if faces:
            boxes, crops = face_crops(rgb, faces)  # square boxes to draw; crops aligned by the landmarks
            confidences = [f.confidence for f in faces]
        else:
            boxes, confidences = [centre_square_box(rgb.shape)], [None]
            crops = [crop_face(rgb, boxes[0])]
        per_face = self.predict_faces(crops)
        t3 = time.perf_counter()
        results = [
            FaceResult(index=i + 1, box=b, confidence=c, crop=crop, predictions=preds,
                       ensemble=np.mean([p.probs for p in preds], axis=0).astype(np.float32),
                       class_names=self.class_names)
            for i, (b, c, crop, preds) in enumerate(zip(boxes, confidences, crops, per_face))
        ]
        timings = {"decode": t1 - t0, "detect": t2 - t1, "classify": t3 - t2, "total": t3 - t0}
        log_timing("predict", faces=len(results), faces_found=found, whole_image=not faces, **timings)
        return PredictionResult(image=rgb, faces=results, whole_image=not faces,
                                class_names=self.class_names, timings=timings, faces_found=found)

    def predict_faces(self, crops: list[np.ndarray]) -> list[list[ModelPrediction]]:
        """Classify face crops (each (h, w, 3) uint8) with every run → [face][model].

        Each model sees all faces in one compiled call: the crops are resized
        once per distinct model input size, then matched to its channels.
        With batching, all models' requests are queued first and then
        awaited, so the models' batchers work while this thread waits; other
        sessions' faces may share the same call.
        """
        if not crops:
            return []
        from ..data.preprocess import to_channels

        by_size = {size: _resize_all(crops, size) for size in {m.image_size for m in self._loaded}}
        pending = []
        for m in self._loaded:
            x = to_channels(by_size[m.image_size], m.channels)  # (N, S, S, C) uint8
            pending.append(m.batcher.submit(x) if m.batcher is not None else run_bucketed(m.forward, x))
        from ..labels import to_class_set

        per_model = [to_class_set(np.asarray(p.result() if hasattr(p, "result") else p, dtype=np.float32),
                                  m.run.metrics["class_names"], self._class_names)  # (N, len(class_names))
                     for m, p in zip(self._loaded, pending)]
        return [
            [ModelPrediction(run_id=m.run.id, model=m.run.model_name, label=m.label, probs=probs[i])
             for m, probs in zip(self._loaded, per_model)]
            for i in range(len(crops))
        ]

    # ----------------------------------------------------------------- Grad-CAM

    def gradcam(self, face: FaceResult, run_id: str, class_index: int | None = None, *, alpha: float = 0.4) -> np.ndarray:
        """Grad-CAM of run ``run_id`` on ``face``, overlaid on its crop → (h, w, 3) uint8.

        ``class_index`` (in :attr:`class_names` order) defaults to that model's
        own top class for the face.
        """
        from .gradcam import gradcam_heatmap, gradcam_model, overlay

        m = self._get(run_id)
        if not m.gradcam_layer:
            spec = m.run.config.get("model") or {}
            if spec.get("kind") == "ensemble":  # python -m training.ensemble: its members' layers are nested
                n = len(spec.get("members") or []) or "several"
                raise FERError(f"Grad-CAM is not available for {m.label}: it averages {n} models; "
                               "choose its members to see where each one looks")
            raise FERError(f"run '{run_id}' names no Grad-CAM layer in its config.json")
        if class_index is None:
            pred = next((p for p in face.predictions if p.run_id == run_id), None)
            class_index = int(np.argmax(pred.probs)) if pred is not None else int(np.argmax(face.ensemble))
        class_index = self._own_index(m, class_index)
        with self._gradcam_lock:  # two sessions asking at once build one grad model, not two
            grad_model = self._gradcam_models.get(run_id)
            if grad_model is None:
                grad_model = self._gradcam_models[run_id] = gradcam_model(m.model, m.gradcam_layer)
        x = _to_model_input(face.crop, m.image_size, m.channels)  # (S, S, C)
        heat = gradcam_heatmap(grad_model, x, class_index)  # (S, S); eager, no shared state
        return overlay(face.crop, heat, alpha=alpha)

    def _own_index(self, m: _Loaded, class_index: int) -> int:
        """A class index in :attr:`class_names` order → the same emotion's index in ``m``'s own output."""
        from ..labels import canonical

        own = [canonical(n) for n in m.run.metrics["class_names"]]
        want = canonical(self._class_names[class_index])
        if want not in own:
            raise FERError(f"{m.label} has no class '{self._class_names[class_index]}' to show a Grad-CAM for")
        return own.index(want)

    def _get(self, run_id: str) -> _Loaded:
        for m in self._loaded:
            if m.run.id == run_id:
                return m
        raise FERError(f"run '{run_id}' is not loaded in this predictor; loaded: "
                       f"{', '.join(m.run.id for m in self._loaded)}")


# --------------------------------------------------------------------------- helpers

_TIMING_LOCK = threading.Lock()


def log_timing(event: str, **fields) -> None:
    """Append one JSON line to ``$FER_TIMING_LOG`` (if set): the server's own view of its latency.

    ``benchmarks/load.py`` reads these lines to report server-side predict
    times next to what the browsers saw; unset (the default) it costs nothing.
    """
    path = os.environ.get("FER_TIMING_LOG")
    if not path:
        return
    row = {"event": event, "t": time.time(), "thread": threading.current_thread().name,
           **{k: round(v, 5) if isinstance(v, float) else v for k, v in fields.items()}}
    try:
        with _TIMING_LOCK, open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
    except OSError:
        pass  # timing is diagnostics: never fail a prediction over it


def _unique_labels(runs: list[Run]) -> list[str]:
    """UI labels; two runs of one model (different datasets) get their run id added."""
    labels = [run_label(r) for r in runs]
    return [f"{lab} [{r.id}]" if labels.count(lab) > 1 else lab for lab, r in zip(labels, runs)]


def _input_shape(model, spec: dict) -> tuple[int, int]:
    """(image_size, channels) of a model: its input layer is the truth, config.json the fallback."""
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 4 and shape[1] and shape[3]:
        return int(shape[1]), int(shape[3])
    return int(spec["image_size"]), int(spec.get("channels", 3))


def _warm_up(m: _Loaded) -> None:
    """Trace and run the compiled forward pass before the first real photo arrives.

    Tracing once for a batch of unknown size covers photos with 1, 3 or 7
    faces without retracing; the first executions then pay TensorFlow's
    graph optimisation and oneDNN's per-shape set-up for every batch size a
    serving call has (1, 2, 4, 8: :func:`~fer_core.compute.forward.run_bucketed`),
    so no visitor's photo does, and memory after warm-up stays flat.
    """
    import tensorflow as tf

    shape = (m.image_size, m.image_size, m.channels)
    m.forward.get_concrete_function(tf.TensorSpec((None, *shape), tf.uint8))
    for b in WARM_BATCHES:
        m.forward(np.zeros((b, *shape), np.uint8))


#: Batch sizes run once at load time (each new size costs oneDNN a one-off set-up): every size a
#: serving call may have (:data:`fer_core.compute.forward.BATCH_BUCKETS`).
WARM_BATCHES = BATCH_BUCKETS


def _resize_all(crops: list[np.ndarray], size: int) -> np.ndarray:
    """Crops of any sizes (h, w, 3) → (N, size, size, 3) uint8, antialiased."""
    from ..data.preprocess import prepare_images

    return np.concatenate([prepare_images(c[None], size, 3) for c in crops])


def _to_model_input(crop: np.ndarray, size: int, channels: int) -> np.ndarray:
    from ..data.preprocess import prepare_images

    return prepare_images(crop[None], size, channels)[0]


def to_rgb_array(image) -> np.ndarray:
    """Any supported image input → upright RGB (H, W, 3) uint8.

    Encoded bytes and paths go through :func:`images.open_image` (EXIF
    rotation, odd modes, decompression-bomb guard); PIL images get the same
    rotation and mode handling; arrays are checked for shape and size.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        img = open_image(bytes(image))
    elif isinstance(image, (str, Path)):
        img = open_image(image)
    elif isinstance(image, Image.Image):
        _check_size(*image.size, "image")
        img = to_rgb_or_gray(ImageOps.exif_transpose(image))
    elif isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    else:
        raise ImageInputError(f"unsupported image input of type {type(image).__name__}")
    arr = to_array(img)  # (H, W, 3) or (H, W, 1)
    return np.ascontiguousarray(np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr)


def _array_to_rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ImageInputError(f"image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {a.shape}")
    _check_size(a.shape[1], a.shape[0], "image")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
            a = a * 255.0  # float images in [0, 1]
        a = np.clip(np.rint(np.nan_to_num(a)), 0, 255).astype(np.uint8)
    if a.shape[-1] == 4:
        return np.asarray(to_rgb_or_gray(Image.fromarray(np.ascontiguousarray(a))))
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a)


def _check_size(w: int, h: int, label: str) -> None:
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"{label}: image is {w}×{h} = {w * h:,} pixels, over the {MAX_PIXELS:,} limit")
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"{label}: image is {w}×{h}, too small (each side must be at least {MIN_SIDE} px)")


# --------------------------------------------------------------------------- drawing

#: Box colours, one per face number (colour-blind-safe Okabe–Ito palette).
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
           (0, 114, 178), (213, 94, 0), (204, 121, 167)]


def draw_boxes(image: np.ndarray, faces: list[FaceResult], *, labels: bool = True) -> np.ndarray:
    """Copy of ``image`` (H, W, 3) with each face's box and its number (1, 2, ...).

    Line width and font size follow the image size, so boxes read the same on
    a 300 px crop and a 4000 px photo. With ``labels`` the number is followed
    by the ensemble's top emotion. Text sits on a filled tag for contrast.
    """
    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(img)
    H, W = image.shape[:2]
    ref = max(H, W)
    width = max(2, round(ref / 300))
    font = _font(max(12, round(ref / 40)))
    for face in faces:
        colour = PALETTE[(face.index - 1) % len(PALETTE)]
        x, y, w, h = face.box
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=width)
        text = str(face.index)
        if labels and face.class_names:
            name, p = face.top()
            text = f"{face.index} {name} {p:.0%}"
        l, t, r, b = draw.textbbox((0, 0), text, font=font)
        tw, th = r - l, b - t
        pad = max(2, width)
        ty = y - th - 2 * pad if y - th - 2 * pad >= 0 else y  # above the box, else inside it
        tx = min(max(0, x), max(0, W - tw - 2 * pad))
        draw.rectangle([tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad], fill=colour)
        draw.text((tx + pad - l, ty + pad - t), text, fill=_text_colour(colour), font=font)
    return np.asarray(img)


def _text_colour(bg) -> tuple[int, int, int]:
    """Black on light tags, white on dark ones (relative luminance)."""
    luma = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def _font(size: int):
    """A scalable font: Pillow's bundled one (Pillow ≥ 10.1), else a DejaVu on the system."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - older Pillow
        pass
    for name in ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()  # pragma: no cover
