"""Presentation mode (F11, `serapp --present`): full screen, the top emotion in very large type in
its colour, its confidence as a bar, the live spectrogram, and nothing else but the voice profile
read with and how to leave. Sized for a room: a sure word is up to a fifth of the screen's height
(over 200 px on a 1080p projector), drawn smaller the less sure it is, so 29% never looks like
81%; a reading the model is not sure of (serapp.readout) says so, in grey."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from serapp.feature_config import FrontEndConfig
from serapp.gui.plots import SpectrogramPlot
from serapp.labels import emotion_color
from serapp.readout import describe

WORD_SHARE = 0.2  # of the window's height, at 100%
SMALLEST_SHARE = 0.4  # of that, at 0%: the word's size grows with the confidence
HINT = "F11 or Esc: leave presentation"
SIDE_STYLE = "color: #aaaaaa; font-size: 14pt;"


def word_scale(confidence: float) -> float:
    """The word's size as a share of its largest, by the reading's confidence."""
    return SMALLEST_SHARE + (1 - SMALLEST_SHARE) * max(0.0, min(1.0, confidence))


class ConfidenceBar(QtWidgets.QWidget):
    """A bar as wide as the confidence, in the emotion's colour, with the percentage on it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.value, self.color = 0.0, QtGui.QColor("#555555")
        self.setMinimumHeight(40)

    def set_value(self, value: float, color: str) -> None:
        self.value, self.color = max(0.0, min(1.0, value)), QtGui.QColor(color)
        self.update()

    def paintEvent(self, event) -> None:
        p = QtGui.QPainter(self)
        r = self.rect().adjusted(8, 4, -8, -4)
        p.fillRect(r, QtGui.QColor("#202020"))
        p.fillRect(QtCore.QRectF(r.x(), r.y(), r.width() * self.value, r.height()), self.color)
        font = p.font()
        font.setPixelSize(max(12, int(r.height() * 0.6)))
        font.setBold(True)
        p.setFont(font)
        p.setPen(QtGui.QColor("white"))
        p.drawText(r, QtCore.Qt.AlignmentFlag.AlignCenter, f"{self.value:.0%}" if self.value else "")
        p.end()


class PresentationWindow(QtWidgets.QWidget):
    closed = QtCore.Signal()

    def __init__(self, config: FrontEndConfig, parent=None):
        super().__init__(parent, QtCore.Qt.WindowType.Window)
        self.setWindowTitle("serapp — presentation")
        self.setStyleSheet("background: black;")
        self.word = QtWidgets.QLabel("—")
        self.word.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.caption = QtWidgets.QLabel()  # a file's name, when presenting a file
        self.caption.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.caption.setStyleSheet("color: #aaaaaa; font-size: 18pt;")
        self.caption.hide()
        self.bar = ConfidenceBar()
        self.voice = QtWidgets.QLabel()  # the voice profile read with
        self.hint = QtWidgets.QLabel(HINT)
        for side in (self.voice, self.hint):
            side.setStyleSheet(SIDE_STYLE)
        self.hint.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self._scale = 1.0
        view = pg.GraphicsLayoutWidget()
        view.setBackground("k")
        self.spectrogram = SpectrogramPlot(config, seconds=10.0)
        self.spectrogram.hideAxis("left")
        self.spectrogram.hideAxis("bottom")
        view.addItem(self.spectrogram)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.word, 4)
        layout.addWidget(self.bar, 1)
        layout.addWidget(view, 4)
        footer = QtWidgets.QHBoxLayout()
        footer.addWidget(self.voice, 1)
        footer.addWidget(self.hint)
        layout.addLayout(footer)
        self.show_none()

    def _font(self) -> None:
        font = self.word.font()
        font.setPixelSize(max(16, int(self.height() * WORD_SHARE * self._scale)))
        font.setBold(True)
        self.word.setFont(font)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._font()

    def set_voice(self, text: str) -> None:
        self.voice.setText(text)

    def show_reading(self, probabilities: dict[str, float] | None, sure: bool | None = None) -> None:
        if not probabilities:
            self.show_none()
            return
        top = max(probabilities, key=probabilities.get)
        color = emotion_color(top) if sure is not False else "#777777"
        self.word.setText(top if sure is not False else describe(top, probabilities, sure))
        self.word.setStyleSheet(f"color: {color};")
        self._size(probabilities[top])
        self.bar.set_value(probabilities[top], color)

    def _size(self, confidence: float) -> None:
        scale = word_scale(confidence)
        if scale != self._scale:
            self._scale = scale
            self._font()

    def show_file(self, analysis) -> None:
        """A file instead of the microphone: its whole spectrogram and its overall reading (a
        serapp.file_analysis.FileAnalysis)."""
        self.caption.setText(f"{analysis.path.name} — the whole file ({analysis.duration_s:.1f} s)")
        self.caption.show()
        self.spectrogram.set_config(analysis.frontend)
        self.spectrogram.set_whole(analysis.log_mel, analysis.duration_s)
        self.spectrogram.setXRange(0.0, max(analysis.duration_s, 0.1), padding=0)
        overall = analysis.overall
        if overall is None:
            self.show_none("no model")
        elif overall.probabilities is None:
            self.show_none("no speech")
        else:
            self.show_reading(overall.probabilities, overall.sure)

    def show_none(self, why: str = "…") -> None:
        self.word.setText(why)
        self.word.setStyleSheet("color: #777777;")
        self._size(0.0)  # not a reading: small
        self.bar.set_value(0.0, "#555555")

    def add_columns(self, columns_db) -> None:
        self.spectrogram.append(columns_db)
        self.spectrogram.redraw(0.0)

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        if event.key() in (QtCore.Qt.Key.Key_Escape, QtCore.Qt.Key.Key_F11):
            self.close()
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:
        self.closed.emit()
        super().closeEvent(event)
