"""One table layout for every prediction the project writes: photos, folders, zips and videos.

Why one layout: a user who runs ``python -m predict`` on a folder of photos
and on a clip, or downloads the CSV from the Predict and Video pages, gets
files that concatenate and load the same way. One row per face per photo (or
per sampled video frame)::

    file, frame, time_s, face_id, x, y, w, h, <one column per class>, top

- ``frame``/``time_s``: the frame index in the video and its presentation time
  in seconds; empty (None) for photos.
- ``face_id``: 1-based; in a video it is the track id, stable across frames.
  Empty for a sampled frame in which no face was found (the row keeps the
  timestamp, so no frame goes missing from the table).
- ``x, y, w, h``: the square crop that was classified, in the source's pixels.
- class columns: probabilities (the ensemble's mean when several models ran,
  or one model's when the caller asks for it); ``top`` is the most likely class.
- ``whole_image``: True when no face was found in a photo and its centred
  square was classified instead (marked, never silently mixed with faces).

Rows are plain dicts, so the CSV writer, the JSON-lines writer and pandas all
read them without this module being imported by the caller.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence

import numpy as np

#: Columns before the class columns, in order.
LEAD_COLUMNS = ("file", "frame", "time_s", "face_id", "x", "y", "w", "h")
#: Columns after the class columns.
TAIL_COLUMNS = ("top", "whole_image")


def columns(class_names: Sequence[str]) -> list[str]:
    """The full header for a class set: lead columns, one per class, ``top``, ``whole_image``."""
    clash = set(class_names) & (set(LEAD_COLUMNS) | set(TAIL_COLUMNS))
    if clash:
        raise ValueError(f"class names {sorted(clash)} collide with the table's own columns")
    return [*LEAD_COLUMNS, *class_names, *TAIL_COLUMNS]


def face_row(*, file: str, class_names: Sequence[str], probs, box=None, face_id: int | None = None,
             frame: int | None = None, time_s: float | None = None, whole_image: bool = False) -> dict:
    """One row: ``probs`` (C,) for ``class_names``; ``box`` (x, y, w, h) or None for a frame without a face."""
    row: dict = {"file": file, "frame": frame,
                 "time_s": None if time_s is None else round(float(time_s), 3),
                 "face_id": face_id}
    x, y, w, h = (None,) * 4 if box is None else (int(v) for v in box)
    row.update(x=x, y=y, w=w, h=h)
    if probs is None:  # a sampled frame with no face: keep its timestamp, no scores
        row.update({name: None for name in class_names})
        row["top"] = None
    else:
        p = np.asarray(probs, dtype=np.float64).reshape(-1)  # (C,)
        if p.shape[0] != len(class_names):
            raise ValueError(f"{p.shape[0]} probabilities for {len(class_names)} classes")
        row.update({name: round(float(v), 6) for name, v in zip(class_names, p)})
        row["top"] = class_names[int(np.argmax(p))]
    row["whole_image"] = bool(whole_image)
    return row


def no_face_row(*, file: str, class_names: Sequence[str], frame: int, time_s: float) -> dict:
    """The row of a sampled video frame in which no face was found (empty ``face_id``, no scores)."""
    return face_row(file=file, class_names=class_names, probs=None, frame=frame, time_s=time_s)


def _cell(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return v


def write_csv(rows: Iterable[dict], class_names: Sequence[str], fh) -> int:
    """Write ``rows`` as CSV with :func:`columns`' header to the open text file ``fh``; returns rows written.

    Streams: rows are written as they come, so a long video never holds its table in memory.
    """
    header = columns(class_names)
    w = csv.writer(fh)
    w.writerow(header)
    n = 0
    for row in rows:
        w.writerow([_cell(row.get(c)) for c in header])
        n += 1
    return n


def write_jsonl(rows: Iterable[dict], class_names: Sequence[str], fh) -> int:
    """Write ``rows`` as JSON lines (one object per row, keys in :func:`columns` order); returns rows written."""
    header = columns(class_names)
    n = 0
    for row in rows:
        fh.write(json.dumps({c: row.get(c) for c in header}) + "\n")
        n += 1
    return n


def to_frame(rows: Iterable[dict], class_names: Sequence[str]):
    """The rows as a pandas DataFrame with :func:`columns` (an empty table keeps its header)."""
    import pandas as pd

    return pd.DataFrame(list(rows), columns=columns(class_names))
