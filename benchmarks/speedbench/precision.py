"""Section ``precision``: float32 against mixed bfloat16 for scratch training and for the
frozen backbones' feature pass, with accuracy and agreement."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np

from .common import _prepare, agreement
from .forward import _paired, _tile_to


def section_precision(cfg: dict, tmp: Path) -> dict:
    """float32 vs mixed bfloat16, through the engine's own code, side by side.

    * scratch training (``baseline`` at the run's size, ``compact`` at 48 px):
      same init, data, order and epochs in both precisions; epoch time and
      validation/test accuracy (the bf16-trained weights are evaluated through
      their float32 copy, as the trainer saves them);
    * the frozen backbones' one-off feature pass: images/s of the float32
      backbone and of its bfloat16 twin (``fer_core.compute.precision.with_precision``),
      timed alternately; then a head trained on the bf16 features (as the
      trainer does) is applied to bf16 and to float32 features of the eval
      images (the saved float32 model): the agreement of those probabilities.
    """
    import keras

    from fer_core.data.datasets import load_dataset
    from fer_core.compute.forward import compiled_forward, predict_batches
    from fer_core.models import create_model, split_transfer_model
    from fer_core.compute.precision import as_float32, cpu_has_native_bf16, dtype_policy, resolve_precision, with_precision
    from fer_core.fit.train import TrainConfig, _compile, _train_scratch

    out = {"cpu_has_native_bf16": cpu_has_native_bf16(), "auto_resolves_to": resolve_precision("auto"),
           "scratch": {}, "feature_pass": {}}
    E = cfg["precision_epochs"]

    class _Epochs:
        def __init__(self):
            self.t = []

        def on_event(self, e):
            if e.get("event") == "epoch_end":
                self.t.append(time.perf_counter())

    for name in cfg["precision_scratch_models"]:
        size = cfg["image_size"] if name == "baseline" else 48
        ds = load_dataset("demo", demo_per_class=cfg["precision_per_class"], demo_image_size=size, seed=3)
        channels = 1 if name == "compact" else 3
        from fer_core.data.preprocess import prepare_images

        x = {s: prepare_images(xs, size, channels) for s, (xs, _) in ds.splits.items()}
        y1h = {s: ds.training_targets(s) for s in ds.splits}
        keras.utils.set_random_seed(0)
        init = create_model(name, ds.n_classes, image_size=size).get_weights()
        row = {"image_size": size, "train_images": int(len(x["train"])), "epochs": E, "per_precision": {}}
        for precision in ("float32", "bfloat16"):
            keras.utils.set_random_seed(0)
            with dtype_policy(precision):
                model = create_model(name, ds.n_classes, image_size=size)
                model.set_weights(init)
                clock, history = _Epochs(), {}
                c = TrainConfig(model=name, epochs=E, patience=0, seed=0, precision=precision)
                t0 = time.perf_counter()
                model, _ = _train_scratch(model, c, x, y1h, None, clock, history)
            saved = as_float32(model)
            probs = predict_batches(compiled_forward(saved), x[ds.eval_split], 64)
            ep = np.diff([t0, *clock.t]).tolist()
            steady = float(np.median(ep[1:])) if len(ep) > 1 else float(ep[0])
            row["per_precision"][precision] = {
                "epoch_s": ep, "steady_epoch_s": steady, "train_imgs_per_s": len(x["train"]) / steady,
                "val_accuracy": [float(v) for v in history.get("val_accuracy", [])],
                "eval_accuracy": float(np.mean(probs.argmax(1) == ds.splits[ds.eval_split][1])),
                "eval_split": ds.eval_split}
            del model, saved
            keras.backend.clear_session()
            gc.collect()
        f32, b16 = row["per_precision"]["float32"], row["per_precision"]["bfloat16"]
        row["speedup"] = f32["steady_epoch_s"] / b16["steady_epoch_s"]
        row["eval_accuracy_diff"] = b16["eval_accuracy"] - f32["eval_accuracy"]
        out["scratch"][name] = row

    size = cfg["image_size"]
    ds = load_dataset("demo", demo_per_class=cfg["precision_per_class"], demo_image_size=size, seed=4)
    x, y1h = _prepare(ds, size)
    B = 32
    for name in cfg["backbones"]:
        keras.utils.set_random_seed(0)
        model = create_model(name, ds.n_classes, image_size=size, weights="none")
        feats32, head = split_transfer_model(model)
        feats16 = with_precision(feats32, "bfloat16")
        f32, f16 = compiled_forward(feats32), compiled_forward(feats16)
        probe = _tile_to(x["train"], B)
        timing = _paired(f32, f16, probe, 1, B, cfg["precision_batch_reps"])
        # The trainer's way: head trained on bf16 features of train/validation ...
        tr16 = predict_batches(f16, x["train"], B)
        va16 = predict_batches(f16, x["validation"], B)
        _compile(head, TrainConfig(model=name), 1e-3, 1, cfg["head_epochs"])
        import tensorflow as tf

        head.fit(tf.data.Dataset.from_tensor_slices((tr16, y1h["train"])).shuffle(len(tr16), seed=0).batch(64),
                 validation_data=(va16, y1h["validation"]), epochs=cfg["head_epochs"], verbose=0, shuffle=False)
        # ... applied to the eval images' bf16 features and to their float32 features (the saved model's)
        ev = x[ds.eval_split]
        h = compiled_forward(head)
        p16 = predict_batches(h, predict_batches(f16, ev, B), 64)
        p32 = predict_batches(h, predict_batches(f32, ev, B), 64)
        out["feature_pass"][name] = {
            "batch": B, "float32_imgs_per_s": timing["reference_batch_imgs_per_s"],
            "bfloat16_imgs_per_s": timing[f"batch_imgs_per_s"], "speedup": timing[f"speedup_batch{B}"],
            "agreement_head_on_bf16_vs_float32_features": agreement(p16, p32),
            "eval_images": int(len(ev))}
        del model, feats32, feats16, head
        keras.backend.clear_session()
        gc.collect()
    sp = [v["speedup"] for v in out["feature_pass"].values()]
    out["note"] = ("weights=none backbones: speed does not depend on the weights; agreement is measured on a head "
                   "trained on bf16 features (what the trainer does), applied to float32 features (what the saved "
                   "model computes)")
    out["feature_pass_speedup_geomean"] = float(np.exp(np.mean(np.log(sp)))) if sp else None
    return out
