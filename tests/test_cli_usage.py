"""The command line as a newcomer meets it (issue 36, items 16-21): what a mistake says and
the status it exits with, one rule for how much speech a voice profile needs, and output that
lines up. Through `serapp.cli.main` and real processes."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import speechlike, write_audio

from serapp.calibration import check_take
from serapp.cli import main
from serapp.predictor import load_model
from serapp.profiles import MIN_SPEECH_S, ProfileStore, from_voice


def serapp(*argv):
    return subprocess.run([sys.executable, "-m", "serapp", *map(str, argv)], capture_output=True, text=True,
                          timeout=120)


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def short_voice(tmp_path):
    """4 s of speech-like sound: a few speech windows, under the profile minimum."""
    return write_audio(tmp_path / "short.wav", speechlike(4.0, seed=2))


# item 16
def test_adapt_that_took_the_files_to_read_says_so_and_double_dash_ends_its_list(capsys, tmp_path, clip):
    voice = tmp_path / "me"
    voice.mkdir()
    write_audio(voice / "one.wav", speechlike(3.0, seed=5))
    code, _, err = run(capsys, "predict", "--adapt", voice, clip)
    assert code == 2 and "Traceback" not in err
    assert "--adapt took every path after it" in err and str(clip) in err and "end its list with --" in err
    code, out, err = run(capsys, "predict", "--format", "jsonl", "--no-gate", "--adapt", voice, "--", clip)
    assert code == 0, err
    assert json.loads(out)["path"] == str(clip) and "adapted to the voice" in err


# item 17
@pytest.mark.parametrize("argv, usage", [
    (["predict", "--format", "nope", "x.wav"], "usage: serapp predict "),
    (["predict", "--hop", "1", "x.wav"], "usage: serapp predict "),
    (["profile", "create"], "usage: serapp profile create "),
    (["model-info", "--format", "nope"], "usage: serapp model-info "),
])
def test_a_commands_usage_line_and_error_name_the_command(argv, usage):
    proc = serapp(*argv)
    assert proc.returncode == 2
    assert proc.stderr.startswith(usage), proc.stderr
    assert f"{usage.removeprefix('usage: ').strip()}: error:" in proc.stderr
    assert "[options] [FILE]" not in proc.stderr and "COMMAND ..." not in proc.stderr


# item 18
def test_usage_mistakes_exit_2_and_failed_files_1(capsys, clip, short_voice):
    predictor = load_model(None, device="cpu")
    voice = predictor.new_voice()
    voice.update(np.random.default_rng(0).normal(size=(20, *voice.prior_mean.shape)))
    ProfileStore().save(from_voice("Ann", voice, predictor))
    for argv, said in [
        (["predict", clip, "--model", "small", "--adapt", short_voice], "does not adapt to a voice"),
        (["predict", clip, "--model", "small", "--profile", "Ann"], "does not adapt to a voice"),
        (["predict", clip, "--profile", "Nobody"], "no voice profile named 'Nobody'"),
        (["profile", "delete", "Nobody"], "no voice profile named 'Nobody'"),
        (["profile", "create", "../up", short_voice], "cannot name a voice profile"),
        (["model-info", "nosuch"], "nosuch: no such file, nor a bundled model's name (default, small)"),
    ]:
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, ""), (argv, err)
        assert err.count("\n") == 1 and said in err, (argv, err)
    code, _, err = run(capsys, "predict", clip.parent / "absent.wav", "--model", "small")
    assert code == 1 and "no such file" in err  # a file that fails is 1


# item 19
def test_one_speech_rule_for_profile_create_the_take_and_profile_list(capsys, tmp_path, short_voice):
    code, out, err = run(capsys, "profile", "create", "Short", short_voice)
    assert code == 1 and out == "" and "Traceback" not in err
    said = err.splitlines()[-1]
    assert f"a profile needs at least {MIN_SPEECH_S:g} s" in said
    heard = said.split("only ")[1].split(" was heard")[0]  # "1.5 s of speech"
    # the app's take check counts the same clip the same way, against the same minimum
    take = check_take(speechlike(4.0, seed=2), 16000)
    assert take.startswith(f"only {heard} was heard; a profile needs at least {MIN_SPEECH_S:g} s")

    long_voice = write_audio(tmp_path / "long.wav", speechlike(12.0, seed=3))
    assert check_take(speechlike(12.0, seed=3), 16000) is None
    code, out, err = run(capsys, "profile", "create", "Long", long_voice)
    assert code == 0, err
    created = out.split(": ")[1].split(",")[0]  # "9.5 s of speech"
    assert created.endswith(" s of speech")
    code, out, _ = run(capsys, "profile", "list")
    assert code == 0 and out.split("\t")[1] == created
    code, _, err = run(capsys, "predict", short_voice, "--profile", "Long")
    assert code == 0 and f"({created})" in err


# item 20
def test_the_table_lines_up_under_its_header(capsys, tmp_path, tiny_bundle):
    a = write_audio(tmp_path / "a.wav", speechlike(2.5))
    b = write_audio(tmp_path / "a much longer file name.wav", speechlike(1.5, seed=1))
    silent = write_audio(tmp_path / "s.wav", np.zeros(16000, np.float32))
    code, out, _ = run(capsys, "predict", a, b, silent, "--model", tiny_bundle, "--emotions", "all")
    assert code == 0
    header, *rows = out.splitlines()
    assert len(rows) == 3
    for column in ("EMOTION", "its three", "file"):
        at = header.index(column)
        assert all(row[at - 1] == " " and row[at] != " " for row in rows), (column, out)
    assert [row[header.index("file"):] for row in rows] == [str(a), str(b), str(silent)]
    end = header.index("time") + len("time")
    assert all(row[end - 2:end] == "ms" for row in rows)  # right-aligned under their heading


def test_csv_with_a_window_keeps_each_files_overall_row(capsys, clip, tiny_bundle):
    args = ["predict", clip, "--model", tiny_bundle, "--window", "1"]
    code, out, _ = run(capsys, *args, "--format", "jsonl")
    whole = json.loads(out)
    code, out, _ = run(capsys, *args, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1 + len(whole["segments"])
    first = rows[0]
    assert (first["start_s"], first["end_s"]) == ("", "")  # the whole file, no window
    assert first["label"] == whole["label"] and float(first["speech_fraction"]) == whole["speech_fraction"]
    assert float(first[whole["label"]]) == pytest.approx(whole["probabilities"][whole["label"]], abs=1e-6)
    assert [float(r["start_s"]) for r in rows[1:]] == [s["start_s"] for s in whole["segments"]]


# item 21
def test_messages_say_what_the_thing_is(capsys, tmp_path, clip, short_voice):
    wav = write_audio(tmp_path / "x.wav", speechlike(1.0))
    code, _, err = run(capsys, "bench-report", wav)
    assert code == 1 and f"{wav}: not an answer file" in err and err.count("\n") == 1
    code, _, err = run(capsys, "predict", clip, "--adapt", short_voice, "--format", "jsonl")
    assert code == 0, err
    adapted = next(line for line in err.splitlines() if "adapted to the voice" in line)
    windows = int(adapted.split(": ")[2].split()[0])
    assert adapted.split(": ")[2].startswith(f"{windows} speech window{'' if windows == 1 else 's'} (")
    assert f"({windows * 0.5:g} s of speech)" in adapted


def test_one_window_is_one_window(capsys, tmp_path, clip):
    one = write_audio(tmp_path / "one.wav", speechlike(2.0, seed=4))  # shorter than the model's 3 s: one window
    code, _, err = run(capsys, "predict", "--format", "jsonl", "--adapt", one, "--", clip)
    assert code == 0, err
    adapted = next(line for line in err.splitlines() if "adapted to the voice" in line)
    assert "1 speech window (0.5 s of speech)" in adapted and "windows" not in adapted
