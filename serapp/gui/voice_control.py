"""The main window's voice: the voice profile read with, "Reset voice", and the Voice dialog
(a mixin of MainWindow, which owns the widgets and the messages).

A model that adapts learns the voice at the microphone from the cold start (or from the chosen
profile); "Reset voice" forgets what it heard, for the next person. A profile also applies to
the file view, and to a compared model with the same features (others read cold).
"""

from __future__ import annotations

from PySide6 import QtGui

from serapp.errors import SerappError
from serapp.profiles import ProfileStore, VoiceProfile


class VoiceActions:
    def init_voice(self, store: ProfileStore | None = None) -> None:
        self.profiles = store or ProfileStore()
        self.active_profile: VoiceProfile | None = None
        self.voice_dialog = None

    def add_voice_actions(self, tb) -> None:
        voice = tb.addAction("Voice…", self.open_voice_dialog)
        voice.setToolTip("adapt to my voice (a short reading), voice profiles: choose, rename, delete")
        self.reset_voice_action = tb.addAction("Reset voice", self.reset_voice)
        self.reset_voice_action.setShortcut(QtGui.QKeySequence("Ctrl+0"))
        self.reset_voice_action.setToolTip("forget the voice heard so far, e.g. when the next person takes the "
                                           "microphone (Ctrl+0)")

    def open_voice_dialog(self) -> None:
        from serapp.gui.voice_dialog import VoiceDialog

        if self.voice_dialog is None:
            self.voice_dialog = VoiceDialog(self)
        self.voice_dialog.refresh()
        self.voice_dialog.show()
        self.voice_dialog.raise_()

    def reset_voice(self) -> None:
        if self.live is not None:
            self.live.reset_voice()
        what = f"voice profile {self.active_profile.name}" if self.active_profile else "the cold start"
        self.notify(f"voice reset: reading from {what} again")

    def use_profile(self, profile: VoiceProfile | None, quiet: bool = False) -> bool:
        """Read with `profile` (None: learn each voice live). A profile made for a model with other
        features is refused, with a message naming both models."""
        if profile is not None and self.predictor is not None:
            try:
                profile.voice(self.predictor)  # the one check, with its message
            except SerappError as exc:
                self.notify(str(exc))
                return False
        self.active_profile = profile
        self.settings.setValue("voice_profile", profile.name if profile else "")
        if self.live is not None:
            self.live.set_profile(profile)
        if not quiet:
            self.notify(f"reading with voice profile {profile.name}" if profile else
                        "no voice profile: each voice is learnt as it speaks")
        if self.voice_dialog is not None:
            self.voice_dialog.refresh()
        if self.presentation is not None:
            self.presentation.set_voice(self.voice_line(live=self.presentation.show_reading in self.live.reading_listeners))
        return True

    def restore_profile(self) -> None:
        """The profile chosen last time, once a model is loaded (refused, said, if it does not fit)."""
        name = self.settings.value("voice_profile", "") or ""
        if self.active_profile is not None:
            name = self.active_profile.name
        if not name:
            return
        try:
            profile = self.profiles.load(name)
        except SerappError as exc:
            self.notify(str(exc))
            self.settings.setValue("voice_profile", "")
            return
        if not self.use_profile(profile, quiet=True):
            self.active_profile = None
            if self.live is not None:
                self.live.set_profile(None)

    def voice_line(self, live: bool = True) -> str:
        """The voice read with, in a few words for presentation mode ("" for a model that does not adapt)."""
        p, predictor = self.active_profile, self.predictor
        if predictor is None or not predictor.adapts:
            return ""
        if p is not None and p.fits(predictor):
            return f"voice profile: {p.name}"
        return "no voice profile: " + ("learning the voice as it speaks" if live else "read cold")

    def voice_for(self, predictor):
        """The adaptation state a file is read with by `predictor` (None: the cold start)."""
        p = self.active_profile
        return p.voice(predictor) if p is not None and predictor is not None and p.fits(predictor) else None


def file_voice_note(predictor, voice, profile) -> str:
    """What a file view readout says about the voice it was read with."""
    if predictor is None or not predictor.adapts:
        return ""
    if voice is not None:
        return f"voice profile {profile.name}"
    return "cold start (no voice profile)" if profile is None else f"cold start ({profile.name}: other features)"
