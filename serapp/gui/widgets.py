"""pyqtgraph widgets: scrolling spectrogram, waveform, emotion readout, probability timeline.

Fast path: images are row-major C-contiguous uint8 with fixed levels and a 256-entry lookup
table, pens are 1 px wide, no OpenGL. Nothing here computes features or runs a model.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from serapp.features import FrontEndConfig, mel_band_centers
from serapp.labels import emotion_color

DB_RANGE = (-90.0, 0.0)  # fixed colour scale, dB; RAVDESS speech peaks sit at -30 to -5
COLORMAP = "viridis"


def configure_pyqtgraph() -> None:
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, useOpenGL=False)


def panel_grid(waveform, spectrogram, timeline, readout) -> QtWidgets.QGridLayout:
    """The layout both views share: plots stacked on the left, the readout on the right."""
    grid = QtWidgets.QGridLayout()
    grid.addWidget(waveform, 0, 0)
    grid.addWidget(spectrogram, 1, 0)
    grid.addWidget(timeline, 2, 0)
    grid.addWidget(readout, 0, 1, 3, 1)
    for row, stretch in enumerate((2, 4, 3)):
        grid.setRowStretch(row, stretch)
    grid.setColumnStretch(0, 3)
    grid.setColumnStretch(1, 1)
    return grid


def _theme_plot(plot: pg.PlotItem | pg.PlotWidget) -> None:
    """Background and axes from the window palette, so light and dark themes both read well."""
    pal = QtWidgets.QApplication.instance().palette()
    fg = pal.color(QtGui.QPalette.ColorRole.WindowText)
    item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
    for name in ("left", "bottom"):
        ax = item.getAxis(name)
        ax.setPen(pg.mkPen(fg, width=1))
        ax.setTextPen(pg.mkPen(fg))


class MelAxis(pg.AxisItem):
    """Left axis of a mel image labelled in Hz."""

    def __init__(self, config: FrontEndConfig, **kw):
        super().__init__("left", **kw)
        self.set_config(config)

    def set_config(self, config: FrontEndConfig) -> None:
        centers = mel_band_centers(config)
        ticks = [f for f in (100, 250, 500, 1000, 2000, 4000, 8000, 16000) if centers[0] <= f <= centers[-1]]
        self._ticks = [(float(np.interp(f, centers, np.arange(config.n_mels))), f"{f // 1000}k" if f >= 1000 else str(f))
                       for f in ticks]
        self.setTicks([self._ticks, []])


class SpectrogramWidget(pg.GraphicsLayoutWidget):
    """Scrolls by time: columns are appended as they arrive, the view shows the last `seconds`."""

    def __init__(self, config: FrontEndConfig, seconds: float = 10.0, parent=None):
        super().__init__(parent=parent)
        self.setBackground(None)
        self.seconds = seconds
        self.axis = MelAxis(config)
        self.plot = self.addPlot(axisItems={"left": self.axis})
        _theme_plot(self.plot)
        self.plot.setLabel("left", "Hz")
        self.plot.setLabel("bottom", "seconds")
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.image = pg.ImageItem()
        cmap = pg.colormap.get(COLORMAP)
        self.image.setLookupTable(cmap.getLookupTable(nPts=256))
        self.image.setLevels((0, 255))
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=DB_RANGE, colorMap=cmap, interactive=False, label="dB", width=12)
        self.addItem(self.colorbar)
        self.set_config(config)

    def set_config(self, config: FrontEndConfig) -> None:
        """Show another front-end's log-mel (a model's own): bands, axis and scroll rate follow it."""
        self.config = config
        self.cols_per_s = config.sample_rate / config.hop_length
        self.width_cols = int(self.seconds * self.cols_per_s)
        self.axis.set_config(config)
        self._ring = np.zeros((2 * self.width_cols, config.n_mels), dtype=np.uint8)  # mirrored, time-major
        self._count = 0
        self.plot.setXRange(-self.seconds, 0, padding=0)
        self.plot.setYRange(0, config.n_mels, padding=0)
        self._draw(0.0)

    def reset(self) -> None:
        self._ring[:] = 0
        self._count = 0
        self._draw(0.0)

    @staticmethod
    def to_uint8(db: np.ndarray) -> np.ndarray:
        lo, hi = DB_RANGE
        return np.clip((db - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)

    def append(self, columns_db: np.ndarray) -> None:
        """Add (n_mels, k) log-mel columns in dB."""
        k = columns_db.shape[1]
        if k == 0:
            return
        cols = self.to_uint8(columns_db.T[-self.width_cols :])
        w = self.width_cols
        for c in cols:  # k is 1-3 per frame at display rate
            i = self._count % w
            self._ring[i] = c
            self._ring[i + w] = c
            self._count += 1

    def columns(self) -> np.ndarray:
        """The visible image, row-major (n_mels, width_cols) uint8, oldest column first."""
        start = self._count % self.width_cols
        return np.ascontiguousarray(self._ring[start : start + self.width_cols].T)

    def _draw(self, lag_s: float) -> None:
        self.image.setImage(self.columns(), autoLevels=False, levels=(0, 255))
        # Time-driven placement: the newest column sits at x = -lag, so the picture glides
        # between column arrivals instead of jumping by whole blocks.
        self.image.setRect(QtCore.QRectF(-self.seconds - lag_s, 0, self.seconds, self.config.n_mels))

    def redraw(self, lag_s: float = 0.0) -> None:
        self._draw(min(max(lag_s, 0.0), 0.05))

    def set_whole(self, db: np.ndarray, duration_s: float) -> None:
        """Static display of a whole file's (n_mels, frames) log-mel."""
        self.image.setImage(np.ascontiguousarray(self.to_uint8(db)), autoLevels=False, levels=(0, 255))
        self.image.setRect(QtCore.QRectF(0, 0, duration_s, self.config.n_mels))
        self.plot.setXRange(0, max(duration_s, 0.1), padding=0)


