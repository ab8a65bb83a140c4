"""The live label's smoothing: benchmarks/bench_steady.py replays it as the live analyser applies
it, so its label-change figures are the app's; and the default smoothing is what the app starts
with."""

import sys
from pathlib import Path

import numpy as np
from helpers import make_bundle, speechlike

from serapp.audio.sources import FileSource
from serapp.live import LiveAnalyzer
from serapp.predictor import load_model
from serapp.settings import AnalysisSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_steady  # noqa: E402


def _voice(seconds: float) -> np.ndarray:
    """Speech-like bursts with pauses, so the gate opens and closes (smoothing restarts)."""
    parts = [np.concatenate([speechlike(1.5, seed=k), np.zeros(8000, np.float32)]) for k in range(int(seconds / 2))]
    return np.concatenate(parts).astype(np.float32)


def test_the_benchmarks_smoothing_is_the_live_analysers(tmp_path):
    path, _ = make_bundle(tmp_path / "m.safetensors", window_s=1.0)
    predictor = load_model(path, device="cpu")
    samples = _voice(12.0)

    def run(smoothing: float) -> list:
        source = FileSource(samples=samples, sample_rate=16000, realtime=False)
        return bench_steady.play(LiveAnalyzer(source, predictor, AnalysisSettings(hop_s=0.2, smoothing=smoothing)),
                                 source, samples)

    raw = run(0.0)
    assert sum(r[0] for r in raw) > 10 and not all(r[0] for r in raw)  # speech and pauses both
    for a in (0.5, 0.8):
        live = [max(p, key=p.get) if speech else None for speech, p, _, _ in run(a)]
        assert bench_steady.smoothed_labels(raw, a, predictor.is_sure) == live


def test_smoothing_lowers_label_changes_and_its_lag_is_counted():
    hop = 0.2
    flicker = [(True, {"happy": 0.55, "sad": 0.45} if k % 2 else {"happy": 0.45, "sad": 0.55}, True, 0.0)
               for k in range(40)]
    rough = bench_steady.changes_per_minute(bench_steady.smoothed_labels(flicker, 0.0, lambda p: True), hop)
    calm = bench_steady.changes_per_minute(bench_steady.smoothed_labels(flicker, 0.8, lambda p: True), hop)
    assert rough > 200 and calm < rough
    assert bench_steady.lag_s(0.0, hop) == 0 and bench_steady.lag_s(0.5, hop) == hop
    assert bench_steady.lag_s(0.8, hop) == 4 * hop  # 0.8 ** 4 < 0.5 <= 0.8 ** 3
