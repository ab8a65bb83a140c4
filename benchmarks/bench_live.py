"""The live app under load: audio through a PulseAudio virtual microphone, the model running.

Prints frames drawn per second, GUI-thread ms per frame, input overflows, RSS growth, and the
latency from a tone onset written into the microphone's FIFO until the spectrogram shows it
and until the readout changes. Run it on a real X server or under Xvfb:

    xvfb-run -a -s "-screen 0 1400x900x24" python benchmarks/bench_live.py --seconds 600

Needs pulseaudio + pulseaudio-utils + libasound2-plugins (see .ci/run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the virtual microphone lives with the tests

import virtual_mic as vm  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat): user, nice, system, idle, iowait, irq,
    softirq, steal."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:9]]


def speech_program(seconds: float, rate: int = 16000) -> tuple[np.ndarray, list[float]]:
    """4 s of silence then 2 s of a voiced, syllable-rhythm tone (speech to the speech gate),
    repeated; returns audio and onset times (s).

    The silence is longer than the model's window, so the readout is back at "no speech"
    before each onset and its change can be timed.
    """
    rng = np.random.default_rng(0)
    onsets, parts = [], []
    t = 0.0
    while t < seconds:
        parts.append(np.zeros(int(4.0 * rate), np.float32))
        onsets.append(t + 4.0)
        n = np.arange(int(2.0 * rate)) / rate
        f0 = 150 + 30 * np.sin(2 * np.pi * 0.8 * n)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        syllables = 0.5 * (1 + np.sin(2 * np.pi * 4 * n - np.pi / 2)) ** 2  # 4 per second, starting at the onset
        voiced = sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.2 * syllables
        parts.append((voiced + 0.003 * rng.standard_normal(n.size)).astype(np.float32))
        t += 6.0
    return np.concatenate(parts), onsets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--model", help="bundle (default: the bundled model)")
    ap.add_argument("--compare", nargs="?", const="", metavar="BUNDLE",
                    help="a second model read on the same audio (--compare alone: the bundled model again)")
    ap.add_argument("--hop", type=float, help="the live hop in seconds (default: the app's)")
    ap.add_argument("--min-speech", type=float, help="seconds of speech a window needs (default: the app's)")
    args = ap.parse_args()
    mic, tmp = vm.start_for_app("serapp-bench-")
    os.environ.setdefault("SERAPP_SETTINGS", str(tmp / "settings.ini"))

    from PySide6 import QtCore, QtWidgets

    from serapp.gui.app import make_settings
    from serapp.gui.main_window import MainWindow
    from serapp.gui.plots import configure_pyqtgraph

    app = QtWidgets.QApplication(sys.argv[:1])
    configure_pyqtgraph()
    w = MainWindow(args.model, "cpu", settings=make_settings())
    w.show()
    w.load_model_async()
    while w.predictor is None:
        app.processEvents()
        time.sleep(0.01)
        if w.messages and "model" in w.model_label.text() and "failed" in w.model_label.text():
            print(w.messages[-1])
            return 1
    if args.compare is not None:
        w.open_compare(args.compare or None)
        while w.compare_predictor is None:
            app.processEvents()
            time.sleep(0.01)
    if args.hop is not None:
        w.hop_spin.setValue(args.hop)
    if args.min_speech is not None:
        import dataclasses

        w.live.set_settings(dataclasses.replace(w.analysis_settings(), min_speech_s=args.min_speech))
    if not w.start_capture("default"):
        print(w.messages[-1])
        return 1

    audio, onsets = speech_program(args.seconds)
    write_start = {}

    # Latency counts from when the onset's block really entered the FIFO: the writer can fall
    # behind its schedule when the pipe source reads a little slower than the wall clock.
    onset_samples = [int(t * 16000) for t in onsets]
    written_at: dict[int, float] = {}

    behind = {"max": 0.0}

    def on_block(first, last, t):
        behind["max"] = max(behind["max"], t - (write_start["t"] + last / 16000))
        for k, s in enumerate(onset_samples):
            if first <= s < last:
                written_at[k] = t

    def feed():
        write_start["t"] = time.perf_counter()
        mic.write(audio, realtime=True, block_s=0.01, on_block=on_block)

    # Detect, on the GUI thread after each frame, when a tone onset reaches the display.
    spec_hits, read_hits = [], []
    state = {"next": 0, "spec_seen": False, "read_seen": False, "armed": None}
    frame_times = []
    original_frame = w._frame

    def frame():
        t0 = time.perf_counter()
        original_frame()
        frame_times.append(time.perf_counter() - t0)
        if "t" not in write_start or state["next"] >= len(onsets):
            return
        k = state["next"]
        r = w.live.last_reading
        if k not in written_at:
            state["armed"] = r if (r is not None and not r.speech) else None  # "no speech" before
            return
        now = time.perf_counter()
        since = now - written_at[k]
        if not state["spec_seen"] and w.live.stream_columns()[:, -3:].mean() > 80:
            spec_hits.append(since)
            state["spec_seen"] = True
        if not state["read_seen"] and state["armed"] is not None and r is not state["armed"] and r.speech:
            read_hits.append(since)
            state["read_seen"] = True
        if since > 1.9:
            state.update(next=state["next"] + 1, spec_seen=False, read_seen=False, armed=None)

    w.timer.timeout.disconnect()
    w.timer.timeout.connect(frame)
    feeder = threading.Thread(target=feed, daemon=True)
    rss0 = rss_mb()
    cpu0 = cpu_times()
    t_start = time.perf_counter()
    frames0 = w.live.frames_drawn
    feeder.start()
    loop = QtCore.QEventLoop()  # an event loop as the app's (app.quit would also stop the capture)
    QtCore.QTimer.singleShot(int((args.seconds + 0.5) * 1000), loop.quit)
    loop.exec()
    elapsed = time.perf_counter() - t_start
    feeder.join(timeout=5.0)  # the FIFO writer finishes its last blocks before the microphone goes
    frames = w.live.frames_drawn - frames0
    overflows = w.source.overflows
    rss1 = rss_mb()
    spent = [b - a for a, b in zip(cpu0, cpu_times())]
    w.close()
    mic.stop()

    ms = sorted(1e3 * x for x in frame_times)
    pct = lambda p: ms[min(len(ms) - 1, int(p / 100 * len(ms)))]  # noqa: E731
    compared = f" and {w.compare_predictor.path.name} side by side" if w.compare_predictor is not None else ""
    print(f"run: {elapsed:.0f} s of audio through the virtual microphone, model {w.predictor.path.name} "
          f"({w.predictor.meta.architecture}){compared} on CPU, {len(onsets)} tone onsets, "
          f"hop {w.live.settings.hop_s:g} s, a window needs {w.live.settings.min_speech_s:g} s of speech")
    print(f"frames drawn per second: {frames / elapsed:.1f}")
    print(f"GUI-thread ms per frame: median {pct(50):.2f}, p95 {pct(95):.2f}, max {ms[-1]:.1f}")
    print(f"input overflows: {overflows}  (the FIFO writer fell up to {1e3 * behind['max']:.0f} ms behind "
          f"its schedule; latencies below count from the real write)")
    print(f"RSS: {rss0:.0f} MB -> {rss1:.0f} MB (growth {rss1 - rss0:+.1f} MB)")
    # On a shared virtual machine the host can take the CPU away: a run with much stolen time
    # measures the host, not the app.
    print(f"CPU time stolen by the host during the run: {100 * spent[7] / max(1, sum(spent)):.0f} %")
    if spec_hits:
        print(f"onset -> spectrogram: median {1e3 * statistics.median(spec_hits):.0f} ms "
              f"(p90 {1e3 * sorted(spec_hits)[int(0.9 * (len(spec_hits) - 1))]:.0f} ms, n={len(spec_hits)})")
    if read_hits:
        print(f"onset -> readout: median {1e3 * statistics.median(read_hits):.0f} ms "
              f"(p90 {1e3 * sorted(read_hits)[int(0.9 * (len(read_hits) - 1))]:.0f} ms, n={len(read_hits)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
