"""A count in the file view reads as English: "1 window", not "1 windows" (issue 36, item 21)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6")

from helpers import speechlike, write_audio  # noqa: E402
from qt_helpers import open_window  # noqa: E402


def test_the_file_view_counts_one_window_as_one(qtbot, tmp_path):
    window = open_window(qtbot, tmp_path)  # a 1 s model: a 0.8 s clip is one window
    window.open_file(str(write_audio(tmp_path / "short.wav", speechlike(0.8, seed=2))))
    qtbot.waitUntil(lambda: window.file_view.analysis is not None, timeout=15000)
    assert len(window.file_view.analysis.segments) == 1
    title = window.file_view.title.text()
    assert ", 1 window (" in title and "1 windows" not in title
