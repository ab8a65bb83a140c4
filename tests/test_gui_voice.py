"""Adapting to a voice in the app, through its real widgets: the Voice dialog's guided take and
its checks, profiles made, chosen, renamed, deleted and refused for another model; live
adaptation and "Reset voice" on audio through the virtual microphone."""

import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import (  # noqa: E402
    WHISPER_FE,
    speechlike,
    tiny_whisper_folder,
    tiny_whisper_model,
)
from PySide6 import QtCore, QtWidgets  # noqa: E402

from serapp.analysis import adapt_to_file, make_gate  # noqa: E402
from serapp.audio.sources import FileSource  # noqa: E402
from serapp.bundle import BundleMeta, save_bundle  # noqa: E402
from serapp.gui.main_window import MainWindow  # noqa: E402
from serapp.gui.plots import configure_pyqtgraph  # noqa: E402
from serapp.profiles import speech_heard  # noqa: E402
from serapp.predictor import load_model  # noqa: E402
from serapp.profiles import from_voice  # noqa: E402
from serapp.settings import AnalysisSettings  # noqa: E402

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture
def window(qtbot, tmp_path):
    configure_pyqtgraph()
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow("default", "cpu", settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.load_model_async()
    qtbot.waitUntil(lambda: w.predictor is not None, timeout=30000)
    yield w
    w.close()


def _take(qtbot, dialog, src, audio):
    """Record `audio` through the dialog: Record, the audio arrives, Stop, the check's verdict."""
    qtbot.mouseClick(dialog.record_button, LEFT)
    assert dialog.record_button.text() == "Stop"
    src.ring.write(audio)
    qtbot.mouseClick(dialog.record_button, LEFT)
    qtbot.waitUntil(lambda: "checking" not in dialog.status.text(), timeout=20000)
    return dialog.status.text()


def _select(dialog, name):
    for i in range(dialog.list.count()):
        if dialog.list.item(i).data(QtCore.Qt.ItemDataRole.UserRole) == name:
            dialog.list.setCurrentRow(i)
            return
    raise AssertionError(f"{name} is not listed")


def test_the_voice_dialog_checks_a_take_saves_a_profile_and_manages_it(qtbot, window, tmp_path):
    src = FileSource(samples=np.zeros(1, np.float32), sample_rate=16000, realtime=False)
    window.attach_source(src)  # audio is written into its ring by the test, as a device would
    window.open_voice_dialog()
    dialog = window.voice_dialog
    assert dialog.isVisible() and not dialog.save_button.isEnabled()

    assert "only silence" in _take(qtbot, dialog, src, np.zeros(16000 * 12, np.float32))
    assert "clipped" in _take(qtbot, dialog, src, np.clip(20 * speechlike(12.0), -1, 1))
    assert "only 3 s of speech" in _take(qtbot, dialog, src, np.concatenate([speechlike(3.0), np.zeros(16000 * 6)]))
    assert not dialog.save_button.isEnabled()
    take = speechlike(14.0, seed=3)
    assert "a good take of 14 s" in _take(qtbot, dialog, src, take)
    qtbot.keyClicks(dialog.name_edit, "Ann")
    assert dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.save_button, LEFT)
    qtbot.waitUntil(lambda: window.active_profile is not None, timeout=30000)
    store = window.profiles
    assert window.active_profile.name == "Ann" and store.path("Ann").is_file() and store.take("Ann").is_file()
    # the profile is the one `serapp profile create Ann Ann.wav` makes: the take's speech windows
    expected = window.predictor.new_voice()
    adapt_to_file(store.take("Ann"), window.predictor, expected, AnalysisSettings(),
                  make_gate(AnalysisSettings(), 16000))
    assert window.active_profile.windows == expected.windows
    assert np.array_equal(window.active_profile.sum, np.array(expected.to_dict()["sum"]))
    # the live readout says which profile it reads with
    src.ring.write(speechlike(4.0, seed=8))
    qtbot.waitUntil(lambda: "voice profile Ann" in window.live.readout.note.text(), timeout=20000)
    # the profile's speech as the dialog said it when saved, then what the live view heard since
    saved = speech_heard(window.active_profile.seconds)
    assert f"saved ({saved})" in dialog.status.text()
    note = window.live.readout.note.full_text
    qtbot.waitUntil(lambda: note().endswith(" live"), timeout=20000)
    assert note().startswith(f"voice profile Ann ({saved}) + ") and "of voice" not in note()

    _select(dialog, "Ann")
    qtbot.keyClicks(dialog.rename_edit, "Ann K")
    qtbot.mouseClick(dialog.rename_button, LEFT)
    assert window.active_profile.name == "Ann K" and store.take("Ann K").is_file() and not store.path("Ann").exists()
    assert dialog.list.count() == 1 and dialog.list.item(0).text().startswith("Ann K")

    # a profile made for a model with other features is listed, and refused naming both models
    tiny = tiny_whisper_model(tiny_whisper_folder(tmp_path / "enc")).eval()
    other = save_bundle(tmp_path / "other.safetensors", tiny, BundleMeta(
        architecture="speech_encoder", labels=["neutral", "happy", "sad", "angry"], frontend=WHISPER_FE, window_s=1.0))
    other_predictor = load_model(other, device="cpu")
    voice = other_predictor.new_voice()
    voice.update(np.ones((3, *voice.prior_mean.shape)))
    store.save(from_voice("Bob", voice, other_predictor))
    dialog.refresh()
    _select(dialog, "Bob")
    qtbot.mouseClick(dialog.use_button, LEFT)
    assert window.active_profile.name == "Ann K"
    assert "other.safetensors" in window.messages[-1] and "default.safetensors" in window.messages[-1]

    _select(dialog, "Ann K")
    qtbot.mouseClick(dialog.delete_button, LEFT)  # the first click asks
    assert dialog.delete_button.text() == "Delete Ann K and its recording?" and store.path("Ann K").exists()
    qtbot.mouseClick(dialog.delete_button, LEFT)
    assert window.active_profile is None and not store.path("Ann K").exists() and not store.take("Ann K").exists()
    assert [dialog.list.item(i).data(QtCore.Qt.ItemDataRole.UserRole) for i in range(dialog.list.count())] == ["Bob"]
    qtbot.mouseClick(dialog.none_button, LEFT)
    assert "no voice profile" in window.messages[-1]


