"""The main window: toolbar, live and file tabs, status bar, settings, background loading."""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from serapp.audio.io import AUDIO_EXTENSIONS
from serapp.audio.sources import AudioDeviceError, list_input_devices, open_microphone
from serapp.bundle import read_bundle_meta
from serapp.errors import SerappError
from serapp.file_analysis import analyze_file, write_timeline_csv
from serapp.gui.file_view import FileView
from serapp.gui.listening_view import ListeningView
from serapp.gui.live_view import LiveView
from serapp.predictor import available_devices, default_bundle_path, load_model
from serapp.settings import AnalysisSettings

FRAME_MS = 16  # display rate, about 60 frames per second
LIVE_BUDGET_MS = 50.0  # a model slower than this per window gets a longer live hop


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, model_path: str | None = None, compute_device: str | None = None, settings=None):
        super().__init__()
        self.setWindowTitle("serapp — speech emotion recognition")
        self.settings = settings or QtCore.QSettings()
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="serapp-bg")
        self._tasks: list[tuple[Future, object, object]] = []
        self.messages: list[str] = []
        self.predictor = None
        self._models_loaded = 0
        self.model_cost_ms = 0.0
        self.model_path = model_path or self.settings.value("model", "") or None
        self.compute_device = compute_device or self.settings.value("compute_device", "auto")
        self.source = None

        self.banner = QtWidgets.QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("padding: 4px; background: palette(alternate-base);")
        self.banner.hide()
        self.live = LiveView()
        self.file_view = FileView()
        self.file_view.export_requested.connect(self.export_timeline)
        self.file_view.message.connect(self.notify)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self.live, "Live")
        self.tabs.addTab(self.file_view, "File")
        self.listening = ListeningView(self.settings, self.run_in_background, lambda: self.predictor)
        self.listening.message.connect(self.notify)
        self.tabs.addTab(self.listening, "Listening test")
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

    # --- construction -----------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.addWidget(QtWidgets.QLabel(" Input: "))
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.setMinimumWidth(260)
        tb.addWidget(self.device_combo)
        self.level = QtWidgets.QProgressBar()
        self.level.setRange(-60, 0)
        self.level.setValue(-60)
        self.level.setFormat("level %v dBFS")
        self.level.setFixedWidth(150)
        self.level.setToolTip("input peak level over the last 50 ms")
        tb.addWidget(self.level)
        self.start_action = tb.addAction("Start", self.toggle_capture)
        self.start_action.setShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_Space))
        self.record_action = tb.addAction("Record", self.toggle_recording)
        self.record_action.setShortcut(QtGui.QKeySequence("Ctrl+R"))
        self.record_action.setEnabled(False)
        tb.addSeparator()
        open_action = tb.addAction("Open file…", self.open_file_dialog)
        open_action.setShortcut(QtGui.QKeySequence.StandardKey.Open)
        tb.addAction("Open model…", self.open_model_dialog)
        listen = tb.addAction("Listening test", lambda: self.tabs.setCurrentWidget(self.listening))
        listen.setShortcut(QtGui.QKeySequence("Ctrl+L"))
        listen.setToolTip("people label clips; scored next to the model (Ctrl+L)")
        tb.addWidget(QtWidgets.QLabel(" Compute: "))
        self.compute_combo = QtWidgets.QComboBox()
        self.compute_combo.addItems(["auto", *available_devices()])
        index = self.compute_combo.findText(self.compute_device)
        self.compute_combo.setCurrentIndex(max(0, index))
        self.compute_combo.currentTextChanged.connect(self._compute_changed)
        tb.addWidget(self.compute_combo)
        self.refresh_devices()

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
        self.window_spin = self._spin(0.0, 10.0, 0.5, s.value("window_s", 0.0), " s window (0 = model's)")
        self.window_spin.setToolTip("the audio each reading covers; longer than the model's window: "
                                    "the mean of its model-length pieces")
        self.hop_spin = self._spin(0.1, 5.0, 0.1, s.value("hop_s", 0.5), " s hop")
        self.smooth_spin = self._spin(0.0, 0.95, 0.05, s.value("smoothing", 0.0), " smoothing")
        self.threshold_spin = self._spin(0.05, 0.95, 0.05, s.value("gate_threshold", 0.5), " speech threshold")
        self.threshold_spin.setToolTip("the speech gate (silero-vad): a 32 ms frame is speech when its speech "
                                       "probability is above this; a window needs 10 % of its frames")
        for w in (self.window_spin, self.hop_spin, self.smooth_spin, self.threshold_spin):
            tb.addWidget(w)
        self._analysis_changed()

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.device_label = QtWidgets.QLabel("not capturing")
        self.overflow_label = QtWidgets.QLabel("overflows 0")
        self.timing_label = QtWidgets.QLabel("features – ms, model – ms")
        self.model_label = QtWidgets.QLabel("model: loading…")
        for w in (self.device_label, self.overflow_label, self.timing_label, self.model_label):
            sb.addPermanentWidget(w)

    def _tab_changed(self, _index: int) -> None:
        # In the listening test Space plays the clip; elsewhere it starts and stops capture.
        listening = self.tabs.currentWidget() is self.listening
        self.start_action.setShortcut(QtGui.QKeySequence() if listening else QtGui.QKeySequence(QtCore.Qt.Key.Key_Space))

    # --- messages and background work -----------------------------------------------------

    def notify(self, text: str) -> None:
        """A one-line message for the user: banner and status bar, never a traceback."""
        self.messages.append(text)
        self.banner.setText(text)
        self.banner.show()
        self.statusBar().showMessage(text, 10000)

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

    # --- models -------------------------------------------------------------------------------

    def load_model_async(self, path: str | None = None) -> None:
        path = path or self.model_path
        if path is None and default_bundle_path() is None:
            self.model_label.setText("model: none")
            self.notify("no bundled model in this installation: open one with “Open model…”")
            return
        device = self.compute_combo.currentText()
        self.model_label.setText("model: loading…")
        # torch's thread count is process-wide: set at the first load, before any model runs.
        first = not self._models_loaded
        self._models_loaded += 1
        def load():
            predictor = load_model(path, device=device, set_threads=first)
            return predictor, predictor.window_cost_ms()
        self.run_in_background(load, self._model_loaded, self._model_failed)

    def _model_loaded(self, loaded) -> None:
        predictor, cost_ms = loaded
        self.predictor = predictor
        self.model_cost_ms = cost_ms
        if cost_ms > LIVE_BUDGET_MS:  # too slow for the live view: fewer readings, never falling behind
            hop = max(self.hop_spin.value(), round(math.ceil(2 * cost_ms / 100) / 10, 1))
            self.notify(f"{predictor.path.name} needs {cost_ms:.0f} ms per window, too slow for live readings every "
                        f"{self.hop_spin.value():g} s: the live hop is now {hop:g} s")
            self.hop_spin.setValue(hop)
        self.live.set_predictor(predictor)
        meta = predictor.meta
        ua = meta.training.get("cross_validation", {}).get("ua", {}).get("mean")
        self.model_label.setText(f"model: {predictor.path.name} ({meta.architecture}, {predictor.device.type}"
                                 + (f", UA {ua:.0%}" if ua else "") + ")")
        if self.model_path:
            self.settings.setValue("model", str(self.model_path))

    def _model_failed(self, exc) -> None:
        self.model_label.setText("model: failed")
        self.notify(str(exc))

    def open_model_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open model bundle", "", "serapp bundles (*.safetensors)")
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        try:
            meta = read_bundle_meta(path)
        except SerappError as exc:
            self.notify(str(exc))
            return
        self.model_path = path
        self.notify(describe_model(path, meta))
        self.load_model_async(path)

    def _compute_changed(self, name: str) -> None:
        self.settings.setValue("compute_device", name)
        if self.predictor is not None:
            self.load_model_async(str(self.predictor.path))

    def analysis_settings(self) -> AnalysisSettings:
        return AnalysisSettings(window_s=self.window_spin.value() or None, hop_s=self.hop_spin.value(),
                                smoothing=self.smooth_spin.value(), gate_threshold=self.threshold_spin.value())

    def _analysis_changed(self, *_):
        self.live.set_settings(self.analysis_settings())
        for key, box in (("window_s", self.window_spin), ("hop_s", self.hop_spin),
                         ("smoothing", self.smooth_spin), ("gate_threshold", self.threshold_spin)):
            self.settings.setValue(key, box.value())

    # --- live capture -------------------------------------------------------------------------

    def refresh_devices(self) -> None:
        self.device_combo.clear()
        try:
            devices = list_input_devices()
        except AudioDeviceError as exc:
            self.device_combo.addItem("no audio input")
            self.device_combo.setEnabled(False)
            self.start_action.setEnabled(False)
            self.notify(str(exc))
            return
        for d in devices:
            self.device_combo.addItem(d.label, d.index)
        saved = self.settings.value("input_device", "")
        idx = self.device_combo.findText(saved) if saved else -1
        default = next((i for i, d in enumerate(devices) if d.is_default), 0)
        self.device_combo.setCurrentIndex(idx if idx >= 0 else default)
        if not devices:
            self.start_action.setEnabled(False)
            self.notify("no audio input device found; file analysis still works")

    def start_capture(self, spec=None) -> bool:
        if spec is None:
            spec = self.device_combo.currentData()
        try:
            source, note = open_microphone(spec, preferred_rate=16000)
        except AudioDeviceError as exc:
            self.notify(str(exc))
            return False
        if note:
            self.notify(note)
        self.settings.setValue("input_device", source.device.label)
        self.attach_source(source)
        return True

    def attach_source(self, source) -> None:
        """Show a running source (a microphone, or a FileSource standing in for one)."""
        self.source = source
        self.live.set_source(source)
        self.device_label.setText(f"{source.name} @ {source.sample_rate} Hz")
        self.start_action.setText("Stop")
        self.record_action.setEnabled(True)
        self.tabs.setCurrentWidget(self.live)

    def stop_capture(self, reason: str | None = None) -> None:
        rec = self.live.stop_recording()
        if rec is not None:
            self._recording_saved(rec)
        self.live.detach_source()
        if self.source is not None:
            self.source.stop()
        self.source = None
        self.start_action.setText("Start")
        self.record_action.setText("Record")
        self.record_action.setEnabled(False)
        self.device_label.setText("not capturing")
        self.level.setValue(-60)
        if reason:
            self.notify(reason)

    def toggle_capture(self) -> None:
        if self.source is None:
            self.start_capture()
        else:
            self.stop_capture()

    def toggle_recording(self, path: str | None = None) -> None:
        if self.source is None:
            return
        if self.live.recorder is not None:
            self._recording_saved(self.live.stop_recording())
            self.record_action.setText("Record")
            return
        if path is None:
            folder = Path(self.settings.value("record_dir", str(Path.home())))
            default = folder / time.strftime("serapp-%Y%m%d-%H%M%S.wav")
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Record to", str(default), "WAV (*.wav)")
            if not path:
                return
        try:
            self.live.start_recording(Path(path))
        except (OSError, RuntimeError) as exc:
            self.notify(f"{path}: cannot record ({exc})")
            return
        self.settings.setValue("record_dir", str(Path(path).parent))
        self.record_action.setText("Stop recording")

    def _recording_saved(self, rec) -> None:
        self.notify(f"recorded {rec.seconds:.1f} s to {rec.wav_path} (timeline: {rec.csv_path.name})")

    # --- files --------------------------------------------------------------------------------

    def open_file_dialog(self) -> None:
        patterns = " ".join(f"*{e}" for e in sorted(AUDIO_EXTENSIONS))
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open audio file", "", f"Audio ({patterns});;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> None:
        predictor = self.predictor
        settings = self.analysis_settings()
        self.tabs.setCurrentWidget(self.file_view)
        self.file_view.title.setText(f"analysing {Path(path).name}…")
        self.run_in_background(lambda: analyze_file(path, predictor, settings),
                               lambda a: self.file_view.show_analysis(a, predictor.labels if predictor else None))

    def export_timeline(self, path: str | None = None) -> None:
        a = self.file_view.analysis
        if a is None or self.predictor is None:
            return
        if path is None:
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export timeline", str(a.path.with_suffix(".csv")), "CSV (*.csv)")
            if not path:
                return
        try:
            write_timeline_csv(path, a, self.predictor.labels)
            self.notify(f"timeline written to {path}")
        except OSError as exc:
            self.notify(f"{path}: cannot write ({exc.strerror or exc})")

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
        self.level.setValue(int(round(peak_dbfs(self.source.ring.latest(self.source.sample_rate // 20)))))
        self.overflow_label.setText(f"overflows {self.source.overflows}")
        r = self.live.last_reading
        if r is not None and r.speech:
            self.timing_label.setText(f"features {r.features_ms:.1f} ms, model {r.model_ms:.1f} ms")
        if self.live.worker is not None and self.live.worker.error:
            self.notify(self.live.worker.error)
            self.live.stop_worker()
        if self.live.recorder is not None and self.live.recorder.error:  # a full disk, say
            self.notify(self.live.recorder.error)
            self.live.stop_recording()
            self.record_action.setText("Record")

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.stop_capture()  # finalises a recording in progress
        self.listening.shutdown()  # answers are already on disk, row by row
        self.file_view.stop_playback()
        self.timer.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        super().closeEvent(event)


def peak_dbfs(samples, floor: float = -60.0) -> float:
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    return max(floor, 20.0 * np.log10(peak)) if peak > 0 else floor


def describe_model(path: str, meta) -> str:
    t = meta.training
    cv = t.get("cross_validation", {})
    parts = [f"{Path(path).name}: {meta.architecture}", f"labels {', '.join(meta.labels)}",
             f"data {t.get('data', '?')}", f"protocol {cv.get('protocol') or t.get('protocol', '?')}"]
    if cv:
        parts.append(f"UA {cv['ua']['mean']:.1%} ± {cv['ua']['sd']:.1%}, WA {cv['wa']['mean']:.1%} "
                     f"({len(cv.get('folds', []))}-fold)")
    xc = t.get("cross_corpus", {})
    if xc:
        parts.append(f"cross-corpus UA {xc['ua']['mean']:.1%} (mean over {len(xc.get('folds', []))} corpora never "
                     "seen in training)")
    if not cv and not xc and t.get("test_metrics"):
        parts.append(f"test UA {t['test_metrics'].get('ua', 0):.1%}")
    return "; ".join(parts)
