"""Confidence that means what it says: temperature scaling fitted on validation speakers, the
expected calibration error, reliability diagrams, and the "not sure" threshold.

Everything here works on windows' probabilities as the app's readout makes them
(serapp.readout): over the model's labels ("all") or summed onto the basic four ("basic").
The temperature is fitted by minimising the negative log-likelihood (torch's L-BFGS over
log T), the standard method (Guo et al., "On calibration of modern neural networks", 2017).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from serapp.readout import FOLD_INTO, Readout, collapse_matrix
from trainer.report import pyplot

ECE_BINS = 15  # equal-width confidence bins, as Guo et al.
SHOWN_RIGHT = 0.70  # the threshold aims at shown labels right this often...
MIN_COVERAGE = 0.50  # ...while at least this share of speech windows shows one


def readout_targets(model_labels: list[str], emotions: str, true_labels: list[str]) -> tuple[list[str], np.ndarray]:
    """The shown labels and each row's target index into them (-1: a label the readout does not
    show, such as fearful in the basic four)."""
    shown = Readout.for_bundle(model_labels, None, emotions).labels
    folded = [k if k in shown else FOLD_INTO.get(k, k) for k in true_labels] if emotions == "basic" else true_labels
    return shown, np.array([shown.index(k) if k in shown else -1 for k in folded], np.int64)


def fit_temperature(probs: np.ndarray, targets: np.ndarray, emotions_matrix: np.ndarray | None = None) -> float:
    """The temperature T minimising the NLL of `targets` under softmax(log(probs) / T), summed
    onto the shown labels by `emotions_matrix` (model labels x shown; None: shown as they are)."""
    return fit_temperature_pooled([(probs, targets, emotions_matrix)])


def fit_temperature_pooled(parts: list[tuple]) -> float:
    """One temperature for several models' windows at once, (probs, targets, emotions_matrix)
    each (their labels may differ): the mean NLL over every window with a target."""
    data = []
    for probs, targets, matrix in parts:
        keep = targets >= 0
        if keep.any():
            data.append((torch.from_numpy(np.log(np.maximum(np.asarray(probs, np.float64)[keep], 1e-30))),
                         torch.from_numpy(targets[keep]), None if matrix is None else torch.from_numpy(matrix)))
    rows = sum(len(y) for _, y, _ in data)
    if rows < 2:
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.zeros((), dtype=torch.float64)
        for logp, y, m in data:
            p = torch.softmax(logp / log_t.exp(), dim=-1)
            if m is not None:
                p = p @ m
                p = p / p.sum(-1, keepdim=True)
            loss = loss - torch.log(p[torch.arange(len(y)), y].clamp_min(1e-30)).sum()
        loss = loss / rows
        loss.backward()
        return loss

    optimizer.step(nll)
    t = float(log_t.detach().exp())
    return float(min(max(t, 0.05), 20.0)) if math.isfinite(t) else 1.0


def confidence_and_correct(probs: np.ndarray, targets: np.ndarray, allowed: np.ndarray | None = None):
    """(top probability, top is right) per row with a target; `allowed`: the columns the test
    data has (argmax over those, as the one scoring rule reads)."""
    keep = targets >= 0
    p = np.asarray(probs, np.float64)[keep]
    if allowed is not None:
        p = np.where(allowed[None, :], p, 0.0)
    return p.max(axis=1), p.argmax(axis=1) == targets[keep]


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: the confidence-weighted gap between confidence and accuracy."""
    if len(conf) == 0:
        return float("nan")
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            total += rows.mean() * abs(conf[rows].mean() - correct[rows].mean())
    return float(total)


