"""What each mode runs, at which sizes, and the targets the full run is checked against."""

from __future__ import annotations

from .common import BACKBONES, FIVE

SCHEMA_VERSION = 1
SECTIONS = ("matmul", "train_all_five", "feature_cache", "prediction", "memory", "efficiency",
            "model_levers", "runtime_levers", "tfdata_levers", "precision")
SKIPPABLE = SECTIONS[1:] + ("levers",)  # "levers" = all three lever sections

#: Fresh-process runtime settings compared side by side (threads must be set before TF starts).
RUNTIME_CONFIGS = {
    "default": {},
    "intra1_inter1": {"intra": 1, "inter": 1},
    "intra2_inter1": {"intra": 2, "inter": 1},
    "intra4_inter2": {"intra": 4, "inter": 2},  # oversubscribed on 2 cores
    "onednn_off": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
    # float32 storage, bf16 arithmetic inside oneDNN (AVX512-BF16); TF's and oneDNN's own switch.
    "onednn_fpmath_bf16": {"env": {"TF_SET_ONEDNN_FPMATH_MODE": "BF16", "ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}},
}

MODES = {
    "full": dict(
        image_size=128, models=FIVE, backbones=BACKBONES,
        fc_per_class=200, fc_plain_epochs=3, head_epochs=10, fc_acc_per_class=24, fc_acc_backbones=BACKBONES,
        train_per_class=732, train_epochs=10,
        matmul_sizes=(1024, 2048, 4096), matmul_seconds=2.0,
        latency_reps=30, throughput_batch=64, throughput_reps=4, e2e_warmup=3, e2e_reps=30, photo_tries=12,
        detect_sides=(1920, 960, 640, 480), detect_reps=5,
        agree_per_class=16, lever_models=FIVE, lever_variants=("xla", "bfloat16", "bfloat16_xla"),
        lever_batches=(1, 8, 32, 64, 128), lever_reps=20, lever_batch_reps=3,
        runtime_configs=tuple(RUNTIME_CONFIGS), runtime_models=FIVE, runtime_repeat_default=True,
        tfdata_per_class=100, tfdata_epochs=3, tfdata_head_n=4000, tfdata_rounds=3,
        precision_scratch_models=("baseline", "compact"), precision_per_class=200, precision_epochs=8,
        precision_batch_reps=4,
    ),
    "quick": dict(  # the same sections at small sizes, under 3 min on 2 idle cores. Most of the time is
                    # TensorFlow building and tracing networks (it does not shrink with the data), so the
                    # per-backbone sections (feature cache, bf16 feature pass) take one backbone, not four.
        image_size=96, models=FIVE, backbones=("resnet50v2",),
        fc_per_class=8, fc_plain_epochs=2, head_epochs=10, fc_acc_per_class=4, fc_acc_backbones=("resnet50v2",),
        train_per_class=8, train_epochs=3,
        matmul_sizes=(2048,), matmul_seconds=1.0,
        latency_reps=6, throughput_batch=16, throughput_reps=2, e2e_warmup=1, e2e_reps=6, photo_tries=8,
        detect_sides=(1920, 640), detect_reps=2,
        agree_per_class=4, lever_models=("resnet50v2",), lever_variants=("xla", "bfloat16"),
        lever_batches=(1, 16), lever_reps=5, lever_batch_reps=1,
        runtime_configs=("default", "onednn_fpmath_bf16"), runtime_models=("resnet50v2",),
        tfdata_per_class=8, tfdata_epochs=2, tfdata_head_n=1000, tfdata_rounds=2,
        precision_scratch_models=("baseline",), precision_per_class=8, precision_epochs=2, precision_batch_reps=1,
    ),
    "smoke": dict(
        image_size=48, models=("baseline", "vgg19"), backbones=("vgg19",),
        fc_per_class=3, fc_plain_epochs=2, head_epochs=2, fc_acc_per_class=3, fc_acc_backbones=("vgg19",),
        train_per_class=3, train_epochs=1,
        matmul_sizes=(256,), matmul_seconds=0.1,
        latency_reps=2, throughput_batch=4, throughput_reps=1, e2e_warmup=1, e2e_reps=2, photo_tries=1,
        detect_sides=(640,), detect_reps=1,
        agree_per_class=1, lever_models=("baseline",), lever_variants=("xla", "bfloat16", "bfloat16_xla"),
        lever_batches=(1, 4), lever_reps=2, lever_batch_reps=1,
        runtime_configs=("default",), runtime_models=("baseline",),
        tfdata_per_class=3, tfdata_epochs=1, tfdata_head_n=64, tfdata_rounds=1,
        precision_scratch_models=("baseline",), precision_per_class=3, precision_epochs=1, precision_batch_reps=1,
    ),
}

TARGETS = {  # headline key → (comparison, value); checked in full mode only
    "feature_cache_speedup": (">=", 8.0),
    "predict_e2e_p95_s": ("<=", 1.0),
    "train_all_five_s": ("<=", 900.0),
}
