"""The file tab: the whole waveform and spectrogram, each model's emotion strip and timeline on
one time axis, the overall reading, playback with a cursor across every plot, and (comparing
two models) both timelines and how often they agree."""

from __future__ import annotations

from html import escape

from PySide6 import QtCore, QtWidgets

from serapp.audio.playback import ClipPlayer
from serapp.errors import SerappError, counted
from serapp.feature_config import FrontEndConfig
from serapp.gui.live_view import readout_column
from serapp.gui.status import ElidedLabel
from serapp.gui.time_panels import TimePanels
from serapp.gui.widgets import CircumplexWidget, ReadoutWidget
from serapp.labels import EMOTIONS
from serapp.readout import describe


def agreement(a_segments, b_segments) -> tuple[float | None, int]:
    """(share of windows where both models hear speech and name the same top emotion, how
    many such windows). Windows are matched by their start time (both models step by one hop)."""
    b_by_start = {round(s.start_s, 3): s for s in b_segments}
    pairs = [(a, b_by_start[round(a.start_s, 3)]) for a in a_segments if round(a.start_s, 3) in b_by_start]
    both = [(a, b) for a, b in pairs if a.label is not None and b.label is not None]
    if not both:
        return None, 0
    return sum(a.label == b.label for a, b in both) / len(both), len(both)


EMPTY_TEXT = "Open or drop an audio file"
EMPTY_SPAN_S = 10.0  # the empty view's time axis, as a 10 s file's


class FileView(QtWidgets.QWidget):
    export_requested = QtCore.Signal()
    message = QtCore.Signal(str)
    shown = QtCore.Signal()  # a file's analysis is on screen
    # what the file reads now: the window under the playback cursor while it plays, else the
    # whole file's reading (probabilities, or None for no speech; and whether it is sure)
    reading_now = QtCore.Signal(object, object)  # (probabilities, sure)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.analysis = None  # a serapp.file_analysis.FileAnalysis
        self.compared = None  # the second model's, when comparing
        self.title = ElidedLabel("Open an audio file (Ctrl+O) or drop one here.", rich=True)
        self.play_button = QtWidgets.QPushButton("Play")
        self.play_button.setEnabled(False)
        self.play_button.clicked.connect(self.toggle_play)
        self.export_button = QtWidgets.QPushButton("Export timeline CSV…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_requested.emit)
        self.panels = TimePanels(FrontEndConfig(), list(EMOTIONS))
        self.readouts = [ReadoutWidget(list(EMOTIONS)), ReadoutWidget(list(EMOTIONS))]
        self.readouts[1].hide()
        self.circumplex = CircumplexWidget()
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.play_button)
        top.addWidget(self.export_button)
        # Until a file is open: the time axis a file gets (from 0 s), an empty picture, and what to do.
        self.placeholder = QtWidgets.QLabel(EMPTY_TEXT)
        self.placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.placeholder.setStyleSheet("font-size: 15pt; color: palette(placeholder-text);")
        self.panels.spectrogram.image.setVisible(False)
        self.panels.set_span(0.0, EMPTY_SPAN_S)
        plots = QtWidgets.QGridLayout()
        plots.addWidget(self.panels, 0, 0)
        plots.addWidget(self.placeholder, 0, 0)  # over the plots, centred
        body = QtWidgets.QHBoxLayout()
        body.addLayout(plots, 3)
        body.addWidget(readout_column(self.readouts, self.circumplex), 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(body, 1)
        self.player = ClipPlayer()
        self._playing = False
        self._shown_segment = None
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self._move_cursor)

    @property
    def readout(self) -> ReadoutWidget:
        return self.readouts[0]

    @property
    def cursors(self):
        return self.panels.cursors

    def show_analysis(self, a, labels: list[str] | None, compared=None, names: tuple[str, str] = ("", "")) -> None:
        """Show a serapp.file_analysis.FileAnalysis (and a second model's of the same file)."""
        self.stop_playback()
        self.analysis, self.compared = a, compared
        self.placeholder.hide()
        self.panels.spectrogram.image.setVisible(True)
        self.panels.spectrogram.set_config(a.frontend)
        self.panels.waveform.show_envelope(*a.envelope, a.duration_s)
        self.panels.spectrogram.set_whole(a.log_mel, a.duration_s)
        text = f"<b>{escape(a.path.name)}</b> — {a.duration_s:.2f} s"  # names are escaped: never markup
        self.circumplex.clear_trail()
        analyses = [x for x in (a, compared) if x is not None and x.overall is not None]
        if analyses and labels:
            model_labels = [labels] + ([compared.labels] if compared is not None and compared.overall else [])
            model_titles = list(names[: len(model_labels)]) if compared else [""]
            self.panels.set_models(model_labels, model_titles)
            self.circumplex.set_models(model_titles)
            for i, (x, readout) in enumerate(zip(analyses, self.readouts)):
                readout.set_labels(model_labels[i])
                readout.set_title(names[i] if compared else "")
                readout.setVisible(True)
                if x.overall.probabilities is not None:
                    readout.show_probabilities(x.overall.probabilities, x.overall.sure)
                else:
                    readout.show_none("no speech")
                self.panels.tracks[i].show_file(x.segments, model_labels[i])
            self.readouts[1].setVisible(compared is not None)
            o = a.overall
            text += f" — overall: <b>{escape(describe(o.label, o.probabilities, o.sure))}</b>"
            voiced = sum(s.speech for s in a.segments)
            text += f", {counted(len(a.segments), 'window')} ({voiced} with speech)"
            if compared is not None:
                share, n = agreement(a.segments, compared.segments)
                text += (f" — the models agree on {share:.0%} of {counted(n, 'window')}" if share is not None
                         else " — no window where both hear speech")
            for i, x in enumerate(analyses):
                if x.overall.probabilities:
                    self.circumplex.add(x.overall.probabilities, i)
        else:
            self.panels.set_models([list(EMOTIONS)], [""])
            self.circumplex.set_models([""])
            self.readout.show_none("no model")
        self.panels.set_span(0.0, a.duration_s)
        if a.shortfall:
            text += f" — <i>{escape(a.shortfall)}</i>"
        self.title.setText(text)
        self.play_button.setEnabled(True)
        self.player.warm()  # the output running before Play: a new stream was heard 2 s late
        self.export_button.setEnabled(bool(a.segments))
        self.shown.emit()

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
        self.panels.set_cursor(0.0)
        self.play_button.setText("Stop")
        self._timer.start()

    def stop_playback(self) -> None:
        if not self._playing:
            return
        self._playing = False
        self._timer.stop()
        self.play_button.setText("Play")
        self.player.stop()
        if self.analysis is not None and self.analysis.overall is not None:
            self.reading_now.emit(self.analysis.overall.probabilities, self.analysis.overall.sure)

    def _move_cursor(self) -> None:
        """The cursor follows the samples the output has played, not the wall clock."""
        if not self._playing or self.analysis is None:
            return
        if self.player.ended():
            self.stop_playback()
            return
        t = self.player.position_s()
        if t is None:
            return
        self.panels.set_cursor(t)
        current = next((s for s in self.analysis.segments if s.start_s <= t < s.end_s), None)
        if current is not None and current is not self._shown_segment:  # the arousal-valence trail follows
            self._shown_segment = current
            self.circumplex.add(current.probabilities)
            if self.compared is not None and self.circumplex.models > 1:
                other = next((s for s in self.compared.segments if s.start_s <= t < s.end_s), None)
                self.circumplex.add(other.probabilities if other else None, 1)
            self.reading_now.emit(current.probabilities, current.sure)
