"""The readout widgets: bars with the top emotion in large type, and the arousal-valence panel."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from serapp.gui.plots import (  # noqa: F401  (the GUI's one configuration)
    COLORMAP,
    cache_static,
    configure_pyqtgraph,
    text_color,
    theme_plot,
)
from serapp.gui.status import ElidedLabel
from serapp.labels import emotion_color
from serapp.readout import describe

# Where each emotion sits on the circumplex: angles (degrees, 0 = pleasure, 90 = arousal) that
# Russell (1980), "A circumplex model of affect", J. Personality and Social Psychology 39(6),
# 1161-1178, found by circular scaling of 28 affect words: happy 7.8, astonished 69.8 (our
# surprised), angry 99.0, afraid 116.0 (fearful), annoyed 123.0, sad 207.5, calm 316.2.
# Disgust is not among his words; it takes annoyed's angle, the nearest displeasure word with
# some arousal (our choice). Neutral is the centre: no pleasure, no arousal.
CIRCUMPLEX_DEGREES = {"happy": 7.8, "surprised": 69.8, "angry": 99.0, "fearful": 116.0, "disgust": 123.0,
                      "sad": 207.5, "calm": 316.2}


LABEL_X = 1.12  # where the names start, beside the circle
LABEL_ROOM = 0.75  # room for the names beside the circle (data units), at least
LABEL_GAP = 0.24  # the least height between two names on one side (a line of 9 pt text and some air)


def label_places(gap: float = LABEL_GAP) -> dict[str, tuple[float, float, int, float]]:
    """label -> (x, y of its dot, side: -1 left or 1 right, height of its name): names on the side
    of the circle their dot is on, at the dot's height where they can be, else moved apart just
    enough to keep `gap` between them, in the dots' order."""
    places = {}
    for side in (-1, 1):
        dots = sorted(((math.cos(math.radians(d)), math.sin(math.radians(d)), k)
                       for k, d in CIRCUMPLEX_DEGREES.items()
                       if (math.cos(math.radians(d)) >= 0) == (side > 0)), key=lambda t: -t[1])
        heights = [y for _, y, _ in dots]
        for i in range(1, len(heights)):  # top down, each at least `gap` below the one above
            heights[i] = min(heights[i], heights[i - 1] - gap)
        low = -1.05  # then up again from the bottom, should that push a name off the plot
        for i in range(len(heights) - 1, -1, -1):
            heights[i] = max(heights[i], low)
            low = heights[i] + gap
        for (x, y, k), h in zip(dots, heights):
            places[k] = (x, y, side, h)
    return places


def circumplex_point(probabilities: dict[str, float]) -> tuple[float, float]:
    """(valence, arousal): the probability-weighted mean of the emotions' placements."""
    v = a = 0.0
    for label, p in probabilities.items():
        if label in CIRCUMPLEX_DEGREES:
            angle = math.radians(CIRCUMPLEX_DEGREES[label])
            v += p * math.cos(angle)
            a += p * math.sin(angle)
    return v, a


class FitLabel(QtWidgets.QLabel):
    """Bold text `scale` times the normal size, smaller where the width is short: never clipped
    (two readouts side by side in a small window were)."""

    def __init__(self, text: str = "", scale: float = 2.4, parent=None):
        super().__init__(text, parent)
        font = self.font()
        font.setBold(True)
        self._largest = font.pointSizeF() * scale
        font.setPointSizeF(self._largest)
        self.setFont(font)
        self._full = font  # measured once: the live readout sets its text every reading
        self._metrics = QtGui.QFontMetrics(font)
        # its width comes from the layout, never from its text, so fitting cannot move the layout
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.setFixedHeight(QtGui.QFontMetrics(font).height() + 4)

    def setText(self, text: str) -> None:
        super().setText(text)
        self._fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        size = self._largest
        need = self._metrics.horizontalAdvance(self.text()) + 8
        if need > self.width() > 0:
            size = max(6.0, self._largest * self.width() / need)
        if size != self.font().pointSizeF():
            font = QtGui.QFont(self._full)
            font.setPointSizeF(size)
            self.setFont(font)


