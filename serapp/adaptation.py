"""Adapting to a voice: the statistics of one speaker's pooled encoder features.

A model with speaker normalisation (serapp/models/speech_encoder.py) reads features z-scored
by a speaker's mean and standard deviation. Before it has heard a voice it uses the
population's, stored in the bundle (the cold start). `VoiceState` is the explicit, resettable
adaptation state, as silero-vad's stream state is: it accumulates the features of the speech
windows heard so far, and its estimate leans on the population's as on `prior_windows` windows
of them, so the first seconds read as the cold start and the voice's own statistics take over
as it talks. `reset()` returns to the cold start exactly.

The arithmetic is float64 sums, so an estimate from windows given one at a time equals the one
from the same windows given at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NEUTRAL_LABELS = ("neutral", "calm")  # what a neutral-weighted voice counts its windows by
WINDOW_HOP_S = 0.5  # a voice's statistics are taken over model-length speech windows at this hop
PRIOR_WINDOWS = 10.0  # the population's weight, in windows, unless a bundle says otherwise
MIN_STD = 1e-3  # a feature that never moves for this voice is divided by this, not by zero


def neutral_weights(probs: np.ndarray, labels) -> np.ndarray:
    """Each window's weight in a neutral-weighted voice: the probability the cold model gives
    its neutral (or calm) labels. A voice heard in one emotion all along, angry say, then
    barely moves its statistics: its anger is not taken for its normal."""
    columns = [i for i, k in enumerate(labels) if k in NEUTRAL_LABELS]
    return np.asarray(probs, np.float64)[..., columns].sum(axis=-1)


def emotion_removed(features: np.ndarray, probs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Windows' features with their emotion taken off, for an emotion-removed voice: each window
    less `offsets[c]`, c the label the cold head reads it as (offsets: (labels, *shape), how far
    the training windows of each label sit from the population's mean). A voice heard angry all
    along then keeps its speaker's offset from the population, not its anger. The hard label,
    not the probabilities: with soft ones a one-emotion voice kept part of its emotion (the
    encoder table's URDU fold read below cold)."""
    x = np.asarray(features, np.float64)
    return x - np.asarray(offsets, np.float64)[np.asarray(probs).argmax(axis=-1)]


def voice_windows(weighting: str, features: np.ndarray, cold_probs, labels, offsets=None) -> tuple:
    """(features, weights) a voice's speech windows add to its statistics under the model's
    `adapt_weighting`: "" alike, "neutral" by their neutral probability, "emotion-removed" with
    the emotion taken off (`cold_probs`: the cold head's reading of them, over `labels`)."""
    if weighting == "neutral":
        return features, neutral_weights(cold_probs, labels)
    if weighting == "emotion-removed":
        return emotion_removed(features, cold_probs, offsets), None
    return features, None


