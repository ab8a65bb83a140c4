"""Whole-file analysis for the app's file view, without Qt: display data, timeline, overall.

The file is read as serapp.analysis reads it (twice, block by block); the waveform and the
spectrogram come out of the first pass already reduced to display size, so a two-hour file
costs as much memory as a two-minute one.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serapp.analysis import analyse_file, scan
from serapp.audio.io import AudioStream
from serapp.csv_cells import CsvWriter
from serapp.features import FrontEndConfig, StreamingFrontEnd, display_config
from serapp.files import write_text
from serapp.predictor import Predictor
from serapp.settings import AnalysisSettings
from serapp.timeline import WindowReading, timeline_header, timeline_rows

DISPLAY_POINTS = 4000  # waveform min/max pairs
DISPLAY_COLUMNS = 3000  # spectrogram columns (each the loudest of the frames it covers)


class Envelope:
    """Min/max of the waveform in `points` equal stretches of a signal of known length."""

    def __init__(self, expected_samples: int, points: int = DISPLAY_POINTS):
        self.step = max(1, -(-max(1, expected_samples) // points))
        self.lo: list[float] = []
        self.hi: list[float] = []
        self._carry = np.zeros(0, np.float32)

    def __call__(self, block: np.ndarray) -> None:
        data = np.concatenate([self._carry, block])
        n = data.size // self.step * self.step
        if n:
            rows = data[:n].reshape(-1, self.step)
            self.lo += rows.min(axis=1).tolist()
            self.hi += rows.max(axis=1).tolist()
        self._carry = data[n:]

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        if self._carry.size:
            self.lo.append(float(self._carry.min()))
            self.hi.append(float(self._carry.max()))
            self._carry = np.zeros(0, np.float32)
        return np.asarray(self.lo, np.float32), np.asarray(self.hi, np.float32)


class Spectrogram:
    """Log-mel columns of the streaming front-end, pooled (max) to at most `columns`."""

    def __init__(self, config: FrontEndConfig, expected_samples: int, columns: int = DISPLAY_COLUMNS):
        self.fe = StreamingFrontEnd(display_config(config))
        frames = 1 + max(1, expected_samples) // config.hop_length
        self.step = max(1, -(-frames // columns))
        self.parts: list[np.ndarray] = []
        self._carry = np.zeros((config.n_mels, 0), np.float32)

    def _pool(self, cols: np.ndarray, final: bool = False) -> None:
        data = np.concatenate([self._carry, cols], axis=1)
        n = data.shape[1] if final else data.shape[1] // self.step * self.step
        if n:
            k = -(-n // self.step)
            pad = k * self.step - n
            part = np.pad(data[:, :n], ((0, 0), (0, pad)), mode="edge") if pad else data[:, :n]
            self.parts.append(part.reshape(part.shape[0], k, self.step).max(axis=2))
        self._carry = data[:, n:]

    def __call__(self, block: np.ndarray) -> None:
        self._pool(self.fe.push(block))

    def finish(self) -> np.ndarray:
        self._pool(self.fe.flush(), final=True)
        return np.concatenate(self.parts, axis=1) if self.parts else np.zeros((self.fe.config.n_features, 0), np.float32)


@dataclass
class FileAnalysis:
    path: Path
    rate: int
    duration_s: float
    envelope: tuple[np.ndarray, np.ndarray]  # waveform (min, max) over equal stretches
    log_mel: np.ndarray  # (n_mels, columns) in dB, pooled for display
    frontend: FrontEndConfig
    segments: list[WindowReading]
    overall: WindowReading | None  # None without a model
    shortfall: str | None = None
    labels: list[str] = field(default_factory=list)  # the model's


def analyze_file(path: str | os.PathLike, predictor: Predictor | None,
                 settings: AnalysisSettings = AnalysisSettings(), frontend: FrontEndConfig | None = None,
                 gate=None, voice=None) -> FileAnalysis:
    """Decode (AudioDecodeError on failure); display data; with a model, the timeline and the
    overall reading (the speech gate as `settings` say; `voice`: a voice's adaptation state)."""
    config = predictor.meta.frontend if predictor else (frontend or FrontEndConfig())
    rate = config.sample_rate
    expected = int(AudioStream(path, rate).declared_s * rate)
    envelope, spec = Envelope(expected), Spectrogram(config, expected)
    if predictor is not None:
        reading = analyse_file(path, predictor, settings, timeline=True, gate=gate, consumers=(envelope, spec),
                               voice=voice)
        duration, segments, overall, shortfall = reading.duration_s, reading.segments, reading.overall, reading.shortfall
        labels = reading.labels
    else:
        stream = AudioStream(path, rate)
        first = scan(stream, rate, None, (envelope, spec))
        duration, segments, overall, shortfall = first.n_samples / rate, [], None, stream.shortfall
        labels = []
    return FileAnalysis(Path(path), rate, duration, envelope.finish(), spec.finish(), config, segments, overall, shortfall,
                        labels)


def write_timeline_csv(path: str | os.PathLike, analysis: FileAnalysis, labels: list[str]) -> Path:
    """The timeline as `serapp predict --window W --format csv` writes it; whole or not at all,
    so a failed export never spoils a file it would replace."""
    buf = io.StringIO()
    w = CsvWriter(buf)
    w.writerow(timeline_header(labels))
    w.writerows(timeline_rows(analysis.path, analysis.segments, labels, analysis.shortfall or ""))
    return write_text(path, buf.getvalue())



