"""The listening test's results page with eight emotions at the app's usual widths (issue 36
item 8): the confusion matrices' "chosen" labels never run into each other, and the table's
last column is as wide as its contents. Real widgets, Qt offscreen."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtGui, QtWidgets  # noqa: E402
from qt_helpers import open_window  # noqa: E402

from serapp.labels import EMOTIONS  # noqa: E402
from serapp.listening.answers import COLUMNS  # noqa: E402
from serapp.listening.report import build_report, load_answer_files  # noqa: E402


def _answer_file(path):
    labels = list(EMOTIONS)
    lines = [",".join(COLUMNS)]
    for i in range(64):
        truth, chosen = labels[i % 8], labels[(i * 3) % 8]
        lines.append(f"s1,ann,2026-12-03T10:00:00.000+00:00,/c,clip{i}.wav,{truth},{chosen},{int(truth == chosen)},"
                     f"800,0,0,,{'|'.join(labels)},0.1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tick_texts(axis):
    """What the axis draws: (rectangle, text) per tick label, as its paint() lays them out."""
    image = QtGui.QImage(10, 10, QtGui.QImage.Format.Format_ARGB32)
    painter = QtGui.QPainter(image)
    if axis.style["tickFont"]:
        painter.setFont(axis.style["tickFont"])
    _, _, texts = axis.generateDrawSpecs(painter)
    painter.end()
    return [(rect, text) for rect, _, text in texts]


@pytest.mark.parametrize("width", [1280, 1400])
def test_eight_emotions_chosen_labels_never_run_together_and_the_last_column_is_not_stretched(
        qtbot, tmp_path, width):
    w = open_window(qtbot, tmp_path)
    w.resize(width, 800)
    w.tabs.setCurrentWidget(w.listening)
    files = [str(_answer_file(tmp_path / "ann.csv"))]
    report = build_report(load_answer_files(files, []))
    pooled = report["pooled"]
    report["model"] = {"bundle": "m.safetensors", "n": pooled["n"], "accuracy": pooled["accuracy"],
                       "ua": pooled["ua"], "per_class_recall": pooled["per_class_recall"],
                       "labels": pooled["labels"], "confusion": pooled["confusion"],
                       "humans_same_clips": {"accuracy": 0.5, "ua": 0.5}, "speakers_seen_in_training": 0}
    page = w.listening.results
    page.show_report(report, files, "")
    w.listening.stack.setCurrentWidget(page)
    QtWidgets.QApplication.processEvents()
    for plot in (page.confusion, page.model_confusion):
        texts = _tick_texts(plot.getAxis("bottom"))
        assert len(texts) == 8, [t for _, t in texts]  # every column named
        rects = sorted((r for r, _ in texts), key=lambda r: r.left())
        assert all(a.right() < b.left() for a, b in zip(rects, rects[1:])), [t for _, t in texts]
    table = page.table
    last = table.columnCount() - 1
    assert not table.horizontalHeader().stretchLastSection()
    assert table.columnWidth(last) <= max(table.sizeHintForColumn(last),
                                          table.horizontalHeader().sectionSizeHint(last)) + 2
    w.close()
