"""The one scoring rule for a model on labelled data: argmax over the labels the data has.

Used by `ser-train cv` and `evaluate`, `serapp bench-report --model` and the listening test.
A model may know labels the test data lacks (RAVDESS' calm, scored on TESS): those never win.
Where the data has only one of neutral and calm, the other's probability counts as that one's,
because corpora use the two names for the same unemotional reading (TurEV-DB says calm, TESS
neutral). A test label the model cannot produce even so is not scorable: callers leave its
clips out and say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MERGED_PAIRS = (("neutral", "calm"),)
RULE = ("argmax over the test data's labels; where the data has only one of neutral and calm, "
        "the other's probability counts as that one's")


def _partner(label: str) -> str | None:
    for a, b in MERGED_PAIRS:
        if label == a:
            return b
        if label == b:
            return a
    return None


class ScoringRule:
    """Model probabilities (over `model_labels`) -> scores and choices over the test labels."""

    def __init__(self, model_labels: Sequence[str], test_labels: Sequence[str]):
        self.model_labels = list(model_labels)
        test_labels = list(dict.fromkeys(test_labels))
        columns: list[list[int]] = []
        labels: list[str] = []
        for label in test_labels:
            cols = [self.model_labels.index(label)] if label in self.model_labels else []
            other = _partner(label)
            if other is not None and other not in test_labels and other in self.model_labels:
                cols.append(self.model_labels.index(other))
            if cols:
                labels.append(label)
                columns.append(cols)
        self.labels = labels  # the test labels this model can be scored on, in the given order
        self.unscorable = [x for x in test_labels if x not in labels]
        self._matrix = np.zeros((len(self.model_labels), len(labels)), dtype=np.float64)
        for j, cols in enumerate(columns):
            self._matrix[cols, j] = 1.0
        # model label -> the test label it counts as, where they differ
        self.merged = {self.model_labels[c]: labels[j] for j, cols in enumerate(columns) for c in cols
                       if self.model_labels[c] != labels[j]}

    def scores(self, probs: np.ndarray) -> np.ndarray:
        """(..., n_model) probabilities -> (..., n_scorable) scores, in `self.labels` order."""
        return np.asarray(probs, dtype=np.float64) @ self._matrix

    def choose(self, probs: np.ndarray) -> np.ndarray | int:
        """Index into `self.labels` of the winning label (an array for a batch of rows)."""
        s = self.scores(probs)
        return int(np.argmax(s)) if s.ndim == 1 else np.argmax(s, axis=-1)

    def choose_label(self, probs: np.ndarray) -> str:
        return self.labels[int(self.choose(np.asarray(probs).reshape(-1)))]

    def describe(self) -> dict:
        """What the metrics record about how they were scored."""
        return {"rule": RULE, "labels": list(self.labels),
                "merged": {k: v for k, v in self.merged.items()}, "unscorable": list(self.unscorable)}