def mean_and_std(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch statistics over the first axis (windows), as float64."""
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.maximum(x.std(axis=0), MIN_STD)


@dataclass
class VoiceState:
    """One voice's running statistics over pooled features of shape `prior_mean.shape`."""

    prior_mean: np.ndarray
    prior_std: np.ndarray
    prior_windows: float = PRIOR_WINDOWS  # how much the population's statistics weigh, in windows
    hop_s: float = WINDOW_HOP_S  # seconds of new speech a window adds (what `seconds` reports)
    mode: str = "full"  # "mean": the voice moves the mean only; the spread stays the population's
    windows: int = 0
    weight: float = 0.0  # the windows heard, each counted by its weight (all 1: equal to `windows`)
    _sum: np.ndarray = field(default=None, repr=False)
    _sumsq: np.ndarray = field(default=None, repr=False)

    def __post_init__(self):
        self.prior_mean = np.asarray(self.prior_mean, dtype=np.float64)
        self.prior_std = np.asarray(self.prior_std, dtype=np.float64)
        if self.prior_mean.shape != self.prior_std.shape:
            raise ValueError("the prior's mean and standard deviation differ in shape")
        if not (np.isfinite(self.prior_windows) and self.prior_windows >= 0):
            raise ValueError(f"prior_windows must be a number >= 0, not {self.prior_windows!r}")
        if self.mode not in ("full", "mean"):
            raise ValueError(f"the adaptation mode must be 'full' or 'mean', not {self.mode!r}")
        self.reset()

    def reset(self) -> None:
        """Forget the voice: the next reading is the cold start."""
        self.windows = 0
        self.weight = 0.0
        self._sum = np.zeros_like(self.prior_mean)
        self._sumsq = np.zeros_like(self.prior_mean)

    def update(self, features: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Add the pooled features of speech windows, (windows, *shape) or one window (*shape),
        each counted by its weight in [0, 1] (None: all 1)."""
        x = np.asarray(features, dtype=np.float64).reshape(-1, *self.prior_mean.shape)
        w = np.ones(len(x)) if weights is None else np.clip(np.asarray(weights, np.float64).reshape(-1), 0.0, 1.0)
        if len(w) != len(x):
            raise ValueError(f"{len(w)} weights for {len(x)} windows")
        wx = w.reshape(-1, *([1] * (x.ndim - 1)))
        self.windows += x.shape[0]
        self.weight += float(w.sum())
        self._sum += (wx * x).sum(axis=0)
        self._sumsq += (wx * np.square(x)).sum(axis=0)

    @property
    def seconds(self) -> float:
        """About how much speech the state has heard (windows x hop)."""
        return self.windows * self.hop_s

    @property
    def adapted(self) -> bool:
        return self.windows > 0

    def statistics(self, prior: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std): the population's pulled towards the voice's by the windows heard.
        `prior`: another population's (mean, std) to start from (a second head's, trained on
        other clips: serapp/models/speech_encoder.py `basic_head`); the voice's sums are the same."""
        prior_mean, prior_std = (self.prior_mean, self.prior_std) if prior is None else (
            np.asarray(prior[0], np.float64), np.asarray(prior[1], np.float64))
        k, n = float(self.prior_windows), float(self.weight)
        if n == 0:
            return prior_mean.copy(), prior_std.copy()
        mean = (k * prior_mean + self._sum) / (k + n)
        if self.mode == "mean":
            return mean, prior_std.copy()
        second = (k * (np.square(prior_std) + np.square(prior_mean)) + self._sumsq) / (k + n)
        return mean, np.sqrt(np.maximum(second - np.square(mean), MIN_STD**2))

    def to_dict(self) -> dict:
        """Plain numbers (lists), for a voice profile file."""
        return {"windows": self.windows, "weight": self.weight, "sum": self._sum.tolist(),
                "sumsq": self._sumsq.tolist(), "prior_windows": self.prior_windows}

    def load_sums(self, windows: int, total: np.ndarray, total_sq: np.ndarray, weight: float | None = None) -> None:
        """Sums saved from a state (a voice profile); `weight`: their windows' total weight
        (None: every window counted 1)."""
        total, total_sq = np.asarray(total, np.float64), np.asarray(total_sq, np.float64)
        if total.shape != self.prior_mean.shape or total_sq.shape != self.prior_mean.shape:
            raise ValueError(f"statistics of shape {total.shape}, this model's are {self.prior_mean.shape}")
        if not (isinstance(windows, int) and windows >= 0 and np.isfinite(total).all() and np.isfinite(total_sq).all()):
            raise ValueError("the statistics are not finite counts and sums")
        weight = float(windows) if weight is None else weight
        if not (isinstance(weight, (int, float)) and not isinstance(weight, bool) and 0 <= weight <= windows):
            raise ValueError(f"the windows' weight must be a number from 0 to their count ({windows})")
        self.windows, self.weight, self._sum, self._sumsq = windows, float(weight), total, total_sq
