"""fer_core.inference.batch: inputs judged by content, zips read safely, bad files skipped, rows in the common layout."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_core import FERError, ImageInputError
from fer_core.inference import batch
from fer_core.inference.rows import columns

ASTRONAUT = Path(__file__).resolve().parent.parent / "ui" / "assets" / "astronaut.jpg"


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def face_jpeg() -> bytes:
    """A real photo with one face (NASA's astronaut portrait, 512 px)."""
    return ASTRONAUT.read_bytes()


@pytest.fixture(scope="module")
def blank_png() -> bytes:
    """No face anywhere: a smooth 300×200 gradient."""
    ramp = np.linspace(0, 255, 300, dtype=np.uint8)
    return encoded(Image.fromarray(np.tile(ramp, (200, 1))).convert("RGB"), "PNG")


@pytest.fixture(scope="module")
def predictor():
    from fer_core import bundled_runs
    from fer_core.inference.predictor import Predictor

    p = Predictor([r for r in bundled_runs().runs if r.model_name == "compact"])
    yield p
    p.close()


# --------------------------------------------------------------------------- content, not names


def test_sniff_reads_magic_bytes_not_names():
    img = Image.open(ASTRONAUT).convert("RGB").resize((64, 64))
    for fmt in ("JPEG", "PNG", "GIF", "WEBP", "BMP"):
        assert batch.sniff(encoded(img, fmt)) == "photo", fmt
    assert batch.sniff(b"PK\x03\x04" + bytes(30)) == "zip"
    assert batch.sniff(b"\x00\x00\x00\x18ftypisom" + bytes(40)) == "video"
    assert batch.sniff(b"\x00\x00\x00\x18ftypheic" + bytes(40)) is None  # a HEIC photo, not a video
    assert batch.sniff(b"%PDF-1.7\n" + bytes(40)) is None
    assert batch.sniff(b"") is None


def test_folder_expands_recursively_by_content_and_names_each_bad_file(tmp_path, face_jpeg):
    root = tmp_path / "photos"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.jpg").write_bytes(face_jpeg)
    (root / "b" / "deeper" / "scan.txt").write_bytes(face_jpeg)  # a JPEG by content, whatever its name
    (root / "b" / "notes.jpg").write_bytes(b"%PDF-1.4 not a photo")
    (root / "empty.png").write_bytes(b"")
    (root / ".hidden" / "x.jpg").write_bytes(face_jpeg)
    (root / ".DS_Store").write_bytes(b"junk")
    with zipfile.ZipFile(root / "more.zip", "w") as zf:
        zf.writestr("inner/c.jpg", face_jpeg)
    exp = batch.expand_paths([root])
    labels = [s.label for s in exp.sources]
    assert labels == [str(root / "a.jpg"), str(root / "b" / "deeper" / "scan.txt"), str(root / "more.zip") + "/inner/c.jpg"]
    assert all(s.kind == "photo" for s in exp.sources)
    assert len(exp.problems) == 2 and all("\n" not in p for p in exp.problems)
    assert any("notes.jpg: not a photo" in p and "PDF" in p for p in exp.problems)
    assert any("empty.png: the file is empty" in p for p in exp.problems)
    assert exp.sources[2].read() == face_jpeg  # read from the zip in memory
    exp.close()


def test_inputs_named_directly_must_exist_and_be_readable(tmp_path):
    with pytest.raises(FERError, match="no such file or folder"):
        batch.expand_paths([tmp_path / "missing.jpg"])
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(ImageInputError, match=r"report\.pdf: not a photo .*PDF"):
        batch.expand_paths([tmp_path / "report.pdf"])
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 but nothing else")
    with pytest.raises(FERError, match="broken.zip: not a readable zip"):
        batch.expand_paths([tmp_path / "broken.zip"])


# --------------------------------------------------------------------------- zips


def test_zip_members_with_path_tricks_links_bombs_or_oversize_are_left_out(face_jpeg):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok/face.jpg", face_jpeg)
        zf.writestr("../escape.jpg", face_jpeg)
        zf.writestr("/etc/abs.jpg", face_jpeg)
        link = zipfile.ZipInfo("link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("bomb.png", b"\x89PNG\r\n\x1a\n" + bytes(3 * 2**20))  # 3 MB of zeros deflate ~1000×
        zf.writestr("__MACOSX/._face.jpg", b"junk")
        zf.writestr("nested.zip", b"PK\x03\x04" + bytes(100))
    exp = batch.expand_uploads([("set.zip", buf.getvalue())], max_file_bytes=2 * 2**20 + 2**20 // 2)
    assert [s.label for s in exp.sources] == ["set.zip/ok/face.jpg"]
    text = "\n".join(exp.problems)
    assert "escape.jpg: a path that points outside" in text
    assert "abs.jpg: an absolute path" in text
    assert "link.jpg: a symbolic link" in text
    assert "bomb.png: 3.0 MB is over" in text
    assert "nested.zip: a zip inside a zip" in text
    assert len(exp.problems) == 5 and "__MACOSX" not in text
    ratio = batch.expand_uploads([("set.zip", buf.getvalue())])  # size cap off: the ratio check refuses it
    assert any("bomb.png: expands" in p and "zip bomb" in p for p in ratio.problems)


def test_a_photo_count_cap_keeps_the_first_and_says_how_many_were_left(face_jpeg):
    exp = batch.expand_uploads([(f"p{i}.jpg", face_jpeg) for i in range(5)], max_photos=3)
    assert [s.label for s in exp.sources] == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert exp.problems == ["2 more files left out: at most 3 photos per batch"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(500):
            zf.writestr(f"{i:03d}.jpg", face_jpeg[:100])
    big = batch.expand_uploads([("many.zip", buf.getvalue())], max_photos=2)  # the rest are counted, not read
    assert [s.label for s in big.sources] == ["many.zip/000.jpg", "many.zip/001.jpg"]
    assert big.problems == ["498 more files left out: at most 2 photos per batch"]


# --------------------------------------------------------------------------- rows


def test_rows_follow_the_common_layout_and_a_bad_photo_is_skipped(predictor, face_jpeg, blank_png):
    truncated = face_jpeg[: len(face_jpeg) // 3]
    exp = batch.expand_uploads([("face.jpg", face_jpeg), ("cut.jpg", truncated), ("blank.png", blank_png)])
    report, events = batch.BatchReport(), []
    rows = list(batch.iter_rows(exp.sources, predictor, report=report, on_event=events.append))
    classes = predictor.class_names
    assert [r["file"] for r in rows][0] == "face.jpg" and rows[-1]["file"] == "blank.png"
    for r in rows:
        assert list(r) == columns(classes)
        assert r["frame"] is None and r["time_s"] is None
        p = np.array([r[c] for c in classes])
        assert abs(p.sum() - 1) < 1e-4 and r["top"] == classes[int(np.argmax(p))]
    faces = [r for r in rows if r["file"] == "face.jpg"]
    assert len(faces) == 1 and faces[0]["whole_image"] is False and faces[0]["face_id"] == 1
    assert faces[0]["top"] == "happy"  # the astronaut smiles
    blank = [r for r in rows if r["file"] == "blank.png"]
    assert len(blank) == 1 and blank[0]["whole_image"] is True
    assert (blank[0]["x"], blank[0]["y"], blank[0]["w"], blank[0]["h"]) == (50, 0, 200, 200)  # the centred square
    assert len(report.skipped) == 1 and report.skipped[0].startswith("cut.jpg: ") and "\n" not in report.skipped[0]
    assert (report.photos, report.faces, report.whole_image) == (2, 1, 1)
    assert [e["done"] for e in events] == [1, 2, 3] and {e["total"] for e in events} == {3}
    assert [e["event"] for e in events].count("skip") == 1


def test_batched_rows_match_one_predict_per_photo(predictor, face_jpeg, blank_png):
    """Several photos in one classification call give what Predictor.predict gives each alone."""
    img = Image.open(io.BytesIO(face_jpeg))
    photos = [face_jpeg, blank_png, encoded(img.resize((400, 400)), "PNG"), encoded(img.transpose(0), "JPEG")]
    exp = batch.expand_uploads([(f"p{i}", d) for i, d in enumerate(photos)])
    report = batch.BatchReport()
    rows = list(batch.predict_photos(exp.sources, predictor, batch_faces=64, report=report))
    assert report.classify_calls == 1  # every crop in one call
    classes = predictor.class_names
    for i, data in enumerate(photos):
        alone = predictor.predict(data)
        mine = [r for r in rows if r["file"] == f"p{i}"]
        assert [(r["x"], r["y"], r["w"], r["h"]) for r in mine] == [f.box for f in alone.faces]
        for r, f in zip(mine, alone.faces):
            assert np.allclose([r[c] for c in classes], f.ensemble, atol=1e-4)


def test_max_faces_keeps_the_largest_faces(predictor):
    from ui.samples import sample_bytes

    two = sample_bytes("Two friends (happy, surprise)")
    exp = batch.expand_uploads([("two.png", two)])
    assert len(list(batch.predict_photos(exp.sources, predictor))) == 2
    rows = list(batch.predict_photos(exp.sources, predictor, max_faces=1))
    assert len(rows) == 1 and rows[0]["face_id"] == 1


# --------------------------------------------------------------------------- which runs


def test_select_runs_defaults_to_the_bundled_default_and_names_what_exists(tmp_path):
    from fer_core.data.defaults import BUNDLED_PREDICT_DEFAULT

    (default,) = batch.select_runs(runs_dir=tmp_path)
    assert default.bundled and default.model_name == BUNDLED_PREDICT_DEFAULT
    assert [r.model_name for r in batch.select_runs(["baseline", "compact"], runs_dir=tmp_path)] == ["baseline", "compact"]
    (by_dir,) = batch.select_runs(run_dirs=[default.path])
    assert by_dir.id == default.id
    with pytest.raises(FERError, match="no run of model 'vgg99'.*baseline, compact"):
        batch.select_runs(["vgg99"], runs_dir=tmp_path)
