"""One way to read audio with a model, shared by the live readout, the file view and `serapp predict`.

A *window* is a stretch of audio that gets one reading. The speech gate judges it first (no
speech: no emotion, "no speech"); the model then reads it as model-length pieces at half a
piece's hop, averaged (`Predictor.window_probabilities`). A window shorter than the model's
is looped to its length, as training crops were.

The reading of a whole file or clip (`overall_reading`) is the mean of its speech windows'
probabilities, each weighted by its share of speech: the windows the timeline shows (the model's length, or the one set, at the hop
set), so the header and the timeline never disagree and non-speech never counts. A file with no
speech window reads "no speech". `serapp predict`, the file view and the listening test's model
scores all come from `analyse_file`.

Files are read twice, block by block: first the gate's frame decisions, then the model's pieces;
memory does not grow with the length of the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serapp.adaptation import WINDOW_HOP_S
from serapp.audio.io import AudioStream
from serapp.predictor import Predictor, loop_to_length, model_pieces, window_starts
from serapp.settings import AnalysisSettings
from serapp.timeline import WindowReading


def make_gate(settings: AnalysisSettings, sample_rate: int):
    """The speech gate the app and `serapp predict` use (silero-vad; see benchmarks/bench_vad.py)."""
    from serapp.audio.vad import SileroGate

    return SileroGate(sample_rate, threshold=settings.gate_threshold)


def speech_frames(decisions: np.ndarray, frame: int, start: int, end: int) -> tuple[int, int]:
    """(speech frames, frames) of the gate's frames inside samples [start, end)."""
    a, b = -(-start // frame), end // frame
    if b <= a:  # shorter than a frame: the frame it overlaps most
        a = min(start // frame, max(0, decisions.size - 1))
        b = a + 1
    part = decisions[a:b]
    return int(part.sum()), int(part.size)


def reading(readout, probs: np.ndarray | None, start_s: float, end_s: float, fraction: float,
            speech: bool) -> WindowReading:
    """A window's reading through `readout` (serapp.readout.Readout: its labels, and sure or not)."""
    if probs is None:
        return WindowReading(start_s, end_s, speech, fraction, None, None)
    labels = readout.labels
    shown = {k: float(p) for k, p in zip(labels, probs)}
    return WindowReading(start_s, end_s, speech, fraction, shown, labels[int(np.argmax(probs))], readout.is_sure(shown))


# --- files -------------------------------------------------------------------------------------------

@dataclass
class FileScan:
    """What the first pass over a file learns: its length and the gate's frame decisions."""

    n_samples: int
    decisions: np.ndarray
    frame: int
    shortfall: str | None = None
    extras: dict = field(default_factory=dict)


def scan(blocks: Iterable[np.ndarray], rate: int, gate, consumers=()) -> FileScan:
    """One pass: the length, the gate's decisions, and any `consumers` (callables taking each
    block: display envelopes, say)."""
    n = 0
    decisions: list[np.ndarray] = []
    carry = np.zeros(0, np.float32)
    if gate is not None:
        gate.reset()
    for block in blocks:
        n += block.size
        for consume in consumers:
            consume(block)
        if gate is not None:
            data = np.concatenate([carry, block])
            whole = data.size // gate.frame * gate.frame
            decisions.append(gate.frames(data[:whole]))
            carry = data[whole:]
    frame = gate.frame if gate is not None else 1
    return FileScan(n, np.concatenate(decisions) if decisions else np.zeros(0, bool), frame)


def read_file_windows(blocks: Iterable[np.ndarray], predictor: Predictor, windows: list[tuple[int, int]],
                      skip: set[int] = frozenset(), voice=None, read=None) -> list[np.ndarray | None]:
    """Probabilities for each window [start, end) of a signal given in blocks (None for those in
    `skip`), normalised by `voice` where the model adapts; `read` replaces the reading (pieces ->
    rows: `Predictor.pooled` for a voice's statistics). Only the audio the pending windows still
    need is held."""
    read = read or (lambda pieces: predictor.probabilities(pieces, voice))
    model_window = predictor.model_window
    jobs = sorted(((s, e, k) for k, (ws, we) in enumerate(windows) if k not in skip
                   for s, e in model_pieces(ws, we, model_window)))
    rows: list[list[np.ndarray]] = [[] for _ in windows]
    buffer, buf_start, j = np.zeros(0, np.float32), 0, 0
    batch: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        if batch:
            probs = read(np.stack([loop_to_length(x, model_window) for _, x in batch]))
            for (k, _), p in zip(batch, probs):
                rows[k].append(p)
            batch.clear()

    for block in blocks:
        buffer = np.concatenate([buffer, block])
        end = buf_start + buffer.size
        while j < len(jobs) and jobs[j][1] <= end:
            s, e, k = jobs[j]
            batch.append((k, buffer[s - buf_start : e - buf_start].copy()))
            j += 1
            if len(batch) == predictor.batch_windows:
                flush()
        keep_from = jobs[j][0] if j < len(jobs) else end
        buffer, buf_start = buffer[keep_from - buf_start :], keep_from
    flush()
    return [None if k in skip or not rows[k] else np.stack(rows[k]).mean(axis=0) for k in range(len(windows))]


@dataclass
class FileReading:
    path: Path
    duration_s: float
    overall: WindowReading
    segments: list[WindowReading]
    shortfall: str | None
    labels: list[str] = field(default_factory=list)  # what the readings show (the readout's)


def _speech(sc: FileScan, windows: list[tuple[int, int]], settings: AnalysisSettings, gated: bool, rate: int):
    """(speech fraction, speech?) per window: a window reads speech when it holds at least
    min_speech_s of it (the live view's rule too)."""
    counts = [speech_frames(sc.decisions, sc.frame, s, e) if gated else (1, 1) for s, e in windows]
    fractions = [voiced / max(1, total) for voiced, total in counts]
    return fractions, [not gated or voiced * sc.frame / rate >= settings.min_speech_s - 1e-9 for voiced, _ in counts]


def overall_reading(labels: list[str], segments: list[WindowReading], duration_s: float,
                    speech_fraction: float, is_sure=None) -> WindowReading:
    """The one rule for a whole file or clip: the mean of its speech windows' probabilities, each
    weighted by the share of it that is speech (windows the gate judged no speech have none, and a
    window that only touches speech counts little); no speech window: no reading. `is_sure`
    (probabilities -> bool, the predictor's): whether the reading is sure."""
    read = [s for s in segments if s.probabilities is not None]
    if not read:
        return WindowReading(0.0, duration_s, False, speech_fraction, None, None)
    rows = np.asarray([[s.probabilities[k] for k in labels] for s in read], np.float64)
    weights = np.asarray([max(s.speech_fraction, 1e-6) for s in read])
    mean = weights @ rows / weights.sum()
    shown = {k: float(p) for k, p in zip(labels, mean)}
    return WindowReading(0.0, duration_s, True, speech_fraction, shown, labels[int(np.argmax(mean))],
                         is_sure(shown) if is_sure is not None else None)


def analyse_file(path: str | Path, predictor: Predictor, settings: AnalysisSettings = AnalysisSettings(),
                 timeline: bool = False, gate=None, consumers=(), voice=None) -> FileReading:
    """Sliding windows over the whole file (untrimmed, the last one ending at the end), each judged
    by the gate and read by the model, and the overall reading made from them (`overall_reading`);
    `timeline`: keep the windows' readings in `segments`. `voice`: a voice's adaptation state
    (serapp.adaptation) where the model adapts. Two passes of decoding."""
    rate = predictor.sample_rate
    gate = (gate or make_gate(settings, rate)) if settings.gate else None
    first = AudioStream(path, rate)
    sc = scan(first, rate, gate, consumers)
    sc.shortfall = first.shortfall
    n = sc.n_samples
    w = max(1, int(round(settings.window_for(predictor) * rate)))
    h = max(1, int(round(settings.hop_s * rate)))
    windows = [(s, min(s + w, n)) for s in window_starts(n, w, h)]
    fractions, speech = _speech(sc, windows, settings, gate is not None, rate)
    skip = {k for k in range(len(windows)) if not speech[k]}
    readout = predictor.readout  # one readout for the whole file, whatever a view sets meanwhile
    probs = read_file_windows(AudioStream(path, rate), predictor, windows, skip,
                              read=lambda pieces: predictor.probabilities(pieces, voice, readout=readout))
    readings = [reading(readout, p, s / rate, e / rate, f, ok)
                for (s, e), p, f, ok in zip(windows, probs, fractions, speech)]
    voiced, frames = speech_frames(sc.decisions, sc.frame, 0, n) if gate is not None and n else (1, 1)
    overall = overall_reading(readout.labels, readings, n / rate, voiced / max(1, frames), readout.is_sure)
    return FileReading(Path(path), n / rate, overall, readings if timeline else [], sc.shortfall, readout.labels)


def adapt_to_file(path: str | Path, predictor: Predictor, voice, settings: AnalysisSettings = AnalysisSettings(),
                  gate=None) -> int:
    """Add a file's speech windows (the model's length, at WINDOW_HOP_S, untrimmed) to `voice`;
    returns how many windows it added. Labels are never needed."""
    rate = predictor.sample_rate
    gate = (gate or make_gate(settings, rate)) if settings.gate else None
    first = AudioStream(path, rate)
    sc = scan(first, rate, gate)
    w = predictor.model_window
    windows = [(s, min(s + w, sc.n_samples)) for s in window_starts(sc.n_samples, w, int(round(WINDOW_HOP_S * rate)))]
    _, speech = _speech(sc, windows, settings, gate is not None, rate)
    rows = read_file_windows(AudioStream(path, rate), predictor, windows,
                             {k for k in range(len(windows)) if not speech[k]}, read=predictor.pooled)
    kept = [r for r in rows if r is not None]
    if kept:
        predictor.learn(voice, np.stack(kept))
    return len(kept)
