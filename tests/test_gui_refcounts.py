"""Guard against Qt bindings that drop references to None/True on calls pyqtgraph makes per frame.

PySide6 6.12.0 does (thousands per second at display rate); on Python 3.11, where None and
True are ordinary objects, the app then aborts with "deallocating None". pyproject.toml
excludes that release; this test catches the next one that does it.
"""

import os
import sys

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import speechlike  # noqa: E402

from serapp.feature_config import FrontEndConfig  # noqa: E402
from serapp.gui.plots import configure_pyqtgraph  # noqa: E402
from serapp.gui.time_panels import TimePanels  # noqa: E402


def test_frame_updates_keep_none_and_true_alive(qtbot):
    configure_pyqtgraph()
    panels = TimePanels(FrontEndConfig(), ["neutral", "happy"], live_seconds=10.0)
    qtbot.addWidget(panels)
    panels.show()
    y = speechlike(5.0)
    cols = np.full((64, 2), -40.0, np.float32)
    track = panels.tracks[0]
    panels.waveform.stream(10.0, 16000)
    before = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(500):
        panels.spectrogram.append(cols)
        panels.spectrogram.redraw(0.0)
        panels.spectrogram.place(0.001 * (i % 50))
        panels.waveform.place(0.001 * (i % 50))
        panels.waveform.push(y[i * 160 : (i + 1) * 160])
        track.add(i * 0.02, {"neutral": 0.3, "happy": 0.7} if i % 3 else None, 0.5, 10.0)
        track.redraw(i * 0.02, 0.001 * (i % 50))
    after = sys.getrefcount(None), sys.getrefcount(True)
    lost = [b - a for b, a in zip(before, after)]
    assert max(lost) < 200, f"the Qt bindings lost {lost} references to (None, True) in 500 frames"
