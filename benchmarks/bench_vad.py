"""Speech gates compared: the energy + speech-band gate against silero-vad, on 3 s windows.

    python benchmarks/bench_vad.py --data-root ../shared/data [--clips 200]

Speech: clips from every corpus under --data-root (as recorded; a clip's leading and trailing
silence stays in), clean, under white and pink noise at 10 and 0 dB SNR, and 30 dB quieter.
Not speech: digital silence, faint hiss, mains hum, pink noise, and synthetic music (chords of
harmonic tones with note envelopes, with and without a drum-like noise track). Printed: the
share of windows each gate calls speech (speech should be near 100%, the rest near 0%), and
the milliseconds per window on one thread.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch

from serapp.audio.io import load_audio
from serapp.audio.vad import EnergyGate, SileroGate
from serapp.corpora import NAMED_PARSERS, load_corpus

RATE = 16000
WINDOW = 3 * RATE


def fit(y: np.ndarray) -> np.ndarray:
    """A 3 s window from the start of a clip, zero-padded (silence) when the clip is shorter."""
    out = np.zeros(WINDOW, np.float32)
    out[: min(WINDOW, y.size)] = y[:WINDOW]
    return out


def noise(kind: str, rng: np.random.Generator, n: int = WINDOW) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white.astype(np.float32)
    f = np.fft.rfftfreq(n, 1 / RATE)
    return np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.maximum(f, 20.0)), n).astype(np.float32)


def mix(speech: np.ndarray, n: np.ndarray, snr_db: float) -> np.ndarray:
    ps = np.mean(speech[np.abs(speech) > 1e-4] ** 2) if np.any(np.abs(speech) > 1e-4) else 1e-8
    return (speech + n * np.sqrt(ps / (np.mean(n**2) * 10 ** (snr_db / 10)))).astype(np.float32)


def music(rng: np.random.Generator, drums: bool) -> np.ndarray:
    t = np.arange(WINDOW) / RATE
    y = np.zeros(WINDOW)
    beat = 0.25 + 0.25 * rng.random()
    for start in np.arange(0, 3.0, beat):
        root = 110 * 2 ** (rng.integers(0, 24) / 12)
        for ratio in (1.0, 1.26, 1.5):  # a major triad
            f0 = root * ratio
            env = np.where(t >= start, np.exp(-(t - start) * 3.0), 0.0)
            y += env * sum(np.sin(2 * np.pi * k * f0 * t) / k**1.5 for k in range(1, 8))
    if drums:
        for start in np.arange(0, 3.0, beat / 2):
            i = int(start * RATE)
            burst = rng.standard_normal(min(1200, WINDOW - i)) * np.exp(-np.arange(min(1200, WINDOW - i)) / 200)
            y[i : i + burst.size] += 2 * burst
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def hum(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(WINDOW) / RATE
    f = 50.0 if rng.random() < 0.5 else 60.0
    y = sum(np.sin(2 * np.pi * k * f * t + rng.random()) / k for k in range(1, 12))
    return (0.1 * y).astype(np.float32)


def speech_clips(root: Path, n: int, seed: int) -> list[np.ndarray]:
    records = []
    for name in NAMED_PARSERS:
        if (root / name).is_dir():
            records += load_corpus(name, root / name).records
    random.Random(seed).shuffle(records)
    return [fit(load_audio(r.path, RATE)[0]) for r in records[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True, help="folder with corpora (e.g. ../shared/data)")
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    speech = speech_clips(Path(args.data_root), args.clips, args.seed)
    n = len(speech)
    sets = {
        "speech, clean": speech,
        "speech, white noise 10 dB": [mix(s, noise("white", rng), 10) for s in speech],
        "speech, white noise 0 dB": [mix(s, noise("white", rng), 0) for s in speech],
        "speech, pink noise 10 dB": [mix(s, noise("pink", rng), 10) for s in speech],
        "speech, pink noise 0 dB": [mix(s, noise("pink", rng), 0) for s in speech],
        "speech, 30 dB quieter": [s * 10 ** (-30 / 20) for s in speech],
        "silence (digital zero)": [np.zeros(WINDOW, np.float32) for _ in range(n)],
        "faint hiss (-70 dBFS)": [noise("white", rng) * 10 ** (-70 / 20) for _ in range(n)],
        "pink noise (-30 dBFS)": [noise("pink", rng) / 30 for _ in range(n)],
        "mains hum": [hum(rng) for _ in range(n)],
        "music (chords)": [music(rng, False) for _ in range(n)],
        "music (chords + drums)": [music(rng, True) for _ in range(n)],
    }
    gates = {"energy + band": EnergyGate(RATE), "silero-vad": SileroGate(RATE)}
    print(f"{n} windows of 3 s per condition; share called speech (%)")
    print(f"{'condition':<28}" + "".join(f"{g:>16}" for g in gates))
    timing = {g: [] for g in gates}
    score = {g: [] for g in gates}
    for cond, windows in sets.items():
        row = f"{cond:<28}"
        for name, gate in gates.items():
            t0 = time.perf_counter()
            calls = [gate.is_speech(w) for w in windows]
            timing[name].append((time.perf_counter() - t0) / len(windows) * 1e3)
            share = float(np.mean(calls))
            score[name].append(share if cond.startswith("speech") else 1 - share)
            row += f"{100 * share:>16.1f}"
        print(row)
    print(f"{'balanced accuracy (%)':<28}" + "".join(f"{100 * np.mean(score[g]):>16.1f}" for g in gates))
    print(f"{'ms per 3 s window':<28}" + "".join(f"{np.median(timing[g]):>16.2f}" for g in gates))


if __name__ == "__main__":
    main()
