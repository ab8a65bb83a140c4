"""Click to sound: how long from a click in the app to the first sample out of the sound server's
sink, for the listening test's next clip (an answer click) and the file view's Play; and from a
clip's last sample out of the sink to the listening test's answers unlocking.

    python benchmarks/bench_playback.py [--trials 6]

Runs the real app (Qt offscreen) on a private PulseAudio (tests/virtual_mic.py: PortAudio
through ALSA's pulse plugin into a null sink) and records the sink's monitor with `parec`: the
time a 10 ms block of the monitor first holds the clip's tone is when the sound left the sink
(late by the monitor's own 5 ms latency at most). Needs pulseaudio, pulseaudio-utils,
libportaudio2 and libasound2-plugins.
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


def trials(app, w, corpus: Path, folder: Path, n: int, sound_after) -> dict[str, list[float]]:
    """Answer clicks in the listening test, then Play clicks in the file view; `sound_after(player,
    t)`: when a clip started after `t` was first heard (None: not yet)."""
    from helpers import write_audio
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    view, out = w.listening, {"first": [], "next": [], "play": []}
    w.tabs.setCurrentWidget(view)
    view.setup.rater.setText(f"bench{len(list(folder.glob('*.csv')))}")
    view.setup.corpus_edit.setText(str(corpus))
    view.setup.load_corpus()
    view.setup.n_clips.setValue(min(n + 1, 12))
    view.setup.practice.setValue(0)
    view.setup.autoplay.setChecked(True)
    view.setup.answer_file.setText(str(folder / f"answers{time.monotonic_ns()}.csv"))
    started = time.perf_counter()
    if not view.start():
        raise SystemExit(f"the listening test did not start: {w.messages}")
    out["first"].append(wait(app, lambda: sound_after(view.player, started) is not None) and
                        sound_after(view.player, started) - started)
    for _ in range(n):
        out.setdefault("enabled", []).append(wait(app, lambda: view.first_end is not None))
        out.setdefault("clip_started", []).append(started)
        time.sleep(0.3)
        started = time.perf_counter()
        QTest.mouseClick(next(iter(view.trial.answer_buttons.values())), Qt.MouseButton.LeftButton)
        if view.record is None:
            break
        wait(app, lambda: sound_after(view.player, started) is not None)
        out["next"].append(sound_after(view.player, started) - started)
    view.stop()
    fv = w.file_view
    path = write_audio(folder / "file.wav", np.concatenate([TONE, TONE]))
    fv.analysis = None
    w.open_file(str(path))
    wait(app, lambda: fv.analysis is not None)
    for _ in range(n):
        time.sleep(0.3)
        started = time.perf_counter()
        QTest.mouseClick(fv.play_button, Qt.MouseButton.LeftButton)
        wait(app, lambda: sound_after(fv.player, started) is not None)
        out["play"].append(sound_after(fv.player, started) - started)
        wait(app, lambda: time.perf_counter() > started + 0.5)
        QTest.mouseClick(fv.play_button, Qt.MouseButton.LeftButton)  # Stop
    return out


TONE = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(1.5 * RATE)) / RATE)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
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
        settings = QtCore.QSettings(str(folder / "s.ini"), QtCore.QSettings.Format.IniFormat)
        w = MainWindow(None, "cpu", settings=settings)  # no model: playback only
        w.show()
        idle = trials(app, w, corpus, folder, args.trials, output_time)
        monitor = SinkMonitor(mic.env)
        time.sleep(0.5)
        heard = trials(app, w, corpus, folder, args.trials, lambda _player, t: monitor.first_loud(t))
        # the sound ends before the next click (0.3 s after the unlock)
        unlock = [e - monitor.last_loud(s, e + 0.25) for e, s in zip(heard["enabled"], heard["clip_started"])]
        w.close()
        print("an idle sink (nothing records it), from PortAudio's times:")
        print(f"  listening test, start to the first clip: {1000 * idle['first'][0]:.0f} ms")
        print(f"  listening test, answer click to the next clip: {median_max(idle['next'])}")
        print(f"  file view, Play click to the sound: {median_max(idle['play'])}")
        print("the sink's monitor recorded (first sample out of the sink):")
        print(f"  listening test, start to the first clip: {1000 * heard['first'][0]:.0f} ms")
        print(f"  listening test, answer click to the next clip: {median_max(heard['next'])}")
        print(f"  listening test, last sample out of the sink to answers unlocked: {median_max(unlock)}")
        print(f"  file view, Play click to the sound: {median_max(heard['play'])}")
    finally:
        if monitor is not None:
            monitor.stop()
        mic.stop()


if __name__ == "__main__":
    main()
