"""benchmarks/load.py: its pure parts without a browser, and (marked ``browser``) a one-visitor smoke run."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import load  # noqa: E402


def test_percentiles_match_numpy():
    xs = [0.3, 1.2, 0.1, 5.0, 2.2, 0.9, 3.3]
    for q in (0, 50, 90, 95, 100):
        assert load.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert load.percentile([], 95) is None
    assert load.percentile([None, 2.0], 50) == 2.0
    s = load.summarize([1.0, None, 3.0])
    assert s == {"n": 2, "p50": 2.0, "p95": 2.9, "max": 3.0, "mean": 2.0}
    assert load.summarize([])["p95"] is None


def test_photo_variants_differ_and_keep_the_face():
    from PIL import Image

    from fer_core.faces.detect import detect_faces

    photos = load.photo_variants(6)
    assert len(set(photos)) == 6  # every session uploads different bytes
    sizes = set()
    for data in photos:
        img = Image.open(io.BytesIO(data))
        assert img.format == "JPEG" and min(img.size) >= 300
        sizes.add(img.size)
        found = detect_faces(np.asarray(img.convert("RGB")))
        assert len(found) == 1, img.size  # the astronaut's face, whole, and nothing else
    assert len(sizes) > 1
    assert load.photo_variants(3) == photos[:3]  # deterministic


def _fake_round(n: int, page: float, answer: float, fail: int = 0) -> dict:
    sessions = [{"ok": i >= fail, "page_ready_s": page + 0.1 * i, "answer_s": answer + 0.1 * i,
                 "answer_done_s": answer + 0.2 + 0.1 * i, "error": "TimeoutError: x" if i < fail else None}
                for i in range(n)]
    summary = load.round_summary(sessions, wall_s=page + answer + 1)
    summary["rss_peak_mb"] = 900.0 + n
    return summary


def test_result_schema_and_targets(tmp_path):
    log = tmp_path / "timing.jsonl"
    rows = [{"event": "predict", "t": 100.0 + i, "total": 0.2 + 0.1 * i, "detect": 0.1, "classify": 0.05}
            for i in range(8)] + [{"event": "other", "t": 101.0}]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    server = load.server_times(log, 100.0, 200.0)
    assert server["predictions"] == 8 and server["total_s"]["max"] == pytest.approx(0.9)
    app = {str(n): _fake_round(n, 2.0, 0.8) for n in (1, 4, 8)}
    app["8"]["server"] = server
    floor = {str(n): _fake_round(n, 1.8, 0.5) for n in (1, 4, 8)}
    raw = {"app": {"rounds": app, "rss_peak_mb": 950.0}, "floor": {"rounds": floor}}
    h = load.headline(raw, [1, 4, 8])
    result = {"created": "2026-11-25 18:00 UTC", "command": "python benchmarks/load.py", "machine": load.machine_info(),
              **h}
    assert load.validate(result) == []
    assert result["sessions"] == 8 and result["success_rate"] == 1.0
    assert result["page_ready_p95_s"] == pytest.approx(load.percentile([2.0 + 0.1 * i for i in range(8)], 95), abs=1e-3)
    assert result["server_predict_p95_s"] == server["total_s"]["p95"]
    assert result["server_rss_peak_mb"] == 950.0
    t = result["targets"]
    assert t["page_ready_p95_s"]["limit"] == pytest.approx(1.5 * result["floor_page_ready_p95_s"], abs=1e-3)
    assert t["page_ready_p95_s"]["met"] and t["answer_p95_s"]["met"] and t["server_rss_peak_mb"]["met"]
    json.dumps(result)  # serialisable as is
    broken = dict(result)
    del broken["answer_p95_s"]
    assert any("answer_p95_s" in p for p in load.validate(broken))
    # a failed session counts against the success rate, not in the answer times
    failing = load.round_summary([{"ok": False, "page_ready_s": None, "error": "boom"},
                                  {"ok": True, "page_ready_s": 1.0, "answer_s": 1.0}], 3.0)
    assert failing["success_rate"] == 0.5 and failing["answer_s"]["n"] == 1 and failing["errors"] == ["boom"]


def test_optional_round_is_skipped_after_failures():
    raw = {"app": {"rounds": {"1": _fake_round(1, 1, 1), "8": _fake_round(8, 1, 1, fail=2),
                              "16": {"skipped": "the previous round had failures"}}}}
    h = load.headline(raw, [1, 8, 16])
    assert h["sessions"] == 8 and h["success_rate"] == 0.75
    assert h["targets"]["success_rate"]["met"] is False


def test_floor_page_is_a_minimal_streamlit_script():
    compile(load.FLOOR_APP, "floor_app.py", "exec")
    assert "st.file_uploader" in load.FLOOR_APP and "st.image" in load.FLOOR_APP
    assert "fer_core" not in load.FLOOR_APP


@pytest.mark.browser
@pytest.mark.skipif(not Path(load.CHROMIUM).exists(), reason=f"{load.CHROMIUM} not found (apt-get install chromium)")
def test_one_visitor_smoke_run(tmp_path):
    """N=1 against the real app (bundled models), no floor: the harness works end to end."""
    out = tmp_path / "load.json"
    assert load.main(["--sessions", "1", "--no-floor", "--timeout", "90", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert load.validate(result) == []
    assert result["sessions"] == 1 and result["success_rate"] == 1.0, result["per_n"]["1"]["errors"]
    assert result["per_n"]["1"]["server"]["predictions"] == 1
    assert result["cold_first_visit"]["ok"] and result["server_rss_peak_mb"] > 100


def test_lever_headline_takes_the_best_round():
    def rnd(p95, cpu, tput):
        return {"threads_1": {"latency_s": {"p50": 0.2}},
                "threads_8": {"latency_s": {"p50": p95 / 2, "p95": p95}, "throughput_photos_per_s": tput,
                              "cpu_s_per_photo": cpu}}

    entry = {"rounds": [rnd(5.0, 0.3, 2.0), {"error": "x"}, rnd(3.0, 0.35, 2.5)]}
    best = load.lever_best(entry, 8)
    assert best["threads_8_p95_s"] == 3.0 and best["cpu_s_per_photo_min"] == 0.3 and best["throughput_photos_per_s"] == 2.5
    assert load.lever_best({"rounds": [{"error": "x"}]}, 8) == {}
    assert all({"batching", "detectors"} <= set(o) for o in load.LEVERS.values())
