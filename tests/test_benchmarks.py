"""benchmarks/speed.py --smoke: every section runs and the JSON has the documented shape.

The smoke mode uses minimal sizes (48 px, baseline + VGG19, a few images), so the
numbers themselves mean nothing; the test checks that each measurement path runs
end to end and reports positive numbers where the full benchmark will.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "speed.py"
HEADLINE = ("feature_cache_speedup", "predict_e2e_p50_s", "predict_e2e_p95_s", "predict_e2e_4faces_p50_s",
            "predict_e2e_4faces_p95_s", "cold_first_prediction_s", "train_all_five_s", "rss_all_five_mb",
            "matmul_f32_gflops")
SECTIONS = ("matmul", "train_all_five", "feature_cache", "prediction", "memory", "efficiency", "model_levers",
            "runtime_levers", "tfdata_levers", "precision")


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _agreement_ok(a: dict) -> None:
    assert set(a) >= {"n", "max_abs_diff", "top1_agreement", "ok", "ok_excluding_near_ties"}
    assert a["n"] > 0 and 0 <= a["top1_agreement"] <= 1 and a["max_abs_diff"] >= 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("speed")
    out = tmp / "speed.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "FER_CACHE_DIR": str(tmp / "cache")})
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    return json.loads(out.read_text()), proc.stdout


def test_smoke_json_has_every_section_and_positive_headlines(smoke):
    data, stdout = smoke
    assert data["schema_version"] == 1 and data["mode"] == "smoke" and data["errors"] == {}
    m = data["machine"]
    assert m["logical_cpus"] >= 1 and m["cpu_model"] and m["packages"]["tensorflow"]
    for key in HEADLINE:
        assert _positive(data[key]), (key, data[key])
    for name in SECTIONS:
        assert name in data["sections"] and "error" not in data["sections"][name], name
    assert set(data["targets"]) == {"feature_cache_speedup", "predict_e2e_p95_s", "train_all_five_s"}
    assert data["elapsed_s"] > 0 and "others_busy_fraction" in data["cpu"]
    table = stdout.strip().splitlines()[-30:]  # the table is printed last
    assert any(line.startswith("feature_cache_speedup") for line in table)


def test_smoke_sections_report_what_was_measured(smoke):
    s = smoke[0]["sections"]
    fc = s["feature_cache"]
    (name, r), = fc["per_backbone"].items()
    assert r["plain_fit"]["epochs_measured"] == fc["plain_epochs_measured"] and _positive(r["plain_fit"]["steady_epoch_s"])
    assert _positive(r["feature_cache"]["total_s"]) and r["feature_cache"]["cache_hit"] is False
    assert _positive(r["speedup"]) and _positive(fc["feature_cache_speedup"])
    acc = fc["accuracy_check"]["per_backbone"][name]
    assert isinstance(acc["within_noise"], bool) and _positive(acc["noise_band_95"])

    pred = s["prediction"]
    for key, n in (("one_face", 1), ("four_faces", 4)):
        e = pred["e2e"][key]
        assert e["faces_in_photo"] == n and 0 <= e["faces_detected"] <= n and _positive(e["p95_s"])
        assert pred["photos"][key]["size"] == [1920, 1080]
    assert _positive(pred["cold"]["cold_first_prediction_s"]) and _positive(pred["cold"]["predictor_init_s"])
    assert set(pred["per_model"]) == {"baseline", "vgg19"}
    for v in pred["per_model"].values():
        assert _positive(v["single_p50_ms"]) and _positive(v["batch_imgs_per_s"]) and _positive(v["gflops_per_image"])

    assert _positive(s["memory"]["rss_all_five_mb"]) and _positive(s["memory"]["peak_rss_mb"])
    for v in s["efficiency"]["per_model"].values():
        assert _positive(v["fraction_of_matmul_f32"]) and _positive(v["achieved_gflops"])

    lev = s["model_levers"]
    assert _positive(lev["face_batching"]["speedup"]) and lev["detect_max_side"]["per_max_side"]
    for m in lev["per_model"].values():
        _agreement_ok(m["batch_size"]["agreement_batch1_vs_32"])
        for variant in ("static_batch_shape", "xla", "bfloat16", "bfloat16_xla"):
            assert "error" not in m[variant], (variant, m[variant])
            assert _positive(m[variant]["speedup_batch32"]) and _positive(m[variant]["single_p50_ms"])
            _agreement_ok(m[variant]["agreement"])
        assert m["onnxruntime"]["status"] in ("skipped", "measured")

    rt = s["runtime_levers"]["per_config"]["default"]["per_model"]
    for v in rt.values():
        assert v["agreement"]["ok"] and _positive(v["single_p50_ms"])
    for part in ("scratch_pixels", "head_on_features"):
        for v in s["tfdata_levers"][part]["per_variant"].values():
            assert _positive(v["speedup"])
            _agreement_ok(v["agreement"])

    prec = s["precision"]
    assert prec["auto_resolves_to"] in ("float32", "bfloat16")
    base = prec["scratch"]["baseline"]
    assert _positive(base["speedup"]) and set(base["per_precision"]) == {"float32", "bfloat16"}
    for v in base["per_precision"].values():
        assert _positive(v["train_imgs_per_s"]) and 0 <= v["eval_accuracy"] <= 1
    fp = prec["feature_pass"]["vgg19"]
    assert _positive(fp["speedup"]) and _positive(fp["float32_imgs_per_s"]) and _positive(fp["bfloat16_imgs_per_s"])
    _agreement_ok(fp["agreement_head_on_bf16_vs_float32_features"])


def test_unknown_skip_name_is_refused():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--skip", "nonsense"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown section" in proc.stderr