class ReadoutWidget(QtWidgets.QWidget):
    """A bar per emotion and the top emotion in large type, coloured per emotion."""

    def __init__(self, labels: list[str], title: str = "", parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.title = QtWidgets.QLabel(title)
        self.title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.title.setVisible(bool(title))
        layout.addWidget(self.title)
        self.top = FitLabel("—", scale=2.4)
        self.top.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.top)
        # The voice it reads with (cold start, adapting, a profile): one elided line, always there,
        # so a long profile name cannot widen one readout and two readouts' bars start level.
        self.note = ElidedLabel("")
        self.note.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.note.setMinimumHeight(self.note.fontMetrics().height())  # a line even while empty
        layout.addWidget(self.note)
        self.plot = pg.PlotWidget(background=None)
        theme_plot(self.plot.getPlotItem())
        self.plot.getPlotItem().getAxis("left").setWidth(70)
        cache_static(self.plot.getPlotItem().getAxis("bottom"))
        layout.addWidget(self.plot, 1)
        self.updates = 0  # readings shown (tests and benchmarks follow it)
        self.set_labels(labels)

    def set_note(self, text: str) -> None:
        self.note.setText(text)

    def set_title(self, title: str) -> None:
        self.title.setText(title)
        self.title.setVisible(bool(title))

    def set_labels(self, labels: list[str]) -> None:
        self.labels = list(labels)
        self.plot.clear()
        n = len(self.labels)
        brushes = [pg.mkBrush(emotion_color(label)) for label in self.labels]
        # Horizontal bars, first label on top, names on the left axis: readable at any width.
        self._y = np.arange(n)[::-1].astype(float)
        self.bars = pg.BarGraphItem(x0=np.zeros(n), y=self._y, height=0.7, width=np.zeros(n),
                                    brushes=brushes, pen=pg.mkPen(None))
        self.plot.addItem(self.bars)
        self.plot.getAxis("left").setTicks([[(y, label) for y, label in zip(self._y, self.labels)]])
        self.plot.getAxis("bottom").setTicks([[(0, "0"), (0.5, "0.5"), (1, "1")], []])
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(-0.6, n - 0.4, padding=0)
        self.show_none("—")

    def show_probabilities(self, probabilities: dict[str, float], sure: bool | None = None) -> None:
        """A reading's bars, and its top emotion, or "not sure (A or B)" where `sure` is False
        (its calibrated top probability is below the model's threshold: serapp.readout)."""
        widths = np.array([probabilities.get(k, 0.0) for k in self.labels])
        self.bars.setOpts(width=widths)
        top = self.labels[int(np.argmax(widths))]
        if sure is False:
            self.top.setText(describe(top, probabilities, sure))
            self._top_color(self.palette().color(QtGui.QPalette.ColorRole.Mid))
        else:
            self.top.setText(f"{top}  {widths.max():.0%}")
            self._top_color(QtGui.QColor(emotion_color(top)))
        self.updates += 1

    def show_none(self, text: str = "no speech") -> None:
        self.bars.setOpts(width=np.zeros(len(self.labels)))
        self.top.setText(text)
        self._top_color(self.palette().color(QtGui.QPalette.ColorRole.Mid))
        self.updates += 1

    def _top_color(self, color: QtGui.QColor) -> None:
        # By palette, not a style sheet: setting a style sheet re-styled the widget, a sixth of
        # the GUI thread's time at five readings a second.
        pal = self.top.palette()
        if pal.color(QtGui.QPalette.ColorRole.WindowText) != color:
            pal.setColor(QtGui.QPalette.ColorRole.WindowText, color)
            self.top.setPalette(pal)


