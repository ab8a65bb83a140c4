"""Click to sound: how long from a click in the app to the first sample out of the sound server's
sink, for the listening test's first clip and next clip (an answer click) and the file view's Play,
the first of each after a listening test and after a long idle included; and from a clip's last
sample out of the sink to the listening test's answers unlocking.

    python benchmarks/bench_playback.py [--trials 6] [--idle 65] [--settle 3]

Runs the real app (Qt offscreen) on a private PulseAudio (tests/virtual_mic.py: PortAudio
through ALSA's pulse plugin into a null sink). First with nothing recording the sink, as a
listener's sink is (the times are PortAudio's: when each buffer reaches the output), then with
its monitor recorded by `parec`: the time a 10 ms block of the monitor first holds the clip's
tone is when the sound left the sink (late by the monitor's own 5 ms latency at most). A
recorded sink keeps running, so it takes a new stream at once: the first click after opening
the app or after an idle minute is measured on the idle sink. Needs pulseaudio,
pulseaudio-utils, libportaudio2 and libasound2-plugins.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

RATE = 16000
BLOCK = 160  # 10 ms of the monitor
LOUD = 3000  # int16 peak of a block that holds the tone (it is 0.3 full scale)


class SinkMonitor:
    """The null sink's monitor, read in 10 ms blocks, each stamped when it arrived."""

    def __init__(self, env: dict):
        self.blocks: list[tuple[float, int]] = []
        self.proc = subprocess.Popen(["parec", "-d", "null.monitor", "--format=s16le", f"--rate={RATE}",
                                      "--channels=1", "--latency-msec=5"], stdout=subprocess.PIPE,
                                     env={**os.environ, **env})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            data = self.proc.stdout.read(2 * BLOCK)
            if not data:
                return
            self.blocks.append((time.perf_counter(), int(np.abs(np.frombuffer(data, "<i2")).max())))

    def first_loud(self, after: float) -> float | None:
        return next((t for t, peak in list(self.blocks) if t > after and peak > LOUD), None)

    def last_loud(self, after: float, before: float) -> float | None:
        loud = [t for t, peak in list(self.blocks) if after < t < before and peak > LOUD]
        return loud[-1] if loud else None

    def stop(self) -> None:
        self.proc.kill()


def wait(app, condition, timeout: float = 20.0) -> float:
    """Process events until `condition()`; the time it first held."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit("timed out: the app never got there")
        app.processEvents()
        time.sleep(0.001)
    return time.perf_counter()


def median_max(values: list[float]) -> str:
    ms = 1000 * np.array(values)
    return f"median {np.median(ms):.0f} ms, max {ms.max():.0f} ms over {len(ms)}"


def output_time(player, after: float) -> float | None:
    """Without a monitor (which keeps the sink running): when the clip's first sample was heard,
    from PortAudio's own times, judged at its 100th millisecond (a stream that stalls after its
    first buffers is caught by it)."""
    clip = player._clip
    if clip is None or player.started_at is None or player.started_at < after:
        return None
    mark = next((m for m in list(clip.marks) if m[1] >= clip.rate // 10), None)
    return None if mark is None else mark[0] - mark[1] / clip.rate


def listening_test(app, w, corpus: Path, folder: Path, n: int, sound_after) -> dict[str, list[float]]:
    """A test of `n` answers: Start to its first clip, each answer click to the next clip;
    `sound_after(player, t)`: when a clip started after `t` was first heard (None: not yet)."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    view, out = w.listening, {"first": [], "next": [], "enabled": [], "clip_started": []}
    w.tabs.setCurrentWidget(view)
    view.setup.rater.setText(f"bench{time.monotonic_ns()}")
    view.setup.corpus_edit.setText(str(corpus))
    view.setup.load_corpus()
    view.setup.n_clips.setValue(min(n + 1, 12))
    view.setup.practice.setValue(0)
    view.setup.autoplay.setChecked(True)
    view.setup.answer_file.setText(str(folder / f"answers{time.monotonic_ns()}.csv"))
    started = time.perf_counter()
    if not view.start():
        raise SystemExit(f"the listening test did not start: {w.messages}")
    wait(app, lambda: sound_after(view.player, started) is not None)
    out["first"].append(sound_after(view.player, started) - started)
    for _ in range(n):
        out["enabled"].append(wait(app, lambda: view.first_end is not None))
        out["clip_started"].append(started)
        time.sleep(0.3)
        started = time.perf_counter()
        QTest.mouseClick(next(iter(view.trial.answer_buttons.values())), Qt.MouseButton.LeftButton)
        if view.record is None:
            break
        wait(app, lambda: sound_after(view.player, started) is not None)
        out["next"].append(sound_after(view.player, started) - started)
    view.stop()
    return out


def open_in_file_view(app, w, folder: Path) -> None:
    from helpers import write_audio

    fv = w.file_view
    fv.analysis = None
    w.open_file(str(write_audio(folder / "file.wav", np.concatenate([TONE, TONE]))))
    wait(app, lambda: fv.analysis is not None)


