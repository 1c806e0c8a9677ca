"""Command-line trainer: ``python -m training --help``."""
