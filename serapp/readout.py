"""What a reading shows: the emotions asked for, with confidence that means what it says.

A model's head gives probabilities over the labels it was trained on (up to eight). The
readout turns them into what the app, `serapp predict` and presentation show:

- **Emotions**: "basic" (the default) shows neutral, happy, sad and angry, calm counted as
  neutral: the head's probabilities of those are summed onto the four and renormalised, so one
  head serves both readouts. "all" shows every label of the head. A head with fewer than two of
  the four shows all its labels. A model with a head trained for the four beside its full head
  (`basic_head`, serapp/models/speech_encoder.py) reads the basic readout from that head: its
  probabilities are over `BASIC` already, and nothing is summed. `Readout.inputs` says which
  labels a readout's input probabilities are over, so the predictor knows which head to read.
- **Calibration**: temperature scaling (Guo et al. 2017), fitted by the trainer on validation
  speakers for each readout and stored in the bundle's `readout` entry. It is applied to each
  model-length piece before anything is averaged: p ** (1/T), renormalised, is the softmax of
  the logits divided by T.
- **Sure or not**: a reading whose calibrated top probability is below the bundle's threshold
  (chosen on validation speakers) is "not sure", and the view names its top two. A bundle with
  no `readout` entry is uncalibrated: temperature 1, and never "not sure".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BASIC = ("neutral", "happy", "sad", "angry")
FOLD_INTO = {"calm": "neutral"}  # a label the basic readout counts as another
EMOTION_CHOICES = ("basic", "all")
MAX_TEMPERATURE = 100.0


def check_calibration(entry, where: str = "readout") -> dict:
    """A bundle's `readout` entry checked: {"basic"|"all": {"temperature": T, "threshold": t}}."""
    if not isinstance(entry, dict) or not set(entry) <= set(EMOTION_CHOICES):
        raise ValueError(f"{where} must map 'basic' and/or 'all' to a temperature and a threshold")
    for mode, values in entry.items():
        if not isinstance(values, dict) or set(values) != {"temperature", "threshold"}:
            raise ValueError(f"{where}.{mode} must hold exactly a temperature and a threshold")
        t, th = values["temperature"], values["threshold"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (1 / MAX_TEMPERATURE <= t <= MAX_TEMPERATURE):
            raise ValueError(f"{where}.{mode}.temperature must be a number in [{1 / MAX_TEMPERATURE:g}, "
                             f"{MAX_TEMPERATURE:g}], not {t!r}")
        if isinstance(th, bool) or not isinstance(th, (int, float)) or not (0 <= th <= 1):
            raise ValueError(f"{where}.{mode}.threshold must be a number in [0, 1], not {th!r}")
    return entry


def basic_labels(model_labels: list[str]) -> list[str]:
    """The basic four this head can show (those it has, calm counting as neutral)."""
    have = {FOLD_INTO.get(k, k) for k in model_labels}
    return [k for k in BASIC if k in have]


def collapse_matrix(model_labels: list[str], shown: list[str]) -> np.ndarray:
    """(model labels, shown labels) 0/1: which head label adds to which shown label."""
    m = np.zeros((len(model_labels), len(shown)), np.float64)
    for i, k in enumerate(model_labels):
        k = k if k in shown else FOLD_INTO.get(k, k)
        if k in shown:
            m[i, shown.index(k)] = 1.0
    return m


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of log-probabilities / T, row by row (T = 1 leaves them as they are)."""
    probs = np.asarray(probs, np.float64)
    if temperature == 1.0:
        return probs
    logp = np.log(np.maximum(probs, 1e-30)) / temperature
    logp -= logp.max(axis=-1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Readout:
    """From a head's probabilities to what is shown. Immutable: a view swaps the whole value."""

    model_labels: tuple[str, ...]
    emotions: str = "basic"
    temperature: float = 1.0
    threshold: float = 0.0  # a calibrated top probability below this is "not sure"
    calibrated: bool = False
    basic_head: bool = False  # the model has a head trained for the basic four (the basic readout reads it)

    @classmethod
    def for_bundle(cls, model_labels, calibration: dict | None, emotions: str = "basic",
                   basic_head: bool = False) -> "Readout":
        """The readout of a bundle's model (`model_labels`: its full head's) showing `emotions`,
        with the bundle's calibration; `basic_head`: whether the model has a head for the four."""
        if emotions not in EMOTION_CHOICES:
            raise ValueError(f"emotions must be one of {', '.join(EMOTION_CHOICES)}, not {emotions!r}")
        labels, basic_head = tuple(model_labels), bool(basic_head)
        if emotions == "basic" and not basic_head and len(basic_labels(list(labels))) < 2:
            emotions = "all"  # a head without the basic four shows what it has
        entry = (calibration or {}).get(emotions)
        if entry is None:
            return cls(labels, emotions, basic_head=basic_head)
        return cls(labels, emotions, float(entry["temperature"]), float(entry["threshold"]), True, basic_head)

    @property
    def reads_basic_head(self) -> bool:
        """Whether this readout's probabilities come from the head trained for the basic four."""
        return self.basic_head and self.emotions == "basic"

    @property
    def inputs(self) -> tuple[str, ...]:
        """The labels `apply`'s input probabilities are over: the basic head's (`BASIC`) or the
        full head's (`model_labels`)."""
        return BASIC if self.reads_basic_head else self.model_labels

    @property
    def labels(self) -> list[str]:
        if self.reads_basic_head:
            return list(BASIC)
        return basic_labels(list(self.model_labels)) if self.emotions == "basic" else list(self.model_labels)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """(..., `inputs`) head probabilities -> (..., shown labels), calibrated."""
        if np.shape(probs)[-1] != len(self.inputs):
            raise ValueError(f"probabilities over {np.shape(probs)[-1]} labels; this readout reads "
                             f"{len(self.inputs)} ({', '.join(self.inputs)})")
        p = with_temperature(probs, self.temperature)
        if self.emotions == "all" or self.reads_basic_head:  # shown as they are
            return p.astype(np.float32)
        q = p @ collapse_matrix(list(self.model_labels), self.labels)
        return (q / np.maximum(q.sum(axis=-1, keepdims=True), 1e-30)).astype(np.float32)

    def is_sure(self, probabilities) -> bool:
        """Whether a reading's top probability reaches the threshold."""
        values = probabilities.values() if isinstance(probabilities, dict) else probabilities
        top = max((float(v) for v in values), default=0.0)
        return not (self.calibrated and top < self.threshold - 1e-12) and math.isfinite(top)


def top_two(probabilities: dict[str, float]) -> list[str]:
    """The two most probable labels, most probable first (what "not sure" names)."""
    return [k for k, _ in sorted(probabilities.items(), key=lambda kv: -kv[1])[:2]]


def describe(label: str | None, probabilities: dict[str, float] | None, sure: bool | None) -> str:
    """One line for a reading: "happy 81%", "not sure (happy or sad)", or "no speech"."""
    if probabilities is None or label is None:
        return "no speech"
    if sure is False:
        a, *rest = top_two(probabilities)
        return f"not sure ({a} or {rest[0]})" if rest else "not sure"
    return f"{label} {100 * probabilities[label]:.0f}%"
