"""Text that fits its place: one line, elided with "…" when too long, the whole text as a tooltip."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


class ElidedLabel(QtWidgets.QLabel):
    """A one-line label that never runs into its neighbours: elided to its width, with a tooltip."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:
        if text == self._full and text:
            return  # fields are set every frame; the same text costs nothing
        self._full = text
        self.setToolTip(QtGui.QTextDocumentFragment.fromHtml(text).toPlainText() if text else "")
        self._elide()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        plain = QtGui.QTextDocumentFragment.fromHtml(self._full).toPlainText()
        width = max(10, self.width() - 4)
        metrics = self.fontMetrics()
        if metrics.horizontalAdvance(plain) <= width:
            super().setText(self._full)  # fits: keep the rich text
        else:
            super().setText(metrics.elidedText(plain, QtCore.Qt.TextElideMode.ElideRight, width))

    def sizeHint(self) -> QtCore.QSize:
        hint = super().sizeHint()
        return QtCore.QSize(min(hint.width(), 400), hint.height())
