"""The app end to end through the real stack: PulseAudio virtual microphone, PortAudio, Qt, Xvfb."""

import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import virtual_mic as vm  # noqa: E402
from helpers import make_bundle, speechlike  # noqa: E402
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402
from qt_helpers import open_window  # noqa: E402

from serapp.gui.plots import COLORMAP  # noqa: E402

_window = open_window


def test_app_captures_the_microphone_and_the_readout_follows(qtbot, virtual_mic, tmp_path):
    w = _window(qtbot, tmp_path)
    assert w.start_capture("default")
    virtual_mic.until_heard(lambda: w.source.ring.written > 0)
    start = w.source.ring.written
    clip = speechlike(2.0, 16000, seed=11)
    virtual_mic.write(clip)
    virtual_mic.until_heard(lambda: w.source.ring.written - start >= clip.size)
    qtbot.waitUntil(lambda: w.live.last_reading is not None and w.live.last_reading.speech, timeout=10000)
    got, _, _ = w.source.ring.since(start)
    expected = vm.VirtualMic.quantized(clip)
    k = int(np.argmax(np.correlate(got, expected[:4000], "valid")))
    np.testing.assert_array_equal(got[k : k + clip.size], expected)  # the app's ring holds those samples
    assert any(label in w.live.readout.top.text() for label in w.predictor.labels)
    assert w.device_label.text().startswith("default") and w.source.overflows == 0
    w.close()


def _bright_viridis_pixels(path) -> int:
    """Pixels coloured like the upper half of the spectrogram's colour map (speech energy)."""
    import pyqtgraph as pg

    img = QtGui.QImage(str(path)).convertToFormat(QtGui.QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
    rgb = arr.reshape(img.height(), img.width(), 3).astype(np.int16)
    lut = pg.colormap.get(COLORMAP).getLookupTable(nPts=256)[128:, :3].astype(np.int16)
    flat = rgb.reshape(-1, 3)[::3]  # every third pixel is plenty
    near = np.zeros(len(flat), bool)
    for color in lut[::4]:
        near |= np.abs(flat - color).sum(axis=1) < 12
    return int(near.sum() * 3)


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (apt-get install xvfb xauth)")
def test_real_window_under_xvfb_with_screenshot(virtual_mic, tmp_path):
    bundle, _ = make_bundle(tmp_path / "m.safetensors", window_s=1.0)
    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "SERAPP_SETTINGS": str(tmp_path / "s.ini"), **virtual_mic.env}
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable, "-m", "serapp", "--model", str(bundle),
           "--device", "cpu", "--input-device", "default", "--quit-after", "15", "--screenshot", str(shot)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    voice = speechlike(3.0, 16000, seed=4) * 2

    def speak_until_the_app_exits():  # a voice all the while: the screenshot shows it whenever it is taken
        while proc.poll() is None:
            try:
                virtual_mic.write(voice)
            except TimeoutError:  # nobody recording yet (or any more)
                pass

    feeder = threading.Thread(target=speak_until_the_app_exits)
    feeder.start()
    out, err = proc.communicate(timeout=180)
    feeder.join()
    assert proc.returncode == 0, err
    assert shot.is_file() and "Traceback" not in err
    img = QtGui.QImage(str(shot))
    assert img.width() >= 800 and img.height() >= 500
    assert _bright_viridis_pixels(shot) > 8000  # speech energy painted across the spectrogram


def test_keyboard_starts_stops_and_records(qtbot, virtual_mic, tmp_path, monkeypatch):
    w = _window(qtbot, tmp_path)
    w.activateWindow()
    w.setFocus()
    qtbot.keyClick(w, QtCore.Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: w.source is not None, timeout=5000)
    target = tmp_path / "take.wav"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.keyClick(w, QtCore.Qt.Key.Key_R, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert w.live.recorder is not None and w.record_action.text() == "Stop recording"
    virtual_mic.write(speechlike(0.5))
    qtbot.keyClick(w, QtCore.Qt.Key.Key_Space)  # stopping capture finalises the recording
    assert w.source is None and w.live.recorder is None and target.is_file()
    assert "recorded" in w.messages[-1]
    w.close()


def test_dropping_a_file_analyses_it_and_playback_moves_the_cursor_with_the_sound(qtbot, virtual_mic, tmp_path):
    w = _window(qtbot, tmp_path)
    clip = tmp_path / "dropped.wav"
    import soundfile as sf

    sf.write(str(clip), speechlike(1.5, 16000, seed=8), 16000)
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(clip))])
    pos = QtCore.QPointF(100, 100)
    enter = QtGui.QDragEnterEvent(pos.toPoint(), QtCore.Qt.DropAction.CopyAction, mime,
                                  QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    w.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(pos, QtCore.Qt.DropAction.CopyAction, mime, QtCore.Qt.MouseButton.LeftButton,
                            QtCore.Qt.KeyboardModifier.NoModifier)
    w.dropEvent(drop)
    qtbot.waitUntil(lambda: w.file_view.analysis is not None, timeout=15000)
    assert w.tabs.currentWidget() is w.file_view and "dropped.wav" in w.file_view.title.text()
    fv = w.file_view
    fv.toggle_play()  # plays through PortAudio into PulseAudio's null sink
    assert fv.play_button.text() == "Stop", w.messages
    # PulseAudio's null sink on an idle 2-core VM takes the sound in bursts: these 1.5 s were
    # measured taking 13 s to play there (and 2 s with the cores busy), so the waits are long.
    qtbot.waitUntil(lambda: fv.cursors[0].value() > 0.3, timeout=60000)
    assert fv.cursors[0].value() <= fv.player._clip.pos / fv.player._clip.rate + 1e-6  # not ahead of the sound
    qtbot.waitUntil(lambda: fv.play_button.text() == "Play", timeout=60000)  # the end of the file ends playback
    clip = fv.player._clip  # played at the output's own rate: every sample of the 1.5 s, resampled
    assert abs(clip.pos - 1.5 * clip.rate) <= 1
    w.close()
