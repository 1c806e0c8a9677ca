"""store: run folders ↔ ``Run`` objects; seed repeats; publishing and exporting a run.

``runs`` (list, load, write and lock run folders; the bundled runs), ``seeds`` (seed
repeats → mean ± spread), ``publish`` (a run → a publishable run folder, head-only
for frozen backbones), ``export`` (a run → TFLite, ONNX, SavedModel, zip).  Imports
base, data, models and compute; never fit or inference.
"""
