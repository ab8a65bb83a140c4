"""Compare mode through the real widgets (issue 36, items 1-6): two readouts whole and aligned
with a voice profile in use, no layout conflict, the bundled models by name, a comparison added
from the Live tab stays there, the live voice learnt so far survives it, and it can be ended."""

import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import WHISPER_FE, make_bundle, speechlike, tiny_whisper_folder, tiny_whisper_model, write_audio  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402
from qt_helpers import open_window  # noqa: E402

from serapp.audio.sources import FileSource  # noqa: E402
from serapp.bundle import BundleMeta, bundled_model_path, save_bundle  # noqa: E402
from serapp.profiles import from_voice  # noqa: E402


@pytest.fixture
def adapting_bundle(tmp_path):
    """A tiny model that adapts to a voice (a Whisper-like encoder with speaker normalisation)."""
    model = tiny_whisper_model(tiny_whisper_folder(tmp_path / "enc")).eval()
    return save_bundle(tmp_path / "adapts.safetensors", model, BundleMeta(
        architecture="speech_encoder", labels=["neutral", "happy", "sad", "angry"], frontend=WHISPER_FE, window_s=1.0))


def _use_a_profile(w, name="Ann"):
    voice = w.predictor.new_voice()
    voice.update(np.random.default_rng(1).normal(size=(8, *voice.prior_mean.shape)))
    assert w.use_profile(w.profiles.load(w.profiles.save(from_voice(name, voice, w.predictor))))


def _compare(qtbot, w, path):
    w.open_compare(str(path))
    qtbot.waitUntil(lambda: w.compare_predictor is not None and w.live.comparing, timeout=20000)


def _live(w, seconds=30.0):
    w.attach_source(FileSource(samples=speechlike(seconds, seed=4), sample_rate=16000, realtime=True, loop=True))
    w.source.start()


def _compare_button(w):
    tb = w.findChild(QtWidgets.QToolBar, "main-toolbar")
    return tb.widgetForAction(w.compare_action)


def test_with_a_profile_both_readouts_are_whole_aligned_and_the_layout_has_no_conflict(qtbot, tmp_path,
                                                                                          adapting_bundle):
    warnings = []
    QtCore.qInstallMessageHandler(lambda mode, context, text: warnings.append(text))
    try:
        w = open_window(qtbot, tmp_path, bundle=adapting_bundle)
        _use_a_profile(w, "Annabel Lee-Fitzgerald")  # a long name: a long note
        _compare(qtbot, w, make_bundle(tmp_path / "other.safetensors", seed=5)[0])
        _live(w)
        readouts = w.live.readouts
        before = [r.updates for r in readouts]
        qtbot.waitUntil(lambda: all(r.updates >= b + 3 for r, b in zip(readouts, before))
                        and "Annabel" in readouts[0].note.full_text(), timeout=30000)
        QtWidgets.QApplication.processEvents()
        first, second = (r.plot.geometry() for r in readouts)
        assert second.width() >= 0.8 * first.width() and second.height() > 100, (first, second)
        # the bar panels start at the same height: each readout has its status line
        assert first.top() == second.top() and readouts[1].note.full_text()
        assert readouts[1].top.font().pointSizeF() == pytest.approx(readouts[0].top.font().pointSizeF(), rel=0.35)
        w.stop_capture()
    finally:
        QtCore.qInstallMessageHandler(None)
    assert not [t for t in warnings if "already taken" in t], warnings


def test_the_compared_model_says_how_it_reads_the_voice(qtbot, tmp_path, adapting_bundle):
    w = open_window(qtbot, tmp_path, bundle=adapting_bundle)
    _use_a_profile(w)
    _compare(qtbot, w, make_bundle(tmp_path / "other.safetensors", seed=5)[0])  # does not adapt
    assert "does not adapt" in w.live.readouts[1].note.full_text()
    _live(w)
    qtbot.waitUntil(lambda: w.live.readouts[1].updates > 2 and "Ann" in w.live.readouts[0].note.full_text(),
                    timeout=30000)
    assert "does not adapt" in w.live.readouts[1].note.full_text()
    w.stop_capture()


