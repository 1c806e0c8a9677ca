"""Epoch checkpoints: an interrupted training of a scratch model loses at most the epoch in progress.

Why: a FER2013 cycle of ``compact`` is 40 epochs of 1–3 minutes on a laptop
CPU; Ctrl-C, the Train page's Cancel, a closed lid or a session that ends
must not throw that away. After every epoch the training model (weights AND
optimizer state, so Adam's moments and the cosine schedule's step count go
on where they stopped) and the history so far are saved under
``<out>/.checkpoints/<model>_<dataset fingerprint>_<config digest>/``.
Running the same command again finds the checkpoint of the same settings on
the same data and continues from the next epoch; a finished run deletes its
checkpoint. The run list skips dot-folders, so a checkpoint is never shown as
a run.

Not bit-identical to an uninterrupted run: the shuffling and augmentation
random streams restart at the resume, and early stopping's patience counts
from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras

CHECKPOINTS = ".checkpoints"
MODEL_FILE = "model.keras"
STATE_FILE = "state.json"


def checkpoint_dir(out_dir: str | Path, config: dict, fingerprint: str) -> Path:
    """Where the checkpoints of ``config`` (a TrainConfig as a dict) on dataset ``fingerprint`` live."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return Path(out_dir) / CHECKPOINTS / f"{config['model']}_{fingerprint}_{digest}"


@dataclass
class Checkpoint:
    folder: Path
    epoch: int  # epochs completed
    epochs: int  # epochs planned
    history: dict  # per-epoch logs so far: loss, accuracy, val_loss, val_accuracy[, learning_rate]
    seconds: float  # training time spent before the interruption

    def load_model(self):
        """The training model, compiled, with its optimizer state (safe mode: no code is deserialised)."""
        from ..models import layers  # noqa: F401  registers FER Studio's Keras layers for deserialisation

        return keras.models.load_model(self.folder / MODEL_FILE)


def find(folder: Path) -> Checkpoint | None:
    """The checkpoint in ``folder``, or None when there is none (or it is unreadable: training starts afresh)."""
    try:
        state = json.loads((folder / STATE_FILE).read_text())
        if not (folder / MODEL_FILE).is_file():
            return None
        return Checkpoint(folder=folder, epoch=int(state["epoch"]), epochs=int(state["epochs"]),
                          history=dict(state["history"]), seconds=float(state.get("seconds", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear(folder: Path) -> None:
    """Delete a checkpoint (its run was published) and the ``.checkpoints`` folder once empty."""
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()
    except OSError:
        pass


def pack(folder: Path) -> dict[str, bytes]:
    """A checkpoint's files as bytes (the Ray engine ships them from a worker's temp folder to the driver)."""
    return {name: (Path(folder) / name).read_bytes() for name in (MODEL_FILE, STATE_FILE)}


def unpack(folder: Path, files: dict[str, bytes]) -> None:
    """Write packed checkpoint files into ``folder``; each replaced atomically, the state last (it names the epoch)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, STATE_FILE):
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(files[name])
        os.replace(tmp, folder / name)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model (with optimizer) and the history after each epoch, each file replaced atomically.

    ``on_saved(folder, epoch)``, when given, is called once an epoch's checkpoint is complete (the Ray
    engine's tasks ship it to the driver from there).
    """

    def __init__(self, folder: Path, epochs: int, history: dict | None = None, seconds: float = 0.0, on_saved=None):
        super().__init__()
        self.folder, self.epochs, self.on_saved = Path(folder), epochs, on_saved
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.seconds_before, self.t0 = seconds, time.time()

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{MODEL_FILE}.tmp.keras"
        self.model.save(tmp)  # weights + optimizer variables + compile config
        os.replace(tmp, self.folder / MODEL_FILE)
        state = {"epoch": epoch + 1, "epochs": self.epochs, "history": self.history,
                 "seconds": round(self.seconds_before + time.time() - self.t0, 2), "saved": time.time()}
        tmp_state = self.folder / f".{STATE_FILE}.tmp"
        tmp_state.write_text(json.dumps(state))
        os.replace(tmp_state, self.folder / STATE_FILE)
        if self.on_saved is not None:
            self.on_saved(self.folder, epoch + 1)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C / Cancel during a checkpointed training: says how far it got and how to go on."""

    def __init__(self, note: str):
        super().__init__(note)
        self.note = note
