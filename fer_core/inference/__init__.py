"""inference: photos, folders, zips, videos and camera frames + runs → one row per face; Grad-CAM maps.

``predictor`` (``Predictor``: a run's model on faces; was ``fer_core.predict``),
``batching`` (micro-batches across sessions), ``gradcam``, ``rows`` (the row format
and CSV), ``batch`` (photos, folders, zips), ``video`` (video files), ``live`` (camera
frames).  Imports base, data, models, compute, faces and store; never fit (its sibling).
"""

from .._moved import room_getattr

# `from fer_core.inference import compiled_forward` (fer_core.inference held the compiled forward passes
# until 0.9, now fer_core.compute.forward): forwarded, with a warning.
__getattr__ = room_getattr(__name__)
