"""The main window's choice of emotions shown: the basic four (the default) or all the model's
(a mixin of MainWindow, which owns the views, the models and the settings).

The choice is the predictors' readout (serapp.readout): each reading made after it shows the
chosen labels, so the live workers read on (the voice learnt so far stays); the views re-set
their label lists, and a file on screen is read again (its windows hold shown labels only).
"""

from __future__ import annotations

from PySide6 import QtWidgets

from serapp.readout import EMOTION_CHOICES

EMOTION_NAMES = {"basic": "basic four", "all": "all emotions"}


class EmotionActions:
    def add_emotion_selector(self, tb: QtWidgets.QToolBar) -> None:
        self.emotion_combo = QtWidgets.QComboBox()
        for choice in EMOTION_CHOICES:
            self.emotion_combo.addItem(EMOTION_NAMES[choice], choice)
        saved = self.settings.value("emotions", "basic")
        self.emotion_combo.setCurrentIndex(max(0, self.emotion_combo.findData(saved)))
        self.emotion_combo.setToolTip("the emotions shown: neutral, happy, sad and angry (calm counts as neutral), "
                                      "or every emotion the model knows")
        self.emotion_combo.currentIndexChanged.connect(lambda _: self.set_emotions(self.emotions))
        tb.addWidget(self.emotion_combo)

    @property
    def emotions(self) -> str:
        return self.emotion_combo.currentData()

    def set_emotions(self, emotions: str) -> None:
        """Show `emotions` ("basic" or "all") everywhere, and remember the choice."""
        if self.emotion_combo.currentData() != emotions:
            self.emotion_combo.setCurrentIndex(self.emotion_combo.findData(emotions))  # comes back here
            return
        if self.live is not None and self.live.recorder is not None:  # its timeline keeps the labels it began with
            self.notify("the emotions shown can change once the recording is stopped")
            self.emotion_combo.blockSignals(True)
            self.emotion_combo.setCurrentIndex(self.emotion_combo.findData("all" if emotions == "basic" else "basic"))
            self.emotion_combo.blockSignals(False)
            return
        self.settings.setValue("emotions", emotions)
        for p in (self.predictor, self.compare_predictor):
            if p is not None:
                p.set_emotions(emotions)
        if self.live is None:
            return
        self.live.relabel()
        fv = self.file_view
        if fv.analysis is not None and fv.analysis.overall is not None:
            self.file_stale = True  # read again now if on screen, else when the File tab is shown
            self.reread_file_if_stale()
