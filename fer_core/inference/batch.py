"""Many photos at once: files, folders, zips and uploads → one row per face, with the stages overlapped.

``Predictor.predict`` answers one photo, which is what the Predict page needs
for one upload. A folder of photos run through it one by one leaves work on
the table: each photo waits for its own classification (a model call of
batch 1) before the next detection starts. Here the pipeline reads::

    paths / uploads                                               expand_paths, expand_uploads
    → Sources, kind judged from the first bytes (never the name)  sniff
    → thread pool (read → decode → detect → square → crop)        _prepare, DETECT_WORKERS threads
    → in input order, crops of consecutive photos gathered
      into batches of ≥ BATCH_FACES → Predictor.predict_faces     one compiled call per model
    → rows in the fer_core.inference.rows layout                            predict_photos, iter_rows

The caller's thread classifies one batch while the pool detects faces in the
next photos, so detection and classification overlap. The speed this buys
is measured by ``benchmarks/photos.py`` (benchmarks/results/photos.json).

Zips are read in memory, member by member, and never extracted: entry names
only label rows, yet absolute names, ``..`` components, links, encrypted
entries, members over the size cap and bomb-like compression ratios are
refused one line each, and a member is read no further than its declared
size (a zip's declared sizes can lie). Every bad file — inside a folder or a
zip, or a photo that does not decode — becomes one line in
:attr:`Expansion.problems` or :attr:`BatchReport.skipped`, and the rest go on.
"""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import FERError, ImageInputError
from ..faces.align import face_crops
from ..faces.detect import centre_square_box, crop_face, detect_faces, largest_faces
from ..data.images import MAX_PIXELS, open_image, to_array
from .rows import face_row
from ..store.runs import BUNDLED_DIR, Run, list_runs, load_run

#: Threads that read, decode and detect. 2 = the detector pool's size (:data:`fer_core.faces.detect.DETECTORS`);
#: a third thread would only wait for a detector.
DETECT_WORKERS = 2
#: Photos read ahead of the one being classified, per worker: enough to keep the pool busy while the
#: caller classifies, few enough that memory stays at a handful of photos' crops.
LOOKAHEAD = 4
#: Faces gathered before one classification call. ``benchmarks/photos.py`` measures the split.
BATCH_FACES = 16
#: A batch waits at most this long for more faces (slow inputs still stream their rows).
MAX_WAIT_S = 0.5

#: Largest single photo read from a folder or zip (the app's own photo limit is lower).
MAX_FILE_BYTES = 50 * 1024 * 1024
#: Entries a zip may list, and uncompressed bytes all its members may declare together.
MAX_ZIP_ENTRIES = 20_000
MAX_ZIP_BYTES = 4 * 1024 ** 3
#: A member this much larger than its compressed size is a bomb: photos are already compressed (≈1:1).
MAX_RATIO = 100
_RATIO_MIN_BYTES = 1 << 20  # a small member may compress well (a blank PNG)
#: Bytes read to judge a file's kind (enough for every signature below and for fer_core.inference.video.is_video,
#: which counts an animated GIF's frames in them). Zip members need only the signatures: GIFs there are photos.
HEAD_BYTES = 64 * 1024
ZIP_HEAD_BYTES = 64
JUNK_PREFIXES = ("__MACOSX/",)
JUNK_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")

PHOTO_KINDS = "JPEG, PNG, WebP, BMP or GIF"


# --------------------------------------------------------------------------- what a file is


def sniff(head: bytes) -> str | None:
    """``"photo"``, ``"zip"``, ``"video"`` or None from a file's first bytes (its magic number).

    Photos: JPEG, PNG, GIF, WebP, BMP (what :func:`fer_core.data.images.open_image` decodes and the
    page names). Videos: :func:`fer_core.inference.video.is_video` (MP4/MOV, WebM/MKV, AVI, animated GIF).
    """
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if _is_video(head):
        return "video"
    if (head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" or head[:6] in (b"GIF87a", b"GIF89a")
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or (head[:2] == b"BM" and len(head) >= 26)):
        return "photo"
    return None


def _is_video(head: bytes) -> bool:
    try:
        from .video import is_video
    except ImportError:  # PyAV missing: name the common containers ourselves, so the message says "video"
        return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or (head[:4] == b"RIFF" and head[8:11] == b"AVI")
    return is_video(head)


