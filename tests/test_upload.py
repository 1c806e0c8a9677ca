"""fer_core.data.upload: user paths, zip archives and .npz uploads never escape or overload.

Limits are one-line errors, refused archives leave nothing behind, a valid
class-folder zip really loads as a dataset, uploads are validated before kept.
All archives are built in memory; no network, no TensorFlow.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_core import DatasetError, FERError, load_dataset
from fer_core.data.demo import draw_face, make_demo_arrays
from fer_core.data.upload import resolve_data_path, safe_extract_zip, save_upload


def _zip(entries: dict[str, bytes], *, symlinks: dict[str, str] | None = None,
         method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buf.getvalue()


def _png(label: int, seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(draw_face(np.random.default_rng(seed), label, 32)).save(buf, "PNG")
    return buf.getvalue()


def _assert_refused(data: bytes, dest: Path, match: str, **kw) -> None:
    with pytest.raises(FERError, match=match) as info:
        safe_extract_zip(data, dest, **kw)
    assert "\n" not in str(info.value)
    assert not dest.exists()
    assert not list(dest.parent.glob(".tmp-*")) if dest.parent.exists() else True


# --------------------------------------------------------------------------- zips

def test_dotdot_entry(tmp_path):
    _assert_refused(_zip({"ok/a.png": b"1", "ok/../../escape.txt": b"x"}), tmp_path / "out" / "ds", r"'\.\.'")
    assert not (tmp_path / "escape.txt").exists()


def test_absolute_entry(tmp_path):
    _assert_refused(_zip({"/tmp/evil.txt": b"x"}), tmp_path / "ds", "absolute path")
    _assert_refused(_zip({"C:\\evil.txt": b"x"}), tmp_path / "ds", "absolute path")


def test_symlink_entry(tmp_path):
    _assert_refused(_zip({"a/1.png": b"1"}, symlinks={"a/passwd": "/etc/passwd"}), tmp_path / "ds", "symbolic link")


def test_too_many_files(tmp_path):
    entries = {f"c{i % 2}/{i}.png": b"x" for i in range(30)}
    _assert_refused(_zip(entries), tmp_path / "ds", "more than 20 files", max_files=20)


def test_zip_bomb_by_total_size(tmp_path):
    # 3 × 400 kB of zeros: each entry compresses well below the ratio guard's size floor,
    # so only the total-size limit stops it.
    entries = {f"c/{i}.bin": b"\0" * 400_000 for i in range(3)}
    _assert_refused(_zip(entries), tmp_path / "ds", "zip bomb", max_total_bytes=1_000_000)


def test_zip_bomb_by_ratio(tmp_path):
    _assert_refused(_zip({"c/zeros.bin": b"\0" * (4 << 20)}), tmp_path / "ds", "zip bomb")


def test_not_a_zip_and_existing_destination(tmp_path):
    _assert_refused(b"%PDF-1.4 not a zip", tmp_path / "ds", "not a readable zip")
    (tmp_path / "taken").mkdir()
    with pytest.raises(FERError, match="already exists"):
        safe_extract_zip(_zip({"a/1.png": b"1"}), tmp_path / "taken")


def test_valid_zip_of_class_folders_loads(tmp_path):
    entries = {f"faces/{cls}/{i}.png": _png(label, seed=10 * label + i)
               for label, cls in enumerate(("happy", "neutral", "sad")) for i in range(4)}
    entries["__MACOSX/faces/._happy"] = b"junk"
    entries["faces/.DS_Store"] = b"junk"
    root = safe_extract_zip(_zip(entries), tmp_path / "uploads" / "faces")
    assert root == tmp_path / "uploads" / "faces" / "faces"  # the wrapper folder
    assert not (tmp_path / "uploads" / "faces" / "__MACOSX").exists()
    ds = load_dataset(root)
    assert list(ds.class_names) == ["happy", "neutral", "sad"]
    assert sum(len(y) for _, y in ds.splits.values()) == 12


# --------------------------------------------------------------------------- paths

def test_path_outside_data_root(tmp_path):
    root = tmp_path / "data"
    (root / "fer").mkdir(parents=True)
    (tmp_path / "private").mkdir()
    (root / "escape").symlink_to(tmp_path / "private")
    assert resolve_data_path("fer", root) == (root / "fer").resolve()
    assert resolve_data_path("./fer/../fer", root) == (root / "fer").resolve()
    for bad in ("..", "../private", "/etc/passwd", "escape", str(tmp_path / "private")):
        with pytest.raises(FERError, match="outside the data root"):
            resolve_data_path(bad, root)


# --------------------------------------------------------------------------- .npz uploads

def _npz(**override) -> bytes:
    arrays = {**make_demo_arrays(per_class=3, image_size=16, seed=0), **override}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_upload_validated_before_kept(tmp_path):
    dest = tmp_path / "uploads"
    path = save_upload("../../my data.npz", _npz(), dest)
    assert path.parent == dest and path.name == "my-data.npz"  # name sanitised, stays in dest
    assert load_dataset(path).n_classes == 8

    bad = _npz(train_labels=np.full(24, 99, np.int64))  # labels outside the classes
    with pytest.raises(DatasetError, match="not a valid dataset") as info:
        save_upload("broken.npz", bad, dest)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in dest.iterdir()) == ["my-data.npz"]  # nothing else kept

    pickled = io.BytesIO()
    np.savez(pickled, train_images=np.array([object()], dtype=object))
    with pytest.raises(DatasetError, match="not a valid dataset"):
        save_upload("pickle.npz", pickled.getvalue(), dest)
    with pytest.raises(DatasetError, match="not a npz archive"):
        save_upload("photo.npz", b"\xff\xd8\xff\xe0 jpeg", dest)
    with pytest.raises(DatasetError, match="unsupported upload"):
        save_upload("data.csv.exe", b"x", dest)


def test_save_upload_reuses_same_content_and_unwraps_zip_folders(tmp_path):
    npz = _npz()
    p = save_upload("my set.npz", npz, tmp_path)
    assert p.read_bytes() == npz and save_upload("my set.npz", npz, tmp_path) == p  # same content: reused
    folder = save_upload("faces.zip", _zip({"faces/happy/1.png": b"1", "faces/sad/1.png": b"2",
                                            "__MACOSX/._x": b"", "faces/.DS_Store": b""}), tmp_path)
    assert sorted(c.name for c in folder.iterdir()) == ["happy", "sad"]  # the single wrapper folder is unwrapped
    with pytest.raises(DatasetError, match="unsupported upload"):
        save_upload("faces.tar", b"x", tmp_path)
    with pytest.raises(DatasetError, match="not a valid dataset"):
        save_upload("junk.npz", _zip({"train_images.npy": b"..."}), tmp_path)  # a zip, but no dataset
    with pytest.raises(DatasetError, match="empty"):
        save_upload("empty.zip", b"", tmp_path)
    with pytest.raises(DatasetError, match="no files"):
        save_upload("nothing.zip", _zip({}), tmp_path)
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / "junk.npz").exists()
