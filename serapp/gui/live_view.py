"""The live tab: waveform, scrolling spectrogram, each model's emotion strip and timeline on one
time axis; a readout per model and the arousal-valence panel beside them.

The GUI timer calls `tick()` at display rate. It only reads the source's ring buffer (what
arrived since the last frame), turns it into spectrogram columns with the streaming front-end,
and shows readings the inference workers queued. No model runs on this thread. The time axis
stays fixed (the last 10 s); each frame moves the plots' content with the clock, and their
data change only when audio or a reading arrives.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
from PySide6 import QtWidgets

from serapp.audio.recorder import Recorder
from serapp.feature_config import FrontEndConfig, display_config
from serapp.gui.time_panels import TimePanels
from serapp.gui.widgets import CircumplexWidget, ReadoutWidget
from serapp.labels import EMOTIONS
from serapp.profiles import speech_heard
from serapp.reading_cost import reading_ms
from serapp.settings import AnalysisSettings

SECONDS = 10.0  # what every live plot shows


def readout_column(readouts: list[ReadoutWidget], circumplex: CircumplexWidget) -> QtWidgets.QWidget:
    """The right-hand column of both views: the readouts side by side, the circumplex below."""
    column = QtWidgets.QWidget()
    layout = QtWidgets.QVBoxLayout(column)
    layout.setContentsMargins(0, 0, 0, 0)
    row = QtWidgets.QHBoxLayout()
    for r in readouts:
        row.addWidget(r, 1)  # equal halves, whatever each says
    layout.addLayout(row, 3)
    layout.addWidget(circumplex, 2)
    return column


class LiveView(QtWidgets.QWidget):
    def __init__(self, frontend: FrontEndConfig | None = None, parent=None):
        super().__init__(parent)
        self.frontend_config = frontend or FrontEndConfig()
        self.panels = TimePanels(self.frontend_config, list(EMOTIONS), live_seconds=SECONDS)
        self.readouts = [ReadoutWidget(list(EMOTIONS)), ReadoutWidget(list(EMOTIONS))]
        self.readouts[1].hide()
        self.circumplex = CircumplexWidget()
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panels, 3)
        layout.addWidget(readout_column(self.readouts, self.circumplex), 1)
        self.source = None
        self.predictors: list = [None, None]  # the model, and the one it is compared with
        self.workers: list = [None, None]
        self.profile = None  # the voice profile read with (serapp.profiles), None: learn live
        self.recorder: Recorder | None = None
        self.settings = AnalysisSettings()
        self.frame_ms: deque[float] = deque(maxlen=600)
        self.frames_drawn = 0
        self.last_reading = None
        self.reading_ms: deque[float] = deque(maxlen=25)  # the model's recent speech readings' cost
        self.last_readings: list = [None, None]
        self.column_listeners: list = []  # presentation mode draws the same spectrogram columns...
        self.reading_listeners: list = []  # ...and the model's readings
        self._stream_fe = None  # a StreamingFrontEnd, built at Start (torch is not imported before the window shows)
        self._resampler = None
        self._pos = 0
        self._last_arrival = time.perf_counter()

    # --- what other parts look at ----------------------------------------------------------

    @property
    def predictor(self):
        return self.predictors[0]

    @property
    def worker(self):
        return self.workers[0]

    @property
    def readout(self) -> ReadoutWidget:
        return self.readouts[0]

    @property
    def spectrogram(self):
        return self.panels.spectrogram

    @property
    def waveform(self):
        return self.panels.waveform

    @property
    def timeline(self):
        return self.panels.tracks[0].timeline

    @property
    def comparing(self) -> bool:
        return self.predictors[1] is not None

    # --- wiring ----------------------------------------------------------------------------

    def set_source(self, source) -> None:
        self.stop_worker()
        self.source = source
        if source is not None:
            self.waveform.stream(SECONDS, source.sample_rate)
        self._restart_spectrogram()
        for r in self.visible_readouts():
            r.show_none("listening…")
        self._start_workers()

    def visible_readouts(self) -> list[ReadoutWidget]:
        return self.readouts[: 2 if self.comparing else 1]

    def _restart_spectrogram(self) -> None:
        """The live spectrogram in the primary model's own front-end (rate, bands, hop)."""
        self._stream_fe = None
        self.spectrogram.set_config(self.frontend_config)
        if self.source is not None:
            from serapp.features import StreamingFrontEnd
            from serapp.live import StreamResampler

            self._pos = self.source.ring.written
            self._resampler = StreamResampler(self.source.sample_rate, self.frontend_config.sample_rate)
            # Log-mel for display whatever features the model takes.
            self._stream_fe = StreamingFrontEnd(display_config(self.frontend_config))

    def set_predictor(self, predictor, slot: int = 0) -> None:
        """The model (slot 0), or the one it is compared with (slot 1; None ends the comparison)."""
        self.predictors[slot] = predictor
        self.relabel()
        for i, r in enumerate(self.readouts):
            p = self.predictors[i]
            if p is not None:
                profile = voice_profile_for(self.profile, p)  # what it will read with, until it reads
                r.set_note(self._voice_note(profile.seconds if profile else 0.0 if p.adapts else None, profile))
        primary = self.predictors[0]
        if slot == 0 and primary is not None and primary.meta.frontend != self.frontend_config:
            self.frontend_config = primary.meta.frontend
            self._restart_spectrogram()
        if self.source is None:
            return
        if slot == 0:
            self.stop_worker()
            self._start_workers()
        else:  # the first model reads on: the voice it has learnt stays
            self._stop_worker(1)
            if predictor is not None:
                self._start_worker(1, self.workers[0].analyzer if self.workers[0] is not None else None)

    def relabel(self) -> None:
        """The models' labels and names on the plots and readouts again (also when the emotions
        shown change: the workers read on, with the voice they learnt)."""
        names = model_names(*self.predictors) if self.comparing else [""]
        labels = [p.labels if p is not None else list(EMOTIONS) for p in self.predictors[: 2 if self.comparing else 1]]
        self.panels.set_models(labels, names)
        self.circumplex.set_models(names)
        for i, r in enumerate(self.readouts):
            p = self.predictors[i]
            if p is not None:
                r.set_labels(p.labels)
            r.set_title(names[i] if self.comparing and p is not None else "")
        self.readouts[1].setVisible(self.comparing)

    @staticmethod
    def _name(predictor) -> str:
        if predictor is None:
            return ""
        return predictor.path.stem if getattr(predictor, "path", None) else predictor.meta.architecture

    def set_profile(self, profile) -> None:
        """Read with a voice profile (None: learn each voice from the cold start); also a reset."""
        self.profile = profile
        for i, w in enumerate(self.workers):
            if w is not None:
                w.analyzer.reset_voice(voice_profile_for(profile, self.predictors[i]))

    def reset_voice(self) -> None:
        """Forget the voice heard so far (the next person at the microphone)."""
        self.set_profile(self.profile)

    def set_settings(self, settings: AnalysisSettings) -> None:
        """New analysis settings, handed to the workers as one immutable value."""
        self.settings = settings
        for w in self.workers:
            if w is not None:
                w.analyzer.update(settings)

    def _start_workers(self) -> None:
        if self.source is None:
            return
        first = None
        for i in range(len(self.predictors)):
            analyzer = self._start_worker(i, first)
            first = first or analyzer

    def _start_worker(self, i: int, scores_from=None):
        """Model i's analyzer on its own thread (each its own front-end and window; one gate,
        `scores_from`'s, where the rates match); None without a model in slot i."""
        p = self.predictors[i]
        if self.source is None or p is None:
            return None
        from serapp.live import LiveAnalyzer, LiveWorker

        analyzer = LiveAnalyzer(self.source, p, self.settings, scores_from=scores_from,
                                profile=voice_profile_for(self.profile, p))
        self.workers[i] = LiveWorker(analyzer)
        self.workers[i].start()
        return analyzer

    def _stop_worker(self, i: int) -> None:
        if self.workers[i] is not None:
            self.workers[i].stop()
        self.workers[i] = None

    def stop_worker(self) -> None:
        for i in range(len(self.workers)):
            self._stop_worker(i)

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
        now_audio = self.source.ring.written / self.source.sample_rate
        if chunk.size:
            self._last_arrival = t0
            cols = self._stream_fe.push(self._resampler(chunk))
            self.spectrogram.append(cols)
            self.spectrogram.redraw(0.0)
            for listener in self.column_listeners:
                listener(cols)
            self.waveform.push(chunk)
        for i, w in enumerate(self.workers):
            if w is None:
                continue
            for r in w.drain():
                readout = self.readouts[i]
                if r.probabilities is not None and list(r.probabilities) != readout.labels:
                    continue  # read before the emotions shown changed
                self.last_readings[i] = r
                # At the window's centre: drawn at its end, a 3 s window's colour ran on 3 s past the speech
                self.panels.tracks[i].add(r.t - r.window_s / 2, r.probabilities, self.settings.hop_s, SECONDS)
                if r.speech:
                    readout.show_probabilities(r.probabilities, r.sure)
                else:
                    readout.show_none()
                readout.set_note(self._voice_note(r.voice_s, r.profile))
                self.circumplex.add(r.probabilities, i)
                if i == 0:
                    self.last_reading = r
                    if r.speech:
                        self.reading_ms.append(reading_ms(r.features_ms, r.model_ms))
                    for listener in self.reading_listeners:
                        listener(r.probabilities, r.sure)
                    if self.recorder is not None:
                        self.recorder.add_reading(r.window_reading(self.recorder.start_s))
        # Every frame the content glides left with the clock, up to 50 ms past the newest audio,
        # while the axes stay put: moving the view's range made every axis and item repaint
        # (half of each frame's painting). A frame that brought audio placed it already (lag 0).
        lag = min(max(t0 - self._last_arrival, 0.0), 0.05)
        if not chunk.size:
            self.spectrogram.place(lag)
            self.waveform.place(lag)
        for track in self.panels.tracks:
            track.redraw(now_audio, lag)
        self.frames_drawn += 1
        self.frame_ms.append((time.perf_counter() - t0) * 1e3)

    def _voice_note(self, voice_s: float | None, profile) -> str:
        """A model's status line; it names the profile in use that the model cannot read with."""
        name = profile if isinstance(profile, str) or profile is None else profile.name
        unused = self.profile.name if self.profile is not None and name is None else None
        saved = self.profile.seconds if self.profile is not None and name == self.profile.name else None
        return voice_note(voice_s, name, unused, saved)

    def stream_columns(self) -> np.ndarray:
        return self.spectrogram.columns()