def _not_supported(label: str, head: bytes) -> str:
    """One line for content that is neither a photo, a zip nor a video."""
    from ..data.images import _sniff_kind

    if len(head) == 0:
        return f"{label}: the file is empty (0 bytes)"
    return f"{label}: not a photo ({PHOTO_KINDS}), zip or video ({_sniff_kind(head)})"


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One photo or video to read: a file, bytes in memory, or a member of an open zip.

    ``label`` is what the rows' ``file`` column shows: the path as given (and
    below a folder), an upload's name, or ``archive.zip/inner/name.jpg``.
    """

    label: str
    kind: str  # "photo" | "video"
    path: Path | None = None
    data: bytes | None = None
    archive: zipfile.ZipFile | None = None
    member: zipfile.ZipInfo | None = None

    def read(self, max_bytes: int = MAX_FILE_BYTES) -> bytes:
        """The whole content; :class:`ImageInputError` (one line) when unreadable or over ``max_bytes``."""
        if self.data is not None:
            data = self.data
        elif self.member is not None:
            return _read_member(self.archive, self.member, self.label, max_bytes)
        else:
            try:
                size = self.path.stat().st_size
                if size > max_bytes:
                    raise ImageInputError(f"{self.label}: {size / 2**20:.1f} MB is over the {max_bytes / 2**20:g} MB "
                                          "limit for one photo")
                data = self.path.read_bytes()
            except OSError as exc:
                raise ImageInputError(f"{self.label}: cannot read file ({exc.strerror or exc})") from None
        if len(data) > max_bytes:
            raise ImageInputError(f"{self.label}: {len(data) / 2**20:.1f} MB is over the {max_bytes / 2**20:g} MB "
                                  "limit for one photo")
        return data


@dataclass
class Expansion:
    """What a set of inputs holds: sources in order, and one line per file left out."""

    sources: list[Source] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    max_photos: int = 0  # 0 = no limit; once reached, further files are counted, never read
    left_out: int = 0
    _archives: list[zipfile.ZipFile] = field(default_factory=list, repr=False)

    @property
    def full(self) -> bool:
        return self.max_photos > 0 and self.photos >= self.max_photos

    @property
    def photos(self) -> int:
        return sum(s.kind == "photo" for s in self.sources)

    @property
    def videos(self) -> int:
        return sum(s.kind == "video" for s in self.sources)

    def close(self) -> None:
        """Close the zips the sources read from (their files stay open until then)."""
        for zf in self._archives:
            zf.close()
        self._archives.clear()

    def __enter__(self) -> "Expansion":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def expand_paths(paths: Iterable[str | Path], *, max_photos: int = 0, max_file_bytes: int = MAX_FILE_BYTES,
                 videos: bool = True) -> Expansion:
    """Photos and videos in ``paths`` (files, folders searched recursively, zips), kinds judged by content.

    A path given directly that is missing, unrecognised, or an unreadable
    zip raises :class:`FERError` with one line: the caller asked for it by
    name. A bad file *inside* a folder or zip is one line in ``problems`` and
    is left out. Hidden files and folders and archiver junk are passed over
    silently. ``max_photos`` (0 = no limit): once that many photos are found,
    further files are counted on one line, never read. ``videos=False``
    reports videos as problems (an animated GIF is then a photo: its first frame).
    """
    out = Expansion(max_photos=max_photos)
    for raw in paths:
        path, label = Path(raw), str(raw)
        if out.full:
            out.left_out += 1
        elif path.is_dir():
            _walk(path, label, out, max_file_bytes, videos)
        elif not path.is_file():
            raise FERError(f"{label}: no such file or folder")
        else:
            problem = _add(out, label, _head(path, label), path, None, max_file_bytes, videos)
            if problem:
                raise ImageInputError(problem)
    return _cap_note(out)


def expand_uploads(files: Iterable[tuple[str, bytes]], *, max_photos: int = 0, max_file_bytes: int = MAX_FILE_BYTES,
                   videos: bool = False) -> Expansion:
    """Like :func:`expand_paths` for uploaded ``(name, bytes)``: a bad upload is one problem line, never an error."""
    out = Expansion(max_photos=max_photos)
    for name, data in files:
        if out.full:
            out.left_out += 1
            continue
        problem = _add(out, name, data[:HEAD_BYTES], None, data, max_file_bytes, videos)
        if problem:
            out.problems.append(problem)
    return _cap_note(out)


def _add(out: Expansion, label: str, head: bytes, path: Path | None, data: bytes | None, max_file_bytes: int,
         videos: bool) -> str | None:
    """Add one file (on disk at ``path`` or held in ``data``) to ``out`` by its content; its problem line, or None."""
    kind = sniff(head)
    if kind == "video" and not videos and head[:6] in (b"GIF87a", b"GIF89a"):
        kind = "photo"  # an animated GIF where videos are not read: its first frame, as the single-photo page does
    if kind == "zip":
        try:
            _zip_sources(path if path is not None else data, label, out, max_file_bytes, videos)
        except FERError as exc:
            return str(exc)
    elif kind is None:
        return _not_supported(label, head)
    elif kind == "video" and not videos:
        return f"{label}: a video; videos are read on the Video page or by python -m predict"
    elif data is not None and len(data) > max_file_bytes:
        return f"{label}: {len(data) / 2**20:.1f} MB is over the {max_file_bytes / 2**20:g} MB limit for one photo"
    else:
        out.sources.append(Source(label=label, kind=kind, path=path, data=data))
    return None


def _head(path: Path, label: str) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(HEAD_BYTES)
    except OSError as exc:
        raise ImageInputError(f"{label}: cannot read file ({exc.strerror or exc})") from None


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in JUNK_NAMES


def _walk(folder: Path, label: str, out: Expansion, max_file_bytes: int, videos: bool) -> None:
    """Every file below ``folder``, in sorted path order (links to folders are not followed)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        rel = Path(root).relative_to(folder)
        found += [rel / name for name in files if not _hidden(name)]
    for rel in sorted(found, key=lambda r: r.parts):
        if out.full:
            out.left_out += 1
            continue
        path, file_label = folder / rel, str(Path(label) / rel)
        try:
            problem = _add(out, file_label, _head(path, file_label), path, None, max_file_bytes, videos)
        except ImageInputError as exc:
            problem = str(exc)
        if problem:
            out.problems.append(problem)


