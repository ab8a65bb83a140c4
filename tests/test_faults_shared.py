"""Faults, round three: files people share (answer files, voice profiles) and the CSVs and lines
serapp writes from them, through the real `serapp` entry point."""

import json
import os
import resource
import subprocess
import sys

import numpy as np
import pytest
from helpers import make_bundle, speechlike, write_audio

from serapp.cli import main
from serapp.csv_cells import CsvWriter
from serapp.listening.answers import COLUMNS, Answer, AnswerLog

FORMULA = "=cmd|' -C calc'!A0"


def serapp(*argv, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "serapp", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def _answer(clip="a.wav", rater="ann", truth="happy", chosen="happy", **kw) -> Answer:
    return Answer(**{"session_id": "s1", "rater": rater, "timestamp_utc": "2026-12-03T10:00:00.000+00:00",
                     "corpus": "/c", "clip": clip, "true_label": truth, "chosen_label": chosen,
                     "correct": int(truth == chosen), "response_ms": 800, "replays": 0, "skipped": 0,
                     "skip_reason": "", "label_set": "happy|sad", "app_version": "0.1", **kw})


def _profile(folder, stem, **edit):
    """A profile file as `serapp profile create` writes one (4 features), with `edit` applied."""
    raw = {"format": "serapp-voice-profile", "version": 1, "name": stem, "created_utc": "2026-12-03T10:00:00Z",
           "model": "default.safetensors", "features": "0123456789abcdef", "windows": 10, "shape": [4],
           "sum": [1.0, 2.0, 3.0, 4.0], "sumsq": [1.0, 4.0, 9.0, 16.0], **edit}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


# --- security: formula cells, terminal escapes ----------------------------------------------------

def test_formula_cells_are_escaped_in_predict_csv_from_a_name_and_from_a_bundles_labels(tmp_path, capsys,
                                                                                        monkeypatch):
    bundle, _ = make_bundle(tmp_path / "m.safetensors", labels=["=1+1", "happy", "sad", "@SUM(A1)"])
    monkeypatch.chdir(tmp_path)  # the name as given: the path cell starts with "="
    clip = write_audio(f"{FORMULA}.wav", speechlike(1.5))
    for extra in ([], ["--window", "1"]):
        assert main(["predict", str(clip), "--model", str(bundle), "--format", "csv", "--no-gate", "--emotions", "all",
                     *extra]) == 0
        rows = list(__import__("csv").reader(capsys.readouterr().out.splitlines()))
        assert "'=1+1" in rows[0] and "'@SUM(A1)" in rows[0] and "=1+1" not in rows[0]
        assert all(row[0].startswith("'=cmd") for row in rows[1:]) and len(rows) > 1


def test_a_negative_number_is_written_as_a_number_not_as_text():
    # a recording's first window starts before the recording (-0.250): a number, never a formula
    out = __import__("io").StringIO()
    CsvWriter(out).writerow(["-0.250", "+1.5", "-1+2", "-inf", "=1", 3])
    assert out.getvalue() == "-0.250,+1.5,'-1+2,'-inf,'=1,3\n"


def test_control_characters_from_a_bundle_never_reach_the_terminal_raw(tmp_path, capsys):
    bundle, _ = make_bundle(tmp_path / "m.safetensors", labels=["\x1b[2Jneutral", "happy\nFORGED", "sad", "angry"])
    assert main(["model-info", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2Jneutral" in out and "happy\\nFORGED" in out
    clip = write_audio(tmp_path / "a.wav", speechlike(1.5))
    assert main(["predict", str(clip), "--model", str(bundle), "--no-gate", "--window", "1", "--emotions", "all"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and not any(line.startswith("FORGED") for line in out.splitlines())


def test_a_profile_name_with_a_newline_or_escape_is_one_escaped_line_in_the_list(private_data_dir, capsys):
    _profile(private_data_dir / "profiles", "ann\nbob\x1b[31m")
    assert main(["profile", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("ann\\nbob\\x1b[31m\t") and len(out.splitlines()) == 1


# --- data loss ----------------------------------------------------------------------------------

def test_a_carriage_return_in_a_clip_name_round_trips_and_bench_report_reads_every_answer(tmp_path, capsys):
    path = tmp_path / "a.csv"
    log = AnswerLog(path)
    log.append(_answer("happy/take\r2.wav"))
    log.append(_answer("b.wav", truth="sad", chosen="happy"))
    assert [a.clip for a in AnswerLog(path).rows] == ["happy/take\r2.wav", "b.wav"]  # resuming keeps both
    assert main(["bench-report", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["pooled"]["n"] == 2


def test_a_bad_line_costs_that_line_only_in_bench_report_and_on_resuming(tmp_path, capsys):
    from serapp.listening.answers import format_row

    path = tmp_path / "a.csv"
    good = [format_row(_answer(f"{k}.wav")) for k in range(3)]
    path.write_text(",".join(COLUMNS) + "\n" + good[0] + "s1,ann,broken\n" + good[1] + good[2], encoding="utf-8")
    assert main(["bench-report", str(path), "--format", "json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["pooled"]["n"] == 3
    assert err == f"serapp: {path}: line 3: expected 14 fields, found 3; that line is left out\n"
    log = AnswerLog(path)
    assert [a.clip for a in log.rows] == ["0.wav", "1.wav", "2.wav"] and "line 3" in log.problems[0]


def _no_space(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return apply


def test_renaming_a_profile_on_a_full_disk_moves_neither_file(private_data_dir):
    folder = private_data_dir / "profiles"
    _profile(folder, "alice")
    (folder / "alice.wav").write_bytes(b"RIFF")
    proc = serapp("profile", "rename", "alice", "bob", preexec_fn=_no_space(0))  # no byte may be written
    assert proc.returncode == 1 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["alice.json", "alice.wav"]
    assert serapp("profile", "rename", "alice", "bob").returncode == 0  # room again: both move
    assert sorted(p.name for p in folder.iterdir()) == ["bob.json", "bob.wav"]


# --- hangs ----------------------------------------------------------------------------------------

def test_a_fifo_as_model_answer_file_or_profile_is_refused_unopened(tmp_path, private_data_dir):
    os.mkfifo(tmp_path / "m.safetensors")
    os.mkfifo(tmp_path / "a.csv")
    (private_data_dir / "profiles").mkdir()
    os.mkfifo(private_data_dir / "profiles" / "ann.json")
    clip = write_audio(tmp_path / "c.wav", speechlike(1.0))
    for argv, fragment in ((["predict", clip, "--model", tmp_path / "m.safetensors"], "m.safetensors: a FIFO, not a regular"),
                           (["bench-report", tmp_path / "a.csv"], "a.csv: a FIFO, not a regular file"),
                           (["profile", "list"], "ann.json: a FIFO, not a regular file"),
                           (["bench-report", "/dev/zero"], "/dev/zero: a device, not a regular file")):
        proc = serapp(*argv, timeout=60)
        assert fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode == (0 if argv[0] == "profile" else 1)


# --- tracebacks and wrong answers from a profile or an answer file ----------------------------------

@pytest.mark.parametrize("edit, fragment", [
    ({"windows": int("1" + "0" * 400)}, "windows must be a count"),
    ({"shape": "SHAPE"}, "shape must be"),
    ({"windows": True}, "windows must be a count"),
    ({"sum": [1e308] * 4, "sumsq": [1e308] * 4}, "its sums are out of range"),
    ({"sumsq": [-1.0, 4.0, 9.0, 16.0]}, "a sum of squares is negative"),
    ("NESTED", "not JSON, or nested too deep"),
])
def test_a_damaged_profile_is_blamed_in_one_line(private_data_dir, tmp_path, tiny_bundle, capsys, edit, fragment):
    folder = private_data_dir / "profiles"
    path = _profile(folder, "ann", **({} if edit == "NESTED" else edit))
    text = path.read_text()
    if edit == "NESTED":
        path.write_text("[" * 100_000 + "]" * 100_000)
    else:  # as a hand-edited file says it: 1e999 where a number overflows
        path.write_text(text.replace('"SHAPE"', "[1e999]"))
    clip = write_audio(tmp_path / "c.wav", speechlike(1.0))
    assert main(["predict", str(clip), "--model", str(tiny_bundle), "--profile", "ann"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: " in err and fragment in err
    assert main(["profile", "list"]) == 0
    assert fragment in capsys.readouterr().err


def test_a_profile_whose_name_is_not_its_file_name_is_said_not_listed_twice(private_data_dir, capsys):
    _profile(private_data_dir / "profiles", "template")
    _profile(private_data_dir / "profiles", "bob", name="template")
    assert main(["profile", "list"]) == 0
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.splitlines()] == ["template"]
    assert "bob.json: this file says it is the voice profile 'template'" in err


@pytest.mark.parametrize("column, value", [("replays", "²"), ("response_ms", "--5")])
def test_numbers_python_reads_but_int_refuses_are_named_with_their_line(tmp_path, capsys, column, value):
    from serapp.listening.answers import format_row

    row = format_row(_answer()).strip().split(",")
    row[COLUMNS.index(column)] = value
    path = tmp_path / "a.csv"
    path.write_text(",".join(COLUMNS) + "\n" + ",".join(row) + "\n", encoding="utf-8")
    assert main(["bench-report", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"a.csv: line 2: {column} must be" in err and err.count("\n") == 1


def test_adapt_with_many_files_says_how_many_and_names_a_few(tmp_path, capsys):
    quiet = write_audio(tmp_path / "quiet.wav", np.zeros(8000, np.float32))
    assert main(["predict", str(quiet), "--adapt", *[str(quiet)] * 50]) == 1
    err = capsys.readouterr().err
    assert "no speech found in 50 files or folders (" in err and err.count(str(quiet)) <= 4


# --- bench-report is linear in raters ---------------------------------------------------------

def test_bench_report_scores_every_rater_in_one_pass(monkeypatch):
    from serapp.listening import report

    calls = []
    real = report.score
    monkeypatch.setattr(report, "score", lambda *a: calls.append(1) or real(*a))
    answers = [_answer(f"{k % 7}.wav", rater=f"r{k}", chosen="sad" if k % 3 else "happy") for k in range(300)]
    result = report.build_report(answers)
    assert len(calls) == 1  # the pooled score; no scan of every answer per rater
    assert result["raters"]["r1"]["per_class_recall"] == {"happy": 0.0, "sad": None}
    assert result["raters"]["r0"]["per_class_recall"] == {"happy": 1.0, "sad": None}
