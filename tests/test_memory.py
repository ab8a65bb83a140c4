"""Memory does not grow with the length of a file (traced allocations, not timings)."""

import tracemalloc

import numpy as np
import soundfile as sf
from helpers import make_bundle, speechlike

from serapp.audio.io import trim_silence

RATE = 16000


def _traced_peak(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_trimming_ten_minutes_needs_no_frame_matrix_of_the_whole():
    y = np.tile(speechlike(2.0), 300)  # 10 min: 38 MB of samples
    peak = _traced_peak(lambda: trim_silence(y, RATE, 40.0))
    assert peak < 2.5 * y.nbytes, f"{peak / 1e6:.0f} MB"  # a matrix of every frame would be 30 times the input


def _long_file(path, minutes):
    voice = speechlike(4.0)
    with sf.SoundFile(str(path), "w", RATE, 1, "PCM_16") as f:
        for _ in range(int(minutes * 60 / 6)):
            f.write(np.concatenate([voice, np.zeros(2 * RATE, np.float32)]))
    return path


def test_analysing_a_file_holds_blocks_not_the_file(tmp_path):
    from serapp.file_analysis import analyze_file
    from serapp.predictor import load_model
    from serapp.settings import AnalysisSettings

    predictor = load_model(make_bundle(tmp_path / "m.safetensors", window_s=1.0, channels=8, blocks=1)[0], "cpu")
    short = _long_file(tmp_path / "short.wav", 1.0)
    long = _long_file(tmp_path / "long.wav", 8.0)
    settings = AnalysisSettings(hop_s=2.0, gate=False)
    peaks = [_traced_peak(lambda p=p: analyze_file(p, predictor, settings)) for p in (short, long)]
    assert peaks[1] < 1.5 * peaks[0] + 2e6, [f"{p / 1e6:.1f} MB" for p in peaks]  # 8 times the audio, not 8 times the memory
    assert peaks[1] < 8 * 60 * RATE * 4  # less than the long file's samples alone would take