def _zip_sources(src: Path | bytes, label: str, out: Expansion, max_file_bytes: int, videos: bool) -> None:
    """The photos in a zip, as sources reading from the open archive; bad members become problem lines.

    Raises :class:`FERError` when the archive itself is unreadable or too large to list.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise FERError(f"{label}: not a readable zip archive") from None
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        zf.close()
        raise FERError(f"{label}: has {len(infos):,} entries, more than the {MAX_ZIP_ENTRIES:,} allowed")
    out._archives.append(zf)
    declared = 0
    for info in infos:
        name = info.filename
        member_label = f"{label}/{name}"
        if info.is_dir() or name.startswith(JUNK_PREFIXES) or _hidden(PurePosixPath(name).name):
            continue
        if out.full:  # a 20,000-entry zip costs one listing, not 20,000 decompressions
            out.left_out += 1
            continue
        problem = _unsafe_member(info, member_label, max_file_bytes)
        if problem:
            out.problems.append(problem)
            continue
        declared += info.file_size
        if declared > MAX_ZIP_BYTES:
            out.problems.append(f"{label}: its members expand to more than {MAX_ZIP_BYTES / 2**30:g} GB; "
                                "the rest of the archive was left out (a possible zip bomb)")
            return
        try:
            with zf.open(info) as f:
                head = f.read(ZIP_HEAD_BYTES)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
            out.problems.append(f"{member_label}: cannot be read from the archive (damaged or an unsupported compression)")
            continue
        kind = "photo" if head[:6] in (b"GIF87a", b"GIF89a") else sniff(head)  # an animated GIF in a zip: frame 1
        if kind == "zip":
            out.problems.append(f"{member_label}: a zip inside a zip is not opened; unzip it first")
        elif kind == "video":
            out.problems.append(f"{member_label}: a video inside a zip is not read; unzip it first")
        elif kind is None:
            out.problems.append(_not_supported(member_label, head))
        else:
            out.sources.append(Source(label=member_label, kind="photo", archive=zf, member=info))


def _unsafe_member(info: zipfile.ZipInfo, label: str, max_file_bytes: int) -> str | None:
    """Why a zip member is refused before reading it (path tricks, links, encryption, size, ratio), or None."""
    norm = info.filename.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return f"{label}: an absolute path inside the archive; left out"
    if ".." in PurePosixPath(norm).parts or "\x00" in norm:
        return f"{label}: a path that points outside the archive; left out"
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"{label}: a symbolic link; left out"
    if info.flag_bits & 0x1:
        return f"{label}: encrypted; left out"
    if info.file_size > max_file_bytes:
        return f"{label}: {info.file_size / 2**20:.1f} MB is over the {max_file_bytes / 2**20:g} MB limit for one photo"
    if info.file_size > _RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return f"{label}: expands {info.file_size // max(info.compress_size, 1):,}× (a possible zip bomb); left out"
    return None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, max_bytes: int) -> bytes:
    """A member's bytes, read no further than its declared size (and ``max_bytes``): a lying header stops there."""
    limit = min(info.file_size, max_bytes)
    try:
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
        raise ImageInputError(f"{label}: cannot be read from the archive (damaged or an unsupported compression)") from None
    if len(data) > limit:
        raise ImageInputError(f"{label}: expands beyond its declared size (a possible zip bomb)")
    return data


