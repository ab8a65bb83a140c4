"""The toolbars at the default 1280x800 (issue 36, item 12): nothing behind the overflow », the
Compute box and its label included, while recording too; the buttons keep their places from tab
to tab; recording is shown by more than the button's text."""

import os

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import speechlike  # noqa: E402
from PySide6 import QtWidgets  # noqa: E402
from qt_helpers import open_window  # noqa: E402

from serapp.audio.sources import FileSource  # noqa: E402


def _hidden_behind_the_overflow(tb: QtWidgets.QToolBar) -> list[str]:
    """The toolbar's actions that it could not lay out in its width (they go to its » menu)."""
    hidden = []
    for action in tb.actions():
        widget = tb.widgetForAction(action)
        if action.isVisible() and widget is not None and not widget.isVisible():
            hidden.append(action.text() or type(widget).__name__)
    extension = tb.findChild(QtWidgets.QToolButton, "qt_toolbar_ext_button")
    if extension is not None and extension.isVisible():
        hidden.append("»")
    return hidden


def _places(tb: QtWidgets.QToolBar) -> list[tuple[str, int]]:
    return [(a.text(), tb.widgetForAction(a).x()) for a in tb.actions() if tb.widgetForAction(a) is not None]


def test_at_1280x800_every_control_shows_and_stays_put_while_recording_and_across_tabs(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    w.resize(1280, 800)
    toolbars = w.findChildren(QtWidgets.QToolBar)
    QtWidgets.QApplication.processEvents()
    for tb in toolbars:
        assert not _hidden_behind_the_overflow(tb), (tb.objectName(), _hidden_behind_the_overflow(tb))
    assert w.compute_combo.isVisible() and w.compute_label.isVisible()
    w.attach_source(FileSource(samples=speechlike(20.0), sample_rate=16000, realtime=True, loop=True))
    w.source.start()
    assert w.recording_indicator.text() == ""
    w.toggle_recording(str(tmp_path / "take.wav"))
    QtWidgets.QApplication.processEvents()
    for tb in toolbars:
        assert not _hidden_behind_the_overflow(tb), (tb.objectName(), _hidden_behind_the_overflow(tb))
    assert w.compute_label.isVisible() and w.compute_combo.isVisible()
    # recording is said beside the button: a red indicator with the time recorded
    qtbot.waitUntil(lambda: w.recording_indicator.text().startswith("● REC 0:0"), timeout=5000)
    assert w.record_button.styleSheet() and w.record_action.text() == "Stop recording"
    assert w.recording_indicator.palette().color(w.recording_indicator.foregroundRole()).red() > 150
    live_places = [_places(tb) for tb in toolbars]
    for tab in (w.file_view, w.listening, w.live):
        w.tabs.setCurrentWidget(tab)
        QtWidgets.QApplication.processEvents()
        assert [_places(tb) for tb in toolbars] == live_places, tab  # nothing moves when the level meter rests
    w.toggle_recording()
    QtWidgets.QApplication.processEvents()
    assert w.recording_indicator.text() == "" and w.record_action.text() == "Record" and not w.record_button.styleSheet()
    assert np.isfinite(w.level.value())
    w.stop_capture()
