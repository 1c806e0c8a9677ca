"""``python -m predict`` end to end, as a user runs it: real photos made from ui/assets/astronaut.jpg, a zip, a clip.

Bad input is refused before TensorFlow loads, so those cases cost about a second each; the
JSON-lines case runs ``predict.cli.main`` in this process (one TensorFlow start-up less).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_core.inference.rows import columns

ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = ROOT / "ui" / "assets" / "astronaut.jpg"
FER2013_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def predict_cli(*args: str, tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "FER_RUNS_DIR": str(tmp_path / "no-runs")}
    return subprocess.run([sys.executable, "-m", "predict", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """photos/ (a JPEG, a smaller PNG, a JPEG named .dat, a text file, a truncated JPEG) and set.zip (one photo)."""
    root = tmp_path_factory.mktemp("cli")
    photos = root / "photos"
    (photos / "sub").mkdir(parents=True)
    img = Image.open(ASTRONAUT).convert("RGB")
    jpeg = ASTRONAUT.read_bytes()
    (photos / "a.jpg").write_bytes(jpeg)
    img.resize((320, 320)).save(photos / "sub" / "b.png")
    img.resize((400, 300)).save(photos / "sub" / "c.dat", "JPEG")
    (photos / "notes.txt").write_text("not a photo")
    (photos / "cut.jpg").write_bytes(jpeg[:400])
    with zipfile.ZipFile(root / "set.zip", "w") as zf:
        zf.writestr("inner/d.jpg", jpeg)
    return root


def test_folder_and_zip_to_csv_skipping_bad_files(inputs, tmp_path):
    out = tmp_path / "results.csv"
    proc = predict_cli(inputs / "photos", inputs / "set.zip", "--out", out, tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with out.open(newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == columns(FER2013_CLASSES)
    rows = [dict(zip(table[0], r)) for r in table[1:]]
    photos = inputs / "photos"
    assert [r["file"] for r in rows] == [str(photos / "a.jpg"), str(photos / "sub" / "b.png"),
                                         str(photos / "sub" / "c.dat"), f"{inputs / 'set.zip'}/inner/d.jpg"]
    for r in rows:
        assert r["face_id"] == "1" and r["whole_image"] == "False" and r["frame"] == "" and r["time_s"] == ""
        assert r["top"] == "happy" and abs(sum(float(r[c]) for c in FER2013_CLASSES) - 1) < 1e-3
        assert int(r["w"]) == int(r["h"]) > 0
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2
    assert any("notes.txt: not a photo" in s for s in skipped) and any("cut.jpg: " in s for s in skipped)
    assert "done: 4 photos (4 faces; 0 without a face" in proc.stderr and "2 files skipped" in proc.stderr
    assert not (tmp_path / "results.csv.partial").exists()


def test_json_lines_to_stdout_for_a_photo_and_a_video(inputs, tmp_path, monkeypatch, capsys):
    """In-process through ``predict.cli.main`` (the subprocess above covers start-up): saves a TensorFlow start."""
    pytest.importorskip("av")
    from fer_core.inference.video import clip_from_photo, encode_clip
    from predict.cli import main

    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    clip = tmp_path / "pan.bin"  # no extension: the content says it is a video
    clip.write_bytes(encode_clip(clip_from_photo(photo, seconds=1.0, fps=10, size=(320, 240)), fps=10))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "no-runs"))
    code = main([str(inputs / "photos" / "a.jpg"), str(clip), "--json", "--fps", "5", "--out", "-"])
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(list(r) == columns(FER2013_CLASSES) for r in rows)
    assert rows[0]["file"].endswith("a.jpg") and rows[0]["frame"] is None and rows[0]["face_id"] == 1
    video = [r for r in rows if r["file"] == str(clip)]
    assert [r["time_s"] for r in video] == [0.0, 0.2, 0.4, 0.6, 0.8]  # 5 samples a second of video time
    assert all(r["face_id"] == 1 and r["top"] for r in video)
    assert "done: 1 photo (1 face;" in err and "1 video →" in err


@pytest.mark.parametrize("args, message", [
    (["missing.jpg"], "missing.jpg: no such file or folder"),
    (["{report}"], "report.jpg: not a photo (JPEG, PNG, WebP, BMP or GIF), zip or video (it is a PDF document)"),
    (["{photo}", "--models", "vgg99"], "no run of model 'vgg99'"),
    ([], "no INPUT given"),
])
def test_bad_input_exits_2_with_one_line(args, message, inputs, tmp_path):
    (tmp_path / "report.jpg").write_bytes(b"%PDF-1.4 a renamed document")
    args = [a.format(report=tmp_path / "report.jpg", photo=inputs / "photos" / "a.jpg") for a in args]
    proc = predict_cli(*args, "--out", tmp_path / "out.csv", tmp_path=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out.csv").exists() and proc.stdout == ""