def _cap_note(out: Expansion) -> Expansion:
    """One line for the files left unread once ``max_photos`` photos were found."""
    if out.left_out:
        n = out.left_out
        out.problems.append(f"{n} more file{'s' if n != 1 else ''} left out: at most {out.max_photos} photos per batch")
    return out


# --------------------------------------------------------------------------- the pipeline


@dataclass
class BatchReport:
    """What a batch did, filled in as it runs.

    ``seconds``: time spent per stage, summed over the threads that ran it
    (read, decode, detect and crop run on the pool, in parallel; classify on
    the caller's thread), so stages can add up to more than ``wall_s``.
    """

    photos: int = 0  # photos classified
    faces: int = 0  # rows of detected faces
    whole_image: int = 0  # photos in which no face was found (their centred square was classified)
    videos: int = 0
    rows: int = 0
    skipped: list[str] = field(default_factory=list)
    classify_calls: int = 0
    seconds: dict = field(default_factory=lambda: dict.fromkeys(("read", "decode", "detect", "crop", "classify"), 0.0))
    wall_s: float = 0.0


@dataclass
class _Prepared:
    """One photo after the pool: its square boxes and crops (the decoded image is dropped), or why it failed."""

    source: Source
    boxes: list = field(default_factory=list)
    crops: list = field(default_factory=list)  # each (s, s, 3) uint8
    whole_image: bool = False
    error: str | None = None
    seconds: dict = field(default_factory=dict)


