"""FER Studio's engine: data, models, training, evaluation and the run store.

Never imports streamlit; the app (``app.py``, ``pages/``) and the CLI
(``python -m training``) are thin layers over the names exported here.
TensorFlow is imported lazily by the modules that need it.
"""

import os

#: FER Studio's version, the one source (the app's sidebar shows it; CHANGELOG.md says what changed).
__version__ = "0.9.0"

# Quiet TensorFlow's C++ start-up chatter (CUDA probing on CPU machines, oneDNN notes).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The flat layout's module paths (fer_core.inference.video, fer_core.store.runs, ...) keep working for one release.
from . import _moved  # noqa: E402

_moved.install()

from .data.datasets import Dataset, dataset_report, load_dataset  # noqa: E402
from .errors import DatasetError, FERError, ImageInputError, ModelError, RunStoreError, WeightsUnavailableError  # noqa: E402
from .labels import AFFECTNET_8, FER2013_7  # noqa: E402
from .store.runs import Run, RunListing, bundled_runs, is_locked, list_runs, load_run  # noqa: E402

__all__ = [
    "__version__", "AFFECTNET_8", "FER2013_7", "Dataset", "DatasetError", "FERError", "ImageInputError", "ModelError",
    "Run", "RunListing", "RunStoreError", "WeightsUnavailableError", "bundled_runs", "dataset_report",
    "is_locked", "list_runs", "load_dataset", "load_run",
]


def __getattr__(name: str):  # fer_core.inference.video and the other old modules as attributes (until 0.11)
    return _moved.package_getattr(name)
