"""Faults, round three, in the app (Qt offscreen): names shown as typed, never as markup; a
damaged saved profile refused when it is loaded."""

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import speechlike, write_audio  # noqa: E402
from PySide6 import QtCore, QtGui  # noqa: E402
from qt_helpers import open_window  # noqa: E402

MARKUP = "<b>big<a href=x>click<img src=x.png>"


def _plain(label) -> str:
    """What a label shows, as a person reads it."""
    if label.textFormat() == QtCore.Qt.TextFormat.PlainText:
        return label.text()
    return QtGui.QTextDocumentFragment.fromHtml(label.text()).toPlainText()


def test_a_name_with_markup_shows_as_typed_in_the_banner_and_the_file_title(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    w.resize(1600, 600)
    good = write_audio(tmp_path / f"{MARKUP}.wav", speechlike(1.5))
    w.open_file(str(good))
    qtbot.waitUntil(lambda: w.file_view.analysis is not None, timeout=30000)
    assert f"{MARKUP}.wav" in _plain(w.file_view.title)
    bad = tmp_path / f"{MARKUP}2.wav"
    bad.write_text("not audio")
    w.open_file(str(bad))
    qtbot.waitUntil(lambda: any("not an audio file" in m for m in w.messages), timeout=30000)
    assert f"{MARKUP}2.wav" in _plain(w.banner) and w.banner.textFormat() == QtCore.Qt.TextFormat.PlainText
    w.close()


def test_a_saved_profile_with_an_impossible_count_is_refused_at_start_up(qtbot, tmp_path, private_data_dir):
    folder = private_data_dir / "profiles"
    folder.mkdir()
    (folder / "ann.json").write_text(json.dumps({
        "format": "serapp-voice-profile", "version": 1, "name": "ann", "created_utc": "2026-12-03T10:00:00Z",
        "model": "m.safetensors", "features": "0123456789abcdef", "windows": 10**400, "shape": [2],
        "sum": [1.0, 2.0], "sumsq": [1.0, 4.0]}))
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    settings.setValue("voice_profile", "ann")
    settings.sync()
    w = open_window(qtbot, tmp_path)
    qtbot.waitUntil(lambda: any("damaged voice profile" in m for m in w.messages), timeout=30000)
    assert w.active_profile is None and not any("unexpected error" in m for m in w.messages)
    w.close()
