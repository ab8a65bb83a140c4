"""The main window: toolbar, live and file tabs, status bar, settings, background loading."""

from __future__ import annotations

import html
import statistics
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from serapp.audio.io import AUDIO_EXTENSIONS
from serapp.errors import SerappError
from serapp.files import WriteError
from serapp.gui.capture import CaptureActions
from serapp.gui.emotion_control import EmotionActions
from serapp.gui.live_view import model_names
from serapp.gui.model_control import ModelActions, timing_text
from serapp.gui.status import ElidedLabel, LevelMeter
from serapp.gui.voice_control import VoiceActions, file_voice_note
from serapp.settings import LIVE_HOP_S, LIVE_SMOOTHING, AnalysisSettings

FRAME_MS = 16  # display rate, about 60 frames per second


class MainWindow(CaptureActions, ModelActions, VoiceActions, EmotionActions, QtWidgets.QMainWindow):
    def __init__(self, model_path: str | None = None, compute_device: str | None = None, settings=None,
                 views: bool = True):
        """views=False shows the frame first (toolbar, tabs, status bar) and leaves the plots, and
        pyqtgraph's import, to build_views(), which the app calls once the window is on screen."""
        super().__init__()
        self.setWindowTitle("serapp — speech emotion recognition")
        self.settings = settings or QtCore.QSettings()
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="serapp-bg")
        self._tasks: list[tuple[Future, object, object]] = []
        self.messages: list[str] = []
        self.predictor = None
        self.compare_predictor = None  # a second model, read on the same audio
        self.file_stale = False  # the file view's reading lacks the compared model (read when shown)
        self._models_loaded = 0
        self.model_cost_ms = 0.0
        self.presentation = None
        self.model_path = model_path or self.settings.value("model", "") or None
        self.compute_device = compute_device or self.settings.value("compute_device", "auto")
        self.source = None
        self.init_voice()

        self.banner = ElidedLabel()  # the one place messages appear (the whole text in its tooltip)
        self.banner.setStyleSheet("padding: 4px; background: palette(alternate-base);")
        self.banner.hide()
        self.live = self.file_view = self.listening = None  # built by build_views()
        self.tabs = QtWidgets.QTabWidget()
        self._placeholder = QtWidgets.QLabel("preparing the views…")
        self._placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.tabs.addTab(self._placeholder, "Live")
        self.tabs.currentChanged.connect(self._tab_changed)
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._build_toolbar()
        self._build_settings_bar()
        self._build_status()
        self.setAcceptDrops(True)
        self.resize(1280, 800)

        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self._frame)
        self.timer.start()
        if views:
            self.build_views()

    # --- construction -----------------------------------------------------------------------

    def build_views(self) -> None:
        """The live, file and listening views: most of the construction time is here (the plots)."""
        if self.live is not None:
            return
        from serapp.gui.file_view import FileView
        from serapp.gui.listening_view import ListeningView
        from serapp.gui.live_view import LiveView
        from serapp.gui.plots import configure_pyqtgraph

        configure_pyqtgraph()
        self.live = LiveView()
        self.file_view = FileView()
        self.file_view.export_requested.connect(self.export_timeline)
        self.file_view.message.connect(self.notify)
        # one output stream for both views, kept running (serapp.audio.playback)
        self.listening = ListeningView(self.settings, self.run_in_background, lambda: self.predictor,
                                       player=self.file_view.player)
        self.listening.message.connect(self.notify)
        self.tabs.blockSignals(True)
        self.tabs.removeTab(0)
        self._placeholder.deleteLater()
        self.tabs.addTab(self.live, "Live")
        self.tabs.addTab(self.file_view, "File")
        self.tabs.addTab(self.listening, "Listening test")
        self.tabs.blockSignals(False)
        self._analysis_changed()
        self.refresh_devices()
        # the output running from now on, not from the first click: through PulseAudio a new stream
        # is heard only when the sink next wakes, up to 2 s later (serapp.audio.playback)
        self.file_view.player.warm()

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.addWidget(QtWidgets.QLabel(" Input: "))
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.setMinimumWidth(260)
        tb.addWidget(self.device_combo)
        self.start_action = tb.addAction("Start", self.toggle_capture)
        self.start_action.setShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_Space))
        self.record_action = tb.addAction("Record", self.toggle_recording)
        self.record_action.setShortcut(QtGui.QKeySequence("Ctrl+R"))
        self.record_action.setEnabled(False)
        self.record_button = record = tb.widgetForAction(self.record_action)
        record.setMinimumWidth(record.fontMetrics().horizontalAdvance("Stop recording") + 16)  # same width either way
        self.recording_indicator = QtWidgets.QLabel()  # "● REC 0:12" in red while recording, blank (its room kept) otherwise
        self.recording_indicator.setFixedWidth(self.recording_indicator.fontMetrics().horizontalAdvance("● REC 00:00:00") + 8)
        self.recording_indicator.setStyleSheet("color: #d32f2f; font-weight: bold;")
        self.recording_indicator.setToolTip("recording what the microphone captures (Ctrl+R stops)")
        tb.addWidget(self.recording_indicator)
        tb.addSeparator()
        open_action = tb.addAction("Open file…", self.open_file_dialog)
        open_action.setShortcut(QtGui.QKeySequence.StandardKey.Open)
        model_action = tb.addAction("Open model…", self.open_model_dialog)
        model_action.setMenu(self.bundled_models_menu())  # the arrow beside it: the models serapp ships
        tb.widgetForAction(model_action).setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.compare_action = compare = tb.addAction("Compare with…", self.compare_dialog)
        compare.setToolTip("a second model read on the same audio, side by side (live and in the file view)")
        compare.setMenu(self.compare_menu())  # the arrow beside it: the bundled models, End comparison
        tb.widgetForAction(compare).setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.present_action = tb.addAction("Present", self.toggle_presentation)
        self.present_action.setShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_F11))
        self.present_action.setToolTip("full screen: the emotion in large type, its confidence and the spectrogram (F11)")
        listen = tb.addAction("Listening test", lambda: self.listening and self.tabs.setCurrentWidget(self.listening))
        listen.setShortcut(QtGui.QKeySequence("Ctrl+L"))
        listen.setToolTip("people label clips; scored next to the model (Ctrl+L)")
        self.add_voice_actions(tb)

    def _add_compute_box(self, tb) -> None:
        """Where models run; on the settings bar, which has room at 1280 px (on the main one it
        went behind the overflow », and its label too while recording)."""
        self.compute_label = QtWidgets.QLabel(" Compute: ")
        tb.addWidget(self.compute_label)
        self.compute_combo = QtWidgets.QComboBox()
        # The devices present are known once torch is imported (with the model, after the window shows).
        self.compute_combo.addItems(list(dict.fromkeys(["auto", "cpu", self.compute_device])))
        index = self.compute_combo.findText(self.compute_device)
        self.compute_combo.setCurrentIndex(max(0, index))
        self.compute_combo.currentTextChanged.connect(self._compute_changed)
        tb.addWidget(self.compute_combo)

    def _spin(self, lo, hi, step, value, suffix, decimals=2):
        box = QtWidgets.QDoubleSpinBox()
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setDecimals(decimals)
        box.setSuffix(suffix)
        box.setValue(float(value))
        box.valueChanged.connect(self._analysis_changed)
        return box

    def _build_settings_bar(self) -> None:
        tb = QtWidgets.QToolBar("Analysis")
        tb.setObjectName("analysis-toolbar")
        self.addToolBarBreak()
        self.addToolBar(QtCore.Qt.ToolBarArea.TopToolBarArea, tb)
        s = self.settings
        self.window_spin = self._spin(0.0, 10.0, 0.5, s.value("window_s", 0.0), " s window")
        self.window_spin.setSpecialValueText("window: model's")  # at 0; the model's length once loaded
        self.window_spin.setMinimumWidth(self.window_spin.fontMetrics().horizontalAdvance("window: model's (10 s)") + 40)
        self.window_spin.setToolTip("the audio each reading covers; longer than the model's window: "
                                    "the mean of its model-length pieces")
        self.hop_spin = self._spin(0.1, 5.0, 0.1, s.value("hop_s", LIVE_HOP_S), " s hop")
        self.smooth_spin = self._spin(0.0, 0.95, 0.05, s.value("smoothing", LIVE_SMOOTHING), " smoothing")
        self.threshold_spin = self._spin(0.05, 0.95, 0.05, s.value("gate_threshold", 0.5), " speech threshold")
        self.threshold_spin.setToolTip("the speech gate (silero-vad): a 32 ms frame is speech when its speech "
                                       "probability is above this; a window needs 10 % of its frames")
        for w in (self.window_spin, self.hop_spin, self.smooth_spin, self.threshold_spin):
            tb.addWidget(w)
        self._add_compute_box(tb)
        self.add_emotion_selector(tb)

    def _build_status(self) -> None:
        """Fixed fields, each elided to its share of the bar (never run together); messages go
        to the banner, not here."""
        sb = self.statusBar()
        self.device_label = ElidedLabel("not capturing")
        self.level = LevelMeter()  # beside the input it measures (in the toolbar it crowded out Compute at 1280 px)
        self.overflow_label = ElidedLabel("overflows 0")
        self.timing_label = ElidedLabel("model – ms per reading")
        self.model_label = ElidedLabel("model: loading…")
        for w, stretch in ((self.device_label, 3), (self.overflow_label, 1), (self.timing_label, 3),
                           (self.model_label, 4)):
            w.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
            sb.addWidget(w, stretch)
            if w is self.device_label:
                sb.addWidget(self.level)

    def _tab_changed(self, _index: int) -> None:
        # In the listening test Space plays the clip; elsewhere it starts and stops capture.
        listening = self.tabs.currentWidget() is self.listening
        self.start_action.setShortcut(QtGui.QKeySequence() if listening else QtGui.QKeySequence(QtCore.Qt.Key.Key_Space))
        # The microphone's level and the live model's cost say nothing about a file
        live = self.tabs.currentWidget() is self.live or self.live is None
        self.level.setVisible(live)  # in the status bar: the toolbars' buttons never move
        self.timing_label.setVisible(live)
        self.banner.hide()  # a message belongs to the tab it came from (all stay in self.messages)
        self.reread_file_if_stale()

    # --- messages and background work -----------------------------------------------------

    def notify(self, text: str) -> None:
        """A one-line message for the user, in the banner (one place), never a traceback."""
        self.messages.append(text)
        self.banner.setText(text)
        self.banner.show()

    def run_in_background(self, fn, on_done, on_error=None) -> Future:
        future = self.executor.submit(fn)
        self._tasks.append((future, on_done, on_error or (lambda exc: self.notify(str(exc)))))
        return future

    def _poll_tasks(self) -> None:
        for item in [t for t in self._tasks if t[0].done()]:
            self._tasks.remove(item)
            future, on_done, on_error = item
            exc = future.exception()
            if exc is None:
                on_done(future.result())
            elif isinstance(exc, SerappError):
                on_error(exc)
            else:
                on_error(f"unexpected error: {type(exc).__name__}: {exc}")

    def analysis_settings(self) -> AnalysisSettings:
        return AnalysisSettings(window_s=self.window_spin.value() or None, hop_s=self.hop_spin.value(),
                                smoothing=self.smooth_spin.value(), gate_threshold=self.threshold_spin.value())

    def _analysis_changed(self, *_):
        if self.live is not None:
            self.live.set_settings(self.analysis_settings())
        for key, box in (("window_s", self.window_spin), ("hop_s", self.hop_spin),
                         ("smoothing", self.smooth_spin), ("gate_threshold", self.threshold_spin)):
            self.settings.setValue(key, box.value())

    # --- files --------------------------------------------------------------------------------

    def open_file_dialog(self) -> None:
        patterns = " ".join(f"*{e}" for e in sorted(AUDIO_EXTENSIONS))
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open audio file", "", f"Audio ({patterns});;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> None:
        self.build_views()
        predictor, other = self.predictor, self.compare_predictor
        settings = self.analysis_settings()
        self.tabs.setCurrentWidget(self.file_view)
        self.file_view.title.setText(f"analysing {html.escape(Path(path).name)}…")  # a rich label: names escaped
        from serapp.file_analysis import (
            analyze_file,  # the first file analysis imports what it needs
        )

        voices = [self.voice_for(predictor), self.voice_for(other)]  # the voice profile, where it fits

        def analyse():
            return (analyze_file(path, predictor, settings, voice=voices[0]),
                    analyze_file(path, other, settings, voice=voices[1]) if other else None)

        def show(result):
            a, b = result
            names = tuple(model_names(predictor, other)) + ("",)
            self.file_view.show_analysis(a, predictor.labels if predictor else None, b, names)
            for readout, p, voice in zip(self.file_view.readouts, (predictor, other), voices):
                readout.set_note(file_voice_note(p, voice, self.active_profile))

        self.run_in_background(analyse, show)

    def export_timeline(self, path: str | None = None) -> None:
        a = self.file_view.analysis if self.file_view is not None else None
        if a is None or self.predictor is None:
            return
        if path is None:
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export timeline", str(a.path.with_suffix(".csv")), "CSV (*.csv)")
            if not path:
                return
        from serapp.file_analysis import write_timeline_csv

        try:
            write_timeline_csv(path, a, a.labels)  # the labels it was read with
            self.notify(f"timeline written to {path}")
        except WriteError as exc:
            self.notify(str(exc))

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_file(urls[0])

    # --- the frame -----------------------------------------------------------------------------

    def _frame(self) -> None:
        self._poll_tasks()
        if self.source is None:
            return
        if self.source.error:
            self.stop_capture(self.source.error + "; choose another input and press Start")
            return
        self.live.tick()
        self.level.setValue(round(peak_dbfs(self.source.ring.latest(self.source.sample_rate // 20))))
        self.overflow_label.setText(f"overflows {self.source.overflows}")
        costs = self.live.reading_ms  # measured as at load (serapp.reading_cost), on the live readings
        if costs:
            self.timing_label.setText(timing_text(statistics.median(costs), self.live.settings.hop_s,
                                                  f"median of the last {len(costs)} live"))
        if self.live.worker is not None and self.live.worker.error:
            self.notify(self.live.worker.error)
            self.live.stop_worker()
        if self.live.recorder is not None and self.live.recorder.error:  # a full disk, say
            self.notify(self.live.recorder.error)
            self.live.stop_recording()
        self.show_recording(self.live.recorder)

    def toggle_presentation(self) -> None:
        """Full screen for a room; F11 or Esc returns."""
        if self.presentation is not None:
            self.presentation.close()
            return
        self.build_views()
        from serapp.gui.presentation import PresentationWindow

        self.presentation = p = PresentationWindow(self.live.frontend_config)
        if self.tabs.currentWidget() is self.file_view:  # the file on screen, not the microphone
            self.file_view.shown.connect(self._present_file)
            self.file_view.reading_now.connect(p.show_reading)
            self._present_file()
        else:
            p.spectrogram.copy_from(self.live.spectrogram)
            self.live.column_listeners.append(p.add_columns)
            self.live.reading_listeners.append(p.show_reading)
        p.set_voice(self.voice_line(live=self.tabs.currentWidget() is not self.file_view))
        p.closed.connect(self._presentation_closed)
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        self.presentation.setGeometry(screen.geometry())  # whole screen even where no window manager obliges
        self.presentation.showFullScreen()

    def _presentation_closed(self) -> None:
        p, self.presentation = self.presentation, None
        if p is not None:
            if p.add_columns in self.live.column_listeners:
                self.live.column_listeners.remove(p.add_columns)
                self.live.reading_listeners.remove(p.show_reading)
            else:
                self.file_view.shown.disconnect(self._present_file)
                self.file_view.reading_now.disconnect(p.show_reading)
            p.deleteLater()

    def _present_file(self) -> None:
        if self.presentation is not None and self.file_view.analysis is not None:
            self.presentation.show_file(self.file_view.analysis)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if self.presentation is not None:
            self.presentation.close()
        if self.live is not None:
            self.stop_capture()  # finalises a recording in progress
            self.listening.shutdown()  # answers are already on disk, row by row
            self.file_view.stop_playback()
            self.file_view.player.close()
        self.timer.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        super().closeEvent(event)


def peak_dbfs(samples, floor: float = -60.0) -> float:
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    return max(floor, 20.0 * np.log10(peak)) if peak > 0 else floor
