"""Starting the desktop app (Qt is imported only below serapp.gui).

The window's frame is shown first; when it is on screen (its first expose), the views and their
plots are built, then the model loads in the background (torch is imported then, not before),
and what the command line asked for (a file, a view, a comparison, presentation mode) follows
once the models are there.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import dataclass

from PySide6 import QtCore, QtWidgets

from serapp.gui.main_window import MainWindow

VIEWS = ("live", "file", "listening")


@dataclass
class LaunchOptions:
    model: str | None = None
    device: str | None = None
    input_device: str | None = None
    quit_after: float | None = None
    screenshot: str | None = None
    open_file: str | None = None
    view: str | None = None
    compare: str | None = None
    present: bool = False


def make_settings() -> QtCore.QSettings:
    """The user's settings; SERAPP_SETTINGS=FILE.ini keeps them elsewhere (tests, demos)."""
    path = os.environ.get("SERAPP_SETTINGS")
    if path:
        return QtCore.QSettings(path, QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings()


def startup_report(line: str) -> None:
    """With SERAPP_STARTUP_REPORT set, milestones of the start go to stderr
    (benchmarks/bench_startup.py reads them)."""
    if os.environ.get("SERAPP_STARTUP_REPORT"):
        print(f"serapp: {line}", file=sys.stderr, flush=True)


class _FirstExpose(QtCore.QObject):
    """Calls `then` once, when the window is first exposed (drawn on screen)."""

    def __init__(self, window: QtWidgets.QWidget, then, fallback_ms: int = 3000):
        super().__init__(window)
        self.then, self.done = then, False
        window.windowHandle().installEventFilter(self)
        QtCore.QTimer.singleShot(fallback_ms, self._fire)  # a window never exposed (minimised) still works

    def eventFilter(self, obj, event) -> bool:
        if not self.done and event.type() == QtCore.QEvent.Type.Expose and obj.isExposed():
            startup_report(f"first expose at {time.time():.3f}; torch imported: {'torch' in sys.modules}")
            self._fire()
        return False

    def _fire(self) -> None:
        if not self.done:
            self.done = True
            QtCore.QTimer.singleShot(0, self.then)


def _when(condition, then, every_ms: int = 50) -> None:
    """Run `then` once `condition()` holds (checked on the GUI thread)."""
    if condition():
        then()
    else:
        QtCore.QTimer.singleShot(every_ms, lambda: _when(condition, then, every_ms))


def run_app(options: LaunchOptions) -> int:
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName("serapp")
    app.setApplicationName("serapp")
    window = MainWindow(options.model, options.device, settings=make_settings(), views=False)
    window.show()
    status = {"code": 0}

    def after_models() -> None:
        startup_report(f"model loaded at {time.time():.3f}")
        if options.open_file:
            window.open_file(options.open_file)
        if options.view:
            window.tabs.setCurrentWidget({"live": window.live, "file": window.file_view,
                                          "listening": window.listening}[options.view])
        if options.present:
            window.toggle_presentation()

    def models_ready() -> bool:
        return window.predictor is not None and (not options.compare or window.compare_predictor is not None)

    def on_screen() -> None:
        # The plots first, then the model: torch's import on a worker thread would hold the GIL
        # while the plots are built (the two together took 3.4 s here, one after the other 1.4 s).
        window.build_views()
        startup_report(f"views built at {time.time():.3f}")
        window.load_model_async()
        if options.compare:
            _when(lambda: window.predictor is not None, lambda: window.open_compare(options.compare))
        if options.input_device is not None and not window.start_capture(options.input_device):
            status["code"] = 1
        _when(models_ready, after_models)

    _FirstExpose(window, on_screen)
    if options.quit_after is not None:
        def finish():
            if options.screenshot:
                shown = window.presentation if window.presentation is not None else window
                if not shown.grab().save(options.screenshot):
                    window.notify(f"{options.screenshot}: cannot save the screenshot")
                    status["code"] = 1
            for m in window.messages:
                print(f"serapp: {m}", file=sys.stderr)
            window.close()
            app.exit(status["code"])
        QtCore.QTimer.singleShot(int(options.quit_after * 1000), finish)
    code = app.exec()
    # Deterministic teardown while Qt is still alive: threads and streams are stopped by the
    # window's closeEvent; delete the widgets and collect now, not during interpreter shutdown
    # (PySide6 can crash when Qt objects are collected at finalisation).
    window.deleteLater()
    app.processEvents()
    gc.collect()
    return code or status["code"]