def voice_profile_for(profile, predictor):
    """`profile` where it fits the model (a compared model with other features reads cold)."""
    return profile if profile is not None and predictor is not None and profile.fits(predictor) else None


def voice_note(voice_s: float | None, profile: str | None, unused: str | None = None,
               saved: float | None = None) -> str:
    """What a live readout says about the voice it reads with (`unused`: a profile in use that
    this model cannot read with, a compared model with other features; `saved`: the profile's
    own speech, said as the Voice dialog and `profile list` say it, then what was heard live since)."""
    if voice_s is None:
        return "does not adapt to a voice"
    if profile:
        since = voice_s - saved if saved is not None else 0.0
        return (f"voice profile {profile} ({speech_heard(voice_s - since)})"
                + (f" + {speech_heard(since).removesuffix(' of speech')} live" if since > 0 else ""))
    note = f"adapting: {speech_heard(voice_s)}" if voice_s else "cold start: adapting as you speak"
    return f"{note} (not {unused}'s profile: other features)" if unused else note


def model_names(first, second) -> list[str]:
    """Two compared models' names, told apart: file names, and "(same model)" for the same one
    twice (a parent folder where two files share a name)."""
    a, b = LiveView._name(first), LiveView._name(second)
    if second is None or a != b:
        return [a, b] if second is not None else [a]
    pa, pb = getattr(first, "path", None), getattr(second, "path", None)
    if pa is None or pb is None or pa.resolve() == pb.resolve():
        return [a, f"{b} (same model)"]
    return [f"{pa.parent.name}/{a}", f"{pb.parent.name}/{b}"]
