"""Errors that carry a one-line, user-facing message.

The CLI and the app print ``str(error)`` and nothing else for these, so each
message names the file/key/option at fault and what is wrong with it.
"""


class FERError(Exception):
    """Base class: a problem the user can fix (bad input, missing file...)."""


class DatasetError(FERError):
    """A dataset could not be loaded or failed validation."""


class ModelError(FERError):
    """Unknown model id, bad model options, or weights that cannot be had."""


class WeightsUnavailableError(ModelError):
    """ImageNet weights are not cached and cannot be downloaded."""


class RunStoreError(FERError):
    """A run folder is missing, half-written, or locked by another trainer."""


class ImageInputError(FERError):
    """An uploaded/opened image cannot be decoded safely."""
