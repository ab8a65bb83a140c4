"""The plots of the live and file views: waveform, spectrogram and, for each model, a strip of
its top emotion per window and its probability timeline (time_panels.py puts them on one time
axis), and the GUI's pyqtgraph configuration and theme.

Fast path: images are C-contiguous RGBA, coloured through a 256-entry table as columns
arrive; pens are 1 px wide; no OpenGL. Nothing here computes features or runs a model.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from serapp.feature_config import FrontEndConfig, mel_band_centers
from serapp.labels import emotion_color

DB_RANGE = (-90.0, 0.0)  # fixed colour scale, dB; RAVDESS speech peaks sit at -30 to -5
COLORMAP = "viridis"
LEFT_AXIS_PX = 58  # every plot's left axis: the data areas start at the same x
SIDE_COLUMN_PX = 118  # colour bar and legends
WAVE_FLOOR = 0.02  # the waveform's y range never shrinks below this (a silent input stays flat)


def configure_pyqtgraph() -> None:
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, useOpenGL=False)


def text_color() -> QtGui.QColor:
    return QtWidgets.QApplication.instance().palette().color(QtGui.QPalette.ColorRole.WindowText)


def cache_static(item: QtWidgets.QGraphicsItem) -> None:
    """Keep an item that rarely changes (an axis with fixed ticks, a legend) and its children as
    pixmaps: the live view repaints every plot each frame, and replaying their text was a large
    share of it. (A cache covers one item's own painting, not its children's.)"""
    item.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
    for child in item.childItems():
        cache_static(child)


def theme_plot(item: pg.PlotItem) -> None:
    """Axes from the window palette, so light and dark themes both read well; fixed axis width."""
    pal = QtWidgets.QApplication.instance().palette()
    fg = pal.color(QtGui.QPalette.ColorRole.WindowText)
    for name in ("left", "bottom"):
        ax = item.getAxis(name)
        ax.setPen(pg.mkPen(fg, width=1))
        ax.setTextPen(pg.mkPen(fg))
    item.getAxis("left").setWidth(LEFT_AXIS_PX)
    cache_static(item.getAxis("left"))
    item.setMouseEnabled(False, False)
    item.hideButtons()
    item.setMenuEnabled(False)


class MelAxis(pg.AxisItem):
    """Left axis of a mel image labelled in Hz."""

    def __init__(self, config: FrontEndConfig, **kw):
        super().__init__("left", **kw)
        self.set_config(config)

    def set_config(self, config: FrontEndConfig) -> None:
        centers = mel_band_centers(config)
        ticks = [f for f in (250, 500, 1000, 2000, 4000, 8000, 16000) if centers[0] <= f <= centers[-1]]
        self._ticks = [(float(np.interp(f, centers, np.arange(config.n_mels))), f"{f // 1000}k" if f >= 1000 else str(f))
                       for f in ticks]
        self.setTicks([self._ticks, []])


class WaveformPlot(pg.PlotItem):
    """Min/max envelope; the y range follows the recent peak (with a floor), so a quiet voice
    is still a shape and not a flat line."""

    def __init__(self, points: int = 1200):
        super().__init__()
        theme_plot(self)
        self.points = points
        pal = QtWidgets.QApplication.instance().palette()
        # A bare curve (no PlotDataItem layer) that trusts its data to be finite: it is handed
        # new data every frame.
        self.curve = pg.PlotCurveItem(pen=pg.mkPen(pal.color(QtGui.QPalette.ColorRole.Highlight), width=1),
                                      skipFiniteCheck=True)
        self.addItem(self.curve)
        self.setLabel("left", "level")
        self.getAxis("left").enableAutoSIPrefix(False)  # the ticks say the level itself
        self.peak = None
        self._scale(0.0)

    def _scale(self, peak: float) -> None:
        peak = max(WAVE_FLOOR, float(peak) * 1.1)
        if peak == self.peak:
            return  # unchanged: keep the axis' drawn picture (redrawing it costs a frame's share)
        self.peak = peak
        self.setYRange(-self.peak, self.peak, padding=0)
        self.getAxis("left").setTicks([[(-self.peak * 0.9, f"{-self.peak * 0.9:.2g}"), (0, "0"),
                                        (self.peak * 0.9, f"{self.peak * 0.9:.2g}")], []])

    def stream(self, span_s: float, sample_rate: int) -> None:
        """Start a live envelope: `points` (min, max) pairs over blocks of span_s / points."""
        self._rate = sample_rate
        self._block = max(1, round(span_s * sample_rate / self.points))
        self._env = np.zeros((2 * self.points, 2), np.float32)  # mirrored ring of (min, max) pairs
        self._blocks_done = 0
        self._tail = np.zeros(0, np.float32)  # samples of the block still filling
        # Each block drawn at its end time, the newest at x = 0 (then shifted by the tail).
        self._x = np.repeat(np.arange(1 - self.points, 1) * (self._block / sample_rate), 2)
        self.push(np.zeros(0, np.float32))

    def push(self, samples: np.ndarray) -> None:
        """Live: new input samples. Only completed blocks are reduced, and blocks are counted
        from the stream's start, so the picture scrolls without shimmer and a frame costs
        what arrived in it, not the whole span (it was a tenth of the frame budget)."""
        data = np.concatenate([self._tail, samples]) if self._tail.size else np.asarray(samples, np.float32)
        k = data.size // self._block
        if k:
            blocks = data[: k * self._block].reshape(k, self._block)[-self.points :]
            slots = (self._blocks_done + k - len(blocks) + np.arange(len(blocks))) % self.points
            self._env[slots, 0] = self._env[slots + self.points, 0] = blocks.min(axis=1)
            self._env[slots, 1] = self._env[slots + self.points, 1] = blocks.max(axis=1)
            self._blocks_done += k
        self._tail = data[k * self._block :].copy()
        start = self._blocks_done % self.points
        y = self._env[start : start + self.points].flatten()  # a copy: the ring moves on
        self.curve.setData(self._x, y)
        self.place(0.0)
        self._scale(np.abs(y).max())

    def place(self, shift_s: float) -> None:
        """Live: the newest sample at x = -shift_s (the unfinished block is not drawn)."""
        self.curve.setPos(-self._tail.size / self._rate - shift_s, 0.0)

    def show_envelope(self, lo: np.ndarray, hi: np.ndarray, duration_s: float) -> None:
        """A whole file's waveform from its (min, max) over equal stretches."""
        y = np.empty(2 * lo.size, dtype=np.float32)
        y[0::2], y[1::2] = lo, hi
        self.curve.setData(np.repeat(np.linspace(0, duration_s, lo.size), 2), y)
        self._scale(np.abs(y).max() if y.size else 0.0)


