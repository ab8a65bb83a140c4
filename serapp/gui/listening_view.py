"""The listening-test tab: set-up, trials (keyboard first), results. State lives in serapp.listening."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from serapp.audio.io import load_audio
from serapp.audio.playback import ClipPlayer, output_problem
from serapp.corpora import Record
from serapp.errors import SerappError
from serapp.gui.listening_pages import SetupPage
from serapp.gui.listening_results import ResultsPage
from serapp.labels import emotion_color
from serapp.listening.answers import AnswerLog
from serapp.listening.report import build_report, load_answer_files, score_model
from serapp.listening.session import ListeningSession

SKIP_BY_RATER = "skipped by rater"


class TrialPage(QtWidgets.QWidget):
    """One clip at a time. Keys: R or Space play/replay, 1-9 answer, S skip, Esc stop. The page keeps the
    keyboard focus (its buttons take none) so the keys work whatever was clicked last."""

    action = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.progress = QtWidgets.QLabel("")
        self.prompt = QtWidgets.QLabel("")
        font = self.prompt.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        self.prompt.setFont(font)
        self.prompt.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.feedback = QtWidgets.QLabel("")
        self.feedback.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.play_button = self._button("Play (R)", "play")
        self.skip_button = self._button("Skip (S)", "skip")
        stop = self._button("Stop test (Esc)", "stop")
        self.answer_row = QtWidgets.QHBoxLayout()
        self.answer_buttons: dict[str, QtWidgets.QPushButton] = {}
        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addStretch(1)
        controls.addWidget(self.skip_button)
        controls.addWidget(stop)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.progress)
        layout.addStretch(1)
        layout.addWidget(self.prompt)
        layout.addWidget(self.feedback)
        layout.addSpacing(24)
        layout.addLayout(self.answer_row)
        layout.addStretch(1)
        layout.addLayout(controls)
        self.labels: list[str] = []

    def _button(self, text: str, action: str) -> QtWidgets.QPushButton:
        b = QtWidgets.QPushButton(text)
        b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        b.clicked.connect(lambda: self.action.emit(action))
        return b

    def set_labels(self, labels: list[str]) -> None:
        for b in self.answer_buttons.values():
            self.answer_row.removeWidget(b)
            b.deleteLater()
        self.labels = list(labels)[:9]
        self.answer_buttons = {}
        for i, lab in enumerate(self.labels, start=1):
            b = self._button(f"{i}  {lab}", "answer:" + lab)
            b.setMinimumHeight(48)
            swatch = QtGui.QPixmap(14, 14)
            swatch.fill(QtGui.QColor(emotion_color(lab)))
            b.setIcon(QtGui.QIcon(swatch))
            self.answer_row.addWidget(b)
            self.answer_buttons[lab] = b

    def enable_answers(self, on: bool) -> None:
        for b in self.answer_buttons.values():
            b.setEnabled(on)

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        key, text = event.key(), event.text().lower()
        if text.isdigit() and 1 <= int(text) <= len(self.labels):
            self.action.emit("answer:" + self.labels[int(text) - 1])
        elif text == "r" or key == QtCore.Qt.Key.Key_Space:
            self.action.emit("play")
        elif text == "s":
            self.action.emit("skip")
        elif key == QtCore.Qt.Key.Key_Escape:
            self.action.emit("stop")
        else:
            super().keyPressEvent(event)


class ListeningView(QtWidgets.QWidget):
    """Controller of the three pages. Every answer is in the file before the next clip plays."""

    message = QtCore.Signal(str)

    def __init__(self, settings: QtCore.QSettings, run_in_background, get_predictor, player=None, parent=None):
        super().__init__(parent)
        self.run_in_background, self.get_predictor = run_in_background, get_predictor
        self.player = player or ClipPlayer()
        self.setup = SetupPage(settings)
        self.trial = TrialPage()
        self.results = ResultsPage()
        self.stack = QtWidgets.QStackedWidget()
        for page in (self.setup, self.trial, self.results):
            self.stack.addWidget(page)
        QtWidgets.QVBoxLayout(self).addWidget(self.stack)
        self.setup.start_requested.connect(self.start)
        for edit in (self.setup.rater, self.setup.answer_file):
            edit.returnPressed.connect(self.start)
        self.setup.report_requested.connect(self.show_results)
        self.setup.share_requested.connect(self.share)
        self.trial.action.connect(self._on_action)
        self.results.model_requested.connect(self.score_model)
        self.results.new_test_requested.connect(lambda: self.stack.setCurrentWidget(self.setup))
        self.share_dialog = None  # "Share in a browser…" while it serves
        self.watch = None  # the answers folder the results page follows
        self.awaiting_first = False
        self.session: ListeningSession | None = None
        self.answers: list = []
        self.practice: list[Record] = []
        self.record: Record | None = None
        self.in_practice = False
        self.audio = None
        self.plays = 0
        self.first_end: float | None = None
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._poll_player)

    # --- starting and ending ---------------------------------------------------------------

    def start(self) -> bool:
        problem = output_problem(self.player.device)
        if problem:  # every trial plays a clip: no output, no test
            self.message.emit(f"the listening test cannot start: {problem}")
            return False
        if not self.setup.load_corpus():
            self.message.emit("choose a corpus folder or manifest first")
            return False
        path = self.setup.answer_file.text().strip()
        if not path:
            self.message.emit("choose where the answers are saved")
            return False
        try:
            log = AnswerLog(path)
            session = ListeningSession(self.setup.corpus, self.setup.test_settings(), log)
        except (SerappError, OSError) as exc:
            self.message.emit(str(exc))
            return False
        self.setup.remember()
        if log.repaired:
            self.message.emit(f"{path}: {log.repaired}")
        if log.problems:
            self.message.emit(_left_out(log.problems))
        self.session = session
        if session.resumed:
            self.message.emit(f"resuming: {session.answered} of {session.total} already answered in {path}")
        self.practice = list(session.practice) if not session.resumed else []
        self.trial.set_labels(list(session.settings.labels))
        self.trial.feedback.setText("")
        self.stack.setCurrentWidget(self.trial)
        self.trial.setFocus()
        self.timer.start()
        self.next_clip()
        return True

    def stop(self) -> None:
        """Stop the test (every answer is already saved) and show the answer file's results;
        a test stopped before its first saved answer goes back to the set-up."""
        self.player.stop()
        self.timer.stop()
        self.record = None
        session, self.session = self.session, None
        if session is None:
            return
        if session.answered == 0:
            self.message.emit("test stopped before any answer was saved; start again when ready")
            self.stack.setCurrentWidget(self.setup)
            return
        self.show_results([str(session.log.path)], mine=session.settings.rater)

    def share(self) -> bool:
        """The set-up's test served to browsers (the same server as `serapp listen-web`)."""
        from serapp.gui.share_dialog import ShareDialog, default_web_folder
        from serapp.web.raters import WebPlan

        if self.share_dialog is not None and self.share_dialog.server is not None:
            self.share_dialog.show()
            self.share_dialog.raise_()
            return True
        if not self.setup.load_corpus():
            self.message.emit("choose a corpus folder or manifest first")
            return False
        s = self.setup.test_settings()
        plan = WebPlan(labels=s.labels, n_clips=s.n_clips, seed=s.seed, balance_speakers=s.balance_speakers,
                       practice_clips=s.practice_clips)
        dialog = ShareDialog(self.setup.corpus, plan, default_web_folder(self.setup.corpus.root), parent=self)
        dialog.message.connect(self.message)
        dialog.results_requested.connect(self.watch_results)
        if not dialog.start():
            dialog.deleteLater()
            return False
        self.setup.remember()
        self.share_dialog = dialog
        dialog.show()
        return True

    def watch_results(self, folder: str) -> None:
        """The results of every answer file in `folder`, shown again as answers come in (the model's
        row is scored on request then, not at every answer)."""
        from serapp.gui.share_dialog import FolderWatch

        if self.watch is None or self.watch.folder != Path(folder):
            if self.watch is not None:
                self.watch.deleteLater()
            self.watch = FolderWatch(folder, self)
            self.watch.changed.connect(self._watched_changed)
        files = self.watch.files()
        self.awaiting_first = not files  # shown as soon as the first answer is in
        if files:
            self.show_results(files)
        else:
            self.message.emit(f"{folder}: no answers yet; the results show here once the first comes in")

    def _watched_changed(self) -> None:
        shown = self.stack.currentWidget() is self.results and self.results.files \
            and all(Path(f).parent == self.watch.folder for f in self.results.files)
        if shown or self.awaiting_first:
            self.awaiting_first = False
            self.show_results(self.watch.files(), score=False)

    def show_results(self, files: list[str], mine: str | None = None, score: bool = True) -> None:
        problems: list[str] = []
        try:
            answers = load_answer_files(files, problems)
        except SerappError as exc:
            self.message.emit(str(exc))
            self.stack.setCurrentWidget(self.setup)
            return
        if not answers:
            self.message.emit(f"{', '.join(files)}: no answers yet")
            self.stack.setCurrentWidget(self.setup)
            return
        self.answers = answers
        if problems:
            self.message.emit(_left_out(problems))
        report = build_report(answers)
        headline = ""
        if mine in report["raters"]:
            r = report["raters"][mine]
            acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.1%}"
            headline = f"<b>{mine}</b>: {r['n']} answered, {r['skipped']} skipped, accuracy <b>{acc}</b>"
        self.results.show_report(report, files, headline)
        self.stack.setCurrentWidget(self.results)
        if score and self.get_predictor() is not None:  # the model beside people, without a click
            self.score_model()

    def score_model(self) -> None:
        predictor = self.get_predictor()
        if predictor is None:
            self.message.emit("the model is not loaded yet (or failed to load): try again in a moment")
            return
        answers, files = self.answers, self.results.files
        self.results.model_button.setEnabled(False)

        def done(model: dict) -> None:
            self.results.model_button.setEnabled(True)
            report = dict(self.results.report, model=model)
            self.results.show_report(report, files, self.results.summary.text())

        def failed(exc) -> None:
            self.results.model_button.setEnabled(True)
            self.message.emit(str(exc))

        name = predictor.path.name if getattr(predictor, "path", None) else predictor.meta.architecture
        self.run_in_background(lambda: score_model(predictor, answers, bundle=name), done, failed)

    # --- trials -------------------------------------------------------------------------------

    def next_clip(self) -> None:
        self.player.stop()
        self.plays, self.first_end, self.audio = 0, None, None
        self.trial.enable_answers(False)
        while True:
            self.in_practice = bool(self.practice)
            self.record = self.practice[0] if self.in_practice else self.session.current
            if self.record is None:
                self.stop()
                return
            try:
                self.audio = load_audio(self.record.path)
                break
            except SerappError as exc:  # a broken clip is recorded as skipped, with the reason
                if self.in_practice:
                    self.practice.pop(0)
                elif not self._saved(self.session.skip, str(exc)):
                    return
                self.message.emit(f"skipped: {exc}")
        s = self.session
        if self.in_practice:
            self.trial.progress.setText(f"Practice {s.settings.practice_clips - len(self.practice) + 1} of "
                                        f"{s.settings.practice_clips} (with feedback, not saved)")
        else:
            self.trial.progress.setText(f"Clip {s.answered + 1} of {s.total}  ·  rater {s.settings.rater}")
        if self.setup.autoplay.isChecked():
            self.play()
        else:
            self.trial.prompt.setText("Press R to play the clip")

    def play(self) -> None:
        if self.audio is None:
            return
        try:
            self.player.play(*self.audio)
        except SerappError as exc:
            self.trial.prompt.setText("cannot play audio")
            self.message.emit(str(exc))
            return
        self.plays += 1
        if self.first_end is None:
            self.trial.prompt.setText("Listen…")

    def _poll_player(self) -> None:
        if self.first_end is None and self.plays and self.player.ended():
            self.first_end = self.player.ended_at
            self.trial.enable_answers(True)
            self.trial.prompt.setText(f"Which emotion?  (1–{len(self.trial.labels)})")

    def _saved(self, write, *args) -> bool:
        """Write an answer; if the file cannot take it, say so and stay on this clip."""
        try:
            write(*args)
        except OSError as exc:
            self.message.emit(f"{self.session.log.path}: cannot save the answer ({exc.strerror or exc}); "
                              "free space or fix the folder, then answer again")
            return False
        return True

    def _response_ms(self) -> float | None:
        return None if self.first_end is None else (time.perf_counter() - self.first_end) * 1000.0

    def _on_action(self, action: str) -> None:
        if self.record is None:
            return
        if action == "play":
            self.play()
        elif action == "stop":
            self.stop()
        elif action == "skip":
            if self.in_practice:
                self.practice.pop(0)
            elif not self._saved(self.session.skip, SKIP_BY_RATER, self._response_ms(), max(0, self.plays - 1)):
                return
            self.trial.feedback.setText("")
            self.next_clip()
        elif action.startswith("answer:") and self.first_end is not None:
            self.answer(action.split(":", 1)[1])

    def answer(self, label: str) -> None:
        if self.in_practice:
            truth = self.practice.pop(0).label
            text = "✓ correct" if label == truth else f"✗ it was <b>{truth}</b>"
            if not self.practice:
                text += "  ·  practice over: the test starts now"
            self.trial.feedback.setText(text)
        else:
            if not self._saved(self.session.answer, label, self._response_ms(), max(0, self.plays - 1)):
                return
            self.trial.feedback.setText("")
        self.next_clip()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.player.warm()  # the output running before the first clip: a new stream was heard 2 s late

    def shutdown(self) -> None:
        if self.share_dialog is not None:
            self.share_dialog.close()  # the server stops; its answers are on disk already
        self.timer.stop()
        self.player.close()


def _left_out(problems: list[str]) -> str:
    """One message for the lines of answer files that could not be read (the others are kept)."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}; that line is left out{more}, every other answer is kept"