def test_the_chosen_profile_is_read_with_in_the_file_view(qtbot, window, tmp_path):
    from helpers import write_audio

    clip = write_audio(tmp_path / "clip.wav", speechlike(4.0, seed=4))
    window.open_file(str(clip))
    qtbot.waitUntil(lambda: window.file_view.analysis is not None, timeout=30000)
    cold = window.file_view.analysis.overall.probabilities
    assert window.file_view.readouts[0].note.text().startswith("cold start")
    voice = window.predictor.new_voice()
    voice.update(np.random.default_rng(1).normal(size=(8, *voice.prior_mean.shape)))
    window.use_profile(window.profiles.load(window.profiles.save(from_voice("Cy", voice, window.predictor))))
    window.file_view.analysis = None
    window.open_file(str(clip))
    qtbot.waitUntil(lambda: window.file_view.analysis is not None, timeout=30000)
    assert window.file_view.readouts[0].note.text() == "voice profile Cy"
    assert window.file_view.analysis.overall.probabilities != cold


def test_live_adaptation_and_reset_through_the_virtual_microphone(qtbot, window, virtual_mic):
    assert window.start_capture()
    note = window.live.readout.note
    virtual_mic.until_heard(lambda: window.source.ring.written > 0)
    quiet = np.zeros(24000, np.float32)  # the virtual microphone delivers only what is written into it
    virtual_mic.write(quiet)
    qtbot.waitUntil(lambda: note.text() == "cold start: adapting as you speak", timeout=20000)
    virtual_mic.write(speechlike(5.0, seed=11))
    qtbot.waitUntil(lambda: note.text().startswith("adapting:") and float(note.text().split()[1]) >= 1, timeout=30000)
    virtual_mic.write(np.zeros(16000 * 4, np.float32))  # silence longer than the window: no speech in it
    qtbot.waitUntil(lambda: window.live.last_reading is not None and not window.live.last_reading.speech
                    and window.live.last_reading.window_s >= 3, timeout=20000)
    assert note.text().startswith("adapting:")  # silence keeps what was learnt
    reset = window.findChild(QtWidgets.QToolBar, "main-toolbar").widgetForAction(window.reset_voice_action)
    qtbot.mouseClick(reset, LEFT)
    assert "voice reset" in window.messages[-1]
    # the voice heard is forgotten: the cold start again, then a new voice is learnt from nothing
    virtual_mic.write(quiet)
    qtbot.waitUntil(lambda: note.text() == "cold start: adapting as you speak", timeout=20000)
    virtual_mic.write(speechlike(3.0, seed=12))
    qtbot.waitUntil(lambda: note.text().startswith("adapting:"), timeout=30000)
    window.stop_capture()


def test_enter_in_the_profile_name_saves_the_take_and_never_starts_another(qtbot, window):
    """Issue 36 item 7: Enter in the name field started a new 20 s take (the good one was lost)."""
    src = FileSource(samples=np.zeros(1, np.float32), sample_rate=16000, realtime=False)
    window.attach_source(src)
    window.open_voice_dialog()
    dialog = window.voice_dialog
    assert "a good take of 14 s" in _take(qtbot, dialog, src, speechlike(14.0, seed=3))
    qtbot.keyClick(dialog.name_edit, QtCore.Qt.Key.Key_Return)  # no name yet: nothing happens
    assert dialog.record_button.text() == "Record" and dialog.take is not None
    qtbot.keyClicks(dialog.name_edit, "Dee")
    qtbot.keyClick(dialog.name_edit, QtCore.Qt.Key.Key_Return)  # a name: Enter saves
    assert dialog.record_button.text() == "Record"
    qtbot.waitUntil(lambda: window.active_profile is not None, timeout=30000)
    assert window.active_profile.name == "Dee"
    qtbot.keyClick(dialog.rename_edit, QtCore.Qt.Key.Key_Return)  # nor in the rename field
    assert dialog.record_button.text() == "Record"