class SpectrogramPlot(pg.PlotItem):
    """Log-mel as a uint8 image: scrolling by time (live) or a whole file."""

    def __init__(self, config: FrontEndConfig, seconds: float = 10.0):
        self.axis = MelAxis(config)
        super().__init__(axisItems={"left": self.axis})
        theme_plot(self)
        self.setLabel("left", "Hz")
        self.seconds = seconds
        self.image = pg.ImageItem()
        self.cmap = pg.colormap.get(COLORMAP)
        # Colours are looked up as columns arrive and the image is handed over as RGBA: painting
        # an indexed image (pyqtgraph's LUT path) cost 1.9 ms a frame here, RGBA 0.5 ms.
        self.colors = self.cmap.getLookupTable(nPts=256, alpha=True)  # (256, 4) uint8
        self.addItem(self.image)
        self.set_config(config)

    def set_config(self, config: FrontEndConfig) -> None:
        """Show another front-end's log-mel (a model's own): bands, axis and scroll rate follow it."""
        self.config = config
        self.cols_per_s = config.sample_rate / config.hop_length
        self.width_cols = int(self.seconds * self.cols_per_s)
        self.axis.set_config(config)
        # Mirrored rings, one row per band: the visible stretch is a slice whose rows are whole
        # runs of memory, so handing it over is a row-by-row copy, not a transpose.
        self._ring = np.zeros((config.n_mels, 2 * self.width_cols), dtype=np.uint8)
        self._rgba = self.colors[self._ring]  # the same, coloured
        self._count = 0
        self.setYRange(0, config.n_mels, padding=0)
        self.redraw(0.0)

    def reset(self) -> None:
        self._ring[:] = 0
        self._rgba[:] = self.colors[0]
        self._count = 0
        self.redraw(0.0)

    def copy_from(self, other: SpectrogramPlot) -> None:
        """Start from what another spectrogram of the same front-end shows (its history)."""
        if other.config == self.config and other.width_cols == self.width_cols:
            self._ring[:] = other._ring
            self._rgba[:] = other._rgba
            self._count = other._count
            self.redraw(0.0)

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
            self._ring[:, i] = self._ring[:, i + w] = c
            self._rgba[:, i] = self._rgba[:, i + w] = self.colors[c]
            self._count += 1

    def columns(self) -> np.ndarray:
        """The visible image, row-major (n_mels, width_cols) uint8, oldest column first."""
        start = self._count % self.width_cols
        return np.ascontiguousarray(self._ring[:, start : start + self.width_cols])

    def redraw(self, shift_s: float = 0.0) -> None:
        """Hand the newest picture to the image, placed at shift_s."""
        start = self._count % self.width_cols
        self.image.setImage(np.ascontiguousarray(self._rgba[:, start : start + self.width_cols]), autoLevels=False)
        self.place(shift_s)

    def place(self, shift_s: float) -> None:
        """Time-driven placement: the newest column at x = -shift_s, so the picture glides
        between column arrivals instead of jumping by whole blocks."""
        self.image.setRect(QtCore.QRectF(-self.seconds - shift_s, 0, self.seconds, self.config.n_mels))

    def set_whole(self, db: np.ndarray, duration_s: float) -> None:
        """Static display of a whole file's (n_mels, columns) log-mel."""
        self.image.setImage(np.ascontiguousarray(self.colors[self.to_uint8(db)]), autoLevels=False)
        self.image.setRect(QtCore.QRectF(0, 0, duration_s, self.config.n_mels))


