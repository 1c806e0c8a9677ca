"""Model zoo: importing this package registers every model."""

from . import baseline, transfer, compact, from_compact  # noqa: F401  (registration order = listing order)
from .layers import CaffePreprocess
from .registry import ModelSpec, create_model, get_spec, list_models, parse_model_list
from .transfer import split_transfer_model, unfreeze_top

__all__ = ["CaffePreprocess", "ModelSpec", "create_model", "get_spec", "list_models",
           "parse_model_list", "split_transfer_model", "unfreeze_top"]
