"""What the app's readout shows (issue 35 in the app, issue 36 item 11): the basic four by default
or all emotions, one choice away and remembered; "not sure (A or B)" where a reading is below
the bundle's threshold, live, in the file view and in presentation mode. Qt offscreen, real widgets."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import make_bundle, speechlike, write_audio  # noqa: E402
from qt_helpers import open_window  # noqa: E402

from serapp.audio.sources import FileSource  # noqa: E402
from serapp.labels import EMOTIONS  # noqa: E402
from serapp.readout import BASIC  # noqa: E402


@pytest.fixture
def talk(tmp_path):
    return write_audio(tmp_path / "talk.wav", speechlike(4.0, seed=5))


def _speak(w):
    w.attach_source(FileSource(samples=speechlike(30.0, seed=1), sample_rate=16000, realtime=True, loop=True))
    w.source.start()


def _file_read(qtbot, w, talk):
    w.file_view.analysis = None
    w.open_file(str(talk))
    qtbot.waitUntil(lambda: w.file_view.analysis is not None, timeout=30000)
    return w.file_view


def test_the_basic_four_by_default_all_emotions_one_choice_away_and_remembered(qtbot, tmp_path, talk):
    bundle = make_bundle(tmp_path / "m.safetensors")[0]
    w = open_window(qtbot, tmp_path, bundle)
    assert w.emotion_combo.currentText() == "basic four"
    assert w.predictor.labels == list(BASIC) and w.live.readout.labels == list(BASIC)
    w.open_compare(str(make_bundle(tmp_path / "other.safetensors", seed=1)[0]))
    qtbot.waitUntil(lambda: w.compare_predictor is not None, timeout=30000)
    assert w.compare_predictor.labels == list(BASIC) and w.live.readouts[1].labels == list(BASIC)
    fv = _file_read(qtbot, w, talk)
    assert fv.analysis.labels == list(BASIC) and fv.readout.labels == list(BASIC)
    _speak(w)
    qtbot.waitUntil(lambda: w.live.last_reading is not None and w.live.last_reading.speech, timeout=20000)
    worker = w.live.worker

    w.emotion_combo.setCurrentIndex(w.emotion_combo.findData("all"))
    assert w.predictor.labels == list(EMOTIONS) and w.compare_predictor.labels == list(EMOTIONS)
    for r in w.live.readouts:  # the readout bars and the timeline legends re-set their labels
        assert r.labels == list(EMOTIONS)
    assert [t.timeline.labels for t in w.live.panels.tracks] == [list(EMOTIONS)] * 2
    w.tabs.setCurrentWidget(fv)  # the file on another tab is read again once it is looked at
    qtbot.waitUntil(lambda: w.file_view.analysis.labels == list(EMOTIONS), timeout=30000)
    assert fv.readout.labels == list(EMOTIONS) and fv.panels.tracks[0].timeline.labels == list(EMOTIONS)
    assert set(fv.analysis.overall.probabilities) == set(EMOTIONS)
    qtbot.waitUntil(lambda: set(w.live.last_reading.probabilities or ()) == set(EMOTIONS), timeout=20000)
    assert w.live.worker is worker  # the live model reads on: the voice it learnt stays
    w.stop_capture()
    w.close()

    again = open_window(qtbot, tmp_path, bundle)  # the same settings file: the choice is remembered
    assert again.emotion_combo.currentText() == "all emotions" and again.predictor.labels == list(EMOTIONS)
    again.close()


@pytest.mark.parametrize("threshold, sure", [(0.99, False), (0.0, True)])
def test_the_bundles_threshold_reaches_the_readout_live_in_the_file_view_and_presented(
        qtbot, tmp_path, talk, threshold, sure):
    bundle = make_bundle(tmp_path / "m.safetensors", readout={"basic": {"temperature": 1.0, "threshold": threshold}})[0]
    w = open_window(qtbot, tmp_path, bundle)
    fv = _file_read(qtbot, w, talk)
    overall = fv.analysis.overall
    assert overall.sure is sure
    if sure:
        shown = f"{overall.label}  {overall.probabilities[overall.label]:.0%}"
        assert fv.readout.top.text() == shown and f"overall: <b>{overall.label} " in fv.title.text()
    else:
        assert fv.readout.top.text().startswith("not sure (") and "overall: <b>not sure (" in fv.title.text()
    w.toggle_presentation()  # presenting the file
    assert w.presentation.word.text().startswith("not sure (") != sure
    w.toggle_presentation()

    w.tabs.setCurrentWidget(w.live)
    _speak(w)
    qtbot.waitUntil(lambda: w.live.last_reading is not None and w.live.last_reading.speech, timeout=20000)
    w.toggle_presentation()
    qtbot.waitUntil(lambda: w.live.readout.updates > 3, timeout=20000)
    reading = w.live.last_reading
    assert reading.sure is sure
    qtbot.waitUntil(lambda: w.presentation.word.text() != "…", timeout=20000)
    assert w.live.readout.top.text().startswith("not sure (") != sure
    assert w.presentation.word.text().startswith("not sure (") != sure
    assert (w.presentation.word.text() in BASIC) == sure
    w.toggle_presentation()
    w.stop_capture()
    w.close()


def test_presentation_says_how_to_leave_the_voice_read_with_and_draws_29_smaller_than_81(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    w.toggle_presentation()
    p = w.presentation
    assert p.hint.isVisibleTo(p) and "F11" in p.hint.text() and "Esc" in p.hint.text()
    p.show_reading({"happy": 0.81, "sad": 0.19})
    large = p.word.font().pixelSize()
    p.show_reading({"happy": 0.29, "sad": 0.27, "angry": 0.24, "neutral": 0.2})
    assert p.word.text() == "happy" and p.word.font().pixelSize() < 0.75 * large
    p.show_reading({"happy": 0.29, "sad": 0.27, "angry": 0.24, "neutral": 0.2}, sure=False)
    assert p.word.text() == "not sure (happy or sad)"
    w.toggle_presentation()
    w.close()
