"""Section ``feature_cache``: frozen-backbone training through the engine's two real
code paths on the same data, head and epochs.

The plain ``model.fit`` goes through the backbone every epoch
(``fer_core.fit.train._train_scratch`` on the transfer model); the feature cache
(``fer_core.fit.train._train_transfer``) runs the backbone once. The cached path is
measured at the full head epochs (one-time feature extraction included); the
plain path is measured for a few epochs and extrapolated to the same epoch count
(labelled). A smaller set trains both paths for the full epochs to compare
validation accuracy.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np

from .common import _prepare


class _Clock:
    """A ProgressCallback-compatible recorder of epoch ends and final status messages."""

    def __init__(self):
        self.t0 = self.t_end = None
        self.epoch_ends: list[float] = []
        self.statuses: list[tuple[float, str]] = []

    def on_event(self, e: dict) -> None:
        if e.get("event") == "epoch_end":
            self.epoch_ends.append(time.perf_counter())

    def status(self, msg: str, final: bool = True) -> None:
        if final:
            self.statuses.append((time.perf_counter(), msg))


def _both_paths(name: str, ds, x, y1h, size: int, plain_epochs: int, head_epochs: int, cache_root: Path,
                seed: int = 0) -> dict:
    """One model, same init: cached path (head_epochs) first, then plain fit (plain_epochs).

    Cached first so any warm-up one path leaves behind favours the plain path:
    the ratio errs low.
    """
    import keras

    from fer_core.fit.features import FeatureCache
    from fer_core.models import create_model
    from fer_core.compute.forward import compiled_forward, predict_batches
    from fer_core.fit.train import TrainConfig, _train_scratch, _train_transfer

    keras.utils.set_random_seed(seed)
    model = create_model(name, ds.n_classes, image_size=size, weights="none")
    init = model.get_weights()
    ev = ds.eval_split
    y_eval = ds.splits[ev][1]
    n_val = len(ds.splits["validation"][1])

    # (b) feature cache, real code path: key, digest, extraction, cache write, head fit, eval
    keras.utils.set_random_seed(seed)
    c = _Clock()
    # float32 on both paths: this section isolates the cache; bfloat16 is measured in section "precision"
    cfg_c = TrainConfig(model=name, epochs=head_epochs, weights="none", patience=0, image_size=size, seed=seed,
                        precision="float32")
    c.t0 = time.perf_counter()
    probs_c, info = _train_transfer(model, ds, cfg_c, x, y1h, None, c, FeatureCache(cache_root / f"{name}-{n_val}"),
                                    size, c.status)
    c.t_end = time.perf_counter()
    feat_done = next((t for t, m in c.statuses if m.startswith("backbone features")), c.t0)
    cached_hist = info["history"]
    head_epoch_s = np.diff([feat_done, *c.epoch_ends]).tolist()
    cached = {
        "epochs": head_epochs, "cache_hit": bool(info["hit"]), "total_s": c.t_end - c.t0,
        "feature_extraction_s": feat_done - c.t0, "head_epoch_s": head_epoch_s,
        "eval_and_rest_s": c.t_end - (c.epoch_ends[-1] if c.epoch_ends else feat_done),
        "val_accuracy": [float(v) for v in cached_hist.get("val_accuracy", [])],
        "eval_accuracy": float(np.mean(probs_c.argmax(1) == y_eval)),
    }

    # (a) plain model.fit through the frozen backbone every epoch
    model.set_weights(init)
    keras.utils.set_random_seed(seed)
    p = _Clock()
    cfg_p = TrainConfig(model=name, epochs=plain_epochs, weights="none", patience=0, image_size=size, seed=seed,
                        precision="float32")
    history: dict = {}
    p.t0 = time.perf_counter()
    model, _ = _train_scratch(model, cfg_p, x, y1h, None, p, history)  # no checkpoints: bare epochs
    probs_p = predict_batches(compiled_forward(model), x[ev], 128)
    p.t_end = time.perf_counter()
    epoch_s = np.diff([p.t0, *p.epoch_ends]).tolist()
    tail = p.t_end - p.epoch_ends[-1]
    steady = float(np.median(epoch_s[1:])) if len(epoch_s) > 1 else float(epoch_s[0])
    plain = {
        "epochs_measured": plain_epochs, "total_measured_s": p.t_end - p.t0, "epoch_s": epoch_s,
        "first_epoch_s": epoch_s[0], "steady_epoch_s": steady, "eval_and_rest_s": tail,
        "val_accuracy": [float(v) for v in history.get("val_accuracy", [])],
        "eval_accuracy": float(np.mean(probs_p.argmax(1) == y_eval)),
    }
    if plain_epochs < head_epochs:
        plain[f"total_{head_epochs}_epochs_s_extrapolated"] = epoch_s[0] + (head_epochs - 1) * steady + tail
        plain["extrapolation"] = (f"first epoch (incl. pipeline, compile, tracing) + {head_epochs - 1} × median of "
                                  f"epochs 2..{plain_epochs} + eval pass; derived, not measured")
        plain_total = plain[f"total_{head_epochs}_epochs_s_extrapolated"]
    else:
        plain_total = plain["total_measured_s"]
    k = min(len(plain["val_accuracy"]), len(cached["val_accuracy"]))
    res = {"plain_fit": plain, "feature_cache": cached,
           "plain_total_s_at_head_epochs": plain_total,
           "speedup": plain_total / cached["total_s"],
           "val_accuracy_max_abs_diff_same_epochs": (float(np.max(np.abs(np.subtract(
               plain["val_accuracy"][:k], cached["val_accuracy"][:k])))) if k else None),
           "compared_epochs": k, "n_val": n_val, "params": int(model.count_params())}
    del model
    keras.backend.clear_session()
    gc.collect()
    return res


def section_feature_cache(cfg: dict, tmp: Path) -> dict:
    from fer_core.data.datasets import load_dataset

    size, H = cfg["image_size"], cfg["head_epochs"]
    ds = load_dataset("demo", demo_per_class=cfg["fc_per_class"], demo_image_size=size)
    x, y1h = _prepare(ds, size)
    out = {"data": {"demo_per_class": cfg["fc_per_class"], "image_size": size,
                    "split_sizes": {s: int(len(v[1])) for s, v in ds.splits.items()}},
           "head_epochs": H, "plain_epochs_measured": cfg["fc_plain_epochs"],
           "code_paths": {"plain": "fer_core.fit.train._train_scratch(transfer model): model.fit on pixels, frozen backbone",
                          "cached": "fer_core.fit.train._train_transfer: FeatureCache + head fit on features"},
           "settings": "weights=none, patience=0 (exactly the epochs asked), plateau LR schedule, batch 64, seed 0",
           "per_backbone": {}}
    for name in cfg["backbones"]:
        out["per_backbone"][name] = _both_paths(name, ds, x, y1h, size, cfg["fc_plain_epochs"], H, tmp / "fc_cache")
    per = out["per_backbone"]
    plain_sum = sum(r["plain_total_s_at_head_epochs"] for r in per.values())
    cached_sum = sum(r["feature_cache"]["total_s"] for r in per.values())
    out["feature_cache_speedup"] = plain_sum / cached_sum
    out["feature_cache_speedup_definition"] = (f"Σ plain time at {H} epochs (extrapolated from the measured epochs) / "
                                               f"Σ cached time at {H} epochs (measured), over the backbones")
    out["speedup_per_backbone"] = {k: r["speedup"] for k, r in per.items()}

    # Accuracy: both paths for the full head epochs on a smaller set.
    acc = {"data": {"demo_per_class": cfg["fc_acc_per_class"]}, "epochs": H, "per_backbone": {}}
    ds_a = load_dataset("demo", demo_per_class=cfg["fc_acc_per_class"], demo_image_size=size, seed=1)
    xa, ya = _prepare(ds_a, size)
    acc["data"]["split_sizes"] = {s: int(len(v[1])) for s, v in ds_a.splits.items()}
    for name in cfg["fc_acc_backbones"]:
        r = _both_paths(name, ds_a, xa, ya, size, H, H, tmp / "fc_cache_acc")
        va_p, va_c = r["plain_fit"]["val_accuracy"][-1], r["feature_cache"]["val_accuracy"][-1]
        n = r["n_val"]
        pbar = (va_p + va_c) / 2
        noise = 2 * np.sqrt(2 * max(pbar * (1 - pbar), 1.0 / n) / n)  # ≈95 % band of a difference of two accuracies
        acc["per_backbone"][name] = {
            "plain_final_val_accuracy": va_p, "cached_final_val_accuracy": va_c, "diff": va_c - va_p,
            "noise_band_95": float(noise), "within_noise": bool(abs(va_c - va_p) <= noise),
            "plain_eval_accuracy": r["plain_fit"]["eval_accuracy"], "cached_eval_accuracy": r["feature_cache"]["eval_accuracy"],
            "val_accuracy_curves": {"plain": r["plain_fit"]["val_accuracy"], "cached": r["feature_cache"]["val_accuracy"]},
            "max_abs_epoch_diff": r["val_accuracy_max_abs_diff_same_epochs"],
            "timing_measured_s": {"plain": r["plain_fit"]["total_measured_s"], "cached": r["feature_cache"]["total_s"]},
            "speedup_measured_at_full_epochs": r["speedup"], "n_val": n}
    acc["noise_band_definition"] = "2·sqrt(2·p(1−p)/n_val), p = mean of the two final val accuracies (p(1−p) ≥ 1/n)"
    acc["all_within_noise"] = all(v["within_noise"] for v in acc["per_backbone"].values())
    out["accuracy_check"] = acc
    return out
