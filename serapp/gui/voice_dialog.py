"""The Voice dialog: "Adapt to my voice" (a guided take of about 20 s, checked, saved as a voice
profile) and the profiles (use one, none, rename, delete). Not modal: the live view keeps
drawing the microphone while the person reads.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from serapp.calibration import SENTENCES, TAKE_S, check_take, profile_from_take
from serapp.errors import SerappError
from serapp.profiles import check_name, speech_heard


class VoiceDialog(QtWidgets.QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.setWindowTitle("Voice")
        self.setModal(False)
        self.take = None  # (samples, rate) of the last take, once recorded
        self._start = None  # the ring position the take starts at, while recording
        self._confirm_delete = None  # the profile the Delete button asks about
        layout = QtWidgets.QVBoxLayout(self)

        adapt = QtWidgets.QGroupBox("Adapt to my voice")
        a = QtWidgets.QVBoxLayout(adapt)
        a.addWidget(QtWidgets.QLabel(f"Press Record and read these sentences aloud in your normal voice, "
                                     f"about {TAKE_S:.0f} seconds. Nothing is labelled: the model learns how "
                                     "your voice sounds."))
        self.sentences = QtWidgets.QLabel("\n".join(SENTENCES))
        font = self.sentences.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.sentences.setFont(font)
        self.sentences.setWordWrap(True)
        a.addWidget(self.sentences)
        row = QtWidgets.QHBoxLayout()
        self.record_button = QtWidgets.QPushButton("Record")
        self.record_button.clicked.connect(self.toggle_recording)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, int(TAKE_S * 10))
        self._show_seconds(0.0)
        row.addWidget(self.record_button)
        row.addWidget(self.progress, 1)
        a.addLayout(row)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        a.addWidget(self.status)
        row = QtWidgets.QHBoxLayout()
        self.name_edit = QtWidgets.QLineEdit()
        self.name_edit.setPlaceholderText("your name, for the profile")
        self.save_button = QtWidgets.QPushButton("Save profile")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save_take)
        self.name_edit.textChanged.connect(self._update_buttons)
        row.addWidget(self.name_edit, 1)
        row.addWidget(self.save_button)
        a.addLayout(row)
        layout.addWidget(adapt)

        saved = QtWidgets.QGroupBox("Voice profiles")
        s = QtWidgets.QVBoxLayout(saved)
        self.active = QtWidgets.QLabel("")
        s.addWidget(self.active)
        self.list = QtWidgets.QListWidget()
        self.list.currentItemChanged.connect(self._update_buttons)
        s.addWidget(self.list, 1)
        row = QtWidgets.QHBoxLayout()
        self.use_button = QtWidgets.QPushButton("Use")
        self.use_button.clicked.connect(self.use_selected)
        self.none_button = QtWidgets.QPushButton("No profile")
        self.none_button.clicked.connect(lambda: self.window.use_profile(None))
        self.delete_button = QtWidgets.QPushButton("Delete…")
        self.delete_button.clicked.connect(self.delete_selected)
        self.reset_button = QtWidgets.QPushButton("Reset voice")
        self.reset_button.clicked.connect(self.window.reset_voice)
        for b in (self.use_button, self.none_button, self.delete_button, self.reset_button):
            row.addWidget(b)
        s.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        self.rename_edit = QtWidgets.QLineEdit()
        self.rename_edit.setPlaceholderText("new name for the selected profile")
        self.rename_button = QtWidgets.QPushButton("Rename")
        self.rename_button.clicked.connect(self.rename_selected)
        self.rename_edit.textChanged.connect(self._update_buttons)
        row.addWidget(self.rename_edit, 1)
        row.addWidget(self.rename_button)
        s.addLayout(row)
        layout.addWidget(saved, 1)
        # Enter in a name field acts on that field: never the dialog's default button, which
        # was Record (Enter after naming a good take started a new one and lost it).
        for b in self.findChildren(QtWidgets.QPushButton):
            b.setAutoDefault(False)
        self.name_edit.returnPressed.connect(self.save_take)
        self.rename_edit.returnPressed.connect(self.rename_selected)

        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._tick)
        self.resize(560, 620)

    # --- the take ---------------------------------------------------------------------------

    def toggle_recording(self) -> None:
        if self._start is not None:
            self.stop_recording()
            return
        w = self.window
        if w.source is None and not w.start_capture():
            self.status.setText("no microphone: choose an input in the main window")
            return
        self.take = None
        self._start = w.source.ring.written
        self.record_button.setText("Stop")
        self.status.setText("recording: read the sentences aloud…")
        self._update_buttons()
        self.timer.start()

    def _tick(self) -> None:
        source = self.window.source
        if source is None or self._start is None:  # capture stopped under the take
            self.timer.stop()
            self._start = None
            self.record_button.setText("Record")
            self.status.setText("the microphone stopped: record again")
            return
        seconds = (source.ring.written - self._start) / source.sample_rate
        self._show_seconds(seconds)
        if seconds >= TAKE_S:
            self.stop_recording()

    def _show_seconds(self, seconds: float) -> None:
        self.progress.setValue(int(min(seconds, TAKE_S) * 10))
        self.progress.setFormat(f"{min(seconds, TAKE_S):.0f} s of {TAKE_S:.0f} s")

    def stop_recording(self) -> None:
        self.timer.stop()
        source, start, self._start = self.window.source, self._start, None
        self.record_button.setText("Record")
        if source is None or start is None:
            return
        samples, _, _lost = source.ring.since(start)
        rate = source.sample_rate
        self.status.setText("checking the take…")

        def checked(reason):
            if reason:
                self.take = None
                self.status.setText(f"not saved: {reason}")
            else:
                self.take = (samples, rate)
                self.status.setText(f"a good take of {samples.size / rate:.0f} s: name the profile and save it")
            self._update_buttons()

        self.window.run_in_background(lambda: check_take(samples, rate), checked)

    def save_take(self) -> None:
        if not self.save_button.isEnabled():  # Enter with no good take or no name: nothing to do
            return
        try:
            name = check_name(self.name_edit.text())
        except SerappError as exc:
            self.status.setText(str(exc))
            return
        samples, rate = self.take
        predictor, store = self.window.predictor, self.window.profiles
        self.save_button.setEnabled(False)
        self.status.setText(f"making voice profile {name!r}…")

        def saved(profile):
            self.take = None
            self.status.setText(f"voice profile {profile.name!r} saved ({speech_heard(profile.seconds)}) and in use")
            self.window.use_profile(profile)

        def failed(exc):
            self.status.setText(str(exc))
            self._update_buttons()

        self.window.run_in_background(lambda: profile_from_take(name, samples, rate, predictor, store), saved, failed)

    # --- the profiles ---------------------------------------------------------------------

    def refresh(self) -> None:
        selected = self.selected_name()
        profiles, problems = self.window.profiles.list()
        self.list.clear()
        predictor = self.window.predictor
        for p in profiles:
            item = QtWidgets.QListWidgetItem(f"{p.name} — {speech_heard(p.seconds)}, {p.created_utc[:10]}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, p.name)
            if predictor is not None and not p.fits(predictor):
                item.setForeground(self.palette().color(self.palette().ColorRole.PlaceholderText))
                item.setToolTip(f"made for the model {p.model}; the model in use reads other features")
            self.list.addItem(item)
            if p.name == selected:
                self.list.setCurrentItem(item)
        active = self.window.active_profile
        self.active.setText(f"in use: {active.name}" if active else "in use: none (each voice is learnt as it speaks)")
        if problems:
            self.status.setText("; ".join(problems))
        self._update_buttons()

    def selected_name(self) -> str | None:
        item = self.list.currentItem()
        return item.data(QtCore.Qt.ItemDataRole.UserRole) if item is not None else None

    def _act(self, action) -> None:
        try:
            action()
        except SerappError as exc:
            self.window.notify(str(exc))
            self.status.setText(str(exc))
        self.refresh()

    def use_selected(self) -> None:
        name = self.selected_name()
        if name:
            self._act(lambda: self.window.use_profile(self.window.profiles.load(name)))

    def rename_selected(self) -> None:
        name, new = self.selected_name(), self.rename_edit.text()
        if not name:
            return

        def rename():
            profile = self.window.profiles.rename(name, new)
            self.rename_edit.clear()
            if self.window.active_profile is not None and self.window.active_profile.name == name:
                self.window.use_profile(profile, quiet=True)
            self.window.notify(f"voice profile {name!r} renamed to {profile.name!r}")

        self._act(rename)

    def delete_selected(self) -> None:
        """Two clicks: the first asks (on the button itself, no modal box), the second deletes the
        profile and the recording it was made from."""
        name = self.selected_name()
        if not name:
            return
        if self._confirm_delete != name:
            self._confirm_delete = name
            self.delete_button.setText(f"Delete {name} and its recording?")
            QtCore.QTimer.singleShot(5000, self._cancel_delete)
            return
        self._cancel_delete()

        def delete():
            self.window.profiles.delete(name)
            if self.window.active_profile is not None and self.window.active_profile.name == name:
                self.window.use_profile(None, quiet=True)
            self.window.notify(f"voice profile {name!r} deleted")

        self._act(delete)

    def _cancel_delete(self) -> None:
        self._confirm_delete = None
        self.delete_button.setText("Delete…")

    def _update_buttons(self, *_) -> None:
        if self._confirm_delete is not None and self.selected_name() != self._confirm_delete:
            self._cancel_delete()
        has = self.selected_name() is not None
        self.use_button.setEnabled(has)
        self.delete_button.setEnabled(has)
        self.rename_button.setEnabled(has and bool(self.rename_edit.text().strip()))
        self.save_button.setEnabled(self.take is not None and bool(self.name_edit.text().strip())
                                    and self.window.predictor is not None and self._start is None)
