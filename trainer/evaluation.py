"""A model's figures on clips, as the app reads them: each corpus scored by the one scoring rule
(serapp.scoring) over its own labels, and the robustness report under simulated conditions."""

from __future__ import annotations

import numpy as np
import torch

from serapp.metrics import classification_metrics
from serapp.predictor import Predictor
from serapp.scoring import ScoringRule
from trainer.augment import CONDITIONS, apply_condition
from trainer.data import ClipSet
from trainer.training import seeded_generator


def evaluate(predictor: Predictor, data: ClipSet, labels: list[str] | None = None, transform=None) -> dict:
    """Metrics of the predictor on clips (the app's own windowing), plus mean NLL as `loss`.

    Each corpus is scored by the one scoring rule over its own labels (serapp.scoring). With
    one corpus the metrics are that corpus'; with several, `per_corpus` holds each, and WA,
    UA and macro-F1 are their means (every corpus counts the same).
    """
    probs = np.stack([predictor.predict_prepared(clip if transform is None else transform(i, clip))
                      for i, clip in enumerate(data.clips)]) if len(data) else np.zeros((0, len(predictor.labels)))
    return score_clips(probs, predictor.labels, data, labels)


def score_clips(probs: np.ndarray, model_labels: list[str], data: ClipSet, labels: list[str] | None = None) -> dict:
    """`evaluate`'s metrics from the clips' probabilities (rows of `probs`, over `model_labels`)."""
    names = data.labels or list(labels or model_labels)
    per_corpus, nll, n_scored = {}, 0.0, 0
    read = np.isfinite(probs).all(axis=1) if len(probs) else np.zeros(0, bool)  # a NaN row: "no speech"
    for group, idx in data.by_group().items():
        rule = ScoringRule(model_labels, data.label_sets.get(group) or names)
        unread = sum(1 for i in idx if not read[i])
        idx = [i for i in idx if names[data.targets[i]] in rule.labels and read[i]]
        true = [rule.labels.index(names[data.targets[i]]) for i in idx]
        scores = rule.scores(probs[idx]) if idx else np.zeros((0, len(rule.labels)))
        m = classification_metrics(true, [int(p) for p in np.argmax(scores, axis=-1)], rule.labels)
        m["scoring"] = rule.describe()
        if unread:  # clips the app would read "no speech": not scored, counted
            m["no_speech_clips"] = unread
        nll -= float(np.log(np.maximum(scores[np.arange(len(true)), true], 1e-12)).sum())
        n_scored += len(true)
        per_corpus[group] = m
    if len(per_corpus) <= 1:
        metrics = next(iter(per_corpus.values()), classification_metrics([], [], names))
    else:
        metrics = {"n": n_scored, "per_corpus": per_corpus, "aggregate": "mean over corpora"}
        for key in ("wa", "ua", "macro_f1"):
            metrics[key] = float(np.mean([m[key] for m in per_corpus.values()]))
    metrics["loss"] = nll / max(1, n_scored)
    return metrics


def robustness_report(predictor: Predictor, test: ClipSet, seed: int) -> dict:
    """Test UA under each simulated condition (deterministic per clip)."""
    sr = predictor.sample_rate
    pool_idx = np.linspace(0, len(test) - 1, num=min(32, len(test))).astype(int)
    pool_len = max(test.clips[i].size for i in pool_idx)
    pool = torch.from_numpy(np.stack([np.resize(test.clips[i], pool_len) for i in pool_idx]))
    out = {}
    for c_idx, condition in enumerate(CONDITIONS):
        def transform(i, clip, condition=condition, c_idx=c_idx):
            gen = seeded_generator(seed, c_idx, i, 11)
            wave = torch.from_numpy(clip)[None]
            return apply_condition(condition, wave, sr, gen, pool)[0].numpy()
        out[condition] = evaluate(predictor, test, transform=transform)["ua"]
    return out
