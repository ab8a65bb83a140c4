"""The README's screenshots, one per view, from real audio played through a virtual microphone.

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py \
        [--audio ../shared/data/ravdess] [--compare BUNDLE] [--out docs/screenshots]

Writes live.png, file.png, compare.png (with a voice profile in use), presentation.png,
listening.png (eight emotions) and calibration.png (the Voice dialog's guided take over the live
view). The audio is
RAVDESS speech when --audio names its folder (and it exists), else a generated voice-like sound
(CI runs it so, to show the script works after any change to the GUI). The app runs as users run
it: a PulseAudio virtual microphone (tests/virtual_mic.py), PortAudio, the bundled model.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the virtual microphone and the test data helpers live there

import virtual_mic as vm  # noqa: E402

# RAVDESS clips (actor 11, in no EmoBox training fold of its own; the shipped model has heard
# every actor, so the pictures show the app, not its accuracy): angry, happy, sad, fearful.
CLIPS = ["Actor_11/03-01-05-02-01-01-11.flac", "Actor_11/03-01-03-02-01-01-11.flac",
         "Actor_11/03-01-04-02-02-01-11.flac", "Actor_11/03-01-06-02-01-02-11.flac"]


# One clip of each of RAVDESS's eight emotions (actor 11), for the listening results.
EIGHT = [f"Actor_11/03-01-{code:02d}-01-01-01-11.flac" for code in range(1, 9)]


def voice(audio_dir: Path | None) -> tuple[np.ndarray, list[Path]]:
    """The speech to play (16 kHz) and the files it came from (for the file view)."""
    from serapp.audio.io import load_audio

    files = [audio_dir / c for c in CLIPS] if audio_dir else []
    if files and all(f.is_file() for f in files):
        parts = []
        for f in files:
            y, _ = load_audio(f, 16000)
            parts += [y, np.zeros(8000, np.float32)]
        return np.concatenate(parts), files
    from helpers import speechlike

    return np.concatenate([speechlike(3.0, seed=s) for s in range(4)]), []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", default=str(ROOT.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--compare", help="a second bundle for compare.png (default: the bundled model twice)")
    ap.add_argument("--model", help="the model (default: the bundled one)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mic, tmp = vm.start_for_app("serapp-shots-")
    os.environ["SERAPP_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["SERAPP_DATA_DIR"] = str(tmp / "data")  # voice profiles: never the user's own
    audio_dir = Path(args.audio) if args.audio and Path(args.audio).is_dir() else None
    speech, files = voice(audio_dir)
    if not files:
        files = [tmp / "voice.wav"]
        sf.write(str(files[0]), speech, 16000)

    from PySide6 import QtCore, QtWidgets

    from serapp.calibration import profile_from_take
    from serapp.gui.app import make_settings
    from serapp.labels import EMOTIONS
    from serapp.profiles import ProfileStore
    from serapp.gui.main_window import MainWindow
    from serapp.gui.plots import configure_pyqtgraph

    app = QtWidgets.QApplication(sys.argv[:1])
    configure_pyqtgraph()
    w = MainWindow(args.model, "cpu", settings=make_settings())
    w.resize(1500, 900)
    w.show()

    def wait(condition, seconds: float = 60.0) -> None:
        deadline = time.time() + seconds
        while not condition():
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            if time.time() > deadline:
                raise SystemExit(f"timed out; messages: {w.messages[-3:]}")

    def settle(seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)

    def speak() -> threading.Thread:
        t = threading.Thread(target=mic.write, args=(speech,), daemon=True)
        t.start()
        return t

    def shoot(widget, name: str) -> None:
        path = out / name
        if not widget.grab().save(str(path)):
            raise SystemExit(f"{path}: cannot save")
        print(f"wrote {path}")

    w.load_model_async()
    wait(lambda: w.predictor is not None)
    w.hop_spin.setValue(0.2)
    assert w.start_capture("default"), w.messages[-1]
    talk = speak()
    wait(lambda: w.live.last_reading is not None and w.live.last_reading.speech)
    settle(4.0)
    shoot(w, "live.png")
    w.open_file(str(files[0]))
    wait(lambda: w.file_view.analysis is not None and w.tabs.currentWidget() is w.file_view)
    settle(0.5)
    shoot(w, "file.png")
    talk.join()
    profile = profile_from_take("Ann", speech, 16000, w.predictor, ProfileStore())  # a voice profile in use
    assert w.use_profile(profile, quiet=True)
    w.open_compare(args.compare)
    wait(lambda: w.compare_predictor is not None)
    w.tabs.setCurrentWidget(w.live)
    talk = speak()
    wait(lambda: all(r is not None and r.speech for r in w.live.last_readings))
    settle(4.0)
    shoot(w, "compare.png")
    w.toggle_presentation()
    settle(2.5)
    shoot(w.presentation, "presentation.png")
    w.toggle_presentation()
    talk.join()
    w.stop_capture()
    w.tabs.setCurrentWidget(w.listening)
    from serapp.listening.answers import Answer, AnswerLog, utc_now

    # eight emotions, one clip each where RAVDESS is here (the results page at its widest)
    listened = [audio_dir / c for c in EIGHT] if audio_dir and all((audio_dir / c).is_file() for c in EIGHT) else files
    corpus_root = listened[0].parent
    log = AnswerLog(tmp / "answers.csv")
    truths = list(EMOTIONS) if len(listened) == len(EMOTIONS) else ["angry", "happy", "sad", "fearful"]
    for i, f in enumerate(listened[: len(truths)]):
        for rater, pick in (("ann", truths[(i + (i % 3 == 0)) % len(truths)]), ("bob", truths[i])):
            log.append(Answer(session_id="demo", rater=rater, timestamp_utc=utc_now(), corpus=str(corpus_root),
                              clip=f.name, true_label=truths[i], chosen_label=pick, correct=int(pick == truths[i]),
                              response_ms=900, replays=0, skipped=0, skip_reason="",
                              label_set="|".join(truths), app_version="demo"))
    w.listening.show_results([str(tmp / "answers.csv")])
    wait(lambda: "model" in (w.listening.results.report or {}))
    settle(0.5)
    shoot(w, "listening.png")

    w.tabs.setCurrentWidget(w.live)
    assert w.start_capture("default"), w.messages[-1]
    w.open_voice_dialog()
    dialog = w.voice_dialog
    dialog.move(w.x() + w.width() - dialog.width() - 40, w.y() + 90)
    dialog.toggle_recording()
    talk = threading.Thread(target=lambda: (mic.write(speech), mic.write(speech)), daemon=True)
    talk.start()  # longer than the take: the dialog stops it at 20 s and checks it
    wait(lambda: dialog.record_button.text() == "Record" and "ing" not in dialog.status.text().split(":")[0], 120)
    dialog.name_edit.setText("Ann")
    settle(1.0)
    path = out / "calibration.png"  # the screen where the window is: the dialog over the live view
    g = w.frameGeometry()
    if not QtWidgets.QApplication.primaryScreen().grabWindow(0, g.x(), g.y(), g.width(), g.height()).save(str(path)):
        raise SystemExit(f"{path}: cannot save")
    print(f"wrote {path}")
    talk.join()
    w.stop_capture()
    w.close()
    mic.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
