"""data: files, folders, uploads and the demo faces → a ``Dataset``; any image file → pixels.

``datasets`` (loading, splits, fingerprints), ``demo`` (synthetic faces), ``images``
(decoding), ``upload`` (checked uploads), ``ferplus`` (FER+ votes), ``preprocess``
(pixels → a model's size and channels), ``defaults`` (the CLI's and pages' training
defaults).  Imports only fer_core's base modules (``errors``, ``labels``).
"""

from .._moved import room_getattr

# `from fer_core.data import load_dataset` (fer_core.data was the datasets module until 0.9): forwarded, with a warning.
__getattr__ = room_getattr(__name__)
