"""Live analysis without Qt: follow a source's ring buffer, read a sliding window every hop.

`LiveAnalyzer.poll()` does the work and is meant for a worker thread (`LiveWorker`), never the
GUI thread. When the worker falls behind, it evaluates only the newest window: a live readout
must not build up latency.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np
import soxr

from serapp.adaptation import VoiceState
from serapp.analysis import make_gate
from serapp.audio.ringbuffer import RingBuffer
from serapp.settings import MAX_WINDOW_S, AnalysisSettings
from serapp.timeline import WindowReading


class StreamResampler:
    """Chunk-by-chunk resampling (soxr keeps the filter state between chunks)."""

    def __init__(self, rate_in: int, rate_out: int):
        self.rate_in, self.rate_out = int(rate_in), int(rate_out)
        self._stream = None if rate_in == rate_out else soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality="HQ")

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        if self._stream is None or chunk.size == 0:
            return chunk
        return self._stream.resample_chunk(np.ascontiguousarray(chunk, dtype=np.float32))

    def reset(self) -> None:
        if self._stream is not None:
            self._stream.clear()


@dataclass
class Reading:
    t: float  # source time in seconds (since the source started) at the end of the window
    speech: bool
    probabilities: dict[str, float] | None  # smoothed; None when the window has no speech
    label: str | None
    features_ms: float = 0.0
    model_ms: float = 0.0
    speech_fraction: float = 0.0
    window_s: float = 0.0  # seconds of audio the window held (less than asked while it fills)
    voice_s: float | None = None  # seconds of the voice the model has adapted to (None: it does not adapt)
    profile: str | None = None  # the voice profile it started from, if any
    sure: bool | None = None  # the calibrated top probability reaches the model's threshold (serapp.readout)

    def window_reading(self, since: float = 0.0) -> WindowReading:
        """As a timeline row, its times counted from source time `since`."""
        return WindowReading(self.t - self.window_s - since, self.t - since, self.speech, self.speech_fraction,
                             self.probabilities, self.label, self.sure)


class LiveAnalyzer:
    """Reads the newest window every hop, as serapp.analysis reads any window: the speech gate,
    then the model over model-length pieces. The gate judges audio once, as it arrives.

    Settings arrive as one immutable AnalysisSettings (`update`, from any thread); `poll` takes
    the newest at its start, so a window, hop or threshold never changes halfway through.

    A model that adapts (serapp.adaptation) learns the voice while `settings.adapt` holds: every
    WINDOW_HOP_S of new audio, a full model-length speech window's pooled features (those it was
    just read with) join the voice's statistics, which start from a voice profile or from the
    population's. `reset_voice` (any thread) starts over from there, or from a new profile.
    """

    def __init__(self, source, predictor, settings: AnalysisSettings = AnalysisSettings(), gate=None,
                 scores_from: LiveAnalyzer | None = None, profile=None):
        self.source, self.predictor = source, predictor
        self._voice_request = (profile,)  # applied by the worker at its next poll
        self.voice: VoiceState | None = None
        self.profile = None
        self.rate = predictor.sample_rate
        self._settings = settings
        # A model compared with another at the same rate reads that analyzer's gate scores (it
        # only reads them, on its own thread): the same audio is judged once, and the gate was
        # half of each worker's time. The two read the source up to one poll apart, so a window's gate
        # frames may end up to that much (50 ms) before or after the window does.
        self.shared_scores = scores_from is not None and scores_from.rate == self.rate
        if self.shared_scores:
            self.gate, self.scores = scores_from.gate, scores_from.scores
        else:
            self.gate = gate if gate is not None else make_gate(settings, self.rate)
            self.scores = RingBuffer(int((MAX_WINDOW_S + 5.0) * self.rate) // self.gate.frame + 1)
        self.ring = RingBuffer(int((MAX_WINDOW_S + 5.0) * self.rate))
        self.reset()

    @property
    def settings(self) -> AnalysisSettings:
        return self._settings

    def update(self, settings: AnalysisSettings) -> None:
        self._settings = settings  # one reference store: atomic

    def reset_voice(self, profile=None) -> None:
        """Forget the voice heard: start again from `profile` (a serapp.profiles.VoiceProfile) or
        from the population's statistics. Safe from any thread: the worker applies it."""
        self._voice_request = (profile,)

    def _apply_voice_request(self) -> None:
        request, self._voice_request = self._voice_request, None
        if request is None:
            return
        (profile,) = request
        self.profile = profile
        self.voice = profile.voice(self.predictor) if profile is not None else self.predictor.new_voice()
        self._learned_at = -(1 << 62)

    def reset(self) -> None:
        self._pos = self.source.ring.written
        self._t0 = self._pos / self.source.sample_rate
        self._resampler = StreamResampler(self.source.sample_rate, self.rate)
        self.ring.reset()
        if not self.shared_scores:  # the other analyzer's to reset
            self.scores.reset()
            self.gate.reset()
        self._carry = np.zeros(0, np.float32)
        self._next_eval = 0
        self._smoothed: np.ndarray | None = None
        self.lost = 0

    def _pull(self) -> None:
        chunk, self._pos, lost = self.source.ring.since(self._pos)
        self.lost += lost
        if chunk.size:
            audio = self._resampler(chunk)
            self.ring.write(audio)
            if self.shared_scores:
                return
            data = np.concatenate([self._carry, audio])
            whole = data.size // self.gate.frame * self.gate.frame
            if whole:
                self.scores.write(self.gate.scores(data[:whole]))
            self._carry = data[whole:]

    def poll(self) -> Reading | None:
        """Take in new audio; read the newest window if a hop boundary has passed."""
        settings = self._settings
        self._apply_voice_request()
        self._pull()
        written = self.ring.written
        hop = max(1, int(round(settings.hop_s * self.rate)))
        if self._next_eval == 0:
            self._next_eval = hop
        if written < self._next_eval:
            return None
        self._next_eval = written - (written % hop) + hop  # skip stale hops when behind
        window = int(round(settings.window_for(self.predictor) * self.rate))
        samples = self.ring.latest(min(window, written)).copy()
        t = self._t0 + written / self.rate
        n_frames = max(1, samples.size // self.gate.frame)
        recent = self.scores.latest(min(n_frames, self.scores.written))
        voiced = int((recent >= settings.gate_threshold).sum())
        fraction = voiced / recent.size if recent.size else 0.0
        if settings.gate and voiced * self.gate.frame / self.rate < settings.min_speech_s:
            self._smoothed = None
            return Reading(t, False, None, None, speech_fraction=fraction, window_s=samples.size / self.rate,
                           **self._voice_fields())
        readout = self.predictor.readout  # the emotions shown may change meanwhile: one readout per reading
        probs = self._read(samples, settings, written, readout)
        if settings.smoothing > 0 and self._smoothed is not None and self._smoothed.shape == probs.shape:
            probs = settings.smoothing * self._smoothed + (1 - settings.smoothing) * probs
        self._smoothed = probs
        labels = readout.labels
        timing = self.predictor.last_timing
        shown = {k: float(p) for k, p in zip(labels, probs)}
        return Reading(t, True, shown, labels[int(np.argmax(probs))],
                       timing["features_ms"], timing["model_ms"], fraction, samples.size / self.rate,
                       sure=readout.is_sure(shown), **self._voice_fields())

    def _voice_fields(self) -> dict:
        return {"voice_s": self.voice.seconds if self.voice is not None else None,
                "profile": self.profile.name if self.profile is not None else None}

    def _read(self, samples: np.ndarray, settings: AnalysisSettings, written: int, readout) -> np.ndarray:
        """The window's probabilities with the voice's statistics; learns from it when due."""
        voice = self.voice
        full = samples.size >= self.predictor.model_window
        learn = (voice is not None and settings.adapt and full
                 and written - self._learned_at >= int(round(voice.hop_s * self.rate)))
        pooled = [] if learn else None
        if voice is None:  # a model that does not adapt
            return self.predictor.predict_prepared(samples, readout=readout)
        probs = self.predictor.predict_prepared(samples, voice, pooled, readout)
        if learn:
            self.predictor.learn(voice, pooled[-1])  # the last piece: the newest model-length window
            self._learned_at = written
        return probs


class LiveWorker:
    """Runs an analyzer on its own thread; readings arrive in `readings` (a queue) for the GUI."""

    def __init__(self, analyzer: LiveAnalyzer, interval_s: float = 0.05):
        self.analyzer = analyzer
        self.interval_s = interval_s
        self.readings: queue.Queue[Reading] = queue.Queue()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="LiveWorker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                reading = self.analyzer.poll()
                if reading is not None:
                    self.readings.put(reading)
                self._stop.wait(max(0.0, self.interval_s - (time.perf_counter() - t0)))
        except Exception as exc:  # shown in the status bar; the app stays usable
            self.error = f"live analysis stopped: {exc}"

    def drain(self) -> list[Reading]:
        out = []
        while True:
            try:
                out.append(self.readings.get_nowait())
            except queue.Empty:
                return out
