"""Peak memory of analysing a long file: `serapp predict` with a timeline, and the file view's
analysis, each in a fresh process, on a generated recording (speech-like sound and pauses).

    python benchmarks/bench_memory.py [--minutes 120] [--model BUNDLE]

Printed: minutes of audio, peak RSS (MB, the process's high-water mark) and seconds. The
target is under 600 MB for two hours.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
_VIEW = """
import sys, time
from serapp.file_analysis import analyze_file
from serapp.predictor import load_model
t0 = time.perf_counter()
a = analyze_file(sys.argv[1], load_model(sys.argv[2] or None, device="cpu"))
print(f"{len(a.segments)} windows, {a.log_mel.shape[1]} spectrogram columns, {time.perf_counter() - t0:.1f} s")
"""


def write_recording(path: Path, minutes: float, seed: int = 0) -> None:
    """Speech-like harmonic sound with a syllable rhythm, 4 s on and 2 s off, written in blocks."""
    rng = np.random.default_rng(seed)
    block = 6 * RATE
    t = np.arange(block) / RATE
    with sf.SoundFile(str(path), "w", RATE, 1, "PCM_16") as f:
        for i in range(int(minutes * 60 / 6)):
            f0 = 120 + 60 * rng.random() + 30 * np.sin(2 * np.pi * 0.5 * t)
            y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / RATE) / k for k in range(1, 8))
            y *= 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2 * (t < 4.0)
            f.write((0.15 * y + 0.002 * rng.standard_normal(block)).astype(np.float32))


# A wrapper per measurement: its children's high-water mark is that one command's alone.
_WRAP = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
         "print('peak_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
         "sys.exit(p.returncode)")


def measured(cmd: list[str]) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, last line printed) of a command run in its own process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAP, *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    peak_kb = int(proc.stderr.strip().splitlines()[-1].split()[1])  # ru_maxrss is in KB on Linux
    lines = proc.stdout.strip().splitlines()
    return peak_kb / 1024, seconds, lines[-1][:100] if lines else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--model", default="", help="bundle (default: the bundled model)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        write_recording(path, args.minutes)
        print(f"{args.minutes:g} min of audio, {path.stat().st_size / 1e6:.0f} MB WAV")
        print(f"{'what':<44} {'peak RSS MB':>12} {'seconds':>9}")
        model = ["--model", args.model] if args.model else []
        predict = [sys.executable, "-m", "serapp", "predict", str(path), *model, "--format", "jsonl",
                   "--window", "3", "--hop", "0.5"]
        mb, s, _ = measured(predict)
        print(f"{'serapp predict --window 3 --hop 0.5':<44} {mb:>12.0f} {s:>9.1f}")
        mb, s, line = measured([sys.executable, "-c", _VIEW, str(path), args.model])
        print(f"{'file view analysis (analyze_file)':<44} {mb:>12.0f} {s:>9.1f}   ({line})")


if __name__ == "__main__":
    main()
