"""Giving freed memory back to the operating system (glibc's allocator), so a long-lived server shrinks.

Why this exists (issue 28): a public server's resident memory went from 790 MB warm to 1,554 MB
idle after a few 4K clips and photos, and never came back, although Python had freed the frames.
glibc's malloc keeps freed memory in its arenas for reuse instead of returning it, and it creates
up to 8 × cores arenas, one per thread that allocates concurrently (Streamlit runs each session's
script on its own thread; decoders, OpenCV and TensorFlow add theirs). Each arena's high-water
mark stays resident. Two levers, both glibc's own:

- ``mallopt(M_ARENA_MAX, n)`` caps the number of arenas, so threads share a few and one arena's
  free space serves the next request. The environment variable ``MALLOC_ARENA_MAX`` does the same
  but must be set before the process starts, which Streamlit Community Cloud does not allow;
  ``mallopt`` at run time does, for arenas created afterwards (call it first thing).
- ``malloc_trim(0)`` returns the free pages of every arena (not only the top of the main heap) to
  the kernel. It walks the arenas, a few ms; call it after heavy work (a video, a batch) and when
  the server is idle, not per request.

Both are no-ops where the C library is not glibc (macOS, musl/Alpine, Windows): :func:`glibc`
is None there and every function returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time

#: glibc's mallopt parameter number for the arena cap (malloc.h: ``#define M_ARENA_MAX -8``).
M_ARENA_MAX = -8
#: Arenas a server keeps: 2 = the cores of the machines this app targets (Community Cloud); fewer
#: arenas means more lock contention between threads that allocate at once, more means memory kept.
ARENA_MAX = 2

_libc = None
_looked = False
_lock = threading.Lock()
_last_trim = 0.0


def glibc():
    """The process's C library when it is glibc (it has ``malloc_trim`` and ``mallopt``), else None."""
    global _libc, _looked
    if not _looked:
        _looked = True
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") and hasattr(lib, "gnu_get_libc_version"):
                    lib.malloc_trim.argtypes, lib.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
                    lib.mallopt.argtypes, lib.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
                    _libc = lib
            except OSError:
                _libc = None
    return _libc


def limit_arenas(n: int = ARENA_MAX) -> bool:
    """Cap glibc's malloc arenas at ``n`` (arenas that exist already stay); True when glibc took it."""
    lib = glibc()
    return bool(lib is not None and lib.mallopt(M_ARENA_MAX, int(n)) == 1)


def trim() -> bool:
    """Return free heap pages of every arena to the kernel; True when glibc released some."""
    global _last_trim
    lib = glibc()
    if lib is None:
        return False
    with _lock:  # one walk of the arenas at a time
        _last_trim = time.monotonic()
        return bool(lib.malloc_trim(0))


def trim_if_due(every_s: float = 30.0) -> bool:
    """:func:`trim`, unless one ran in the last ``every_s`` seconds (for calls on every page run)."""
    if time.monotonic() - _last_trim < every_s:
        return False
    return trim()


_trimmer: threading.Thread | None = None
_hooks: list = []


def add_hook(fn) -> None:
    """Run ``fn()`` before each periodic trim (once per function): e.g. the app's release of ended sessions."""
    if fn not in _hooks:
        _hooks.append(fn)


def start_trimmer(every_s: float = 60.0) -> bool:
    """A daemon thread that trims every ``every_s`` seconds (once per process); True when it was started now.

    What a visitor's work freed goes back to the kernel even when nothing else calls :func:`trim`
    (a session that ended, uploads Streamlit dropped two minutes after a tab closed). The hooks
    (:func:`add_hook`) run first, each guarded: a failing hook never stops the thread.
    """
    global _trimmer
    if glibc() is None and not _hooks:
        return False  # nothing to do: no allocator to trim, no hooks
    with _lock:
        if _trimmer is not None and _trimmer.is_alive():
            return False

        def loop():
            while True:
                time.sleep(every_s)
                for fn in list(_hooks):
                    try:
                        fn()
                    except Exception:  # noqa: BLE001 - housekeeping must never end the loop
                        pass
                trim_if_due(every_s / 2)

        _trimmer = threading.Thread(target=loop, name="fer-malloc-trim", daemon=True)
        _trimmer.start()
        return True


def configure_server(arenas: int = ARENA_MAX, trim_every_s: float = 60.0, hooks=()) -> None:
    """What a long-lived server calls first: cap the arenas, start the periodic trim with ``hooks``
    (idempotent; off glibc the hooks still run, the trim is a no-op)."""
    for fn in hooks:
        add_hook(fn)
    limit_arenas(arenas)
    start_trimmer(trim_every_s)


def rss_mb() -> float:
    """This process's resident memory (MB) from /proc, or NaN where there is no /proc."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return float("nan")
