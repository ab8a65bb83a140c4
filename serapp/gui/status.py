"""Text that fits its place: one line, elided with "…" when too long, the whole text as a tooltip."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


def plain_tooltip(text: str) -> str:
    """A tooltip that shows `text` as typed: Qt takes tooltip text that looks like HTML as HTML."""
    return QtGui.Qt.convertFromPlainText(text) if text else ""


class ElidedLabel(QtWidgets.QLabel):
    """A one-line label that never runs into its neighbours: elided to its width, with a tooltip.
    Its text is plain (a file name such as "<b>x.wav" shows as typed) unless `rich`: then the
    caller escapes every name in it (html.escape)."""

    def __init__(self, text: str = "", parent=None, rich: bool = False):
        super().__init__(parent)
        self._full = ""
        self._rich = rich
        if not rich:
            self.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:
        if text == self._full and text:
            return  # fields are set every frame; the same text costs nothing
        self._full = text
        plain = self._plain()
        self.setToolTip(plain_tooltip(plain))
        self._elide()

    def _plain(self) -> str:
        return QtGui.QTextDocumentFragment.fromHtml(self._full).toPlainText() if self._rich else self._full

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        plain = self._plain()
        width = max(10, self.width() - 4)
        metrics = self.fontMetrics()
        if metrics.horizontalAdvance(plain) <= width:
            super().setText(self._full)  # fits: keep the rich text
        else:
            super().setText(metrics.elidedText(plain, QtCore.Qt.TextElideMode.ElideRight, width))

    def sizeHint(self) -> QtCore.QSize:
        hint = super().sizeHint()
        return QtCore.QSize(min(hint.width(), 400), hint.height())


class LevelMeter(QtWidgets.QWidget):
    """The input's peak level: a bar, and its figure beside it (text over a half-filled bar was
    half on the fill and half off, and hard to read either way)."""

    LOW, HIGH = -60, 0  # dBFS

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(self.LOW, self.HIGH)
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(90)
        self.text = QtWidgets.QLabel()
        self.text.setMinimumWidth(self.text.fontMetrics().horizontalAdvance("−60 dBFS") + 4)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(2, 0, 2, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.text)
        self.setToolTip("input peak level over the last 50 ms")
        self.setValue(self.LOW)

    def setValue(self, dbfs: int) -> None:
        dbfs = max(self.LOW, min(self.HIGH, int(dbfs)))
        self.bar.setValue(dbfs)
        self.text.setText(f"{dbfs} dBFS".replace("-", "−"))

    def value(self) -> int:
        return self.bar.value()