def reliability(conf: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per bin: its confidence range, count, mean confidence and accuracy (for the diagram)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    return [{"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int((which == b).sum()),
             "confidence": float(conf[which == b].mean()) if (which == b).any() else None,
             "accuracy": float(correct[which == b].mean()) if (which == b).any() else None} for b in range(bins)]


def coverage_and_accuracy(conf: np.ndarray, correct: np.ndarray, threshold: float) -> tuple[float, float]:
    """The share of windows that show a label at `threshold`, and how often a shown one is right."""
    shown = conf >= threshold
    if len(conf) == 0:
        return float("nan"), float("nan")
    return float(shown.mean()), float(correct[shown].mean()) if shown.any() else float("nan")


def choose_threshold(conf: np.ndarray, correct: np.ndarray, right: float = SHOWN_RIGHT,
                     min_coverage: float = MIN_COVERAGE) -> float:
    """The lowest threshold at which shown labels are right `right` of the time, not showing
    fewer than `min_coverage` of the windows; where no threshold reaches both, the one that shows
    exactly `min_coverage` (the most accurate that keeps the coverage)."""
    if len(conf) == 0:
        return 0.0
    order = np.sort(np.unique(conf))
    for t in order:
        cov, acc = coverage_and_accuracy(conf, correct, float(t))
        if cov < min_coverage:
            break
        if acc >= right:
            return float(t)
    return float(np.quantile(conf, 1 - min_coverage, method="lower"))


def calibrate(model_labels: list[str], probs: np.ndarray, true_labels: list[str]) -> dict:
    """The bundle's `readout` entry fitted on validation windows: per readout, the temperature
    and the threshold (serapp.readout)."""
    return calibrate_pooled([(model_labels, probs, true_labels)])


def calibrate_pooled(parts: list[tuple]) -> dict:
    """The `readout` entry fitted on windows from several models at once, (model labels,
    probabilities, true labels) each: what held-out corpora read by heads that never heard
    them say about a corpus none of those heads heard either (trainer/encoder_table.py)."""
    out = {}
    for emotions in ("all", "basic"):
        prepared = []
        for model_labels, probs, true_labels in parts:
            shown, targets = readout_targets(model_labels, emotions, true_labels)
            if emotions == "basic" and len(shown) < 2:
                continue
            prepared.append((model_labels, probs, targets, None if emotions == "all" else collapse_matrix(model_labels, shown)))
        if not prepared:
            continue
        t = fit_temperature_pooled([(p, y, m) for _, p, y, m in prepared])
        confs, rights = [], []
        for model_labels, probs, targets, _ in prepared:
            calibrated = Readout(tuple(model_labels), emotions, t, 0.0, True).apply(probs)
            conf, correct = confidence_and_correct(calibrated, targets)
            confs.append(conf)
            rights.append(correct)
        threshold = choose_threshold(np.concatenate(confs), np.concatenate(rights))
        out[emotions] = {"temperature": round(t, 4), "threshold": round(threshold, 4)}
    return out


def readout_metrics(model_labels: list[str], probs: np.ndarray, true_labels: list[str], corpus_labels: list[str],
                    emotions: str, entry: dict | None) -> dict:
    """Held-out windows through a readout, before and after calibration: ECE, the reliability
    bins, and with the threshold, coverage and how often a shown label is right. Scored over
    the labels the corpus has (the one scoring rule's argmax)."""
    shown, targets = readout_targets(model_labels, emotions, true_labels)
    have = {k if k in shown else FOLD_INTO.get(k, k) for k in corpus_labels}
    allowed = np.array([k in have for k in shown])
    raw = Readout.for_bundle(model_labels, None, emotions).apply(probs)
    t, th = (entry["temperature"], entry["threshold"]) if entry else (1.0, 0.0)
    cal = Readout(tuple(model_labels), emotions, t, th, True).apply(probs) if entry else raw
    conf0, _ = confidence_and_correct(_renorm(raw, allowed), targets)
    conf, correct = confidence_and_correct(_renorm(cal, allowed), targets, allowed)
    cov, acc = coverage_and_accuracy(conf, correct, th)
    return {"windows": int(len(conf)), "ece_raw": ece(conf0, correct), "ece": ece(conf, correct),
            "coverage": cov, "shown_right": acc, "reliability": reliability(conf, correct)}


def _renorm(p: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Probabilities over the labels the test data has (what its readout could be judged on)."""
    q = np.where(allowed[None, :], p, 0.0)
    return q / np.maximum(q.sum(axis=1, keepdims=True), 1e-30)


def reliability_png(path: Path, curves: dict[str, list[dict]], title: str) -> Path:
    """One reliability diagram per held-out corpus, side by side (matplotlib, the train extra)."""
    plt = pyplot()
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.8), sharey=True, squeeze=False)
    for ax, (name, bins) in zip(axes[0], curves.items()):
        xs = [b["confidence"] for b in bins if b["n"]]
        ys = [b["accuracy"] for b in bins if b["n"]]
        ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
        ax.plot(xs, ys, marker="o", ms=3, lw=1.5, color="#2f6bd6")
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("accuracy", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

