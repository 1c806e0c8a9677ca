"""Metrics of a trained model, computed with scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, precision_recall_fscore_support


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names) -> dict:
    """Accuracy, macro-F1, cross-entropy, confusion matrix (rows = true class), per-class P/R/F1.

    ``probs`` is ``(N, C)`` softmax output; labels absent from ``y_true`` still
    get a row/column so every model of a dataset has the same matrix shape.
    """
    labels = np.arange(len(class_names))
    y_pred = probs.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    clipped = np.clip(probs, 1e-7, 1.0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "loss": float(log_loss(y_true, clipped / clipped.sum(axis=1, keepdims=True), labels=labels)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "class_names": list(class_names),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(class_names)
        },
        "n_samples": int(len(y_true)),
    }


def paper_set_scores(ds, split: str, probs: np.ndarray) -> dict | None:
    """Accuracy and macro-F1 of ``probs`` (N, C) on the FER+ paper's test set within ``split``; None off FER+.

    Why beside the run's own (plurality) accuracy: published FER+ accuracies
    are measured on the paper's set (:func:`fer_core.data.ferplus.paper_majority`),
    which leaves out the faces the crowd split on; a run's record carries both
    so the Compare page can put a run next to those numbers like for like.
    """
    rows = (ds.paper_rows or {}).get(split)
    if rows is None or not rows.any():
        return None
    y = ds.splits[split][1][rows]
    m = classification_metrics(y, probs[rows], ds.class_names)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n_samples": m["n_samples"]}
