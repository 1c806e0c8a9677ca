"""Taking datasets from users without trusting them.

Three ways data reaches the trainer from the app, each with its own guard:

* a typed path → :func:`resolve_data_path` keeps it inside the data root
  (after symlinks and ``..`` are resolved), so a text box cannot read
  ``/etc`` or another user's home;
* a zip of class folders → :func:`safe_extract_zip` refuses path traversal,
  absolute names, symlinks and zip bombs before (and while) writing;
* an ``.npz`` upload → :func:`save_upload` keeps it only if it loads as a
  dataset.

Every refusal is a one-line :class:`DatasetError` (a :class:`FERError`) the app
shows as is.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import DatasetError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    return _SAFE.sub("-", text).strip("-") or "dataset"


#: Entries that archivers add and that are never data.
JUNK_PREFIXES = ("__MACOSX/",)
JUNK_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")
_CHUNK = 1 << 20


def resolve_data_path(user_path: str, data_root: Path) -> Path:
    """``user_path`` (absolute, or relative to ``data_root``) resolved, if it lies inside ``data_root``.

    Resolution follows symlinks and ``..`` first, so neither a link inside
    the root pointing out of it nor ``root/../x`` gets through. The path must
    exist.
    """
    text = str(user_path).strip()
    if not text:
        raise DatasetError("no dataset path given")
    root = Path(data_root).expanduser().resolve()
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve()
    if resolved != root and root not in resolved.parents:
        raise DatasetError(f"{text}: outside the data root {root}; put the dataset under that folder")
    if not resolved.exists():
        raise DatasetError(f"{text}: no such file or folder under the data root {root}")
    return resolved


# --------------------------------------------------------------------------- zip archives

#: A member this much larger than its compressed size is a bomb, not a dataset:
#: images are already compressed (≈1:1) and image arrays deflate a few times at most.
MAX_RATIO = 100
_RATIO_MIN_BYTES = 1 << 20  # tiny files may compress well (a blank PNG, a CSV header)


def safe_extract_zip(src: bytes | Path, dest: Path, *, max_files: int = 20000,
                     max_total_bytes: int = 2_000_000_000, label: str | None = None) -> Path:
    """Extract a zip into the new folder ``dest`` and return the dataset folder in it.

    All entries are checked before anything is written: absolute names, ``..``
    components, symlinks, encryption, too many files, too many uncompressed
    bytes and bomb-like compression ratios are refused with a one-line
    :class:`DatasetError`. Sizes are counted again while writing, because a
    zip's declared sizes can lie. Extraction goes to a temporary sibling
    folder renamed to ``dest`` at the end, so a refused or failed archive
    leaves nothing behind. Archiver junk (``__MACOSX/``, ``.DS_Store``) is
    skipped; when the archive wraps everything in one top folder
    (``mydata/happy/1.png``), that folder is returned.
    """
    dest = Path(dest)
    label = label or (Path(src).name if isinstance(src, (str, Path)) else "archive")
    if dest.exists():
        raise DatasetError(f"{dest}: already exists; choose another name or delete it first")
    try:
        zf = zipfile.ZipFile(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else Path(src))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DatasetError(f"{label}: not a readable zip archive ({exc})") from None
    with zf:
        members = _checked_members(zf, label, max_files, max_total_bytes)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-extract-{dest.name}-", dir=dest.parent))
        try:
            _extract(zf, members, tmp, label, max_total_bytes)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return _dataset_root(dest)


def _checked_members(zf: zipfile.ZipFile, label: str, max_files: int, max_total_bytes: int) -> list[zipfile.ZipInfo]:
    """The entries worth extracting; a one-line DatasetError for the first unsafe one."""
    infos = zf.infolist()
    if len(infos) > max_files:
        raise DatasetError(f"{label}: has {len(infos):,} entries, more than {max_files:,} files allowed")
    total = 0
    members = []
    for info in infos:
        name = info.filename
        _check_name(name, label)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DatasetError(f"{label}: entry '{name}' is a symbolic link; links are not allowed")
        if info.flag_bits & 0x1:
            raise DatasetError(f"{label}: entry '{name}' is encrypted; upload an unencrypted archive")
        if _is_junk(name):
            continue
        total += info.file_size
        if total > max_total_bytes:
            raise DatasetError(f"{label}: expands to more than {max_total_bytes:,} bytes; "
                               "refusing a possible zip bomb")
        if info.file_size > _RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DatasetError(f"{label}: entry '{name}' expands {info.file_size // max(info.compress_size, 1):,}×; "
                               "refusing a possible zip bomb")
        members.append(info)
    if not any(not m.is_dir() for m in members):
        raise DatasetError(f"{label}: the archive holds no files")
    return members


def _check_name(name: str, label: str) -> None:
    """Refuse absolute names, drive letters and any ``..`` component."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise DatasetError(f"{label}: entry '{name}' has an absolute path; archives must use relative paths")
    if ".." in PurePosixPath(norm).parts:
        raise DatasetError(f"{label}: entry '{name}' points outside the archive ('..')")
    if "\x00" in norm:
        raise DatasetError(f"{label}: entry {name!r} has a NUL byte in its name")


