"""Limits and the analysis settings the user sets: plain values, importable without torch
(the command line and the window use them before any model is loaded)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_WINDOW_S = 60.0  # the longest analysis window anything here accepts (a model's or a user's)
MIN_HOP_S = 0.05  # the shortest hop between readings
LIVE_HOP_S = 0.2  # the live view's hop unless the user sets one (benchmarks/bench_live.py chose it)
# One live budget: a reading (features + model of one window, serapp.reading_cost) may take half its
# hop on its core, the rest left to the speech gate, a compared model and drawing; a slower model
# gets a longer live hop (gui.model_control.live_hop_for). At the default hop that is 100 ms.
LIVE_SHARE = 0.5
LIVE_BUDGET_MS = LIVE_SHARE * LIVE_HOP_S * 1000
# The live view's smoothing unless the user sets another: the steadiest label whose readout
# latency stays within 400 ms (benchmarks/bench_steady.py: label changes per minute and latency).
LIVE_SMOOTHING = 0.5


@dataclass(frozen=True)
class AnalysisSettings:
    """What the user sets; handed to workers as one immutable value."""

    window_s: float | None = None  # None: the model's own window
    hop_s: float = 0.5
    smoothing: float = 0.0  # live only: weight of the previous reading
    gate: bool = True  # False: read every window, speech or not
    gate_threshold: float = 0.5  # the gate's speech probability per frame
    min_speech_s: float = 0.1  # seconds of speech a window needs (benchmarks/bench_live.py chose it)
    adapt: bool = True  # live only: a model that adapts learns the voice from its speech windows

    def __post_init__(self):
        w = self.window_s
        if w is not None and not (isinstance(w, (int, float)) and math.isfinite(w) and 0 < w <= MAX_WINDOW_S):
            raise ValueError(f"the window must be a number of seconds in (0, {MAX_WINDOW_S:g}], not {w!r}")
        if not (isinstance(self.hop_s, (int, float)) and math.isfinite(self.hop_s) and MIN_HOP_S <= self.hop_s <= MAX_WINDOW_S):
            raise ValueError(f"the hop must be a number of seconds in [{MIN_HOP_S:g}, {MAX_WINDOW_S:g}], not {self.hop_s!r}")
        if not 0 <= self.smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), not {self.smoothing!r}")
        if not 0 < self.gate_threshold < 1 or not 0 < self.min_speech_s <= MAX_WINDOW_S:
            raise ValueError(f"the speech threshold must be in (0, 1) and the speech needed in (0, {MAX_WINDOW_S:g}] s")

    def window_for(self, model) -> float:
        """The window in seconds for a model (a Predictor): the setting, or the model's own."""
        return float(self.window_s) if self.window_s else float(model.window_s)
