"""Face ids that stay the same across a video's frames: greedy box matching.

Why this simple tracker: faces in a clip sampled at a few frames per second
move little between samples, and the detector already gives a box per face,
so matching each new box to the nearest box of the previous samples (by
overlap, IoU) keeps the numbering stable without any appearance model. The
same person leaving and coming back after ``max_age`` samples gets a new id —
honest, since nothing here recognises people.

Two rules beyond IoU, both for what a 5 fps sample rate sees:

- a face that moved more than its box's overlap allows (a quick turn, a pan)
  still matches when its centre moved less than ``max_shift`` of its side and
  its size changed by less than half;
- a face not found for a few samples (covered by a hand, a missed detection)
  keeps its track for ``max_age`` samples, so it comes back under its old id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .scenes import iou


@dataclass
class Track:
    """One face followed through the clip. ``box`` is its last (x, y, w, h), source pixels."""

    id: int  # 1-based, never reused within a clip
    box: tuple[int, int, int, int]
    velocity: tuple[float, float] = (0.0, 0.0)  # centre shift per sample, pixels (for predicted boxes)
    missed: int = 0  # samples since it was last matched to a detection
    hits: int = 1  # samples it was matched in, itself included


def _centre(box) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2.0, y + h / 2.0


def _close(a, b, max_shift: float) -> bool:
    """Centres within ``max_shift`` × the larger side, and sizes within a factor of 1.5."""
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    side_a, side_b = max(a[2], a[3], 1), max(b[2], b[3], 1)
    ratio = side_a / side_b
    dist = ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5
    return dist <= max_shift * max(side_a, side_b) and 1 / 1.5 <= ratio <= 1.5


@dataclass
class IoUTracker:
    """Assigns track ids to each sample's face boxes; feed it the samples in time order.

    ``update(boxes)`` returns one id per box (same order). Matching is
    greedy: all (track, box) pairs that pass :data:`min_iou` or the shift rule
    are taken best-first (highest IoU, then nearest centre), each track and
    box at most once. Unmatched boxes start new tracks.
    """

    min_iou: float = 0.2
    max_shift: float = 0.6  #: centre shift allowed without overlap, as a share of the box side
    max_age: int = 5  #: samples a track survives unmatched (5 at 5 fps = 1 s)
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 1

    def update(self, boxes: list[tuple[int, int, int, int]]) -> list[int]:
        pairs = []
        for ti, t in enumerate(self.tracks):
            guess = self.predicted_box(t)
            for bi, b in enumerate(boxes):
                o = max(iou(guess, b), iou(t.box, b))
                if o >= self.min_iou or _close(guess, b, self.max_shift) or _close(t.box, b, self.max_shift):
                    (gx, gy), (bx, by) = _centre(guess), _centre(b)
                    pairs.append((-o, (gx - bx) ** 2 + (gy - by) ** 2, ti, bi))
        pairs.sort()
        ids: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        for _, _, ti, bi in pairs:
            if ti in used_tracks or ids[bi] is not None:
                continue
            used_tracks.add(ti)
            t = self.tracks[ti]
            (ox, oy), (nx, ny) = _centre(t.box), _centre(boxes[bi])
            steps = t.missed + 1
            t.velocity = ((nx - ox) / steps, (ny - oy) / steps)
            t.box, t.missed, t.hits = tuple(int(v) for v in boxes[bi]), 0, t.hits + 1
            ids[bi] = t.id
        for ti, t in enumerate(self.tracks):
            if ti not in used_tracks:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_age]
        for bi, b in enumerate(boxes):
            if ids[bi] is None:
                self.tracks.append(Track(id=self.next_id, box=tuple(int(v) for v in b)))
                ids[bi] = self.next_id
                self.next_id += 1
        return [int(i) for i in ids]

    def predicted_box(self, t: Track) -> tuple[int, int, int, int]:
        """Where ``t`` should be at the next sample: its last box moved by its velocity (missed samples included)."""
        x, y, w, h = t.box
        steps = t.missed + 1
        return (int(round(x + t.velocity[0] * steps)), int(round(y + t.velocity[1] * steps)), w, h)

    def coast(self) -> list[Track]:
        """Advance every live track one sample without a detection; returns those seen last sample.

        For samples between detections (``detect_every`` > 1): each track
        that was matched on the previous sample moves by its velocity, and
        its box is what gets classified. Tracks already missing stay missing.
        """
        live = [t for t in self.tracks if t.missed == 0]
        for t in live:
            t.box = self.predicted_box(t)
        return live