class RulerPlot(pg.PlotItem):
    """The shared time axis alone, under the plots, so that no plot gives up height to it (two
    models' timelines are then equally tall)."""

    HEIGHT_PX = 40

    def __init__(self):
        super().__init__()
        theme_plot(self)
        left = self.getAxis("left")
        left.setStyle(showValues=False)
        left.setPen(pg.mkPen(None))
        self.showAxis("bottom")
        self.setLabel("bottom", "seconds")


class StripPlot(pg.PlotItem):
    """One bar per window in the colour of its top emotion; no speech, no bar (a gap)."""

    def __init__(self, name: str = ""):
        super().__init__()
        theme_plot(self)
        self.setYRange(0, 1, padding=0)
        self.getAxis("left").setTicks([[(0.5, name or "emotion")], []])  # the top emotion's colour
        self.moving = pg.ItemGroup()  # what scrolls live: moved as one, its data untouched
        self.addItem(self.moving)
        self.bars = pg.BarGraphItem(x0=[], y0=[], width=[], height=[], brushes=[], pen=pg.mkPen(None))
        self.bars.setParentItem(self.moving)
        self.labels: list[str] = []
        self._brushes: dict[str, QtGui.QBrush] = {}  # one per emotion, not one per bar per reading

    def show_windows(self, starts: np.ndarray, ends: np.ndarray, top: list[str | None]) -> None:
        keep = [i for i, t in enumerate(top) if t is not None]
        self.bars.setOpts(x0=np.asarray(starts)[keep], width=np.asarray(ends)[keep] - np.asarray(starts)[keep],
                          y0=np.zeros(len(keep)), height=np.ones(len(keep)),
                          brushes=[self._brush(top[i]) for i in keep])

    def _brush(self, label: str) -> QtGui.QBrush:
        if label not in self._brushes:
            self._brushes[label] = pg.mkBrush(emotion_color(label))
        return self._brushes[label]


