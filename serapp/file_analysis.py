"""Whole-file analysis for the app's file view, without Qt: spectrogram, timeline, overall."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from serapp.audio.io import load_audio
from serapp.features import FrontEnd, FrontEndConfig
from serapp.predictor import Predictor, Segment


@dataclass
class FileAnalysis:
    path: Path
    samples: np.ndarray  # mono at `rate`
    rate: int
    log_mel: np.ndarray  # (n_mels, frames) in dB, for display
    frontend: FrontEndConfig
    segments: list[Segment]
    overall: dict[str, float] | None

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.rate


def analyze_file(path: str | os.PathLike, predictor: Predictor | None, window_s: float | None = None,
                 hop_s: float = 0.5, frontend: FrontEndConfig | None = None) -> FileAnalysis:
    """Decode (AudioDecodeError on failure), then the spectrogram and, with a model, predictions."""
    config = predictor.meta.frontend if predictor else (frontend or FrontEndConfig())
    samples, rate = load_audio(path, config.sample_rate)
    with torch.no_grad():
        log_mel = FrontEnd(config).log_mel(torch.from_numpy(samples)).numpy()
    segments, overall = [], None
    if predictor is not None:
        segments = predictor.timeline(samples, rate, window_s, hop_s)
        overall = predictor.predict(samples, rate)
    return FileAnalysis(Path(path), samples, rate, log_mel, config, segments, overall)


def write_timeline_csv(path: str | os.PathLike, analysis: FileAnalysis, labels: list[str]) -> Path:
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "start_s", "end_s", "label", *labels])
        for s in analysis.segments:
            w.writerow([analysis.path.name, f"{s.start_s:.3f}", f"{s.end_s:.3f}", s.label,
                        *[f"{s.probabilities[k]:.4f}" for k in labels]])
    return path
