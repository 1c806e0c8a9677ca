"""Model zoo: importing this package registers every model (:mod:`.catalog`) without importing Keras.

The builders and Keras layers load when first used: :func:`create_model` imports
a model's module, and the names below that need Keras are imported on access.
"""

from . import catalog  # noqa: F401  (registers the zoo; registration order = listing order)
from .registry import ModelSpec, create_model, get_spec, list_models, parse_model_list

#: name → module of the public names that import Keras (PEP 562: loaded on first access)
_KERAS_NAMES = {"CaffePreprocess": "layers", "split_transfer_model": "transfer", "unfreeze_top": "transfer"}


def __getattr__(name: str):
    if name in _KERAS_NAMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_KERAS_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CaffePreprocess", "ModelSpec", "create_model", "get_spec", "list_models",
           "parse_model_list", "split_transfer_model", "unfreeze_top"]
