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

from serapp.features import FrontEndConfig  # noqa: E402
from serapp.gui.widgets import SpectrogramWidget, WaveformWidget, configure_pyqtgraph  # noqa: E402


def test_frame_updates_keep_none_and_true_alive(qtbot):
    configure_pyqtgraph()
    spec, wave = SpectrogramWidget(FrontEndConfig()), WaveformWidget()
    for w in (spec, wave):
        qtbot.addWidget(w)
        w.show()
    y = speechlike(5.0)
    cols = np.full((64, 2), -40.0, np.float32)
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(500):
        spec.append(cols)
        spec.redraw(0.01)
        wave.show_samples(y)
    after = sys.getrefcount(None), sys.getrefcount(True)
    lost = [b - a for b, a in zip(before, after)]
    assert max(lost) < 200, f"the Qt bindings lost {lost} references to (None, True) in 500 frames"
