"""benchmarks/soak.py's own arithmetic (no server): warm and idle RSS, failed health checks, p95, targets."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.soak import Log, summarize, upload_state  # noqa: E402


def _sample(t, phase, rss, ok=True, cpu=0.0):
    return {"t": t, "phase": phase, "rss_mb": rss, "server_cpu_s": cpu, "health_ok": ok, "health_s": 0.01,
            "machine_busy_pct": 50.0, "load_1m": 1.0}


def test_summary_reads_warm_idle_tail_peak_and_targets():
    samples = ([_sample(t, "warm", 800 + t % 2) for t in range(0, 10)]
               + [_sample(10 + t, "soak", 900 + 10 * t, ok=t != 3) for t in range(50)]
               + [_sample(60 + t, "idle", 1200 if t < 40 else 920, cpu=5.0) for t in range(60)])
    log = Log()
    log.answers = [(i, 0.1 * i) for i in range(1, 21)]  # 0.1 … 2.0 s
    log.event(0, "photo", True, 1.0)
    log.event(0, "bomb", False, 2.0, "zip bomb")
    s = summarize(samples, log)
    assert s["warm_rss_mb"] == 800.5 and s["peak_rss_mb"] == 1390
    assert s["idle_after_rss_mb"] == 920 and s["idle_over_warm_mb"] == 119.5  # the last 30 s of the idle phase
    assert s["failed_health_checks"] == 1 and s["health_checks"] == len(samples)
    assert s["photo_answer_p95_s"] == 1.905 and s["photo_answers"] == 20
    assert s["visits"]["bomb"] == {"n": 1, "failed": 1, "median_s": 2.0, "max_s": 2.0}
    assert s["targets_met"] == {"idle_over_warm_mb": True, "peak_mb": True, "failed_health_checks": False,
                                "photo_answer_p95_s": False}
    assert s["all_targets_met"] is False and s["server_cpu_s"] == 5.0


def test_upload_state_is_what_the_browser_sends():
    w = upload_state("$$ID-abc-predict_upload", "sess", [("f1", "me.jpg", 1234)])
    info = w.file_uploader_state_value.uploaded_file_info[0]
    assert (info.file_id, info.name, info.size) == ("f1", "me.jpg", 1234)
    assert info.file_urls.upload_url == "/_stcore/upload_file/sess/f1"
