"""Where backbone weights come from: ImageNet (Keras' cache or download), none, or a file.

Offline machines cannot download ImageNet weights, and Keras' own failure is a
long traceback after a network timeout. We check the cache first and fail fast
with a message that says where Keras looks and what else to do.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..errors import ModelError, WeightsUnavailableError

WEIGHTS_HOST = "storage.googleapis.com"


def keras_cache_dir() -> Path:
    """Folder Keras reads cached application weights from (``$KERAS_HOME/models``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def _online(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((WEIGHTS_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_weights(model_name: str, weights: str | None, weights_file: str) -> str | None:
    """Map the user's ``--weights`` value to what ``keras.applications`` accepts.

    ``"imagenet"`` stays ``"imagenet"`` when the file is cached or the network
    is reachable; ``"none"``/``None`` → ``None`` (random init); anything else is
    a path to a weights file that must exist.
    """
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights).lower() == "imagenet":
        cached = keras_cache_dir() / weights_file
        if cached.is_file() or _online():
            return "imagenet"
        raise WeightsUnavailableError(
            f"{model_name}: ImageNet weights are not cached and cannot be downloaded (offline). "
            f"Keras looks for {cached} (folder set by KERAS_HOME, default ~/.keras). "
            f"Fix: copy '{weights_file}' there from a machine with internet, "
            f"or use --weights PATH to a local weights file, or --weights none (random init, much lower accuracy)."
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(f"{model_name}: weights file {path} does not exist (use imagenet, none, or a path)")
    return str(path)
