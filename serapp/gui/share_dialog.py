"""The listening set-up's "Share in a browser…": the same server as `serapp listen-web`, in a
background thread, with its link, a QR code for phones, and how many raters and answers have
come in. Closing the dialog stops the server; every answer is already in its file.
"""

from __future__ import annotations

import glob
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from serapp.errors import SerappError, counted, printable
from serapp.listening.answers import file_name_part

DEFAULT_PORT = 8765
NETWORK = "0.0.0.0"  # every address of this machine: phones on its Wi-Fi can open the link


def default_web_folder(corpus_root: Path) -> Path:
    """Documents/serapp-listening/web-CORPUS, as `serapp listen-web` chooses it."""
    docs = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(docs or Path.home()) / "serapp-listening" / f"web-{file_name_part(corpus_root.name, 'corpus')}"


def qr_image(text: str, scale: int = 6) -> QtGui.QImage:
    """`text` as a QR code (segno), black on white with a quiet zone, `scale` pixels a module."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=4)
    image = QtGui.QImage()
    image.loadFromData(buf.getvalue(), "PNG")
    return image


class ShareDialog(QtWidgets.QDialog):
    """Start with start(); the link, its QR code and the counts show while it serves."""

    message = QtCore.Signal(str)
    results_requested = QtCore.Signal(str)  # the answers folder
    logged = QtCore.Signal(str)  # a line from the server's threads, shown in the GUI's

    def __init__(self, corpus, plan, folder: Path, network: bool = True, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Listening test in a browser")
        self.corpus, self.plan, self.folder, self.network = corpus, plan, Path(folder), network
        self.test = self.server = None
        self.url = ""
        self.link = QtWidgets.QLineEdit()
        self.link.setReadOnly(True)
        self.link.setMinimumWidth(420)
        self.where = QtWidgets.QLabel("")
        self.where.setWordWrap(True)
        self.qr = QtWidgets.QLabel()
        self.qr.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.counts = QtWidgets.QLabel("")
        self.last = QtWidgets.QLabel("")
        self.last.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        for label in (self.where, self.counts, self.last):
            label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        copy = QtWidgets.QPushButton("Copy link")
        copy.clicked.connect(lambda: QtWidgets.QApplication.clipboard().setText(self.url))
        browse = QtWidgets.QPushButton("Open in browser")
        browse.clicked.connect(lambda: QtGui.QDesktopServices.openUrl(QtCore.QUrl(self.url)))
        self.results_button = QtWidgets.QPushButton("Results so far")
        self.results_button.setToolTip("the results page, following the answers as they come in")
        self.results_button.clicked.connect(lambda: self.results_requested.emit(str(self.folder)))
        self.stop_button = QtWidgets.QPushButton("Stop sharing")
        self.stop_button.clicked.connect(self.close)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.link, 1)
        row.addWidget(copy)
        row.addWidget(browse)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.results_button)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel("Raters open this link (or scan the code with a phone):"))
        layout.addLayout(row)
        layout.addWidget(self.where)
        layout.addWidget(self.qr)
        layout.addWidget(self.counts)
        layout.addWidget(self.last)
        layout.addLayout(buttons)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        self.logged.connect(self.last.setText)
        self.finished.connect(self.stop)  # Esc, the window's close button, Stop sharing

    def start(self) -> bool:
        """Start serving; False (said through `message`) when it cannot."""
        from serapp.web.server import BackgroundServer, ServerError, link, listen, prepare

        lock = None
        try:
            # the answers folder is locked first: another server on it (listen-web, another app) refuses this one
            self.test, app, token, lock = prepare(self.corpus, self.plan, self.folder, log=self.logged.emit)
            host = NETWORK if self.network else "127.0.0.1"
            try:
                sock = listen(host, DEFAULT_PORT)
            except ServerError:  # taken (another test, or listen-web): any free port
                sock = listen(host, 0)
            self.url, note = link(sock, token)
            server, lock = BackgroundServer(app, sock, lock), None  # its thread holds the lock while it serves
            server.start()
            self.server = server
        except (SerappError, OSError) as exc:
            if lock is not None:
                lock.release()
            self.message.emit(f"cannot share the test: {printable(exc)}")
            return False
        self.link.setText(self.url)
        self.where.setText(f"{note[0].upper()}{note[1:]}. {self.plan.n_clips} clips a rater, "
                           f"{self.plan.practice_clips} practice; answers in {self.folder}, one file per rater.")
        self.qr.setPixmap(QtGui.QPixmap.fromImage(qr_image(self.url)))
        self.refresh()
        self.timer.start()
        return True

    def refresh(self) -> None:
        if self.test is None:
            return
        raters, answers = self.test.counts()
        self.counts.setText(f"{counted(raters, 'rater')}, {counted(answers, 'answer')} so far")

    def answer_files(self) -> list[str]:
        return sorted(glob.glob(str(self.folder / "*.csv")))

    def stop(self) -> None:
        self.timer.stop()
        if self.server is not None:
            self.server.stop()
            self.server = None
            raters, answers = self.test.counts()
            self.message.emit(f"stopped sharing: {counted(answers, 'answer')} from {counted(raters, 'rater')} "
                              f"in {self.folder}")

    def closeEvent(self, event) -> None:
        self.stop()
        super().closeEvent(event)


class FolderWatch(QtCore.QObject):
    """`changed` once things settle after any answer file in `folder` is added to or written."""

    changed = QtCore.Signal()

    def __init__(self, folder: str | Path, parent=None, settle_ms: int = 700):
        super().__init__(parent)
        self.folder = Path(folder)
        self.watcher = QtCore.QFileSystemWatcher(self)
        self.settle = QtCore.QTimer(self)
        self.settle.setSingleShot(True)
        self.settle.setInterval(settle_ms)
        self.settle.timeout.connect(self._settled)
        self.watcher.directoryChanged.connect(lambda _: self.settle.start())
        self.watcher.fileChanged.connect(lambda _: self.settle.start())
        self._follow()

    def files(self) -> list[str]:
        return sorted(glob.glob(str(self.folder / "*.csv")))

    def _follow(self) -> None:
        wanted = [str(self.folder)] + self.files()
        have = set(self.watcher.files()) | set(self.watcher.directories())
        missing = [p for p in wanted if p not in have]
        if missing:
            self.watcher.addPaths(missing)

    def _settled(self) -> None:
        self._follow()  # a new rater's file is watched from now on
        self.changed.emit()
