"""The app under faults and odd input, through the real parts: Qt offscreen, PortAudio into a
private PulseAudio (or into nothing at all), real threads, real files."""

import os
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import make_bundle, make_ravdess_corpus, speechlike, write_audio  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from qt_helpers import open_window  # noqa: E402

from serapp.audio.playback import ClipPlayer  # noqa: E402
from serapp.audio.sources import FileSource  # noqa: E402
from serapp.features import FrontEndConfig  # noqa: E402

_window = open_window


def _no_output(message: str) -> bool:
    """The plain cause: no output device, or (without PortAudio) what to install."""
    return "no audio output device found" in message or "PortAudio is not installed" in message


@pytest.fixture
def no_audio_output(tmp_path):
    """A machine whose PortAudio finds no device at all (no sound server, no card); without
    PortAudio itself the machine is such a machine already."""
    try:
        import sounddevice
    except OSError:  # no PortAudio: nothing to hide
        yield
        return
    keys = ("PULSE_SERVER", "XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(PULSE_SERVER="unix:" + str(tmp_path / "no-such-socket"), XDG_RUNTIME_DIR=str(tmp_path),
                      PULSE_RUNTIME_PATH=str(tmp_path / "pulse"))
    sounddevice._terminate()
    sounddevice._initialize()
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    sounddevice._terminate()
    sounddevice._initialize()


@pytest.fixture
def corpus_dir(tmp_path):
    return make_ravdess_corpus(tmp_path / "corpus", actors=(1, 2), labels=("happy", "angry"), reps=3, seconds=0.6)


def _set_up(view, corpus_dir, answers, practice):
    view.setup.rater.setText("ann")
    view.setup.corpus_edit.setText(str(corpus_dir))
    assert view.setup.load_corpus()
    view.setup.n_clips.setValue(4)
    view.setup.practice.setValue(practice)
    view.setup.answer_file.setText(str(answers))


def test_stopping_during_practice_goes_back_to_setup_and_the_test_can_start_again(qtbot, virtual_mic, tmp_path,
                                                                                   corpus_dir):
    w = _window(qtbot, tmp_path)
    view = w.listening
    w.tabs.setCurrentWidget(view)
    answers = tmp_path / "fresh.csv"
    _set_up(view, corpus_dir, answers, practice=2)
    assert view.start() and view.in_practice
    qtbot.keyClick(view.trial, Qt.Key.Key_Escape)  # before any answer is saved
    assert view.stack.currentWidget() is view.setup
    assert not answers.exists() and not any("line 0" in m or "no such file" in m for m in w.messages)
    assert "before any answer was saved" in w.messages[-1]
    assert view.start() and view.stack.currentWidget() is view.trial  # nothing stuck: it starts again
    qtbot.keyClick(view.trial, Qt.Key.Key_Escape)
    w.close()


def test_without_an_audio_output_the_test_and_playback_say_so_in_plain_words(qtbot, tmp_path, corpus_dir,
                                                                            no_audio_output):
    w = _window(qtbot, tmp_path)
    view = w.listening
    _set_up(view, corpus_dir, tmp_path / "a.csv", practice=0)
    assert not view.start()
    assert view.stack.currentWidget() is view.setup
    assert _no_output(w.messages[-1]) and "-1" not in w.messages[-1]
    clip = write_audio(tmp_path / "x.wav", speechlike(1.0), 16000)
    w.open_file(str(clip))
    qtbot.waitUntil(lambda: w.file_view.analysis is not None, timeout=20000)
    w.file_view.toggle_play()
    assert _no_output(w.messages[-1]) and "Error querying device" not in w.messages[-1]
    assert w.file_view.play_button.text() == "Play"
    w.close()


def test_window_zero_during_capture_is_the_models_window_again(qtbot, tmp_path):
    w = _window(qtbot, tmp_path)
    w.attach_source(FileSource(samples=speechlike(30.0), sample_rate=16000, realtime=True, loop=True))
    w.source.start()
    qtbot.waitUntil(lambda: w.live.worker is not None, timeout=5000)
    w.window_spin.setValue(2.5)
    assert w.live.worker.analyzer.settings.window_s == 2.5
    w.window_spin.setValue(0.0)  # "0 = model's"
    settings = w.live.worker.analyzer.settings
    assert settings.window_s is None and settings.window_for(w.predictor) == w.predictor.window_s == 1.0
    w.threshold_spin.setValue(0.7)
    assert w.live.worker.analyzer.settings.gate_threshold == pytest.approx(0.7)
    w.stop_capture()
    w.close()


def test_the_live_spectrogram_is_drawn_in_the_models_front_end(qtbot, tmp_path):
    fe = FrontEndConfig(sample_rate=16000, n_fft=1024, win_length=800, hop_length=320, n_mels=40, normalize=True)
    bundle = make_bundle(tmp_path / "fe.safetensors", frontend=fe, window_s=1.0)[0]
    w = _window(qtbot, tmp_path, bundle)
    assert w.live.spectrogram.config == fe and w.live.spectrogram.width_cols == 500  # 10 s at 50 columns/s
    w.attach_source(FileSource(samples=speechlike(3.0), sample_rate=16000, realtime=False))
    w.source.start()
    qtbot.waitUntil(lambda: w.live.spectrogram._count > 100, timeout=10000)
    assert w.live.stream_columns().shape == (40, 500)
    assert w.live._stream_fe.config.hop_length == 320 and w.live._stream_fe.config.n_mels == 40
    w.stop_capture()
    w.close()


