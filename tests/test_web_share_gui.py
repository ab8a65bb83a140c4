"""The listening set-up's "Share in a browser…" through the real widgets (Qt offscreen): the same
server in a background thread, its link and a QR code of exactly that link, the raters and
answers coming in, results that follow the answers folder, and Stop that stops the server; and
refused, in one line, while `serapp listen-web` serves the same answers folder."""

from __future__ import annotations

import os
import signal
from urllib.parse import urlsplit

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore  # noqa: E402
from web_helpers import Client, cli_server, small_corpus  # noqa: E402

import serapp.gui.share_dialog as share_dialog  # noqa: E402
from serapp.gui.listening_view import ListeningView  # noqa: E402


class QuietPlayer:
    """No audio output is needed to share a test: the browsers play the clips."""

    device = None

    def warm(self):
        pass

    def stop(self):
        pass

    def close(self):
        pass


def qr_modules(image, size: int, scale: int = 6, border: int = 4) -> list[list[bool]]:
    """Dark or light at each module's centre, as a phone's camera would read the code shown."""
    return [[image.pixelColor((border + c) * scale + scale // 2, (border + r) * scale + scale // 2).lightness() < 128
             for c in range(size)] for r in range(size)]


def share_view(qtbot, tmp_path, monkeypatch, corpus, messages):
    monkeypatch.setattr(share_dialog, "NETWORK", "127.0.0.1")  # loopback in tests; the app opens it to the network
    monkeypatch.setattr(share_dialog, "default_web_folder", lambda root: tmp_path / "answers")
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    view = ListeningView(settings, lambda *a: None, lambda: None, player=QuietPlayer())
    qtbot.addWidget(view)
    view.message.connect(messages.append)
    view.setup.corpus_edit.setText(str(corpus))
    view.setup.n_clips.setValue(6)
    view.setup.practice.setValue(1)
    return view


def test_share_in_a_browser_shows_the_link_its_qr_code_and_the_answers_coming_in(qtbot, tmp_path, monkeypatch):
    import segno

    messages: list[str] = []
    view = share_view(qtbot, tmp_path, monkeypatch, small_corpus(tmp_path / "corpus"), messages)
    qtbot.mouseClick(view.setup.share_button, QtCore.Qt.MouseButton.LeftButton)
    dialog = view.share_dialog
    assert dialog is not None and dialog.isVisible()
    url = dialog.link.text()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")

    code = segno.make(url, error="m")
    shown = qr_modules(dialog.qr.pixmap().toImage(), len(code.matrix))
    assert shown == [[bool(v) for v in row] for row in code.matrix]  # the code on screen is the link's

    client = Client(url)
    state = client.join("ann")
    state = client.answer(state["trial"], "sad")[1]["state"]  # practice: not an answer
    state = client.answer(state["trial"], "sad")[1]["state"]
    qtbot.waitUntil(lambda: dialog.counts.text() == "1 rater, 1 answer so far", timeout=5000)

    qtbot.mouseClick(dialog.results_button, QtCore.Qt.MouseButton.LeftButton)
    assert view.stack.currentWidget() is view.results
    table = view.results.table
    assert (table.item(0, 0).text(), table.item(0, 1).text()) == ("ann", "1")
    client.answer(state["trial"], "happy")  # the results page follows the folder
    qtbot.waitUntil(lambda: table.item(0, 1).text() == "2", timeout=5000)

    dialog.grab().save(str(tmp_path / "share.png"))
    qtbot.mouseClick(dialog.stop_button, QtCore.Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and dialog.server is None
    with pytest.raises(OSError):
        client.call("GET", "api/state")
    assert messages[-1].startswith("stopped sharing: 2 answers from 1 rater")


def test_share_is_refused_while_listen_web_serves_the_same_answers_folder(qtbot, tmp_path, monkeypatch):
    corpus, folder, messages = small_corpus(tmp_path / "corpus"), tmp_path / "answers", []
    view = share_view(qtbot, tmp_path, monkeypatch, corpus, messages)
    proc, url = cli_server(corpus, folder)
    try:
        qtbot.mouseClick(view.setup.share_button, QtCore.Qt.MouseButton.LeftButton)
        assert view.share_dialog is None
        assert messages == [f"cannot share the test: another server uses the answers folder {folder} (serapp "
                            f"listen-web, or the app's Share in a browser…): stop it first, or choose another folder"]
        assert Client(url).join("ann")["name"] == "ann"  # listen-web serves on, undisturbed
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    qtbot.mouseClick(view.setup.share_button, QtCore.Qt.MouseButton.LeftButton)  # its server gone: the app's turn
    dialog = view.share_dialog
    assert dialog is not None and dialog.isVisible() and urlsplit(dialog.link.text()).path == urlsplit(url).path  # its token
    qtbot.mouseClick(dialog.stop_button, QtCore.Qt.MouseButton.LeftButton)
    assert dialog.server is None
