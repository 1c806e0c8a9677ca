"""File digests, in one place: the ImageNet weights a run names and the votes file a FER+ run read.

A base module (no fer_core imports) so every room — ``data`` as well as
``models`` and ``store`` — can check or record what a file was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_DIGESTS: dict[tuple, str] = {}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, memoised per (path, size, mtime): a 215 MB backbone is hashed once per process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]