def _prepare(source: Source, max_faces: int | None, max_bytes: int, max_pixels: int) -> _Prepared:
    """Read → decode → detect → square → crop one photo (a pool thread). Never raises: errors come back."""
    t0 = time.perf_counter()
    try:
        data = source.read(max_bytes)
        t1 = time.perf_counter()
        arr = to_array(open_image(data, name=source.label, max_pixels=max_pixels))  # (H, W, 3|1), upright
        rgb = np.ascontiguousarray(np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr)  # (H, W, 3) uint8
        t2 = time.perf_counter()
        faces = largest_faces(detect_faces(rgb, turn=True), max_faces)  # as Predictor.predict: the K largest
        t3 = time.perf_counter()
        if faces:
            boxes, crops = face_crops(rgb, faces)  # as Predictor.predict: square boxes, aligned crops
        else:
            boxes = [centre_square_box(rgb.shape)]
            crops = [crop_face(rgb, boxes[0])]
        t4 = time.perf_counter()
    except ImageInputError as exc:
        return _Prepared(source, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad photo must not end the batch
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _Prepared(source, error=f"{source.label}: cannot be read ({first})")
    return _Prepared(source, boxes=boxes, crops=crops, whole_image=not faces,
                     seconds={"read": t1 - t0, "decode": t2 - t1, "detect": t3 - t2, "crop": t4 - t3})


def predict_photos(sources: Iterable[Source], predictor, *, max_faces: int | None = None,
                   max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS,
                   workers: int = DETECT_WORKERS, batch_faces: int = BATCH_FACES,
                   on_event: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
                   report: BatchReport | None = None, total: int | None = None) -> Iterator[dict]:
    """Rows (:mod:`fer_core.inference.rows` layout) of photo sources, in input order: one per face, or one whole-image row.

    Photos are prepared ``workers`` at a time (read, decode, detect, crop)
    while this thread classifies the crops of the photos before them, at
    least ``batch_faces`` at a time (or whatever is ready after
    :data:`MAX_WAIT_S`), with every model of ``predictor`` in one call each.
    Each row's probabilities are the models' mean. A photo that fails is one
    line in ``report.skipped`` and an ``{"event": "skip"}``; after each
    classified photo ``on_event`` gets ``{"event": "file", "kind": "photo",
    "file", "done", "total", "faces"}``. ``should_stop()`` True ends the stream after the
    current batch.
    """
    report = report if report is not None else BatchReport()
    emit = on_event or (lambda e: None)
    class_names = predictor.class_names
    t_start = time.perf_counter()
    done = 0

    def classify(batch: list[_Prepared]) -> Iterator[dict]:
        nonlocal done
        crops = [c for p in batch for c in p.crops]
        t0 = time.perf_counter()
        per_face = predictor.predict_faces(crops)  # [face][model]; one compiled call per model
        probs = np.stack([np.mean([m.probs for m in preds], axis=0) for preds in per_face])  # (F, C), the ensemble
        report.seconds["classify"] += time.perf_counter() - t0
        report.classify_calls += 1
        k = 0
        for p in batch:
            for i, box in enumerate(p.boxes):
                yield face_row(file=p.source.label, class_names=class_names, probs=probs[k], box=box,
                               face_id=i + 1, whole_image=p.whole_image)
                k += 1
                report.rows += 1
            report.photos += 1
            report.faces += 0 if p.whole_image else len(p.boxes)
            report.whole_image += p.whole_image
            done += 1
            emit({"event": "file", "kind": "photo", "file": p.source.label, "done": done, "total": total,
                  "faces": 0 if p.whole_image else len(p.boxes)})

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="fer-batch") as pool:
        it = iter(sources)
        window: deque = deque()  # (future of _Prepared), input order

        def fill() -> None:
            while len(window) < max(1, workers) * LOOKAHEAD:
                src = next(it, None)
                if src is None:
                    return
                window.append(pool.submit(_prepare, src, max_faces, max_bytes, max_pixels))

        fill()
        batch: list[_Prepared] = []
        n_crops, oldest = 0, 0.0
        try:
            while window:
                if should_stop is not None and should_stop():
                    break
                prepared = window.popleft().result()
                fill()
                if prepared.error:
                    report.skipped.append(prepared.error)
                    done += 1
                    emit({"event": "skip", "file": prepared.source.label, "message": prepared.error,
                          "done": done, "total": total})
                    continue
                for stage, s in prepared.seconds.items():
                    report.seconds[stage] += s
                if not batch:
                    oldest = time.perf_counter()
                batch.append(prepared)
                n_crops += len(prepared.crops)
                if n_crops >= batch_faces or not window or time.perf_counter() - oldest > MAX_WAIT_S:
                    yield from classify(batch)
                    batch, n_crops = [], 0
            if batch:
                yield from classify(batch)
        finally:
            for fut in window:  # stopped early or the consumer went away: drop the read-ahead
                fut.cancel()
            report.wall_s += time.perf_counter() - t_start


