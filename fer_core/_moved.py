"""Old module paths of fer_core's flat layout (≤ 0.9) → their rooms (0.10), for one release.

``import fer_core.video`` (or ``from fer_core.runs import load_run``) keeps working and
gives the module object itself, ``fer_core.inference.video``, the same object, so
``monkeypatch.setattr`` on it reaches every caller; the first import through an old
path warns with a ``DeprecationWarning`` naming the new one.  No file is left at the
old paths (a stub there would stop git following the renames): a ``sys.meta_path``
finder, installed by ``fer_core/__init__.py``, answers for the old names.

Three old modules gave their name to a room: ``fer_core.data`` (now
``fer_core.data.datasets``), ``fer_core.faces`` (``fer_core.faces.detect``) and
``fer_core.inference`` (``fer_core.compute.forward``).  Their room's ``__init__``
forwards the old module's names (``from fer_core.data import load_dataset``) through
:func:`room_getattr`, with the same warning.

Goes in 0.11 (CHANGELOG.md lists the moves).  Imports nothing from fer_core.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types
import warnings

#: old module → new module.
MOVED = {
    # data: files, folders, uploads → Dataset; images → pixels
    "fer_core.demo": "fer_core.data.demo",
    "fer_core.images": "fer_core.data.images",
    "fer_core.upload": "fer_core.data.upload",
    "fer_core.ferplus": "fer_core.data.ferplus",
    "fer_core.preprocess": "fer_core.data.preprocess",
    "fer_core.defaults": "fer_core.data.defaults",
    # compute: compiled forward passes, training precision
    "fer_core.precision": "fer_core.compute.precision",
    # faces: detection, alignment, tracking, scenes
    "fer_core.align": "fer_core.faces.align",
    "fer_core.tracking": "fer_core.faces.tracking",
    "fer_core.scenes": "fer_core.faces.scenes",
    # store: run folders, seeds, publish, export
    "fer_core.runs": "fer_core.store.runs",
    "fer_core.seeds": "fer_core.store.seeds",
    "fer_core.publish": "fer_core.store.publish",
    "fer_core.export": "fer_core.store.export",
    # fit: the training loop and what runs it
    "fer_core.train": "fer_core.fit.train",
    "fer_core.features": "fer_core.fit.features",
    "fer_core.checkpoints": "fer_core.fit.checkpoints",
    "fer_core.evaluation": "fer_core.fit.evaluation",
    "fer_core.progress": "fer_core.fit.progress",
    "fer_core.jobs": "fer_core.fit.jobs",
    "fer_core.distributed": "fer_core.fit.distributed",
    # inference: photos, folders, videos, camera frames → rows
    "fer_core.predict": "fer_core.inference.predictor",
    "fer_core.batching": "fer_core.inference.batching",
    "fer_core.batch": "fer_core.inference.batch",
    "fer_core.rows": "fer_core.inference.rows",
    "fer_core.video": "fer_core.inference.video",
    "fer_core.live": "fer_core.inference.live",
    "fer_core.gradcam": "fer_core.inference.gradcam",
}

#: old modules whose name is now a room (a package): the room forwards their names.
ROOMS = {
    "fer_core.data": "fer_core.data.datasets",
    "fer_core.faces": "fer_core.faces.detect",
    "fer_core.inference": "fer_core.compute.forward",
}

_HERE = os.path.normcase(os.path.abspath(__file__))
_SKIP = {_HERE, os.path.join(os.path.dirname(_HERE), "__init__.py")}  # this file, fer_core.__getattr__


def _internal(filename: str) -> bool:
    """A frame that ``warnings`` itself skips when it counts ``stacklevel`` (the import system's)."""
    return "importlib" in filename and "_bootstrap" in filename


def _stacklevel() -> int:
    """The warning's stack level: the first frame outside the import machinery and this file."""
    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = frame.f_code.co_filename
        if _internal(name):
            frame = frame.f_back
            continue
        if not (os.path.normcase(os.path.abspath(name)) in _SKIP or os.path.basename(os.path.dirname(name)) == "importlib"):
            return level
        frame, level = frame.f_back, level + 1
    return 1


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new} in fer_core 0.10; the old path goes in 0.11",
                  DeprecationWarning, stacklevel=_stacklevel())


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the new module itself (not a copy)."""

    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        return types.ModuleType(spec.name)  # a placeholder, replaced in sys.modules by exec_module

    def exec_module(self, module):
        real = importlib.import_module(self.new)
        sys.modules[module.__name__] = real  # the import system returns what sys.modules holds
        _warn(module.__name__, self.new)


class MovedFinder(importlib.abc.MetaPathFinder):
    """Answers only for the old paths in :data:`MOVED`, after the ordinary finders."""

    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())


def package_getattr(name: str):
    """``fer_core.video`` as an attribute, before anything imported it: import it through its old path."""
    if f"fer_core.{name}" in MOVED:
        return importlib.import_module(f"fer_core.{name}")
    raise AttributeError(f"module 'fer_core' has no attribute {name!r}")


def room_getattr(room: str):
    """A room's module ``__getattr__`` that forwards the old module's names (see :data:`ROOMS`)."""
    target = ROOMS[room]

    def __getattr__(name: str):
        pkg = sys.modules[room]
        own = any(os.path.exists(os.path.join(d, name + ".py")) or os.path.isdir(os.path.join(d, name))
                  for d in getattr(pkg, "__path__", ()))
        if name.startswith("__") or own:  # the room's own modules are imported, never forwarded
            raise AttributeError(f"module {room!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(target), name)  # AttributeError if the old module had none
        if not _internal(sys._getframe(1).f_code.co_filename):  # `from room import name` asks twice: warn once
            _warn(f"{room}.{name}", f"{target}.{name}")
        return value

    return __getattr__
