"""How steady the live label is: one speaker's clips of one emotion played back to back through
the live analyser (its own feed: the samples written into a source's ring buffer 50 ms at a
time, as the audio callback writes them, and `LiveAnalyzer.poll` after each block, as the
worker polls), for several smoothing settings.

Prints, per setting: label changes per minute of speech readings (the shown label, with "not
sure" counted as a label of its own: a viewer sees it change too), and the readout latency:
the median time a reading takes to compute, plus half a hop (the wait for the next reading, on
average), plus the smoothing's lag (the time until a step in the probabilities is half shown:
hop x ceil(log 0.5 / log a)).

    python benchmarks/bench_steady.py --data-root ../shared/data

Each setting replays the same analyser run: the readings are computed once without smoothing
(the model, the speech gate and the voice's adaptation all as live), and each smoothing is
then applied as `LiveAnalyzer.poll` applies it (tested to be the same in tests/test_live_steady.py).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from serapp.audio.io import load_audio
from serapp.audio.sources import FileSource
from serapp.corpora import load_corpus
from serapp.live import LiveAnalyzer
from serapp.predictor import load_model
from serapp.settings import AnalysisSettings

BLOCK_S = 0.05


def play(analyzer: LiveAnalyzer, source: FileSource, samples: np.ndarray) -> list[tuple]:
    """Write `samples` into the source's ring block by block, polling after each; returns
    (speech, probabilities, sure, compute seconds) per reading."""
    out = []
    block = int(BLOCK_S * source.sample_rate)
    for i in range(0, samples.size, block):
        source.ring.write(samples[i : i + block])
        t0 = time.perf_counter()
        r = analyzer.poll()
        if r is not None:
            out.append((r.speech, r.probabilities, r.sure, time.perf_counter() - t0))
    return out


def smoothed_labels(readings: list[tuple], smoothing: float, is_sure) -> list[str | None]:
    """What the view shows per reading with `smoothing`, as LiveAnalyzer.poll smooths: the
    previous speech reading weighs `smoothing`, a reading without speech starts again."""
    shown, prev = [], None
    for speech, probs, _, _ in readings:
        if not speech:
            prev = None
            shown.append(None)
            continue
        p = np.array(list(probs.values()))
        if smoothing > 0 and prev is not None:
            p = smoothing * prev + (1 - smoothing) * p
        prev = p
        d = dict(zip(probs, p.tolist()))
        label = max(d, key=d.get)
        shown.append(label if is_sure(d) else "not sure")
    return shown


def changes_per_minute(shown: list[str | None], hop_s: float) -> float:
    speech = [s for s in shown if s is not None]
    changes = sum(1 for a, b in zip(speech, speech[1:]) if a != b)
    return 60.0 * changes / max(hop_s * len(speech), 1e-9)


def lag_s(smoothing: float, hop_s: float) -> float:
    return 0.0 if smoothing <= 0 else hop_s * math.ceil(math.log(0.5) / math.log(smoothing))


def streams(root: Path, corpus: str, speakers: int, emotions: list[str], rate: int) -> list[np.ndarray]:
    """Per (speaker, emotion): that speaker's clips of it, back to back."""
    c = load_corpus(corpus, root / corpus)
    out = []
    for speaker in sorted(c.speakers, key=str)[:speakers]:
        for emotion in emotions:
            clips = [r for r in c.records if r.speaker == speaker and r.label == emotion]
            if clips:
                parts = []
                for r in sorted(clips, key=lambda r: str(r.path)):
                    parts.append(load_audio(r.path, rate)[0])
                out.append(np.concatenate(parts).astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--corpus", default="ravdess")
    ap.add_argument("--speakers", type=int, default=4)
    ap.add_argument("--emotions", nargs="+", default=["neutral", "happy", "sad", "angry"])
    ap.add_argument("--hop", type=float, default=0.2, help="the live hop (the app's default 0.2 s)")
    ap.add_argument("--smoothing", type=float, nargs="+", default=[0.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    predictor = load_model(args.model, device="cpu", threads=1)
    settings = AnalysisSettings(hop_s=args.hop, smoothing=0.0)
    readings, seconds = [], 0.0
    for samples in streams(Path(args.data_root), args.corpus, args.speakers, args.emotions, predictor.sample_rate):
        source = FileSource(samples=samples, sample_rate=predictor.sample_rate, realtime=False)
        analyzer = LiveAnalyzer(source, predictor, settings)  # a new voice for each stream: its first minute
        readings.append(play(analyzer, source, samples))
        seconds += samples.size / predictor.sample_rate
    compute = statistics.median(r[3] for run in readings for r in run if r[0])
    print(f"{len(readings)} streams ({args.corpus}, {args.speakers} speakers x {', '.join(args.emotions)}), "
          f"{seconds:.0f} s of audio, hop {args.hop:g} s; a reading computes in {1e3 * compute:.0f} ms (median)")
    print("smoothing  label changes/min  shown 'not sure'  readout latency (compute + hop/2 + lag)")
    for a in args.smoothing:
        shown = [smoothed_labels(run, a, predictor.is_sure) for run in readings]
        per_min = statistics.fmean(changes_per_minute(s, args.hop) for s in shown)
        unsure = np.mean([s == "not sure" for run in shown for s in run if s is not None])
        latency = compute + args.hop / 2 + lag_s(a, args.hop)
        print(f"{a:9.2f}  {per_min:17.1f}  {100 * unsure:15.0f}%  {1e3 * latency:6.0f} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