class CircumplexWidget(pg.PlotWidget):
    """Valence (x) against arousal (y): the current reading moves, leaving a fading trail."""

    def __init__(self, trail: int = 12, parent=None):
        super().__init__(parent=parent, background=None)
        item = self.getPlotItem()
        theme_plot(item)
        item.getAxis("left").setWidth(34)
        self.setAspectLocked(True)
        self._fit(LABEL_ROOM)
        item.getAxis("left").setTicks([[(-1, "−"), (0, ""), (1, "+")], []])
        item.getAxis("bottom").setTicks([[(-1, "−"), (0, ""), (1, "+")], []])
        item.setLabel("left", "arousal")
        item.setLabel("bottom", "valence")
        pal = QtWidgets.QApplication.instance().palette()
        grid = pg.mkPen(pal.color(QtGui.QPalette.ColorRole.Mid), width=1)
        t = np.linspace(0, 2 * np.pi, 120)
        self.plot(np.cos(t), np.sin(t), pen=grid)
        self.addItem(pg.InfiniteLine(0, angle=90, pen=grid))
        self.addItem(pg.InfiniteLine(0, angle=0, pen=grid))
        # Names outside the circle, stacked on its left and right and led to their dots, so
        # neither each other nor the trail (always inside) can cover them; placed as the size
        # allows (`_place`).
        self.names: dict[str, pg.TextItem] = {}
        self._leaders: dict[str, pg.PlotDataItem] = {}
        for label, (x, y, side, _) in label_places().items():
            self.plot([x], [y], pen=None, symbol="o", symbolSize=6, symbolBrush=emotion_color(label), symbolPen=None)
            self._leaders[label] = self.plot([x], [y], pen=grid)
            text = pg.TextItem(label, color=emotion_color(label), anchor=(0.0 if side > 0 else 1.0, 0.5))
            self.addItem(text)
            self.names[label] = text
        self._place(LABEL_GAP)
        for static in [*item.items, item.getAxis("bottom")]:  # only the trail changes: 6.3 -> 3.3 ms a reading
            cache_static(static)
        self._trail = trail
        self.series: list[tuple[deque, pg.ScatterPlotItem]] = []  # one per model: its trail, its points
        self.key = pg.LegendItem(labelTextSize="9pt", labelTextColor=text_color(), offset=None)
        self.key.setParentItem(item.vb)
        self.key.anchor(itemPos=(0, 1), parentPos=(0, 1), offset=(2, -2))  # a corner no name reaches
        self.set_models([""])
        self._no_pen = pg.mkPen(None)
        self._brushes: dict[tuple[str, int], QtGui.QBrush] = {}

    def _place(self, gap: float) -> None:
        for label, (x, y, side, ty) in label_places(gap).items():
            tx = side * LABEL_X
            self._leaders[label].setData([x, side * 1.04, tx], [y, ty, ty])
            self.names[label].setPos(tx, ty)

    def _fit(self, room: float) -> None:
        # both at once: with the aspect locked, the view widens one range to show both whole
        self.getPlotItem().vb.setRange(xRange=(-LABEL_X - room, LABEL_X + room), yRange=(-1.2, 1.2), padding=0)

    def resizeEvent(self, event) -> None:
        """Room beside the circle for the longest name, and between names, at this size: a name
        is so many pixels wide and high, so the smaller the plot, the more of its units it takes."""
        super().resizeEvent(event)
        item = self.getPlotItem()
        names = getattr(self, "names", {})  # (Qt resizes the widget before __init__ has built them)
        if item is None or not names:
            return
        width, height = item.vb.width(), item.vb.height()
        if width <= 0 or height <= 0:
            return
        t = max(n.boundingRect().width() for n in names.values()) + 6
        room = max(LABEL_ROOM, 2 * LABEL_X * t / max(1.0, width - 2 * t))
        self._fit(room)
        scale = min(width / (2 * (LABEL_X + room)), height / 2.4)  # pixels per unit, both ways
        self._place(max(LABEL_GAP, max(n.boundingRect().height() for n in names.values()) / scale))

    SYMBOLS = ("o", "s")  # the first model's points round, the second's square

    def set_models(self, names: list[str]) -> None:
        """One trail per model (one or two); with two, a key says which shape is which. The
        items are made once and kept: making and dropping graphics items here crashed Qt at exit."""
        if not self.series:
            for symbol in self.SYMBOLS:
                scatter = pg.ScatterPlotItem(pxMode=True, symbol=symbol)
                self.addItem(scatter)
                self.series.append((deque(maxlen=self._trail), scatter))
            self._samples = [pg.ScatterPlotItem(symbol=symbol, size=9, brush=pg.mkBrush(text_color()),
                                                pen=pg.mkPen(None)) for symbol in self.SYMBOLS]
        self.clear_trail()
        self.key.clear()
        if len(names) > 1:
            for sample, name in zip(self._samples, names):
                self.key.addItem(sample, name)
        self.key.setVisible(len(names) > 1)
        self.models = len(names)

    @property
    def points(self) -> deque:
        return self.series[0][0]

    @property
    def scatter(self) -> pg.ScatterPlotItem:
        return self.series[0][1]

    def add(self, probabilities: dict[str, float] | None, model: int = 0) -> None:
        """A reading of a model (None: no speech, the trail fades on without a new point)."""
        if model >= self.models:
            return
        points, scatter = self.series[model]
        if probabilities:
            x, y = circumplex_point(probabilities)
            points.append((x, y, max(probabilities, key=probabilities.get)))
        elif points:
            points.popleft()
        # Size and opacity go by a point's age in the trail, so a few dozen brushes and symbol
        # pictures serve every frame (a new shade per reading made pyqtgraph draw new symbols).
        n, length = len(points), points.maxlen
        if not n:
            scatter.setData([])
            return
        weight = (length - np.arange(n - 1, -1, -1)) / length  # the newest 1
        xs, ys, labels = zip(*points)
        brushes = [self._brush(label, int(255 * w)) for label, w in zip(labels, weight)]
        scatter.setData(x=xs, y=ys, size=7 + 9 * weight, brush=brushes, pen=self._no_pen)

    def _brush(self, label: str, alpha: int) -> QtGui.QBrush:
        if (label, alpha) not in self._brushes:
            color = QtGui.QColor(emotion_color(label))
            color.setAlpha(alpha)
            self._brushes[label, alpha] = pg.mkBrush(color)
        return self._brushes[label, alpha]

    def clear_trail(self) -> None:
        for points, scatter in self.series:
            points.clear()
            scatter.setData([])
