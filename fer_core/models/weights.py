"""Where backbone weights come from: ImageNet (Keras' cache or download), none, or a file.

Offline machines cannot download ImageNet weights, and Keras' own failure is a
long traceback after a network timeout. We check the cache first and fail fast
with a message that says where Keras looks and what else to do.

Published runs (see :mod:`fer_core.store.publish`) keep only their head and name the
ImageNet file their frozen backbone needs, with its sha256 digest:
:func:`verified_imagenet_file` finds that file in the cache (downloading it
once when online) and refuses it unless the digest matches.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..digest import sha256_file  # noqa: F401  (publish and the tests read it here)
from ..errors import ModelError, WeightsUnavailableError

WEIGHTS_HOST = "storage.googleapis.com"
_APPS = f"https://{WEIGHTS_HOST}/tensorflow/keras-applications"
#: Where keras.applications downloads each backbone's weights from (folder; the file name is appended).
#: The same URLs as Keras' own modules, so a download lands exactly where Keras would put it.
IMAGENET_ORIGINS = {
    "ResNet50V2": f"{_APPS}/resnet/",
    "InceptionResNetV2": f"{_APPS}/inception_resnet_v2/",
    "InceptionV3": f"{_APPS}/inception_v3/",
    "VGG19": f"{_APPS}/vgg19/",
}


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
        raise WeightsUnavailableError(_offline_message(model_name, weights_file) +
                                      ", or use --weights PATH to a local weights file, "
                                      "or --weights none (random init, much lower accuracy).")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(f"{model_name}: weights file {path} does not exist (use imagenet, none, or a path)")
    return str(path)


def _offline_message(model_name: str, weights_file: str) -> str:
    cached = keras_cache_dir() / weights_file
    return (f"{model_name}: ImageNet weights are not cached and cannot be downloaded (offline). "
            f"Keras looks for {cached} (folder set by KERAS_HOME, default ~/.keras). "
            f"Fix: copy '{weights_file}' there from a machine with internet")


def cached_imagenet_file(weights_file: str) -> Path | None:
    """The cached ImageNet file, or None. Used instead of ``weights="imagenet"`` when present:
    Keras would re-download a cached file whose md5 differs from its built-in one, which offline
    means failing on a file that is right there (our published runs check their own sha256)."""
    path = keras_cache_dir() / weights_file
    return path if path.is_file() else None


def imagenet_file(model_name: str, backbone: str, weights_file: str) -> Path:
    """Path of ``weights_file`` in Keras' cache, downloading it there once when online.

    The download goes through ``keras.utils.get_file`` (Keras' own path, same URL and folder
    as ``keras.applications``) without Keras' md5: the caller checks the run's own sha256.
    Offline and uncached → :class:`WeightsUnavailableError` with the fix.
    """
    cached = cached_imagenet_file(weights_file)
    if cached is not None:
        return cached
    if backbone not in IMAGENET_ORIGINS or not _online():
        raise WeightsUnavailableError(_offline_message(model_name, weights_file) + " and reload, or publish "
                                      "the run with 'python -m training.publish --full' (a full model.keras).")
    import keras

    try:
        got = keras.utils.get_file(weights_file, IMAGENET_ORIGINS[backbone] + weights_file,
                                   cache_subdir="models", cache_dir=str(keras_cache_dir().parent))
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsUnavailableError(f"{model_name}: downloading {weights_file} failed ({first}). "
                                      f"Fix: copy it into {keras_cache_dir()} from a machine with internet") from None
    return Path(got)


def verified_imagenet_file(model_name: str, backbone: str, weights_file: str, sha256: str) -> Path:
    """:func:`imagenet_file`, refused unless its sha256 is ``sha256`` (the file the run was published with).

    A truncated download or other weights under the same name would silently give another model.
    """
    path = imagenet_file(model_name, backbone, weights_file)
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelError(f"{model_name}: {path} has sha256 {actual[:16]}…, not the {sha256[:16]}… this run was "
                         f"published with (corrupt or different weights). Fix: delete it so it is downloaded "
                         f"again, or copy the right '{weights_file}' there.")
    return path
