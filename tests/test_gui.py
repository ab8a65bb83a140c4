"""The desktop app's widgets on Qt's offscreen platform, fed by a real-time file source."""

import csv
import os
import subprocess
import sys
import threading
import wave

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import make_bundle, speechlike, write_audio  # noqa: E402
from PySide6 import QtCore, QtGui  # noqa: E402

from serapp.audio.sources import FileSource  # noqa: E402
from serapp.gui.main_window import MainWindow  # noqa: E402
from serapp.gui.plots import configure_pyqtgraph  # noqa: E402
from serapp.settings import LIVE_SMOOTHING  # noqa: E402
from serapp.timeline import timeline_header  # noqa: E402


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path / "m.safetensors", window_s=1.0)[0]


def _new_window(qtbot, tmp_path, model, name="settings.ini", device="cpu") -> MainWindow:
    configure_pyqtgraph()
    settings = QtCore.QSettings(str(tmp_path / name), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(str(model) if model else None, device, settings=settings)
    qtbot.addWidget(w)
    return w


@pytest.fixture
def window(qtbot, tmp_path, bundle):
    w = _new_window(qtbot, tmp_path, bundle)
    w.show()
    w.load_model_async()
    yield w
    w.close()


def _loaded(qtbot, w):
    qtbot.waitUntil(lambda: w.predictor is not None, timeout=20000)


def test_window_appears_before_the_model_is_loaded(qtbot, tmp_path, bundle):
    w = _new_window(qtbot, tmp_path, bundle)
    w.show()
    assert w.isVisible() and w.predictor is None and "loading" in w.model_label.text()
    w.load_model_async()
    _loaded(qtbot, w)
    assert "m.safetensors" in w.model_label.text() and "cpu" in w.model_label.text()
    card = QtGui.QTextDocumentFragment.fromHtml(w.model_label.toolTip()).toPlainText()  # what it learned from
    assert card.startswith("m.safetensors: tcn") and "trained on: random init (test)" in card
    # one field tells the model's cost; the window box says what its 0 means, in seconds
    assert "ms" not in w.model_label.text() and "ms per reading (measured at load)" in w.timing_label.text()
    w.window_spin.setValue(0.0)
    assert w.window_spin.text() == "window: model's (1 s)"
    w.window_spin.setValue(2.5)
    assert w.window_spin.text() == "2.50 s window"
    # the file view hides the microphone's level and the live model's cost; the live view shows them
    w.tabs.setCurrentWidget(w.file_view)
    assert not w.level.isVisible() and not w.timing_label.isVisible()
    w.tabs.setCurrentWidget(w.live)
    assert w.level.isVisible() and w.timing_label.isVisible()
    w.close()


def test_live_view_shows_spectrogram_and_readout_from_a_source(qtbot, window):
    _loaded(qtbot, window)
    called_from = []
    original = window.predictor.predict_prepared

    def spy(samples, *args, **kwargs):
        called_from.append(threading.current_thread().name)
        return original(samples, *args, **kwargs)

    window.predictor.predict_prepared = spy
    audio = np.concatenate([np.zeros(8000, np.float32), speechlike(2.5, seed=5)])
    src = FileSource(samples=audio, sample_rate=16000, realtime=True, block_s=0.02)
    src.start()
    window.attach_source(src)
    qtbot.waitUntil(lambda: window.live.last_reading is not None and window.live.last_reading.speech, timeout=15000)
    cols = window.live.stream_columns()
    assert cols.shape == (64, 1000) and cols.dtype == np.uint8 and cols.flags["C_CONTIGUOUS"]
    assert cols[:, -50:].max() > 100  # the newest columns show the speech
    top = window.live.readout.top.text()
    assert any(label in top for label in window.predictor.labels) and "%" in top
    assert "ms per reading" in window.timing_label.full_text() and "budget" in window.timing_label.full_text()
    assert called_from and all(name == "LiveWorker" for name in called_from)  # never the GUI thread
    assert window.live.frames_drawn > 10
    assert window.level.value() > -40  # the level meter follows the input
    level = window.level
    assert not level.bar.isTextVisible() and level.text.text() == f"{level.value()} dBFS".replace("-", "−")
    assert level.text.geometry().left() >= level.bar.geometry().right()  # its figure beside the fill, not over it
    window.stop_capture()
    assert window.level.value() == -60
    src.stop()


def test_no_input_device_disables_capture_with_a_message(qtbot, window, monkeypatch):
    # A machine with no input at all cannot be made on demand; the device list is what differs.
    import serapp.gui.capture as capture

    monkeypatch.setattr(capture, "list_input_devices", lambda: [])
    window.refresh_devices()
    assert not window.start_action.isEnabled()
    assert window.messages[-1] == "no audio input device found; file analysis still works"


def test_silence_reads_no_speech(qtbot, window):
    _loaded(qtbot, window)
    src = FileSource(samples=np.zeros(48000, np.float32), sample_rate=16000, realtime=True)
    src.start()
    window.attach_source(src)
    qtbot.waitUntil(lambda: window.live.last_reading is not None, timeout=10000)
    assert not window.live.last_reading.speech and window.live.readout.top.text() == "no speech"
    window.stop_capture()
    src.stop()


def test_recording_leaves_a_valid_wav_and_timeline_even_when_the_app_closes(qtbot, window, tmp_path):
    _loaded(qtbot, window)
    audio = speechlike(3.0, seed=9)
    src = FileSource(samples=audio, sample_rate=16000, realtime=True, block_s=0.02)
    src.start()
    window.attach_source(src)
    wav_path = tmp_path / "take.wav"
    window.toggle_recording(str(wav_path))
    start = window.live.recorder.start_position  # the ring position when Record was pressed
    qtbot.waitUntil(lambda: src.finished, timeout=10000)
    csv_path = wav_path.with_suffix(".csv")
    qtbot.waitUntil(lambda: len(csv_path.read_text().splitlines()) >= 2, timeout=20000)  # a reading is in
    window.close()  # closing while recording finalises the files
    with wave.open(str(wav_path)) as w:
        frames = w.getnframes()
        assert w.getframerate() == 16000 and w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(frames), dtype="<i2").astype(np.float32) / 32768
    assert frames == audio.size - start  # every sample captured since Record, none lost
    np.testing.assert_allclose(data, audio[start:], atol=1 / 16384)  # 16-bit quantisation only
    with open(csv_path, newline="") as f:
        assert next(csv.reader(f)) == timeline_header(window.predictor.labels)  # `serapp predict`'s columns
        f.seek(0)
        rows = list(csv.DictReader(f))
    window_s = window.live.settings.window_for(window.predictor)
    for row in rows:  # each window ends inside the WAV, and is at most the window long
        start_s, end_s = float(row["start_s"]), float(row["end_s"])
        assert row["path"] == str(wav_path) and 0 < end_s <= frames / 16000 + 1e-3
        assert 0 < end_s - start_s <= window_s + 1e-3
    assert "recorded" in window.messages[-1]
    src.stop()


