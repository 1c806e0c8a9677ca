"""A micro-batcher: faces from concurrent callers go through a model in one compiled call.

Why: a Streamlit server runs every visitor's script in its own thread, all
sharing one :class:`fer_core.inference.predictor.Predictor`. Eight visitors uploading at
once used to make eight simultaneous TensorFlow calls of batch 1–3, each
competing for the same one or two cores (and each paying the per-call
overhead). Here one worker thread per model takes whatever requests are
queued, concatenates them into one batch, runs the model once, and hands
each caller its rows back.

A lone caller pays nothing extra: the worker does not linger when the queue
is empty beyond ``max_wait_s`` (a couple of milliseconds by default), while
under load the requests that arrive during one call form the next batch.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import numpy as np


class MicroBatcher:
    """Serves ``fn`` ((B, ...) array → (B, ...) array) to many threads, batching their inputs.

    ``submit(x)`` with ``x`` of shape (k, ...) returns a :class:`Future`
    resolving to ``fn``'s k output rows for exactly those inputs. An
    exception in ``fn`` is delivered to every caller of that batch. Inputs
    must share the trailing shape and dtype (one batcher per model input).
    """

    def __init__(self, fn, *, max_batch: int = 64, max_wait_s: float = 0.002, name: str = "fer-batcher"):
        self._fn = fn
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self.calls = 0  # compiled calls made (diagnostics: calls < requests means batching happened)
        self.requests = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, x: np.ndarray) -> Future:
        fut: Future = Future()
        if self._closed:
            fut.set_exception(RuntimeError("the micro-batcher is closed"))
            return fut
        if len(x) == 0:
            fut.set_result(np.zeros((0,), np.float32))
            return fut
        self._queue.put((x, fut))
        return fut

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Blocking form of :meth:`submit`."""
        return self.submit(x).result()

    def close(self) -> None:
        """Stop the worker (after the batch in flight); later submits fail fast."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=10)

    # ------------------------------------------------------------------ worker

    def _collect(self, first) -> list:
        """``first`` plus whatever else is queued (waiting at most ``max_wait_s``), up to ``max_batch`` rows."""
        items, rows = [first], len(first[0])
        while rows < self._max_batch:
            try:
                item = self._queue.get(timeout=self._max_wait_s) if self._max_wait_s > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # close(): finish this batch, then stop
                self._queue.put(None)
                break
            items.append(item)
            rows += len(item[0])
        return items

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            items = self._collect(first)
            futures = [f for _, f in items if f.set_running_or_notify_cancel()]
            live = [(x, f) for x, f in items if f in futures]
            if not live:
                continue
            try:
                x = np.concatenate([x for x, _ in live]) if len(live) > 1 else live[0][0]  # (sum k, ...)
                y = np.asarray(self._fn(x))  # (sum k, ...)
            except BaseException as exc:  # noqa: BLE001 - every caller of this batch gets it
                for _, f in live:
                    f.set_exception(exc)
                continue
            self.calls += 1
            self.requests += len(live)
            start = 0
            for xi, f in live:
                f.set_result(y[start:start + len(xi)])
                start += len(xi)