def iter_rows(sources: list[Source], predictor, *, fps: float | None = 5.0, max_faces: int | None = None,
              max_bytes: int = MAX_FILE_BYTES, video_max_seconds: float | None = None,
              on_event: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
              report: BatchReport | None = None, **batch_options) -> Iterator[dict]:
    """Rows of photos and videos in input order: runs of consecutive photos through :func:`predict_photos`,
    each video through :func:`fer_core.inference.video.iter_video_rows` (sampled at ``fps``).

    A video that cannot be read is skipped with one line, like a bad photo.
    ``on_event`` also gets ``{"event": "video", "file", "fraction", "done", "total"}`` while a clip is read.
    """
    report = report if report is not None else BatchReport()
    emit = on_event or (lambda e: None)
    total = len(sources)
    done_before = 0
    i = 0
    while i < total:
        if should_stop is not None and should_stop():
            return
        j = i
        while j < total and sources[j].kind == "photo":
            j += 1
        if j > i:  # photos i..j-1
            offset = done_before

            def shifted(e: dict, offset=offset) -> None:
                emit({**e, "done": e["done"] + offset, "total": total})

            yield from predict_photos(sources[i:j], predictor, max_faces=max_faces, max_bytes=max_bytes,
                                      on_event=shifted, should_stop=should_stop, report=report, total=total,
                                      **batch_options)
            done_before += j - i
            i = j
            continue
        yield from _video_rows(sources[i], predictor, fps=fps, max_faces=max_faces, max_seconds=video_max_seconds,
                               emit=emit, done=done_before, total=total, should_stop=should_stop, report=report)
        done_before += 1
        i += 1


def _video_rows(source: Source, predictor, *, fps, max_faces, max_seconds, emit, done, total, should_stop,
                report: BatchReport) -> Iterator[dict]:
    """One clip's rows; a clip that cannot be read becomes a skipped line (rows already given stand)."""
    t0 = time.perf_counter()
    try:
        from .video import iter_video_rows
    except ImportError as exc:
        msg = f"{source.label}: video support needs fer_core.inference.video ({exc}); skipped"
        report.skipped.append(msg)
        emit({"event": "skip", "file": source.label, "message": msg, "done": done + 1, "total": total})
        return
    where = source.path if source.path is not None else source.read()

    def progress(fraction: float) -> None:
        emit({"event": "video", "file": source.label, "fraction": float(fraction), "done": done, "total": total})

    try:
        for row in iter_video_rows(where, predictor, fps=fps, file_label=source.label, on_progress=progress,
                                   should_stop=should_stop, max_seconds=max_seconds, max_faces=max_faces):
            report.rows += 1
            yield row
        report.videos += 1
        emit({"event": "file", "kind": "video", "file": source.label, "done": done + 1, "total": total, "faces": None})
    except FERError as exc:
        report.skipped.append(str(exc))
        emit({"event": "skip", "file": source.label, "message": str(exc), "done": done + 1, "total": total})
    finally:
        report.wall_s += time.perf_counter() - t0


# --------------------------------------------------------------------------- which runs


def select_runs(ids: Iterable[str] = (), run_dirs: Iterable[str | Path] = (), *,
                runs_dir: str | Path | None = None) -> list[Run]:
    """The runs to predict with: run folders given directly, else model or run ids, else the bundled default.

    An id is a run id (its folder name) in the runs folder (``runs_dir``,
    else ``$FER_RUNS_DIR`` or ``runs/``) or in the bundled ``models/``, or a
    model id: the bundled run of that model when one ships (the same model
    the app shows), else the newest run of it in the runs folder. An unknown
    id raises :class:`FERError` naming what there is.
    """
    from ..data.defaults import BUNDLED_PREDICT_DEFAULT

    run_dirs, ids = [str(d) for d in run_dirs if str(d).strip()], [i.strip() for i in ids if i.strip()]
    if run_dirs:
        bundled = BUNDLED_DIR.resolve()
        return [load_run(d, bundled=Path(d).resolve().parent == bundled) for d in run_dirs]
    root = Path(runs_dir or os.environ.get("FER_RUNS_DIR") or "runs")
    listing = list_runs(root, bundled_roots=(BUNDLED_DIR,))
    chosen = []
    for wanted in ids or [BUNDLED_PREDICT_DEFAULT]:
        by_id = [r for r in listing.runs if r.id == wanted]
        by_model = sorted((r for r in listing.runs if r.model_name == wanted),
                          key=lambda r: (r.bundled, r.metrics.get("created", 0)), reverse=True)
        if not by_id and not by_model:
            models = sorted({r.model_name for r in listing.runs})
            raise FERError(f"no run of model '{wanted}' in {root} or the bundled models; models with runs: "
                           f"{', '.join(models) or 'none'} (or pass --runs DIR)")
        chosen.append((by_id or by_model)[0])
    return chosen
