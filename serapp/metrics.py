"""Classification metrics over a fixed label list: WA, UA, macro-F1, per-class recall, confusion.

Shared by the trainer (test folds) and the listening-test report (people and models).
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(true: list[int], pred: list[int], n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, p in zip(true, pred):
        cm[t, p] += 1
    return cm


def classification_metrics(true: list[int], pred: list[int], labels: list[str]) -> dict:
    """WA = accuracy; UA = mean recall over the classes present in `true` (balanced accuracy)."""
    cm = confusion_matrix(true, pred, len(labels))
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    diag = np.diag(cm).astype(float)
    present = support > 0
    recall = np.divide(diag, support, out=np.zeros_like(diag), where=present)
    precision = np.divide(diag, predicted, out=np.zeros_like(diag), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(diag), where=(precision + recall) > 0)
    n = int(support.sum())
    return {
        "n": n,
        "wa": float(diag.sum() / n) if n else 0.0,
        "ua": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_recall": {labels[i]: float(recall[i]) for i in range(len(labels)) if present[i]},
        "labels": list(labels),
        "confusion": cm.tolist(),
    }
