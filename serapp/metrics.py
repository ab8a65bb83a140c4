"""Classification metrics over a fixed label list: WA, UA, macro-F1, per-class recall, confusion.

Shared by the trainer (test folds) and the listening-test report (people and models).
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(true: list[int], pred: list[int], n_classes: int) -> np.ndarray:
    """Counts (rows: true, columns: predicted), by one bincount."""
    t = np.asarray(true, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


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


def recall_by_group(groups, true, pred, n_groups: int, n_classes: int) -> np.ndarray:
    """Recall per group and class (rows: groups), NaN where the class is not in that group's truth."""
    g, t = np.asarray(groups, dtype=np.int64), np.asarray(true, dtype=np.int64)
    hit = (t == np.asarray(pred, dtype=np.int64)).astype(np.int64)
    cells = g * n_classes + t
    support = np.bincount(cells, minlength=n_groups * n_classes).reshape(n_groups, n_classes)
    correct = np.bincount(cells, weights=hit, minlength=n_groups * n_classes).reshape(n_groups, n_classes)
    return np.where(support > 0, correct / np.maximum(support, 1), np.nan)


def accuracy_ua_by_group(groups: np.ndarray, true: np.ndarray, pred: np.ndarray, n_groups: int,
                         n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, accuracy, UA) per group in one vectorised pass, by the same definitions as
    `classification_metrics` (UA: mean recall over the classes present in that group's truth);
    NaN where a group has no rows. Many small groups (raters) cost no more than one big one."""
    g, t = np.asarray(groups, dtype=np.int64), np.asarray(true, dtype=np.int64)
    hit = (t == np.asarray(pred, dtype=np.int64)).astype(np.int64)
    n = np.bincount(g, minlength=n_groups)
    recall = recall_by_group(g, t, pred, n_groups, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(g, weights=hit, minlength=n_groups) / n
        present = (~np.isnan(recall)).sum(axis=1)
        ua = np.where(present > 0, np.nansum(recall, axis=1) / np.maximum(present, 1), np.nan)
    return n, accuracy, ua
