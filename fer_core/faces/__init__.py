"""faces: a photo or frame → boxes with 5 landmarks → aligned crops framed like FER2013; boxes across frames → face ids.

``detect`` (YuNet detection and crops; was ``fer_core.faces``), ``align`` (eye-line
alignment), ``tracking`` (IoU tracker for videos), ``scenes`` (FER2013 faces pasted
into synthetic scenes, for the benchmarks).  Imports fer_core's base modules only.
"""

from .._moved import room_getattr

# `from fer_core.faces import detect_faces` (fer_core.faces was the detection module until 0.9): forwarded, with a warning.
__getattr__ = room_getattr(__name__)
