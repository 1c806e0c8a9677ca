"""Progress events: one small protocol the CLI, the app and tests all follow.

A trainer emits plain dicts (JSON-able) to a :class:`ProgressCallback`:

``{"event": "run_start", "models": [...], "dataset": {...}}``
``{"event": "model_start", "model": id, "index": i, "total": n, "epochs": e}``
``{"event": "status", "model": id, "message": "computing features 320/1120"}``
``{"event": "epoch_end", "model": id, "stage": 1|2, "epoch": k, "epochs": e, "logs": {loss, accuracy, val_loss, val_accuracy}}``
``{"event": "model_end", "model": id, "run_dir": path, "accuracy": a, "macro_f1": f, "seconds": s}``
``{"event": "run_end", "status": "ok"|"failed"|"cancelled", "message": str}``

:class:`JsonlProgress` appends them to a file the Streamlit Train page follows;
:class:`ConsoleProgress` draws a bar on a TTY and plain lines under CI.
This module imports no TensorFlow, so the app can follow a job cheaply; the
Keras bridge (``model.fit`` epochs → events) lives in :mod:`fer_core.fit.train`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


class ProgressCallback:
    """Receives progress events; subclass and override :meth:`on_event`."""

    def on_event(self, event: dict) -> None:  # pragma: no cover - interface
        pass


class MultiProgress(ProgressCallback):
    def __init__(self, *callbacks: ProgressCallback | None):
        self.callbacks = [c for c in callbacks if c is not None]

    def on_event(self, event: dict) -> None:
        for c in self.callbacks:
            c.on_event(event)


class ListProgress(ProgressCallback):
    """Keeps every event in memory (tests, notebooks)."""

    def __init__(self):
        self.events: list[dict] = []

    def on_event(self, event: dict) -> None:
        self.events.append(event)


class JsonlProgress(ProgressCallback):
    """Appends one JSON line per event, flushed at once so a reader sees it live."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_event(self, event: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"time": time.time(), **event}) + "\n")


def read_events(path: str | Path) -> list[dict]:
    """Events written by :class:`JsonlProgress`; a half-written last line is ignored."""
    events = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return events
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


class ConsoleLines:
    """Whole lines on a stream (stderr by default) that may also hold a redrawn bar.

    On a terminal the bar is drawn with ``\\r`` and no newline; a line first
    clears it, so messages never land after a half-drawn bar. Shared by the
    trainer's and ``python -m predict``'s console progress.
    """

    def __init__(self, stream=None, tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty

    def line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()


class ConsoleProgress(ConsoleLines, ProgressCallback):
    """Human output: a redrawn bar on a TTY, one line per epoch otherwise (CI, logs)."""

    def on_event(self, e: dict) -> None:
        kind = e.get("event")
        if kind == "run_start":
            self.line(f"Training {len(e['models'])} model(s) on {e['dataset']['name']} "
                       f"(fingerprint {e['dataset']['fingerprint']}): {', '.join(e['models'])}")
        elif kind == "model_start":
            self.line(f"[{e['index'] + 1}/{e['total']}] {e['model']}")
        elif kind == "status":
            if self.tty:
                self.stream.write(f"\r\033[K  {e['message']}")
                self.stream.flush()
            elif e.get("final", True):
                self.line(f"  {e['message']}")
        elif kind == "epoch_end":
            logs = e.get("logs", {})
            k, n = e["epoch"], e["epochs"]
            bar = "#" * int(20 * k / max(n, 1))
            stage = " fine-tune" if e.get("stage") == 2 else ""
            text = (f"  {e['model']}{stage} epoch {k}/{n} [{bar:<20}] "
                    + " ".join(f"{m}={logs[m]:.4f}" for m in ("loss", "accuracy", "val_loss", "val_accuracy") if m in logs))
            self.line(text)
        elif kind == "model_end":
            self.line(f"  done {e['model']}: {e['split']} accuracy {e['accuracy']:.4f}, macro-F1 {e['macro_f1']:.4f}, "
                       f"{e['seconds']:.1f} s → {e['run_dir']}")
        elif kind == "run_end" and e.get("status") != "ok":
            self.line(f"{'error' if e['status'] == 'failed' else e['status']}: {e.get('message', '')}")