def plays(app, w, n: int, sound_after, pause: float = 0.3) -> list[float]:
    """`n` Play clicks in the file view (the first after `pause` s), each stopped after 0.5 s."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    fv, out = w.file_view, []
    for i in range(n):
        idle(app, pause if i == 0 else 0.3)
        started = time.perf_counter()
        QTest.mouseClick(fv.play_button, Qt.MouseButton.LeftButton)
        wait(app, lambda: sound_after(fv.player, started) is not None)
        out.append(sound_after(fv.player, started) - started)
        wait(app, lambda: time.perf_counter() > started + 0.5)
        QTest.mouseClick(fv.play_button, Qt.MouseButton.LeftButton)  # Stop
    return out


def idle(app, seconds: float) -> None:
    """The app left alone (its event loop running) for `seconds`."""
    end = time.perf_counter() + seconds
    wait(app, lambda: time.perf_counter() >= end, timeout=seconds + 10)


def session(app, w, corpus: Path, folder: Path, n: int, sound_after, settle: float) -> dict[str, list[float]]:
    """A person's order: `settle` s after the window opened a listening test, then the file view."""
    idle(app, settle)
    out = listening_test(app, w, corpus, folder, n, sound_after)
    open_in_file_view(app, w, folder)
    first, *rest = plays(app, w, n + 1, sound_after)
    return {**out, "play_first": [first], "play": rest}


TONE = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(1.5 * RATE)) / RATE)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--idle", type=float, default=65.0,
                        help="seconds without sound before the after-idle clicks (the output used to close after 60)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds from the window opening to the listening test's Start (a person choosing a corpus)")
    args = parser.parse_args()

    import virtual_mic as vm
    from helpers import make_ravdess_corpus, write_audio
    from PySide6 import QtCore, QtWidgets

    mic, folder = vm.start_for_app("bench-playback-")
    monitor = None
    try:
        from serapp.gui.main_window import MainWindow
        from serapp.gui.plots import configure_pyqtgraph

        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
        configure_pyqtgraph()
        corpus = make_ravdess_corpus(folder / "corpus", actors=(1, 2), labels=("happy", "angry"), reps=3, seconds=0.2)
        for clip in corpus.rglob("*.wav"):
            write_audio(clip, TONE)

        def window() -> MainWindow:
            settings = QtCore.QSettings(str(folder / f"s{time.monotonic_ns()}.ini"), QtCore.QSettings.Format.IniFormat)
            w = MainWindow(None, "cpu", settings=settings)  # no model: playback only
            w.show()
            return w

        w = window()  # a Start the moment the window is there: the sink has not taken its stream yet
        at_once = listening_test(app, w, corpus, folder, 1, output_time)["first"][0]
        w.close()
        w = window()
        quiet = session(app, w, corpus, folder, args.trials, output_time, args.settle)
        idle(app, args.idle)
        quiet["play_after_idle"] = plays(app, w, 1, output_time, pause=0.0)
        idle(app, args.idle)
        quiet["first_after_idle"] = listening_test(app, w, corpus, folder, 1, output_time)["first"]
        w.close()

        monitor = SinkMonitor(mic.env)
        time.sleep(0.5)
        w = window()
        heard = session(app, w, corpus, folder, args.trials, lambda _player, t: monitor.first_loud(t), args.settle)
        # the sound ends before the next click (0.3 s after the unlock)
        unlock = [e - monitor.last_loud(s, e + 0.25) for e, s in zip(heard["enabled"], heard["clip_started"])]
        w.close()

        def ms(values: list[float]) -> str:
            return f"{1000 * values[0]:.0f} ms"

        print("an idle sink (nothing records it), from PortAudio's times:")
        print(f"  listening test, Start the moment the window opened to its first clip: {1000 * at_once:.0f} ms")
        print(f"  listening test, Start {args.settle:g} s after the window opened to its first clip: {ms(quiet['first'])}")
        print(f"  listening test, answer click to the next clip: {median_max(quiet['next'])}")
        print(f"  file view, the first Play after the listening test: {ms(quiet['play_first'])}")
        print(f"  file view, Play click to the sound: {median_max(quiet['play'])}")
        print(f"  file view, Play after {args.idle:g} s without sound: {ms(quiet['play_after_idle'])}")
        print(f"  listening test, first clip of a test started after {args.idle:g} s without sound: "
              f"{ms(quiet['first_after_idle'])}")
        print("the sink's monitor recorded (first sample out of the sink):")
        print(f"  listening test, Start {args.settle:g} s after the window opened to its first clip: {ms(heard['first'])}")
        print(f"  listening test, answer click to the next clip: {median_max(heard['next'])}")
        print(f"  listening test, last sample out of the sink to answers unlocked: {median_max(unlock)}")
        print(f"  file view, the first Play after the listening test: {ms(heard['play_first'])}")
        print(f"  file view, Play click to the sound: {median_max(heard['play'])}")
    finally:
        if monitor is not None:
            monitor.stop()
        mic.stop()


if __name__ == "__main__":
    main()
