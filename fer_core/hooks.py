"""Late-bound calls upward: a lower module calls what a higher one registers, without importing it.

Imports in ``fer_core`` go one way (docs/architecture.md): the run store
(:mod:`fer_core.store.runs`) imports the models, never the reverse. One model needs a
run all the same: ``fer_compact`` copies the trunk of a trained ``compact`` run
(:mod:`fer_core.models.from_compact`). It calls :func:`load_run` here;
:mod:`fer_core.store.runs` registers its ``load_run`` when it is imported, which
``fer_core/__init__.py`` does before any submodule can be used.

This module imports nothing from ``fer_core``.
"""

from __future__ import annotations

from typing import Callable

_run_loader: Callable | None = None


def set_run_loader(loader: Callable) -> None:
    """Register ``loader(path) -> Run`` (done by :mod:`fer_core.store.runs` on import)."""
    global _run_loader
    _run_loader = loader


def load_run(path):
    """The run folder at ``path``, read by the registered run store (:func:`fer_core.store.runs.load_run`)."""
    if _run_loader is None:  # only if fer_core.store.runs was never imported, which fer_core/__init__ prevents
        raise RuntimeError("fer_core.hooks.load_run: no run loader registered (import fer_core.store.runs first)")
    return _run_loader(path)