def test_a_vanished_source_stops_capture_and_keeps_the_app_usable(qtbot, window):
    src = FileSource(samples=speechlike(5.0), sample_rate=16000, realtime=True)
    src.start()
    window.attach_source(src)
    qtbot.waitUntil(lambda: src.ring.written > 0, timeout=5000)
    src.error = "input device 'USB mic' stopped (disconnected?)"
    qtbot.waitUntil(lambda: window.source is None, timeout=5000)
    assert window.start_action.text() == "Start" and not window.record_action.isEnabled()
    assert "USB mic" in window.messages[-1] and "choose another input" in window.messages[-1]
    src.stop()


def test_bad_model_file_is_a_one_line_message(qtbot, window, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 100)
    window.open_model(str(bad))
    assert window.messages[-1] == f"{bad}: not a serapp model bundle (no safetensors header)"


def test_opening_a_model_shows_its_description(qtbot, window, bundle):
    window.open_model(str(bundle))
    assert "tcn" in window.messages[-1] and "labels neutral, calm" in window.messages[-1]
    assert "random init (test)" in window.messages[-1]


def test_bad_audio_file_is_a_one_line_message(qtbot, window, tmp_path):
    _loaded(qtbot, window)
    bad = tmp_path / "noise.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(3000))
    window.open_file(str(bad))
    qtbot.waitUntil(lambda: any("noise.wav" in m for m in window.messages), timeout=10000)
    msg = window.messages[-1]
    assert "cannot read audio" in msg and "\n" not in msg


def test_file_analysis_and_timeline_export(qtbot, window, tmp_path):
    _loaded(qtbot, window)
    clip = write_audio(tmp_path / "talk.flac", speechlike(4.0, 44100, seed=1), 44100)
    window.hop_spin.setValue(0.5)  # 1 s windows every 0.5 s over 4 s: 7
    window.open_file(str(clip))
    qtbot.waitUntil(lambda: window.file_view.analysis is not None, timeout=15000)
    a = window.file_view.analysis
    assert a.duration_s == pytest.approx(4.0, abs=0.01) and len(a.segments) == 7
    assert "overall" in window.file_view.title.text() and window.file_view.play_button.isEnabled()
    out = tmp_path / "timeline.csv"
    window.export_timeline(str(out))
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 7 and rows[0]["path"] == str(clip) and float(rows[-1]["end_s"]) == pytest.approx(4.0)
    assert list(rows[0]) == ["path", "start_s", "end_s", "speech", "speech_fraction", "label", "sure",
                             *window.predictor.labels, "warning"]
    (tmp_path / "afile").write_text("")
    window.export_timeline(str(tmp_path / "afile" / "t.csv"))  # a real refused write: a file is no folder
    assert window.messages[-1] == f"{tmp_path / 'afile' / 't.csv'}: cannot write: Not a directory"


def test_settings_persist(qtbot, tmp_path, bundle):
    w = _new_window(qtbot, tmp_path, bundle, "persist.ini")
    # a first start reads live with the steady-label default (benchmarks/bench_steady.py)
    assert w.smooth_spin.value() == LIVE_SMOOTHING and w.analysis_settings().smoothing == LIVE_SMOOTHING
    w.hop_spin.setValue(0.8)
    w.smooth_spin.setValue(0.3)
    w.threshold_spin.setValue(0.35)
    w.close()
    w2 = _new_window(qtbot, tmp_path, None, "persist.ini", device=None)
    assert (w2.hop_spin.value(), w2.smooth_spin.value(), w2.threshold_spin.value()) == (0.8, 0.3, 0.35)
    assert w2.live.settings.hop_s == 0.8 and w2.live.settings.gate_threshold == 0.35
    w2.close()


def test_missing_portaudio_leaves_file_analysis_working(tmp_path):
    code = """
import ctypes.util, sys
ctypes.util.find_library = lambda name: None
from serapp.cli import main
sys.exit(main(["--quit-after", "1"]))
"""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SERAPP_SETTINGS": str(tmp_path / "s.ini")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "PortAudio is not installed" in proc.stderr and "file analysis still works" in proc.stderr
    assert "Traceback" not in proc.stderr
