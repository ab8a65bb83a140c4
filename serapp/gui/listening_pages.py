"""Listening test: the set-up page (the trial page is in listening_view, results in listening_results)."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from serapp.corpora import Corpus, detect_corpus
from serapp.corpus_schemes import CORPUS_TITLES, NAMED_PARSERS
from serapp.errors import SerappError
from serapp.listening.answers import file_name_part
from serapp.listening.session import ListeningSettings

LABELS_HINT = "the corpus' emotions appear here once it is read: untick any to leave it out"


def corpus_placeholder() -> str:
    """Every corpus the folder reader recognises by its file names, by name."""
    named = [CORPUS_TITLES[k] for k in NAMED_PARSERS if k != "folders"]
    return f"a corpus folder ({', '.join(named)}, or a folder per label) or a CSV manifest path,label[,speaker]"


def default_answer_file(rater: str, corpus_root: str) -> str:
    """Documents/serapp-listening/RATER_CORPUS.csv, with names made safe for any file system."""
    docs = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.DocumentsLocation)
    safe = [file_name_part(part) for part in (rater or "rater", Path(corpus_root).name or "corpus")]
    return str(Path(docs or Path.home()) / "serapp-listening" / f"{safe[0]}_{safe[1]}.csv")


class SetupPage(QtWidgets.QWidget):
    """Rater, corpus, emotions, number of clips, seed, options, answer file."""

    start_requested = QtCore.Signal()
    report_requested = QtCore.Signal(list)
    share_requested = QtCore.Signal()

    def __init__(self, settings: QtCore.QSettings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.corpus: Corpus | None = None
        self._loaded_from = ""  # the text the corpus was loaded from, so Enter does not reload it
        self.rater = QtWidgets.QLineEdit(settings.value("listening/rater", ""))
        self.rater.setPlaceholderText("your name or a code")
        self.corpus_edit = QtWidgets.QLineEdit(settings.value("listening/corpus", ""))
        self.corpus_edit.setPlaceholderText(corpus_placeholder())
        self.corpus_edit.editingFinished.connect(self.load_corpus)
        folder = QtWidgets.QPushButton("Folder…")
        folder.clicked.connect(self._choose_folder)
        manifest = QtWidgets.QPushButton("Manifest…")
        manifest.clicked.connect(self._choose_manifest)
        self.corpus_info = QtWidgets.QLabel("")
        self.corpus_info.setWordWrap(True)
        self.labels_box = QtWidgets.QGroupBox("Emotions in the test")
        self.labels_layout = QtWidgets.QHBoxLayout(self.labels_box)
        self.labels_hint = QtWidgets.QLabel(LABELS_HINT)  # while no corpus is read, what will be here
        self.labels_hint.setEnabled(False)
        self.labels_layout.addWidget(self.labels_hint)
        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        self.n_clips = self._spin(1, 10000, int(settings.value("listening/n_clips", 50)))
        self.seed = self._spin(0, 2**31 - 1, int(settings.value("listening/seed", 1)))
        self.seed.setToolTip("raters given the same seed hear the same clips in the same order")
        self.practice = self._spin(0, 20, int(settings.value("listening/practice", 3)))
        self.practice.setToolTip("clips from outside the test, answered with feedback, not saved")
        self.balance = QtWidgets.QCheckBox("balance over speakers")
        self.balance.setChecked(settings.value("listening/balance", "true") in ("true", True))
        self.autoplay = QtWidgets.QCheckBox("play each clip automatically")
        self.autoplay.setChecked(settings.value("listening/autoplay", "true") in ("true", True))
        self.answer_file = QtWidgets.QLineEdit(settings.value("listening/answer_file", ""))
        self.answer_file.setPlaceholderText("where the answers are saved (CSV)")
        save_as = QtWidgets.QPushButton("Save as…")
        save_as.clicked.connect(self._choose_answer_file)
        self.rater.textEdited.connect(self._suggest_answer_file)
        self.start_button = QtWidgets.QPushButton("Start test")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start_requested.emit)
        report = QtWidgets.QPushButton("Results of answer files…")
        report.clicked.connect(self._choose_reports)
        self.share_button = QtWidgets.QPushButton("Share in a browser…")
        self.share_button.setToolTip("raters on this network take the test from a link or a QR code, "
                                     "each on their own device (serapp listen-web)")
        self.share_button.clicked.connect(self.share_requested.emit)

        form = QtWidgets.QFormLayout()
        form.addRow("Rater", self.rater)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.corpus_edit, 1)
        row.addWidget(folder)
        row.addWidget(manifest)
        form.addRow("Corpus", row)
        form.addRow("", self.corpus_info)
        form.addRow(self.labels_box)
        numbers = QtWidgets.QHBoxLayout()
        for text, w in (("clips", self.n_clips), ("seed", self.seed), ("practice clips", self.practice)):
            numbers.addWidget(QtWidgets.QLabel(text))
            numbers.addWidget(w)
        numbers.addStretch(1)
        form.addRow("Selection", numbers)
        options = QtWidgets.QHBoxLayout()
        options.addWidget(self.balance)
        options.addWidget(self.autoplay)
        options.addStretch(1)
        form.addRow("Options", options)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.answer_file, 1)
        row.addWidget(save_as)
        form.addRow("Answer file", row)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(report)
        buttons.addWidget(self.share_button)
        buttons.addStretch(1)
        help_text = QtWidgets.QLabel(
            "During the test: <b>R</b> or <b>Space</b> play or replay, <b>1–9</b> answer, <b>S</b> skip, <b>Esc</b> stop. "
            "Every answer is saved at once; start again with the same rater, corpus and emotions to resume.")
        help_text.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(help_text)
        layout.addStretch(1)

    def showEvent(self, event) -> None:
        # The remembered corpus is read when the page is first seen, not while the app starts.
        if self.corpus is None and self.corpus_edit.text():
            QtCore.QTimer.singleShot(0, self.load_corpus)
        super().showEvent(event)

    @staticmethod
    def _spin(lo: int, hi: int, value: int) -> QtWidgets.QSpinBox:
        s = QtWidgets.QSpinBox()
        s.setRange(lo, hi)
        s.setValue(value)
        return s

    def _choose_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Corpus folder", self.corpus_edit.text())
        if path:
            self.corpus_edit.setText(path)
            self.load_corpus()

    def _choose_manifest(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Corpus manifest", self.corpus_edit.text(), "CSV (*.csv)")
        if path:
            self.corpus_edit.setText(path)
            self.load_corpus()

    def _choose_answer_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Answer file", self.answer_file.text(), "CSV (*.csv)",
                                                        options=QtWidgets.QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.answer_file.setText(path)

    def _choose_reports(self) -> None:
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Answer files", str(Path(self.answer_file.text()).parent),
                                                          "CSV (*.csv)")
        if paths:
            self.report_requested.emit(paths)

    def _suggest_answer_file(self, *_):
        if self.corpus is not None:
            self.answer_file.setText(default_answer_file(self.rater.text().strip(), str(self.corpus.root)))

    def load_corpus(self) -> bool:
        text = self.corpus_edit.text().strip()
        if not text:
            return False
        if self.corpus is not None and text == self._loaded_from:
            return True
        try:
            corpus = detect_corpus(text)
        except SerappError as exc:
            self.corpus = None
            self.corpus_info.setText(f"<span style='color:#c0392b'>{exc}</span>")
            self._set_labels([])
            return False
        self.corpus, self._loaded_from = corpus, text
        info = corpus.summary()
        if corpus.unparsed:
            info += f"; {len(corpus.unparsed)} file(s) not named per the scheme, left out"
        self.corpus_info.setText(info)
        self._set_labels(corpus.labels)
        if not self.answer_file.text() or self.answer_file.text() == self.settings.value("listening/answer_file", ""):
            self._suggest_answer_file()
        return True

    def _set_labels(self, labels: list[str]) -> None:
        for cb in self.checks.values():
            self.labels_layout.removeWidget(cb)
            cb.deleteLater()
        excluded = set(str(self.settings.value("listening/excluded", "")).split("|")) - {""}
        self.checks = {}
        for lab in labels:
            cb = QtWidgets.QCheckBox(lab)
            cb.setChecked(lab not in excluded)
            self.labels_layout.addWidget(cb)
            self.checks[lab] = cb
        self.labels_hint.setVisible(not labels)

    def test_settings(self) -> ListeningSettings:
        labels = tuple(lab for lab, cb in self.checks.items() if cb.isChecked())
        return ListeningSettings(rater=self.rater.text().strip(), labels=labels, n_clips=self.n_clips.value(),
                            seed=self.seed.value(), balance_speakers=self.balance.isChecked(),
                            practice_clips=self.practice.value())

    def remember(self) -> None:
        s = self.settings
        s.setValue("listening/rater", self.rater.text().strip())
        s.setValue("listening/corpus", self.corpus_edit.text().strip())
        s.setValue("listening/n_clips", self.n_clips.value())
        s.setValue("listening/seed", self.seed.value())
        s.setValue("listening/practice", self.practice.value())
        s.setValue("listening/balance", "true" if self.balance.isChecked() else "false")
        s.setValue("listening/autoplay", "true" if self.autoplay.isChecked() else "false")
        s.setValue("listening/answer_file", self.answer_file.text().strip())
        s.setValue("listening/excluded", "|".join(lab for lab, cb in self.checks.items() if not cb.isChecked()))
