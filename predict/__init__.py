"""``python -m predict``: the command-line face and expression reader (see :mod:`predict.cli`)."""
