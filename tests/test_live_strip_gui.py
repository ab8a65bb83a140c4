"""Where the live strip draws a reading (issue 36, item 13): at its window's centre, as the file
view does, so the colour sits over the speech it read and stops within half a window of it
(drawn at each window's end, a 2 s window's colour ran on 2 s past the speech)."""

import os

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import make_bundle, speechlike  # noqa: E402
from PySide6 import QtWidgets  # noqa: E402
from qt_helpers import open_window  # noqa: E402

from serapp.audio.sources import FileSource  # noqa: E402

RATE = 16000
WINDOW_S = 2.0
SPEECH = (3.0, 6.0)  # seconds of the stream with a voice; silence around it


def test_the_live_strip_colours_the_time_of_the_speech_not_the_time_after_it(qtbot, tmp_path):
    bundle = make_bundle(tmp_path / "m.safetensors", window_s=WINDOW_S)[0]
    w = open_window(qtbot, tmp_path, bundle=bundle)
    w.hop_spin.setValue(0.2)
    src = FileSource(samples=np.zeros(1, np.float32), sample_rate=RATE, realtime=False)
    w.attach_source(src)  # audio written into its ring by the test, as a device would
    audio = np.concatenate([np.zeros(int(SPEECH[0] * RATE), np.float32),
                            speechlike(SPEECH[1] - SPEECH[0], seed=2),
                            np.zeros(int(4.0 * RATE), np.float32)])
    chunk = int(0.2 * RATE)
    for start in range(0, audio.size, chunk):  # a hop at a time, each read before the next arrives
        src.ring.write(audio[start : start + chunk])
        end_s = (start + chunk) / RATE
        qtbot.waitUntil(lambda end_s=end_s: w.live.last_reading is not None
                        and w.live.last_reading.t >= end_s - 1e-6, timeout=10000)
    QtWidgets.QApplication.processEvents()
    bars = w.live.panels.tracks[0].strip.bars.opts
    starts, ends = np.asarray(bars["x0"]), np.asarray(bars["x0"]) + np.asarray(bars["width"])
    assert len(starts) > 5  # the voice was heard
    hop, slack = 0.2, 0.1  # a bar is a hop wide; the gate's 32 ms frames and its 0.1 s of speech
    # colour only within half a window of the voice, on either side
    assert ends.max() <= SPEECH[1] + WINDOW_S / 2 + hop / 2 + slack, ends.max()
    assert starts.min() >= SPEECH[0] - WINDOW_S / 2 - hop / 2 - slack, starts.min()
    # and the voice's own time is coloured
    assert starts.min() <= SPEECH[0] + 0.5 and ends.max() >= SPEECH[1] - 0.5
    w.stop_capture()
