"""The live tab: waveform, scrolling spectrogram, emotion readout and timeline.

The GUI timer calls `tick()` at display rate. It only reads the source's ring buffer (what
arrived since the last frame), turns it into spectrogram columns with the streaming front-end,
and shows readings the inference worker queued. The model never runs on this thread.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
from PySide6 import QtWidgets

from serapp.audio.recorder import Recorder
from serapp.features import FrontEndConfig, StreamingFrontEnd, display_config
from serapp.gui.widgets import (
    ReadoutWidget,
    SpectrogramWidget,
    TimelineWidget,
    WaveformWidget,
    panel_grid,
)
from serapp.labels import EMOTIONS
from serapp.live import LiveAnalyzer, LiveWorker, StreamResampler
from serapp.settings import AnalysisSettings


class LiveView(QtWidgets.QWidget):
    def __init__(self, frontend: FrontEndConfig | None = None, parent=None):
        super().__init__(parent)
        self.frontend_config = frontend or FrontEndConfig()
        self.waveform = WaveformWidget(seconds=5.0)
        self.spectrogram = SpectrogramWidget(self.frontend_config, seconds=10.0)
        self.readout = ReadoutWidget(list(EMOTIONS))
        self.timeline = TimelineWidget(list(EMOTIONS), seconds=60.0)
        self.setLayout(panel_grid(self.waveform, self.spectrogram, self.timeline, self.readout))
        self.source = None
        self.predictor = None
        self.worker: LiveWorker | None = None
        self.recorder: Recorder | None = None
        self.settings = AnalysisSettings()
        self.frame_ms: deque[float] = deque(maxlen=600)
        self.frames_drawn = 0
        self.last_reading = None
        self._stream_fe: StreamingFrontEnd | None = None
        self._resampler = None
        self._pos = 0
        self._last_arrival = time.perf_counter()

    # --- wiring ----------------------------------------------------------------------------

    def set_source(self, source) -> None:
        self.stop_worker()
        self.source = source
        self._restart_spectrogram()
        self.readout.show_none("listening…")
        self._start_worker()

    def _restart_spectrogram(self) -> None:
        """The live spectrogram in the model's own front-end (rate, bands, hop)."""
        self._stream_fe = None
        self.spectrogram.set_config(self.frontend_config)
        if self.source is not None:
            self._pos = self.source.ring.written
            self._resampler = StreamResampler(self.source.sample_rate, self.frontend_config.sample_rate)
            # Built at Start (off start-up); log-mel for display whatever features the model takes.
            self._stream_fe = StreamingFrontEnd(display_config(self.frontend_config))

    def set_predictor(self, predictor) -> None:
        self.predictor = predictor
        if predictor is not None:
            self.readout.set_labels(predictor.labels)
            self.timeline.set_labels(predictor.labels)
            if predictor.meta.frontend != self.frontend_config:
                self.frontend_config = predictor.meta.frontend
                self._restart_spectrogram()
        if self.source is not None:
            self.stop_worker()
            self._start_worker()

    def set_settings(self, settings: AnalysisSettings) -> None:
        """New analysis settings, handed to the worker as one immutable value."""
        self.settings = settings
        if self.worker is not None:
            self.worker.analyzer.update(settings)

    def _start_worker(self) -> None:
        if self.source is None or self.predictor is None:
            return
        analyzer = LiveAnalyzer(self.source, self.predictor, self.settings)
        self.worker = LiveWorker(analyzer)
        self.worker.start()

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def detach_source(self) -> None:
        self.stop_worker()
        self.stop_recording()
        self.source = None

    # --- recording -------------------------------------------------------------------------

    def start_recording(self, wav_path: Path) -> Recorder:
        labels = self.predictor.labels if self.predictor else list(EMOTIONS)
        self.recorder = Recorder(wav_path, self.source.ring, self.source.sample_rate, labels)
        return self.recorder

    def stop_recording(self) -> Recorder | None:
        rec, self.recorder = self.recorder, None
        if rec is not None:
            rec.close()
        return rec

    # --- the frame --------------------------------------------------------------------------

    def tick(self) -> None:
        if self.source is None:
            return
        t0 = time.perf_counter()
        chunk, self._pos, _ = self.source.ring.since(self._pos)
        if chunk.size:
            self._last_arrival = t0
            cols = self._stream_fe.push(self._resampler(chunk))
            self.spectrogram.append(cols)
            # The waveform (and the timeline's time axis) change only when audio arrives.
            self.waveform.show_samples(self.source.ring.latest(int(5.0 * self.source.sample_rate)))
        self.spectrogram.redraw(t0 - self._last_arrival)  # every frame: the scroll is time-driven
        if self.worker is not None:
            readings = self.worker.drain()
            for r in readings:
                self.last_reading = r
                self.timeline.add(r.t, r.probabilities)
                if r.speech:
                    self.readout.show_probabilities(r.probabilities)
                else:
                    self.readout.show_none()
                if self.recorder is not None:
                    start_t = self.recorder.start_position / self.source.sample_rate
                    self.recorder.add_reading(r.t - start_t, r.speech, r.label, r.probabilities)
            if chunk.size or readings:
                self.timeline.redraw(self.source.ring.written / self.source.sample_rate)
        self.frames_drawn += 1
        self.frame_ms.append((time.perf_counter() - t0) * 1e3)

    def stream_columns(self) -> np.ndarray:
        return self.spectrogram.columns()
