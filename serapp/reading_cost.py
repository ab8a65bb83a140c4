"""What one live reading costs: the one figure the status bar shows (at load and live), the live
hop is set by, and benchmarks/bench_reading_cost.py prints for the README.

A reading's cost is its features and model milliseconds (`Predictor.last_timing`) for one model
window read as the live view reads it: with a voice's statistics where the model adapts. Its
median is taken, after warm-up reads (onnxruntime's first runs of a session are slower).
"""

from __future__ import annotations

import statistics

import numpy as np


def reading_ms(features_ms: float, model_ms: float) -> float:
    return features_ms + model_ms


def reading_cost_ms(predictor, runs: int = 5, warmup: int = 2) -> float:
    """Median ms of `runs` live readings of one model window, after `warmup` more."""
    window = (0.1 * np.random.default_rng(0).standard_normal(predictor.model_window)).astype(np.float32)
    voice = predictor.new_voice()  # None for a model that does not adapt
    times = []
    for i in range(warmup + runs):
        predictor.predict_prepared(window, voice, [] if voice is not None else None)
        if i >= warmup:
            times.append(reading_ms(**predictor.last_timing))
    return statistics.median(times)
