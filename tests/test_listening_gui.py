"""The listening-test tab driven like a person at the keyboard, with real playback through a
private PulseAudio (its null sink), on Qt's offscreen platform."""

import os
import random

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import make_bundle, make_ravdess_corpus, speechlike, write_audio  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from serapp.gui.main_window import MainWindow  # noqa: E402
from serapp.gui.plots import configure_pyqtgraph  # noqa: E402
from serapp.listening.answers import COLUMNS, read_answers  # noqa: E402

LABELS = ["happy", "sad", "angry"]


@pytest.fixture
def corpus_dir(tmp_path):
    root = make_ravdess_corpus(tmp_path / "corpus", actors=(1, 2), labels=("happy", "angry"), reps=2, seconds=0.25)
    for k, clip in enumerate(sorted(root.rglob("*.wav"))):  # a voice the speech gate hears, so the model reads it
        write_audio(clip, speechlike(0.5, seed=k))
    # The only "sad" clip is broken: the test must record it as skipped, with the reason.
    (root / "Actor_01" / "03-01-04-01-01-01-01.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    return root


@pytest.fixture
def window(qtbot, tmp_path, virtual_mic):
    configure_pyqtgraph()
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(str(make_bundle(tmp_path / "m.safetensors", window_s=0.5)[0]), "cpu", settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.load_model_async()
    yield w
    w.close()


def _set_up(view, corpus_dir, answers, practice):
    view.setup.rater.setText("=ann")  # a name a spreadsheet would run as a formula
    view.setup.corpus_edit.setText(str(corpus_dir))
    assert view.setup.load_corpus()
    assert list(view.setup.checks) == LABELS
    view.setup.n_clips.setValue(7)
    view.setup.seed.setValue(4)
    view.setup.practice.setValue(practice)
    view.setup.answer_file.setText(str(answers))


def _rate(qtbot, view, rng, expected, replay=False):
    """Answer the clip on screen with the keyboard; returns False when the test has ended."""
    qtbot.waitUntil(lambda: view.record is None or view.first_end is not None, timeout=15000)
    if view.record is None:
        return False
    page = view.trial
    assert not page.progress.text().startswith("Practice") or view.in_practice
    replays = 0
    if replay:
        qtbot.keyClick(page, Qt.Key.Key_Space)  # replay (counted), answer while it plays
        replays = 1
    clip = view.session.clip(view.record)
    truth = view.record.label
    if rng.random() < 0.2 and not view.in_practice:
        qtbot.keyClick(page, Qt.Key.Key_S)
        expected.append((clip, truth, "", 0, replays, 1, "skipped by rater"))
        return True
    chosen = truth if rng.random() < 0.6 else rng.choice(page.labels)
    in_practice = view.in_practice
    qtbot.keyClick(page, str(page.labels.index(chosen) + 1))
    if in_practice:
        assert ("correct" in page.feedback.text()) == (chosen == truth)
    else:
        expected.append((clip, truth, chosen, int(chosen == truth), replays, 0, ""))
    return True


def test_a_rater_with_the_keyboard_quits_resumes_and_sees_the_results(qtbot, window, corpus_dir, tmp_path):
    view = window.listening
    window.tabs.setCurrentWidget(view)
    answers = tmp_path / "out" / "ann.csv"
    _set_up(view, corpus_dir, answers, practice=1)
    assert view.start()
    assert view.trial.labels == LABELS and view.in_practice
    rng = random.Random(0)
    expected = []
    # Nothing can be answered before the first playback has ended.
    qtbot.keyClick(view.trial, "1")
    assert view.in_practice and len(view.practice) == 1 and view.trial.feedback.text() == ""
    assert _rate(qtbot, view, rng, expected)  # the practice clip: feedback, nothing written
    assert "practice over" in view.trial.feedback.text()
    assert all("cannot read audio" in r.skip_reason for r in (read_answers(answers) if answers.exists() else []))
    for i in range(3):
        assert _rate(qtbot, view, rng, expected, replay=(i == 1))
    assert window.source is None  # Space replayed the clip; it did not start the microphone
    # Stop half-way (Esc): everything answered is on disk, the results page shows it.
    qtbot.keyClick(view.trial, Qt.Key.Key_Escape)
    assert view.stack.currentWidget() is view.results
    written = read_answers(answers)
    assert len(written) >= 3  # the broken clip may have been met and skipped on the way

    # Resume: same rater, corpus and emotions continue with the clips not yet answered.
    view.stack.setCurrentWidget(view.setup)
    qtbot.keyClick(view.setup.rater, Qt.Key.Key_Return)  # Enter starts the test
    assert view.stack.currentWidget() is view.trial
    assert any("resuming" in m for m in window.messages)
    assert not view.in_practice
    while _rate(qtbot, view, rng, expected):
        pass
    assert view.stack.currentWidget() is view.results

    rows = read_answers(answers)
    with open(answers, encoding="utf-8") as f:
        assert f.readline().strip() == ",".join(COLUMNS)
    assert len(rows) == 7 and len({r.clip for r in rows}) == 7 and len({r.session_id for r in rows}) == 1
    broken = [r for r in rows if "cannot read audio" in r.skip_reason]
    assert len(broken) == 1 and broken[0].skipped == 1 and broken[0].true_label == "sad"
    rated = [(r.clip, r.true_label, r.chosen_label, r.correct, r.replays, r.skipped, r.skip_reason)
             for r in rows if r is not broken[0]]
    assert rated == expected  # row for row, in the order answered
    for r in rows:
        assert r.rater == "=ann" and r.label_set == "happy|sad|angry" and r.corpus == str(corpus_dir.resolve())
        if not r.skipped:
            assert 0 <= r.response_ms < 15000
    with open(answers, encoding="utf-8") as f:
        assert "'=ann" in f.read()  # escaped in the file, exact when read

    # Results: the rater's accuracy, the confusion plot saved as PNG, the model beside people.
    n_ok = sum(r.correct for r in rows)
    n = sum(1 - r.skipped for r in rows)
    assert f"accuracy <b>{n_ok / n:.1%}</b>" in view.results.summary.text()
    png = view.results.save_png(str(tmp_path / "confusion.png"))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    qtbot.waitUntil(lambda: window.predictor is not None, timeout=20000)
    view.results.model_button.click()
    qtbot.waitUntil(lambda: "model" in (view.results.report or {}), timeout=20000)
    assert view.results.report["model"]["n"] == n
    assert "same label choices" in view.results.notes.text()
    table = view.results.table
    headers = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert headers == ["who", "answered", "skipped", "accuracy", "UA", "happy", "sad", "angry"]  # full names
    assert table.item(table.rowCount() - 1, 0).text().startswith("model")


def test_an_answer_that_cannot_be_saved_is_said_and_the_clip_stays(qtbot, window, corpus_dir, tmp_path):
    view = window.listening
    (tmp_path / "not-a-folder").write_text("x")
    _set_up(view, corpus_dir, tmp_path / "not-a-folder" / "ann.csv", practice=0)
    view.setup.checks["sad"].setChecked(False)  # no broken clip: the first clip plays, no skip row is tried first
    assert view.start()
    qtbot.waitUntil(lambda: view.first_end is not None, timeout=60000)  # the first clip has played
    clip = view.record
    assert clip is not None and not any("cannot save" in m for m in window.messages)
    qtbot.keyClick(view.trial, "1")  # the answer cannot be saved
    assert view.record is clip and view.session.answered == 0
    assert any("not-a-folder/ann.csv: cannot save the answer" in m for m in window.messages)
    assert view.stack.currentWidget() is view.trial  # nothing lost, nothing crashed: the test waits


def test_the_results_page_fills_every_cell_shows_only_tested_classes_and_keeps_its_key_off_the_bars(qtbot, tmp_path):
    """Two raters, one of whom never heard a sad clip; neutral was offered but no clip was
    neutral: every per-class cell is a figure or "–", neutral has no column, the key sits beside
    the bars. The set-up page names every corpus it reads, and says where the emotions appear."""
    from serapp.gui.listening_results import ResultsPage
    from serapp.listening.answers import Answer
    from serapp.listening.report import build_report

    def answer(rater, clip, truth, chosen):
        return Answer(session_id="s", rater=rater, timestamp_utc="2026-12-03T10:00:00.000+00:00", corpus="/c",
                      clip=clip, true_label=truth, chosen_label=chosen, correct=int(truth == chosen), response_ms=900,
                      replays=0, skipped=0, skip_reason="", label_set="neutral|happy|sad|angry", app_version="0")

    answers = [answer("ann", "a.wav", "happy", "happy"), answer("ann", "b.wav", "sad", "sad"),
               answer("ann", "c.wav", "angry", "neutral"), answer("bob", "a.wav", "happy", "sad"),
               answer("bob", "c.wav", "angry", "angry")]
    page = ResultsPage()
    qtbot.addWidget(page)
    page.resize(1000, 600)
    page.show()
    page.show_report(build_report(answers), [])
    QtWidgets.QApplication.processEvents()
    table = page.table
    headers = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert headers == ["who", "answered", "skipped", "accuracy", "UA", "happy", "sad", "angry"]  # no neutral column
    cells = {(table.item(i, 0).text(), headers[j]): table.item(i, j).text()
             for i in range(table.rowCount()) for j in range(5, table.columnCount())}
    assert all(text for text in cells.values())
    assert cells[("bob", "sad")] == "–" and cells[("bob", "happy")] == "0.0%" and cells[("ann", "sad")] == "100.0%"
    rows = [text for _, text in page.confusion.getAxis("left")._tickLevels[0]]
    assert rows == ["happy", "sad", "angry"]  # no row for neutral, which was only a choice
    assert [text for _, text in page.confusion.getAxis("bottom")._tickLevels[0]] == ["neutral", "happy", "sad", "angry"]
    bars = page.bars.getPlotItem().vb.sceneBoundingRect()
    assert not page.bars.legend.sceneBoundingRect().intersects(bars)
    assert page.bars.sceneRect().contains(page.bars.legend.sceneBoundingRect())


def test_the_set_up_names_every_corpus_and_a_message_stays_with_its_tab(qtbot, window):
    from serapp.corpus_schemes import CORPUS_TITLES, NAMED_PARSERS

    setup = window.listening.setup
    for name in NAMED_PARSERS:
        if name != "folders":
            assert CORPUS_TITLES[name] in setup.corpus_edit.placeholderText()
    setup.corpus_edit.setText("")
    setup._set_labels([])
    assert setup.labels_hint.isVisibleTo(setup) and "emotions appear here" in setup.labels_hint.text()
    setup._set_labels(["happy", "sad"])
    assert not setup.labels_hint.isVisibleTo(setup)
    window.tabs.setCurrentWidget(window.live)
    window.notify("a message about the microphone")
    assert window.banner.isVisible()
    window.tabs.setCurrentWidget(window.listening)
    assert not window.banner.isVisible() and "a message about the microphone" in window.messages