def test_a_new_clip_is_never_played_by_the_previous_stream(qtbot, virtual_mic):
    player = ClipPlayer()
    first = np.full(48000, 0.1, np.float32)
    second = speechlike(0.8, seed=3)
    player.play(first, 16000)
    qtbot.waitUntil(lambda: player.position_s() is not None, timeout=60000)
    old = player._clip
    player.play(second, 16000)  # while the first stream is still closing
    new = player._clip
    qtbot.waitUntil(player.ended, timeout=60000)
    pos_of_old = old.pos
    n = new.samples.size  # the clip at the output's rate
    assert n == round(second.size * new.rate / 16000)
    assert new.pos == n  # every sample of the new clip was handed out once, in order
    starts = [first_sample for _, first_sample, _ in new.marks]
    sizes = [count for _, _, count in new.marks]
    assert all(b == a + k for a, b, k in zip(starts, starts[1:], sizes)) and starts[-1] + sizes[-1] == n
    assert starts[0] == 0 or len(starts) == new.marks.maxlen
    assert old.pos == pos_of_old and old.end is not None  # the old clip took nothing more
    player.close()


def test_the_playback_cursor_follows_the_samples_played_not_the_clock(qtbot, virtual_mic, tmp_path):
    w = _window(qtbot, tmp_path)
    clip = write_audio(tmp_path / "long.wav", speechlike(6.0, seed=2), 16000)
    w.open_file(str(clip))
    qtbot.waitUntil(lambda: w.file_view.analysis is not None, timeout=20000)
    fv = w.file_view
    fv.toggle_play()
    assert fv.play_button.text() == "Stop", w.messages
    player = fv.player
    qtbot.waitUntil(lambda: fv.cursors[0].value() > 0.5, timeout=60000)
    for _ in range(5):  # the cursor never runs ahead of what PortAudio has been given
        qtbot.wait(50)
        assert fv.cursors[0].value() <= player._clip.pos / player._clip.rate + 1e-6
    player._stream.stop()  # the output stalls: after what it had queued, no more samples are played...
    clip = player._clip
    last_heard = max(t + n / clip.rate for t, _, n in clip.marks)
    qtbot.waitUntil(lambda: time.perf_counter() > last_heard + 0.1, timeout=5000)
    stalled = fv.cursors[0].value()
    assert stalled == pytest.approx(clip.pos / clip.rate, abs=0.05)
    qtbot.wait(600)
    assert fv.cursors[0].value() == pytest.approx(stalled, abs=1e-6)  # ...so the cursor stops with them
    assert stalled < 5.0  # while the wall clock would have carried it on
    fv.toggle_play()
    assert fv.play_button.text() == "Play"
    w.close()


def test_a_model_too_slow_for_the_live_view_gets_a_longer_hop_and_a_message(qtbot, tmp_path):
    """A wide CkTIM-net over a long window (96 channels, 10 s: each of its 13 convolutions
    multiplies 96 x 96 matrices at 1025 frequencies per read) takes about 190 ms here, far over the live budget
    (half the 0.2 s hop: 100 ms)."""
    import torch

    from serapp.bundle import BundleMeta, save_bundle
    from serapp.models import build_model

    fe = FrontEndConfig(kind="mfcc", n_mfcc=39, normalize=True)
    torch.manual_seed(0)
    model = build_model("cktimnet", 39, 4, {"channels": 96, "blocks": 3}).eval()
    bundle = save_bundle(tmp_path / "slow.safetensors", model,
                         BundleMeta("cktimnet", ["neutral", "happy", "sad", "angry"], fe, 10.0))
    # Its load measures its cost (a few reads of 190 ms each): under load that took longer than
    # the usual 20 s bound once; the wait still ends when the model is in.
    w = _window(qtbot, tmp_path, bundle, load_timeout_s=180)
    assert w.model_cost_ms > 50
    assert "too slow for live readings" in " ".join(w.messages)
    assert w.hop_spin.value() >= 2 * w.model_cost_ms / 1000 - 0.05  # a reading never waits for the last one
    assert w.live.settings.hop_s == w.hop_spin.value()
    w.close()


def test_a_slow_model_whose_readings_fit_the_hop_keeps_it_and_no_message_says_otherwise():
    from serapp.gui.model_control import live_hop_for

    assert live_hop_for(55.0, 0.2) is None  # two readings fit in 0.2 s
    assert live_hop_for(40.0, 0.1) is None  # within the budget
    assert live_hop_for(120.0, 0.2) == 0.3 and live_hop_for(250.0, 0.2) == 0.5
