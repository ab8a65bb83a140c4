import csv
import importlib.metadata
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import speechlike, tone, write_audio

import serapp.predictor as predictor_mod
from serapp.cli import main
from serapp.labels import EMOTIONS
from serapp.readout import BASIC


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "serapp", *map(str, argv)], capture_output=True, text=True, timeout=120, **kw)


def test_console_script_is_installed():
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("serapp") == "serapp.cli:main"


def test_jsonl_line_through_a_real_process(clip, tiny_bundle):
    proc = run_process("predict", clip, "--model", tiny_bundle, "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["path"] == str(clip) and obj["label"] in BASIC
    assert list(obj["probabilities"]) == list(BASIC)  # the basic four by default
    assert obj["sure"] is True  # an uncalibrated bundle is never "not sure"
    assert abs(sum(obj["probabilities"].values()) - 1) < 1e-4
    assert obj["label"] == max(obj["probabilities"], key=obj["probabilities"].get)
    assert obj["duration_s"] == pytest.approx(2.5) and obj["ms"] > 0
    assert "segments" not in obj


def test_jsonl_with_window_adds_segments(capsys, tmp_path, tiny_bundle):
    path = write_audio(tmp_path / "long.wav", speechlike(3.0), 16000)
    code, out, err = run(capsys, "predict", str(path), "--model", str(tiny_bundle), "--format", "jsonl",
                         "--window", "1", "--hop", "0.5")
    assert code == 0, err
    obj = json.loads(out)
    segs = obj["segments"]
    assert [s["start_s"] for s in segs] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert all(set(s) == {"start_s", "end_s", "speech", "speech_fraction", "label", "sure", "probabilities"} for s in segs)
    assert all(s["speech"] and s["label"] == max(s["probabilities"], key=s["probabilities"].get) for s in segs)
    assert all(abs(sum(s["probabilities"].values()) - 1) < 1e-4 for s in segs)


def test_csv_format(capsys, clip, tiny_bundle, tmp_path):
    other = write_audio(tmp_path / "b.flac", speechlike(1.0, 44100, seed=1), 44100)
    code, out, err = run(capsys, "predict", str(clip), str(other), "--model", str(tiny_bundle), "--format", "csv",
                         "--emotions", "all")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 and list(rows[0]) == ["path", "duration_s", "ms", "speech", "speech_fraction", "label", "sure",
                                                *EMOTIONS, "warning"]
    assert rows[1]["path"] == str(other) and float(rows[1]["duration_s"]) == pytest.approx(1.0)
    assert abs(sum(float(rows[0][k]) for k in EMOTIONS) - 1) < 1e-4 and rows[0]["sure"] == "1"
    code, out, _ = run(capsys, "predict", str(clip), "--model", str(tiny_bundle), "--format", "csv", "--window", "1")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[:7] == ["path", "start_s", "end_s", "speech", "speech_fraction", "label", "sure"]
    assert len(rows) == 5 and list(rows[0])[7:11] == list(BASIC)  # the whole file, then 4 windows


def test_table_format(capsys, clip, tiny_bundle):
    code, out, _ = run(capsys, "predict", str(clip), "--model", str(tiny_bundle), "--window", "1")
    assert code == 0
    header, window_header, first, *segs = out.strip().splitlines()
    assert header.split()[:2] == ["duration", "EMOTION"] and header.endswith("file") and window_header.split()[0] == "window"
    assert first.endswith(str(clip)) and "2.50 s" in first and "%" in first
    assert len(segs) == 4 and segs[0].strip().startswith("0.00-")


def test_a_failing_file_does_not_stop_the_others(tmp_path, tiny_bundle):
    good = write_audio(tmp_path / "a_good.wav", speechlike(1.0), 16000)
    bad = tmp_path / "b_bad.wav"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    later = write_audio(tmp_path / "c_later.wav", speechlike(1.0, seed=5), 16000)
    proc = run_process("predict", good, bad, tmp_path / "missing.wav", later, "--model", tiny_bundle, "--format", "jsonl")
    assert proc.returncode == 1
    assert [json.loads(line)["path"] for line in proc.stdout.splitlines()] == [str(good), str(later)]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in proc.stderr
    assert str(bad) in err[0] and "unrecognised or damaged audio" in err[0]
    assert "missing.wav" in err[1] and "no such file" in err[1]


def test_directory_with_a_non_audio_file(capsys, tmp_path, tiny_bundle):
    write_audio(tmp_path / "x.wav", speechlike(1.0), 16000)
    (tmp_path / "readme.txt").write_text("hello")
    code, out, err = run(capsys, "predict", str(tmp_path), "--model", str(tiny_bundle), "--format", "jsonl")
    assert code == 0 and err == ""
    assert [json.loads(line)["path"] for line in out.splitlines()] == [str(tmp_path / "x.wav")]


def test_directory_without_audio(capsys, tmp_path, tiny_bundle):
    (tmp_path / "readme.txt").write_text("hello")
    code, out, err = run(capsys, "predict", str(tmp_path), "--model", str(tiny_bundle))
    assert code == 1 and out == "" and "no audio files found" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["predict"],
        ["predict", "x.wav", "--format", "xml"],
        ["predict", "x.wav", "--window", "-1"],
        ["predict", "x.wav", "--window", "abc"],
        ["predict", "x.wav", "--window", "inf"],
        ["predict", "x.wav", "--window", "nan"],
        ["predict", "x.wav", "--window", "1e6"],
        ["predict", "x.wav", "--window", "3", "--hop", "1e-6"],
        ["predict", "x.wav", "--hop", "0.5"],
        ["predict", "x.wav", "--device", "tpu"],
        ["--view", "everything"],
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_bad_model_is_one_line_exit_1(tmp_path, clip):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense" * 10)
    proc = run_process("predict", clip, "--model", bad)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == f"serapp: {bad}: not a serapp model bundle (no safetensors header)"


def test_no_bundled_model(capsys, clip, monkeypatch):
    monkeypatch.setattr(predictor_mod, "default_bundle_path", lambda: None)
    code, out, err = run(capsys, "predict", str(clip))
    assert code == 1 and out == ""
    assert "no bundled model" in err and "--model" in err and len(err.strip().splitlines()) == 1


def test_absent_device_is_one_line_exit_1(capsys, clip, tiny_bundle):
    absent = next((d for d in ("cuda", "mps") if d not in predictor_mod.available_devices()), None)
    if absent is None:
        pytest.skip("both CUDA and MPS are present here")
    code, _, err = run(capsys, "predict", str(clip), "--model", str(tiny_bundle), "--device", absent)
    assert code == 1 and f"'{absent}' is not available" in err


def test_no_display_is_a_clear_error_not_a_crash(capsys, monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    code, _, err = run(capsys)
    assert code == 1 and "no display found" in err and "serapp predict" in err


def test_screenshot_needs_quit_after(capsys):
    code, _, err = run(capsys, "--screenshot", "x.png")
    assert code == 2 and "--screenshot needs --quit-after" in err


def test_output_into_a_closed_pipe_is_quiet(tmp_path, tiny_bundle):
    for i in range(30):
        write_audio(tmp_path / f"{i:02d}.wav", tone(0.2, freq=200 + 10 * i), 16000)
    cmd = f"{sys.executable} -m serapp predict {tmp_path} --model {tiny_bundle} --format jsonl | head -n 1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_window_and_hop_out_of_range_are_usage_errors_naming_the_range(capsys):
    for argv, fragment in ((["--window", "inf"], "must be a finite number"), (["--window", "1e6"], "give 0.1 to 60 seconds"),
                           (["--window", "3", "--hop", "1e-6"], "give 0.05 to 60 seconds")):
        with pytest.raises(SystemExit) as e:
            main(["predict", "x.wav", *argv])
        err = capsys.readouterr().err
        assert e.value.code == 2 and fragment in err and "Traceback" not in err


def test_audio_without_speech_reads_no_speech_in_every_format(capsys, tmp_path, tiny_bundle):
    silence = write_audio(tmp_path / "silence.wav", np.zeros(5 * 16000, np.float32), 16000)
    beep = write_audio(tmp_path / "beep.wav", tone(0.1, 16000, 880, 0.5), 16000)
    voice = write_audio(tmp_path / "voice.wav", speechlike(2.0, seed=3), 16000)
    code, out, err = run(capsys, "predict", str(silence), str(beep), str(voice), "--model", str(tiny_bundle),
                         "--format", "jsonl")
    assert code == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    for obj in objs[:2]:
        assert obj["label"] is None and obj["speech"] is False and obj["probabilities"] is None
    assert objs[2]["speech"] is True and objs[2]["label"] in EMOTIONS
    code, out, _ = run(capsys, "predict", str(silence), "--model", str(tiny_bundle), "--format", "csv")
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["speech"] == "0" and row["label"] == "no speech" and row["angry"] == ""
    code, out, _ = run(capsys, "predict", str(beep), "--model", str(tiny_bundle))
    assert "NO SPEECH" in out
    code, out, _ = run(capsys, "predict", str(silence), "--model", str(tiny_bundle), "--format", "jsonl", "--no-gate")
    assert json.loads(out)["label"] in EMOTIONS  # the old behaviour, on request


def test_timeline_windows_without_speech_are_gaps(capsys, tmp_path, tiny_bundle):
    y = np.concatenate([np.zeros(3 * 16000, np.float32), speechlike(3.0, seed=4)])
    path = write_audio(tmp_path / "later.wav", y, 16000)
    code, out, _ = run(capsys, "predict", str(path), "--model", str(tiny_bundle), "--format", "jsonl",
                       "--window", "1", "--hop", "1")
    segs = json.loads(out)["segments"]
    assert [s["speech"] for s in segs] == [False, False, False, True, True, True]
    assert all((s["label"] is None) == (not s["speech"]) for s in segs)


def test_the_overall_reading_is_the_timelines_speech_windows_and_non_speech_never_counts(capsys, tmp_path, tiny_bundle):
    """One rule: the file's reading is the mean of its speech windows (each weighted by its share of
    speech), in every format; 10 s of hum and silence before the voice leave it as it was."""
    voice = speechlike(3.0, seed=5)
    alone = write_audio(tmp_path / "voice.wav", voice, 16000)
    padded = write_audio(tmp_path / "late.wav", np.concatenate([np.zeros(5 * 16000, np.float32), tone(5.0, 16000, 50),
                                                                voice]), 16000)
    code, out, err = run(capsys, "predict", str(alone), str(padded), "--model", str(tiny_bundle), "--format", "jsonl",
                         "--window", "1", "--hop", "1", "--emotions", "all")
    assert code == 0, err
    first, late = (json.loads(line) for line in out.splitlines())
    for obj in (first, late):
        read = [s for s in obj["segments"] if s["speech"]]
        weights = np.array([s["speech_fraction"] for s in read])
        mean = weights @ np.array([[s["probabilities"][k] for k in EMOTIONS] for s in read]) / weights.sum()
        np.testing.assert_allclose([obj["probabilities"][k] for k in EMOTIONS], mean, atol=1e-6)
        assert obj["label"] == EMOTIONS[int(np.argmax(mean))]
    # the hum and the silence read no speech, so the voice's windows alone make the reading
    assert [s["speech"] for s in late["segments"][:10]] == [False] * 10
    np.testing.assert_allclose([late["probabilities"][k] for k in EMOTIONS],
                               [first["probabilities"][k] for k in EMOTIONS], atol=1e-4)
    assert late["speech_fraction"] < 0.3
    # without --window the windows are the model's: the same reading as that timeline's, in csv too
    window = predictor_mod.load_model(tiny_bundle, device="cpu").window_s
    code, out, _ = run(capsys, "predict", str(padded), "--model", str(tiny_bundle), "--format", "jsonl",
                       "--window", str(window))
    timed = json.loads(out)
    code, out, _ = run(capsys, "predict", str(padded), "--model", str(tiny_bundle), "--format", "csv")
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["label"] == timed["label"] and float(row["angry"]) == pytest.approx(timed["probabilities"]["angry"], abs=1e-3)


def test_a_wav_cut_short_is_predicted_with_a_warning(tmp_path, tiny_bundle):
    full = write_audio(tmp_path / "full.wav", speechlike(3.0, seed=6), 16000, "PCM_16")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 2 * 4800])  # the header still says 3 s; 0.3 s are there
    proc = run_process("predict", cut, full, "--model", tiny_bundle, "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    first, second = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "cut short" in first["warning"] and "3.00 s" in first["warning"] and "0.30 s" in first["warning"]
    assert first["duration_s"] == pytest.approx(0.3) and "warning" not in second
    assert proc.stderr.count("warning") == 1 and str(cut) in proc.stderr and "Traceback" not in proc.stderr


def run_without_root(*argv, cwd):
    """`serapp ARGV` subject to file permissions: CI runs as root, who may read anything, so
    the child gives up root's right to override them (Linux capabilities, util-linux setpriv)."""
    caps = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    return subprocess.run([*caps, sys.executable, "-m", "serapp", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_an_unreadable_subfolder_is_reported_and_fails_the_run(tmp_path, tiny_bundle):
    top = tmp_path / "clips"
    locked = top / "locked"
    locked.mkdir(parents=True)
    write_audio(top / "a.wav", speechlike(1.0), 16000)
    write_audio(locked / "b.wav", speechlike(1.0), 16000)
    locked.chmod(0o000)
    try:
        proc = run_without_root("predict", top, "--model", tiny_bundle, "--format", "jsonl", cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    assert [json.loads(line)["path"] for line in proc.stdout.splitlines()] == [str(top / "a.wav")]
    assert f"{locked}: cannot read this folder (permission denied)" in proc.stderr and "Traceback" not in proc.stderr


def test_misleading_decoder_messages_are_replaced_by_the_cause(tmp_path, tiny_bundle):
    text = tmp_path / "notes.mp3"
    text.write_text("shopping list: milk, eggs\n" * 20)
    private = write_audio(tmp_path / "private.wav", speechlike(1.0), 16000)
    private.chmod(0o000)
    proc = run_without_root("predict", text, private, "--model", tiny_bundle, cwd=tmp_path)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 2, proc.stderr
    assert err[0] == f"serapp: {text}: cannot read audio: not an audio file: it holds text"
    assert err[1] == f"serapp: {private}: cannot read audio: permission denied (cannot open it for reading)"


def test_model_info_describes_a_bundle_and_names_a_broken_one_in_one_line(capsys, tiny_bundle, tmp_path):
    from serapp.bundle import load_bundle

    code, out, _ = run(capsys, "model-info", str(tiny_bundle), "--format", "json")
    assert code == 0
    info = json.loads(out)
    assert info["parameters"] == sum(p.numel() for p in load_bundle(tiny_bundle)[0].parameters())
    assert info["labels"] == list(EMOTIONS) and info["path"] == str(tiny_bundle)
    code, out, _ = run(capsys, "model-info", str(tiny_bundle))
    assert code == 0 and out.splitlines()[1] == "labels: " + ", ".join(EMOTIONS)
    assert out.startswith(f"{tiny_bundle}: ")  # as named: runs' bundles often share one file name
    assert "no figures: an untrained network" in out  # a bundle without figures says why
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    code, out, err = run(capsys, "model-info", str(bad))
    assert code == 1 and out == "" and err.count("\n") == 1 and str(bad) in err


@pytest.mark.parametrize("argv", [
    ["talk.wav", "--present"], ["--present", "talk.wav"], ["--model", "small", "talk.wav", "--present"],
    ["--present", "--compare", "other.safetensors", "talk.wav"], ["--view=file", "talk.wav"],
])
def test_the_file_to_open_may_stand_anywhere_among_the_apps_options(argv):
    from serapp.cli import _file_as_open, build_parser

    parser = build_parser()
    args = parser.parse_args(_file_as_open(parser, argv))
    assert args.open == "talk.wav" and args.command is None
    assert args.present == ("--present" in argv)
    assert "[FILE]" in parser.format_usage()
    # a command is never taken for a file
    predict = parser.parse_args(_file_as_open(parser, ["predict", "talk.wav", "--model", "small"]))
    assert predict.command == "predict" and predict.paths == ["talk.wav"]
