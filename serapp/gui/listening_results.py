"""The listening test's results page: people and the model side by side.

A table (raters, everyone pooled, the model on the same clips; full label names), each
class's recall as grouped bars (people beside the model), and the two confusion matrices
next to each other. The text report stays available to `serapp bench-report`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from serapp.errors import SerappError
from serapp.gui.plots import text_color, theme_plot
from serapp.labels import emotion_color

PEOPLE, MODEL = "#4a78c2", "#d9822b"


class ConfusionPlot(pg.PlotWidget):
    """Rows: true label, columns: chosen label; colour is the row share, text the count."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent=parent, background=None)
        item = self.getPlotItem()
        theme_plot(item)
        item.getAxis("left").setWidth(80)
        item.setTitle(title)
        self.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(pg.colormap.get("viridis").getLookupTable(nPts=256))
        self.addItem(self.image)
        self.texts: list[pg.TextItem] = []
        self.setLabel("left", "true")
        self.setLabel("bottom", "chosen")
        item.invertY(True)
        self.labels: list[str] = []
        for changed in (item.vb.sigResized, item.vb.sigRangeChanged):  # a column's width in pixels changes
            changed.connect(lambda *_: self._fit_columns())

    def _fit_columns(self) -> None:
        """The chosen labels in full where a column has room for them, else their shortest
        distinct beginnings (eight names ran into each other at 1280 px); full names in the tooltip."""
        vb = self.getPlotItem().vb
        span = vb.viewRange()[0][1] - vb.viewRange()[0][0]
        if not self.labels or span <= 0:
            return
        column_px = vb.width() / span
        metrics = QtGui.QFontMetrics(self.getAxis("bottom").style["tickFont"] or self.font())
        widest = max(metrics.horizontalAdvance(k) for k in self.labels)
        names = self.labels if widest + 6 <= column_px else short_names(self.labels)
        self.getAxis("bottom").setTicks([[(k + 0.5, name) for k, name in enumerate(names)]])
        self.setToolTip("chosen: " + ", ".join(self.labels) if names != self.labels else "")

    def show_matrix(self, labels: list[str], matrix, rows: list[str] | None = None) -> None:
        """`matrix` over `labels` both ways; only the `rows` (true labels) asked are drawn: a
        class the test had no clip of has an empty row."""
        full = np.asarray(matrix, dtype=np.float64).reshape(len(labels), len(labels))
        rows = [k for k in (rows or labels) if k in labels]
        m = full[[labels.index(k) for k in rows]]
        share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        self.image.setImage(np.ascontiguousarray(np.round(share * 255).astype(np.uint8)), levels=(0, 255))
        for t in self.texts:
            self.removeItem(t)
        self.texts = []
        for i in range(len(rows)):
            for j in range(len(labels)):
                t = pg.TextItem(str(int(m[i, j])), color="w" if share[i, j] < 0.6 else "k", anchor=(0.5, 0.5))
                t.setPos(j + 0.5, i + 0.5)
                self.addItem(t)
                self.texts.append(t)
        self.getAxis("left").setTicks([[(k + 0.5, lab) for k, lab in enumerate(rows)]])
        self.setRange(xRange=(0, len(labels)), yRange=(0, len(rows)), padding=0.02)
        self.labels = list(labels)
        self._fit_columns()


def short_names(labels: list[str], least: int = 3) -> list[str]:
    """Each label's shortest beginning (at least `least` letters) that no other label shares."""
    out = []
    for k in labels:
        n = least
        while n < len(k) and any(o != k and o.startswith(k[:n]) for o in labels):
            n += 1
        out.append(k[:n])
    return out


class RecallBars(pg.PlotWidget):
    """Each class's recall: people's bar beside the model's."""

    def __init__(self, parent=None):
        super().__init__(parent=parent, background=None)
        theme_plot(self.getPlotItem())
        self.setYRange(0, 1.05, padding=0)
        self.setLabel("left", "recall")
        # The key in a margin right of the bars (an empty right axis holds the room), never over them
        item = self.getPlotItem()
        item.showAxis("right")
        margin = item.getAxis("right")
        margin.setStyle(showValues=False)
        margin.setPen(pg.mkPen(None))
        self.legend = pg.LegendItem(labelTextSize="9pt", labelTextColor=text_color(), offset=None)
        self.legend.setParentItem(item)
        self.legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-2, 8))
        self.people = pg.BarGraphItem(x=[], height=[], width=0.38, brush=PEOPLE, pen=pg.mkPen(None), name="people")
        self.model = pg.BarGraphItem(x=[], height=[], width=0.38, brush=MODEL, pen=pg.mkPen(None), name="model")
        self.addItem(self.people)
        self.addItem(self.model)
        self.legend.addItem(self.people, "people")
        self.legend.addItem(self.model, "model")
        margin.setWidth(int(self.legend.boundingRect().width()) + 6)

    def show_recall(self, labels: list[str], people: dict, model: dict | None) -> None:
        x = np.arange(len(labels), dtype=float)
        self.people.setOpts(x=x - 0.2, height=[people.get(k) or 0.0 for k in labels])
        self.model.setOpts(x=x + 0.2, height=[(model or {}).get(k) or 0.0 for k in labels])
        self.model.setVisible(model is not None)
        self.getAxis("bottom").setTicks([[(float(i), lab) for i, lab in enumerate(labels)]])
        self.setXRange(-0.6, len(labels) - 0.4, padding=0)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