class TimelinePlot(pg.PlotItem):
    """Each emotion's probability over time; its legend is a separate item placed beside it."""

    def __init__(self, labels: list[str], name: str = ""):
        super().__init__()
        theme_plot(self)
        self.setYRange(0, 1.0, padding=0)
        self.getAxis("left").setTicks([[(0.0, "0"), (0.5, "0.5"), (1.0, "1")], []])
        self.setLabel("left", "probability")
        # Room above 1 so the top tick label is drawn whole (the axis hides labels it would clip).
        self.getAxis("left").setStyle(hideOverlappingLabels=False)
        self.key = pg.LegendItem(labelTextSize="9pt", offset=None, labelTextColor=text_color())  # beside the plot
        self.model_name = name
        self.set_labels(labels)

    def set_labels(self, labels: list[str]) -> None:
        self.labels = list(labels)
        if getattr(self, "moving", None) is not None:
            self.removeItem(self.moving)
        self.key.clear()
        # The curves sit in a group that the live view moves as the clock runs: moving the
        # curves themselves made pyqtgraph re-process their data every frame.
        self.moving = pg.ItemGroup()
        self.addItem(self.moving)
        # Bare curves: pyqtgraph's PlotDataItem layer cost 0.5 ms per curve per reading.
        # 2 px: a 1 px curve in a pale colour was hard to follow
        self.lines = {k: pg.PlotCurveItem(pen=pg.mkPen(emotion_color(k), width=2), connect="finite")
                      for k in self.labels}
        for k in self.labels:
            self.lines[k].setParentItem(self.moving)
            self.key.addItem(self.lines[k], k)
        cache_static(self.key)

    def show_curves(self, times: np.ndarray, probs: np.ndarray) -> None:
        """Probabilities (points, labels) at `times`; NaN rows (no speech) are gaps."""
        for i, k in enumerate(self.labels):
            self.lines[k].setData(times, probs[:, i] if len(probs) else probs)


class ModelTrack:
    """What one model draws: its strip and timeline, and (live) the readings it has made."""

    def __init__(self, labels: list[str], name: str):
        self.strip = StripPlot(name)
        self.timeline = TimelinePlot(labels, name)
        self.t: list[float] = []  # live: reading times (s) and their probabilities
        self.p: list[np.ndarray] = []
        self.spans: list[float] = []
        self._stale = True  # readings not yet handed to the curves

    def set_labels(self, labels: list[str]) -> None:
        self.timeline.set_labels(labels)
        self.t, self.p, self.spans = [], [], []
        self._stale = True

    def add(self, t: float, probabilities: dict[str, float] | None, hop_s: float, keep_s: float) -> None:
        """Live: a reading drawn at `t`, the centre of its window (where its speech is, as the file
        view draws windows), its strip bar one hop wide around it."""
        labels = self.timeline.labels
        self.t.append(t)
        self.p.append(np.array([probabilities[k] for k in labels]) if probabilities else np.full(len(labels), np.nan))
        self.spans.append(hop_s)
        while self.t and self.t[0] < t - keep_s - 1:
            self.t.pop(0)
            self.p.pop(0)
            self.spans.pop(0)
        self._stale = True

    def redraw(self, now: float, shift_s: float) -> None:
        """Live: the readings at their windows' centres (s of audio), handed to the curves only
        when a reading arrived; every frame moves the items so that `now` sits at shift_s (0 =
        the right edge). Re-sending 10 s of curves each frame cost most of a frame."""
        if not self.t:
            return
        if self._stale:
            x = np.asarray(self.t)
            p = np.asarray(self.p)
            self.timeline.show_curves(x, p)
            best = np.where(np.isnan(p), -1.0, p).argmax(axis=1)
            silent = np.isnan(p).all(axis=1)
            top = [None if gap else self.timeline.labels[j] for gap, j in zip(silent, best)]
            half = np.asarray(self.spans) / 2
            self.strip.show_windows(x - half, x + half, top)
            self._stale = False
        for group in (self.timeline.moving, self.strip.moving):
            group.setPos(-now - shift_s, 0.0)

    def show_file(self, segments, labels: list[str]) -> None:
        """Each window's reading owns the time nearer its centre than any other's, from the first
        window's start to the last one's end: the curves step there, and the strip's colour is
        the top curve's, so it changes exactly where the curves cross."""
        self.timeline.set_labels(labels)
        if not segments:
            self.timeline.show_curves(np.zeros(0), np.zeros((0, len(labels))))
            self.strip.show_windows(np.zeros(0), np.zeros(0), [])
            return
        starts = np.array([s.start_s for s in segments])
        ends = np.array([s.end_s for s in segments])
        centres = (starts + ends) / 2
        edges = np.concatenate([starts[:1], (centres[1:] + centres[:-1]) / 2, ends[-1:]])
        probs = np.array([[s.probabilities[k] if s.probabilities else np.nan for k in labels] for s in segments])
        self.timeline.show_curves(np.column_stack([edges[:-1], edges[1:]]).ravel(), np.repeat(probs, 2, axis=0))
        self.strip.show_windows(edges[:-1], edges[1:], [s.label for s in segments])