def _is_junk(name: str) -> bool:
    return name.startswith(JUNK_PREFIXES) or PurePosixPath(name).name in JUNK_NAMES


def _extract(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], root: Path, label: str, max_total_bytes: int) -> None:
    """Write ``members`` under ``root``, counting real bytes against the limits."""
    written = 0
    for info in members:
        target = root.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(info) as src, target.open("wb") as out:
                own = 0
                while chunk := src.read(_CHUNK):
                    own += len(chunk)
                    written += len(chunk)
                    if own > info.file_size or written > max_total_bytes:
                        raise DatasetError(f"{label}: entry '{info.filename}' expands beyond its declared size; "
                                           "refusing a possible zip bomb")
                    out.write(chunk)
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
            raise DatasetError(f"{label}: entry '{info.filename}' cannot be extracted ({exc})") from None


def _dataset_root(folder: Path) -> Path:
    """``folder``, or its only subfolder when the archive wrapped everything in one."""
    children = [c for c in folder.iterdir() if not c.name.startswith(".")]
    if len(children) == 1 and children[0].is_dir():
        inner = children[0]
        # a wrapper holds folders (classes or splits); a lone class folder holds only images
        if any(c.is_dir() for c in inner.iterdir()):
            return inner
    return folder


# --------------------------------------------------------------------------- uploads

def save_upload(name: str, data: bytes, dest_dir: Path) -> Path:
    """Keep an uploaded dataset under ``dest_dir``; returns what to pass to ``--data``.

    * ``.npz``: kept only if :func:`fer_core.data.datasets.load_dataset` loads it (no
      pickle); written under a temporary name and renamed when valid.
    * ``.zip``: unpacked with :func:`safe_extract_zip` into a new folder;
      returns the dataset folder inside it.

    The name is sanitised, so an upload cannot choose where it lands. The same
    content uploaded again returns the file or folder kept the first time.
    """
    name = str(name)
    suffix = Path(name.replace("\\", "/")).suffix.lower()
    stem = safe_name(Path(name.replace("\\", "/")).stem)
    if suffix not in (".npz", ".zip"):
        raise DatasetError(f"{name}: unsupported upload type '{suffix or 'no extension'}'; "
                           "upload an .npz or a .zip of class folders")
    if not data:
        raise DatasetError(f"{name}: the file is empty (0 bytes)")
    dest_dir = Path(dest_dir)
    digest = hashlib.sha256(data).hexdigest()
    if suffix == ".zip":
        folder = dest_dir / f"{stem}-{digest[:10]}"
        if folder.is_dir():
            return _dataset_root(folder)
        return safe_extract_zip(bytes(data), folder, label=name)
    return _save_npz(name, stem, bytes(data), digest, dest_dir)


def _save_npz(name: str, stem: str, data: bytes, digest: str, dest_dir: Path) -> Path:
    from .datasets import load_dataset

    if not data.startswith(b"PK"):
        raise DatasetError(f"{name}: not a npz archive ({_sniff(data)})")
    dest_dir.mkdir(parents=True, exist_ok=True)
    for old in dest_dir.glob(f"{stem}*.npz"):  # the same upload again
        if old.stat().st_size == len(data) and hashlib.sha256(old.read_bytes()).hexdigest() == digest:
            return old
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-upload-", suffix=".npz", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            load_dataset(tmp)
        except DatasetError as exc:
            reason = str(exc).replace(f"{tmp}: ", "").replace(str(tmp), name)
            raise DatasetError(f"{name}: not a valid dataset ({reason})") from None
        final = _free_name(dest_dir, stem, ".npz")
        os.replace(tmp, final)
        return final
    finally:
        tmp.unlink(missing_ok=True)


def _sniff(data: bytes) -> str:
    if data.startswith(b"%PDF"):
        return "it is a PDF document"
    if data[:4] == b"\x93NUM":
        return "it is a single .npy array; save the splits together with numpy.savez"
    return "it does not start like a zip file"


def _free_name(folder: Path, stem: str, suffix: str) -> Path:
    path, k = folder / f"{stem}{suffix}", 1
    while path.exists():
        k += 1
        path = folder / f"{stem}-{k}{suffix}"
    return path
