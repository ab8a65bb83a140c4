"""Starting the desktop app (Qt is imported only below serapp.gui)."""

from __future__ import annotations

import gc
import os
import sys

from PySide6 import QtCore, QtWidgets

from serapp.gui.main_window import MainWindow
from serapp.gui.widgets import configure_pyqtgraph


def make_settings() -> QtCore.QSettings:
    """The user's settings; SERAPP_SETTINGS=FILE.ini keeps them elsewhere (tests, demos)."""
    path = os.environ.get("SERAPP_SETTINGS")
    if path:
        return QtCore.QSettings(path, QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings()


def run_app(model: str | None = None, compute_device: str | None = None, input_device: str | None = None,
            quit_after: float | None = None, screenshot: str | None = None) -> int:
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName("serapp")
    app.setApplicationName("serapp")
    configure_pyqtgraph()
    window = MainWindow(model, compute_device, settings=make_settings())
    window.show()
    # The window appears first; the model loads in the background after the first paint.
    QtCore.QTimer.singleShot(0, window.load_model_async)
    status = {"code": 0}
    if input_device is not None:
        def start():
            if not window.start_capture(input_device):
                status["code"] = 1
        QtCore.QTimer.singleShot(0, start)
    if quit_after is not None:
        def finish():
            if screenshot:
                if not window.grab().save(screenshot):
                    window.notify(f"{screenshot}: cannot save the screenshot")
                    status["code"] = 1
            for m in window.messages:
                print(f"serapp: {m}", file=sys.stderr)
            window.close()
            app.exit(status["code"])
        QtCore.QTimer.singleShot(int(quit_after * 1000), finish)
    code = app.exec()
    # Deterministic teardown while Qt is still alive: threads and streams are stopped by the
    # window's closeEvent; delete the widgets and collect now, not during interpreter shutdown
    # (PySide6 can crash when Qt objects are collected at finalisation).
    window.deleteLater()
    app.processEvents()
    gc.collect()
    return code or status["code"]