class WaveformWidget(pg.PlotWidget):
    """Min/max envelope of the last `seconds`, one point pair per pixel column."""

    def __init__(self, seconds: float = 5.0, points: int = 1200, parent=None):
        super().__init__(parent=parent, background=None)
        _theme_plot(self)
        self.seconds, self.points = seconds, points
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setYRange(-1, 1, padding=0.02)
        self.setLabel("bottom", "seconds")
        pal = QtWidgets.QApplication.instance().palette()
        self.curve = self.plot(pen=pg.mkPen(pal.color(QtGui.QPalette.ColorRole.Highlight), width=1))
        self._x = np.repeat(np.linspace(-seconds, 0, points), 2)
        self.setXRange(-seconds, 0, padding=0)

    def show_samples(self, samples: np.ndarray) -> None:
        n = samples.size - samples.size % self.points
        if n <= 0:
            return
        blocks = samples[-n:].reshape(self.points, -1)
        y = np.empty(2 * self.points, dtype=np.float32)
        y[0::2] = blocks.min(axis=1)
        y[1::2] = blocks.max(axis=1)
        self.curve.setData(self._x, y)

    def show_envelope(self, lo: np.ndarray, hi: np.ndarray, duration_s: float) -> None:
        """A whole file's waveform from its (min, max) over equal stretches."""
        y = np.empty(2 * lo.size, dtype=np.float32)
        y[0::2], y[1::2] = lo, hi
        self.curve.setData(np.repeat(np.linspace(0, duration_s, lo.size), 2), y)
        self.setXRange(0, max(duration_s, 0.1), padding=0)


class ReadoutWidget(QtWidgets.QWidget):
    """A bar per emotion and the top emotion in large type, coloured per emotion."""

    def __init__(self, labels: list[str], parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        self.top = QtWidgets.QLabel("—")
        font = self.top.font()
        font.setPointSizeF(font.pointSizeF() * 2.6)
        font.setBold(True)
        self.top.setFont(font)
        self.top.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.top.setMinimumWidth(220)
        layout.addWidget(self.top)
        self.plot = pg.PlotWidget(background=None)
        _theme_plot(self.plot)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        layout.addWidget(self.plot, 1)
        self.set_labels(labels)

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
        self.plot.setXRange(0, 1, padding=0)
        self.plot.setYRange(-0.6, n - 0.4, padding=0)
        self.show_none("—")

    def show_probabilities(self, probabilities: dict[str, float]) -> None:
        widths = np.array([probabilities.get(k, 0.0) for k in self.labels])
        self.bars.setOpts(width=widths)
        top = self.labels[int(np.argmax(widths))]
        self.top.setText(f"{top}  {widths.max():.0%}")
        self.top.setStyleSheet(f"color: {emotion_color(top)};")

    def show_none(self, text: str = "no speech") -> None:
        self.bars.setOpts(width=np.zeros(len(self.labels)))
        self.top.setText(text)
        self.top.setStyleSheet("color: palette(mid);")


class TimelineWidget(pg.PlotWidget):
    """Probability of each emotion over time (live: the last `seconds`; file: the whole file)."""

    def __init__(self, labels: list[str], seconds: float = 60.0, parent=None):
        super().__init__(parent=parent, background=None)
        _theme_plot(self)
        self.seconds = seconds
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setYRange(0, 1, padding=0)
        self.setLabel("bottom", "seconds")
        self.legend = self.addLegend(offset=(5, 5), labelTextSize="8pt")
        self.set_labels(labels)
        self.setXRange(-seconds, 0, padding=0)

    def set_labels(self, labels: list[str]) -> None:
        self.labels = list(labels)
        self.clear()
        self.legend.clear()
        self.curves = {k: self.plot(pen=pg.mkPen(emotion_color(k), width=1), name=k) for k in self.labels}
        self.t: list[float] = []
        self.p: list[np.ndarray] = []

    def add(self, t: float, probabilities: dict[str, float] | None) -> None:
        self.t.append(t)
        self.p.append(np.array([probabilities[k] for k in self.labels]) if probabilities else np.full(len(self.labels), np.nan))
        while self.t and self.t[0] < t - self.seconds - 1:
            self.t.pop(0)
            self.p.pop(0)

    def redraw(self, now: float) -> None:
        if not self.t:
            return
        x = np.asarray(self.t) - now
        p = np.asarray(self.p)
        for i, k in enumerate(self.labels):
            self.curves[k].setData(x, p[:, i], connect="finite")
        self.setXRange(-self.seconds, 0, padding=0)

    def show_segments(self, starts: np.ndarray, probs: np.ndarray, duration: float) -> None:
        """Windows' probabilities at their centres; NaN rows (no speech) are gaps."""
        for i, k in enumerate(self.labels):
            self.curves[k].setData(starts, probs[:, i] if len(probs) else probs, connect="finite")
        self.setXRange(0, max(duration, 0.1), padding=0)
