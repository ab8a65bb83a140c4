"""The main window's live capture and recording: inputs, Start/Stop, Record (a mixin of MainWindow,
which owns the widgets and the messages)."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtWidgets

from serapp.audio.sources import AudioDeviceError, list_input_devices, open_microphone


class CaptureActions:
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
        self.build_views()
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
        self.show_recording(None)
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
            self.show_recording(None)
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
        self.show_recording(self.live.recorder)

    def show_recording(self, recorder) -> None:
        """The Record button red and "● REC m:ss" beside it while `recorder` runs (None: not);
        called every frame, so the button is restyled only when recording starts or stops."""
        on = recorder is not None
        if on != bool(self.recording_indicator.text()):
            self.record_action.setText("Stop recording" if on else "Record")
            self.record_button.setStyleSheet("QToolButton { background: #d32f2f; color: white; }" if on else "")
        minutes, seconds = divmod(int(recorder.seconds), 60) if on else (0, 0)
        self.recording_indicator.setText(f"● REC {minutes}:{seconds:02d}" if on else "")

    def _recording_saved(self, rec) -> None:
        self.notify(f"recorded {rec.seconds:.1f} s to {rec.wav_path} (timeline: {rec.csv_path.name})")
