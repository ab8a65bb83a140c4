"""The file tab: whole waveform and spectrogram, emotion timeline, overall prediction, playback."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from serapp.audio.playback import ClipPlayer
from serapp.errors import SerappError
from serapp.features import FrontEndConfig
from serapp.file_analysis import FileAnalysis
from serapp.gui.widgets import (
    ReadoutWidget,
    SpectrogramWidget,
    TimelineWidget,
    WaveformWidget,
    panel_grid,
)
from serapp.labels import EMOTIONS


class FileView(QtWidgets.QWidget):
    export_requested = QtCore.Signal()
    message = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.analysis: FileAnalysis | None = None
        self.title = QtWidgets.QLabel("Open an audio file (Ctrl+O) or drop one here.")
        self.title.setWordWrap(True)
        self.play_button = QtWidgets.QPushButton("Play")
        self.play_button.setEnabled(False)
        self.play_button.clicked.connect(self.toggle_play)
        self.export_button = QtWidgets.QPushButton("Export timeline CSV…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_requested.emit)
        self.waveform = WaveformWidget()
        self.spectrogram = SpectrogramWidget(FrontEndConfig())
        self.timeline = TimelineWidget(list(EMOTIONS))
        self.readout = ReadoutWidget(list(EMOTIONS))
        self.cursors = [pg.InfiniteLine(0, angle=90, pen=pg.mkPen("r", width=1)) for _ in range(3)]
        for plot, cursor in zip((self.waveform, self.spectrogram.plot, self.timeline), self.cursors):
            plot.addItem(cursor)
            cursor.setVisible(False)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.play_button)
        top.addWidget(self.export_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(panel_grid(self.waveform, self.spectrogram, self.timeline, self.readout), 1)
        self.player = ClipPlayer()
        self._playing = False
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self._move_cursor)

    def show_analysis(self, a: FileAnalysis, labels: list[str] | None) -> None:
        self.stop_playback()
        self.analysis = a
        self.spectrogram.set_config(a.frontend)
        self.waveform.show_envelope(*a.envelope, a.duration_s)
        self.spectrogram.set_whole(a.log_mel, a.duration_s)
        text = f"<b>{a.path.name}</b> — {a.duration_s:.2f} s"
        if a.overall is not None and labels:
            self.readout.set_labels(labels)
            self.timeline.set_labels(labels)
            if a.overall.probabilities is not None:
                self.readout.show_probabilities(a.overall.probabilities)
                text += f" — overall: <b>{a.overall.label}</b> ({a.overall.probabilities[a.overall.label]:.0%})"
            else:
                self.readout.show_none("no speech")
                text += " — overall: <b>no speech</b>"
            voiced = sum(s.speech for s in a.segments)
            text += f", {len(a.segments)} windows ({voiced} with speech)"
            centres = np.array([(s.start_s + s.end_s) / 2 for s in a.segments])
            probs = np.array([[s.probabilities[k] if s.probabilities else np.nan for k in labels] for s in a.segments])
            self.timeline.show_segments(centres, probs, a.duration_s)
        else:
            self.readout.show_none("no model")
        if a.shortfall:
            text += f" — <i>{a.shortfall}</i>"
        self.title.setText(text)
        self.play_button.setEnabled(True)
        self.export_button.setEnabled(bool(a.segments))

    def toggle_play(self) -> None:
        if self._playing:
            self.stop_playback()
            return
        if self.analysis is None:
            return
        try:
            self.player.play_file(self.analysis.path)
        except SerappError as exc:  # no PortAudio, no output, busy device, file gone: say so, stay usable
            self.message.emit(str(exc))
            return
        self._playing = True
        for c in self.cursors:
            c.setValue(0.0)
            c.setVisible(True)
        self.play_button.setText("Stop")
        self._timer.start()

    def stop_playback(self) -> None:
        if not self._playing:
            return
        self._playing = False
        self._timer.stop()
        self.play_button.setText("Play")
        self.player.stop()

    def _move_cursor(self) -> None:
        """The cursor follows the samples the output has played, not the wall clock."""
        if not self._playing or self.analysis is None:
            return
        if self.player.ended():
            self.stop_playback()
            return
        t = self.player.position_s()
        if t is not None:
            for c in self.cursors:
                c.setValue(t)