@pytest.mark.skipif(bundled_model_path("small") is None, reason="the bundled small model is not installed")
def test_compare_with_offers_the_bundled_models_by_name_and_can_end_the_comparison(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    menu = _compare_button(w).defaultAction().menu()
    texts = [a.text() for a in menu.actions()]
    assert "Bundled: small" in texts and "From a file…" in texts
    end = next(a for a in menu.actions() if a.text() == "End comparison")
    assert not end.isEnabled()  # nothing to end yet
    next(a for a in menu.actions() if a.text() == "Bundled: small").trigger()
    qtbot.waitUntil(lambda: w.compare_predictor is not None, timeout=20000)
    assert w.compare_predictor.path.name == "small.safetensors" and w.live.comparing
    _live(w)
    qtbot.waitUntil(lambda: w.live.workers[1] is not None and w.live.readouts[1].updates > 1, timeout=30000)
    primary = w.live.workers[0]
    assert end.isEnabled()
    end.trigger()
    assert w.compare_predictor is None and not w.live.comparing and w.live.workers[1] is None
    assert w.live.workers[0] is primary  # the model read on without a restart
    assert not w.live.readouts[1].isVisibleTo(w.live) and len(w.live.panels.tracks) == 1
    assert w.live.circumplex.models == 1
    assert not end.isEnabled() and w.messages[-1] == "comparison with small.safetensors ended"
    w.stop_capture()


def test_a_comparison_ended_leaves_the_file_view_with_one_model(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    _compare(qtbot, w, make_bundle(tmp_path / "other.safetensors", seed=5)[0])
    clip = write_audio(tmp_path / "talk.wav", speechlike(3.0, seed=2), 16000)
    w.open_file(str(clip))
    qtbot.waitUntil(lambda: w.file_view.compared is not None, timeout=30000)
    w.end_compare()
    fv = w.file_view
    assert fv.compared is None and len(fv.panels.tracks) == 1 and not fv.readouts[1].isVisibleTo(fv)
    assert "agree" not in fv.title.full_text()


def test_a_comparison_added_from_the_live_tab_stays_there_and_keeps_the_voice_learnt(qtbot, tmp_path,
                                                                                     adapting_bundle):
    w = open_window(qtbot, tmp_path, bundle=adapting_bundle)
    clip = write_audio(tmp_path / "talk.wav", speechlike(3.0, seed=2), 16000)
    w.open_file(str(clip))
    qtbot.waitUntil(lambda: w.file_view.analysis is not None, timeout=30000)
    shown = w.file_view.analysis
    w.tabs.setCurrentWidget(w.live)
    _live(w)
    qtbot.waitUntil(lambda: w.live.workers[0].analyzer.voice is not None
                    and w.live.workers[0].analyzer.voice.seconds >= 1.5, timeout=30000)
    worker, voice = w.live.workers[0], w.live.workers[0].analyzer.voice
    learnt = voice.seconds
    _compare(qtbot, w, make_bundle(tmp_path / "other.safetensors", seed=5)[0])
    assert w.tabs.currentWidget() is w.live  # no jump to the File tab...
    assert not w._tasks and w.file_view.analysis is shown  # ...and no analysis behind the user's back
    qtbot.waitUntil(lambda: w.live.readouts[1].updates > 1, timeout=30000)
    assert w.live.workers[0] is worker and worker.analyzer.voice is voice and voice.seconds >= learnt
    assert w.live.workers[1].analyzer.shared_scores  # the second reads the first's speech gate
    w.stop_capture()
    w.tabs.setCurrentWidget(w.file_view)  # the file view shows the comparison once looked at
    qtbot.waitUntil(lambda: w.file_view.compared is not None, timeout=30000)
