"""The live and file views' plots on one time axis: waveform, spectrogram and one strip +
timeline per model.

All plots sit in one column of one pyqtgraph layout, with the same left-axis width and their
x ranges linked, so a moment in one is above the same moment in the others; the colour bar
and the legends live in a second column, outside the data. Live, the axis shows the last
`live_seconds` and the content glides with time; a file shows its whole length.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtWidgets

from serapp.feature_config import FrontEndConfig
from serapp.gui.plots import (
    DB_RANGE,
    SIDE_COLUMN_PX,
    ModelTrack,
    RulerPlot,
    SpectrogramPlot,
    WaveformPlot,
    cache_static,
)

SPECTROGRAM_MIN_PX = 110  # a spectrogram squeezed below this shows no bands (two models' rows take room)


class TimePanels(pg.GraphicsLayoutWidget):
    """Waveform, spectrogram and one strip + timeline per model, sharing one time axis."""

    def __init__(self, config: FrontEndConfig, labels: list[str], live_seconds: float | None = None, parent=None):
        super().__init__(parent=parent)
        self.setBackground(None)
        # Most items move every frame: a spatial index would be rebuilt for nothing.
        self.scene().setItemIndexMethod(QtWidgets.QGraphicsScene.ItemIndexMethod.NoIndex)
        self.live_seconds = live_seconds
        self.waveform = WaveformPlot()
        self.spectrogram = SpectrogramPlot(config, seconds=live_seconds or 10.0)
        self.colorbar = pg.ColorBarItem(values=DB_RANGE, colorMap=self.spectrogram.cmap, interactive=False,
                                        label="dB", width=12)
        cache_static(self.colorbar)
        self.tracks: list[ModelTrack] = []
        self.ruler = RulerPlot()  # made once and moved below the models' rows
        self.cursors: list[pg.InfiniteLine] = []
        self.addItem(self.waveform, row=0, col=0)
        self.addItem(self.spectrogram, row=1, col=0)
        self.addItem(self.colorbar, row=1, col=1)
        self.ci.layout.setColumnFixedWidth(1, SIDE_COLUMN_PX)
        self.ci.layout.setRowStretchFactor(0, 2)
        self.ci.layout.setRowStretchFactor(1, 4)
        self.ci.layout.setRowMinimumHeight(1, SPECTROGRAM_MIN_PX)
        self.set_models([labels], [""])

    @property
    def plots(self) -> list[pg.PlotItem]:
        """Top to bottom, every plot on the shared time axis."""
        return [self.waveform, self.spectrogram] + [p for t in self.tracks for p in (t.strip, t.timeline)]

    def set_models(self, labels: list[list[str]], names: list[str]) -> None:
        """One strip and timeline per model (one model, or two when comparing)."""
        for track in self.tracks:
            for item in (track.strip, track.timeline, track.timeline.key):
                if item.scene() is not None:
                    self.removeItem(item)
        if self.ruler.scene() is not None:
            self.removeItem(self.ruler)
        rows = self.ci.layout
        for r in range(2, rows.rowCount()):  # sizes kept from another number of models
            rows.setRowMinimumHeight(r, 0)
            rows.setRowMaximumHeight(r, 1e6)
            rows.setRowStretchFactor(r, 0)
        self.tracks = [ModelTrack(lab, name) for lab, name in zip(labels, names)]
        for i, track in enumerate(self.tracks):
            row = 2 + 2 * i
            self.addItem(track.strip, row=row, col=0)
            self.addItem(track.timeline, row=row + 1, col=0)
            self.ci.layout.setRowFixedHeight(row, 22)
            self.ci.layout.setRowStretchFactor(row + 1, 3)
        # One legend for every model, beside the timelines: the first model's labels, then any
        # other's it lacks.
        key = self.tracks[0].timeline.key
        for i, track in enumerate(self.tracks[1:], start=1):
            # unused, but in the scene (a legend outside one crashed Qt when collected): beside the
            # first strip, a cell nothing else takes (the legend below spans the timelines' rows)
            self.addItem(track.timeline.key, row=2, col=1)
            track.timeline.key.clear()
            track.timeline.key.hide()
            for k in track.timeline.labels:
                if k not in self.tracks[0].timeline.labels:
                    key.addItem(track.timeline.lines[k], k)
        self.addItem(key, row=3, col=1, rowspan=2 * len(self.tracks) - 1)
        ruler_row = 2 + 2 * len(self.tracks)
        self.addItem(self.ruler, row=ruler_row, col=0)
        self.ci.layout.setRowFixedHeight(ruler_row, RulerPlot.HEIGHT_PX)
        plots = self.plots
        for p in plots[1:] + [self.ruler]:
            p.setXLink(plots[0])
        for p in plots:  # one time axis, the ruler's, under them all
            p.hideAxis("bottom")
        for p in plots:  # the waveform and spectrogram stay: a cursor left on them showed on the next file
            for line in self.cursors:
                if line in p.items:
                    p.removeItem(line)
        self.cursors = []
        for p in plots:
            line = pg.InfiniteLine(0, angle=90, pen=pg.mkPen("r", width=1))
            line.setVisible(False)
            p.addItem(line)
            self.cursors.append(line)
        if self.live_seconds:
            self.set_span(-self.live_seconds, 0.0)

    def set_span(self, start: float, end: float) -> None:
        self.waveform.setXRange(start, max(end, start + 0.1), padding=0)

    def set_cursor(self, t: float | None) -> None:
        for c in self.cursors:
            c.setVisible(t is not None)
            if t is not None:
                c.setValue(t)
