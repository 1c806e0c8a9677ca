"""Defaults shared by the command-line tools and the pages (training, and the model prediction starts with).

One source of truth: ``python -m training`` (its argparse defaults) and the
Train page (its number inputs) both read these names, so a fresh install that
trains "with the defaults" trains the same thing from the shell and from the
browser.  Pure constants: cheap to import from the UI (no TensorFlow).

Why these values (issue 11): the earlier page defaults, 60 demo faces per class
and 5 epochs, gave the baseline about 30 optimiser steps; its loss never left
ln(8) and all five models ended at chance, so the first curves a newcomer saw
were flat.  400 faces per class (:data:`fer_core.data.demo.DEMO_PER_CLASS`) and 15
epochs at Adam 1e-3, batch 64, give the baseline ~660 steps: it leaves chance
in the first epoch or two and ends at about 0.8 test accuracy on ``demo``, while the
five-model run stays within about 5 minutes on 2 CPU cores (the four frozen
backbones' feature pass dominates and grows with the number of faces; their
heads train on cached features, so epochs cost them little).
"""

from __future__ import annotations

from .demo import DEMO_IMAGE_SIZE, DEMO_PER_CLASS

#: Training epochs (head epochs for the transfer models).
EPOCHS = 15
#: Mini-batch size.  Unchanged: the FER2013 recipes in the README pass 64 too.
BATCH_SIZE = 64
#: Adam learning rate.  Unchanged: 2e-3 left the baseline stuck at chance on demo (dead ReLUs),
#: and the README's FER2013 baseline command relies on this default.
LEARNING_RATE = 1e-3
#: Early-stopping patience on validation accuracy (0 = off).
PATIENCE = 5

#: Choices of ``python -m training`` that ``TrainConfig.validate`` also checks: here, so the CLI's
#: argparse lists them without importing TensorFlow (``--help`` stays instant). The precisions are
#: ``fer_core.compute.precision.PRECISIONS``.
CLASS_WEIGHTS = ("none", "balanced", "sqrt")
AUGMENT_MODES = ("resample", "photo", "aligned")
LR_SCHEDULES = ("none", "plateau", "cosine")

#: The bundled model that prediction starts with: the Predict page's preselection on the bundled
#: FER2013 runs and ``python -m predict``'s default when neither --models nor --runs is given.
#: ``compact_x2_blur`` = the mean of two of compact's seeds (seeds 10/11 and 12/13 of the bundled
#: two-cycle recipe) behind a Gaussian input blur of σ 0.5 px, one model.keras: the most accurate
#: bundled model on FER2013 test (0.701 vs compact's 0.670). Members and blur were chosen on validation,
#: crops and photos weighed equally (benchmarks/ensemble_select.py --smooth --photos): the blur gives
#: the networks faces about as soft as the bilinear resampling of --augment made every training face.
#: Twice compact's per-face cost, small beside the ≈ 50–100 ms detection of a photo.  Its
#: photo-pipeline score is in benchmarks/results/fer2013.json.
BUNDLED_PREDICT_DEFAULT = "compact_x2_blur"

__all__ = ["BATCH_SIZE", "BUNDLED_PREDICT_DEFAULT", "DEMO_IMAGE_SIZE", "DEMO_PER_CLASS", "EPOCHS", "LEARNING_RATE", "PATIENCE"]
