"""A main window for GUI tests: Qt offscreen, its own settings file, a small model loaded."""

from __future__ import annotations

from helpers import make_bundle
from PySide6 import QtCore

from serapp.gui.main_window import MainWindow
from serapp.gui.plots import configure_pyqtgraph


def open_window(qtbot, tmp_path, bundle=None, load_timeout_s: float = 20.0) -> MainWindow:
    """A shown window whose model (a random 1 s TCN unless `bundle`) has finished loading; the
    wait ends at the event, and `load_timeout_s` only bounds a failure."""
    configure_pyqtgraph()
    bundle = bundle or make_bundle(tmp_path / "m.safetensors", window_s=1.0)[0]
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(str(bundle), "cpu", settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.load_model_async()
    qtbot.waitUntil(lambda: w.predictor is not None, timeout=int(load_timeout_s * 1000))
    return w