class ResultsPage(QtWidgets.QWidget):
    """Scores of the answer file(s): the table, recall bars and confusion matrices."""

    model_requested = QtCore.Signal()
    new_test_requested = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.summary = QtWidgets.QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QtWidgets.QTableWidget()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.notes = QtWidgets.QLabel("")
        self.notes.setWordWrap(True)
        self.bars = RecallBars()
        self.confusion = ConfusionPlot("people")
        self.model_confusion = ConfusionPlot("model, same clips")
        self.model_button = QtWidgets.QPushButton("Score the model on these clips")
        self.model_button.clicked.connect(self.model_requested.emit)
        self.save_button = QtWidgets.QPushButton("Save confusion PNG…")
        self.save_button.clicked.connect(lambda: self.save_png())
        again = QtWidgets.QPushButton("New test")
        again.clicked.connect(self.new_test_requested.emit)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.model_button, self.save_button, again):
            buttons.addWidget(b)
        buttons.addStretch(1)
        charts = QtWidgets.QHBoxLayout()
        charts.addWidget(self.bars, 3)
        charts.addWidget(self.confusion, 2)
        charts.addWidget(self.model_confusion, 2)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.notes)
        layout.addLayout(charts, 3)
        layout.addLayout(buttons)
        self.report: dict | None = None
        self.files: list[str] = []

    def show_report(self, report: dict, files: list[str], headline: str = "") -> None:
        self.report, self.files = report, list(files)
        self.summary.setText(headline)
        pooled = report["pooled"]
        # the classes the test had clips of: a label only ever offered as a choice has no recall
        labels = pooled.get("tested", pooled["labels"])
        model = report.get("model")
        rows = [(name, r["n"], r["skipped"], r["accuracy"], r["ua"], r.get("per_class_recall") or {})
                for name, r in report["raters"].items()]
        rows.append(("everyone", pooled["n"], pooled["skipped"], pooled["accuracy"], pooled["ua"],
                     pooled["per_class_recall"]))
        if model is not None:
            rows.append((f"model ({model['bundle']})", model["n"], None, model["accuracy"], model["ua"],
                         model["per_class_recall"]))
        headers = ["who", "answered", "skipped", "accuracy", "UA", *labels]
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(headers)
        for i, (who, n, skipped, acc, ua, recall) in enumerate(rows):
            cells = [who, str(n), "" if skipped is None else str(skipped), _pct(acc), _pct(ua)]
            cells += [_pct(recall.get(k)) for k in labels]  # "–": this rater heard no clip of it
            for j, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                if j >= 5:
                    item.setForeground(QtGui.QColor(emotion_color(labels[j - 5])))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()  # each column its contents' width: the last no wider
        notes = []
        if report["kappa"] is None:
            notes.append(f"Fleiss' kappa: {report.get('kappa_why') or 'not available'}")
        else:
            d = report["kappa_detail"]
            notes.append(f"Fleiss' kappa {report['kappa']:.3f} over {d['clips']} clips rated by {d['raters']} raters")
        if model is not None:
            h = model["humans_same_clips"]
            notes.append(f"the model chose among the same label choices on the same {model['n']} clips "
                         f"(people there: accuracy {_pct(h['accuracy'])}, UA {_pct(h['ua'])})")
            if model["speakers_seen_in_training"]:
                notes.append(f"{model['speakers_seen_in_training']} of these clips are by speakers the model was "
                             "trained on: its score here is optimistic")
        self.notes.setText("; ".join(notes))
        self.bars.show_recall(labels, pooled["per_class_recall"], model["per_class_recall"] if model else None)
        self.confusion.show_matrix(pooled["labels"], pooled["confusion"], labels)
        self.model_confusion.setVisible(model is not None)
        if model is not None:
            self.model_confusion.show_matrix(model["labels"], model["confusion"], labels)

    def save_png(self, path: str | None = None) -> str | None:
        if path is None:
            base = Path(self.files[0]).with_suffix(".confusion.png") if self.files else Path("confusion.png")
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save confusion matrix", str(base), "PNG (*.png)")
            if not path:
                return None
        if not self.confusion.grab().save(path):
            raise SerappError(f"{path}: cannot save the image")
        return path
