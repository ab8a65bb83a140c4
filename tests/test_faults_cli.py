"""Faults, round two, through the real `serapp` and `ser-train` entry points: inputs that hung,
raised a traceback, or gave a wrong answer without a word."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from helpers import speechlike, write_audio

from serapp.cli import main

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt makes the application


def serapp(*argv, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "serapp", *map(str, argv)], capture_output=True, timeout=timeout,
                          **kw)


def one_line(stderr: bytes | str) -> bool:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    return "Traceback" not in text and len([line for line in text.splitlines() if line.strip()]) >= 1


def _wav(path, seconds=3.5, seed=1):
    return write_audio(path, speechlike(seconds, seed=seed), 16000, "PCM_16")


def _patched(src, dst, offset_of: bytes, delta: int, value: int):
    data = bytearray(src.read_bytes())
    i = data.find(offset_of) + delta
    data[i : i + 4] = struct.pack("<I", value)
    dst.write_bytes(bytes(data))
    return dst


# --- hangs --------------------------------------------------------------------------------------

def test_a_fifo_named_or_in_a_folder_is_passed_over_with_a_line_not_waited_on(tmp_path, tiny_bundle):
    tree = tmp_path / "tree"
    tree.mkdir()
    _wav(tree / "a.wav")
    os.mkfifo(tree / "fifo.wav")
    for target in (tree, tree / "fifo.wav"):
        proc = serapp("predict", target, "--model", tiny_bundle, "--format", "jsonl", timeout=60)
        assert proc.returncode == 1
        err = proc.stderr.decode()
        assert "fifo.wav: cannot read audio: a FIFO, not a regular file" in err and "Traceback" not in err
    assert [json.loads(line)["path"] for line in proc.stdout.decode().splitlines()] == []
    proc = serapp("predict", tree, "--model", tiny_bundle, "--format", "jsonl", timeout=60)
    assert [json.loads(line)["path"] for line in proc.stdout.decode().splitlines()] == [str(tree / "a.wav")]


@pytest.mark.parametrize("rate", [1, 2**31 - 1])
def test_a_header_with_an_impossible_rate_is_refused_in_one_line(tmp_path, tiny_bundle, rate):
    bad = _patched(_wav(tmp_path / "ok.wav"), tmp_path / "bad.wav", b"fmt ", 12, rate)
    proc = serapp("predict", bad, "--model", tiny_bundle, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and f"sample rate of {rate} Hz" in err and str(bad) in err and one_line(err)


# --- wrong or misleading ----------------------------------------------------------------------

def test_a_data_chunk_that_says_less_than_follows_is_said(tmp_path, capsys, tiny_bundle):
    bad = _patched(_wav(tmp_path / "ok.wav"), tmp_path / "short-header.wav", b"data", 4, 10)
    assert main(["predict", str(bad), "--model", str(tiny_bundle), "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    assert "the header disagrees with the file" in json.loads(out)["warning"] and "warning" in err


def test_a_flac_cut_in_half_is_read_as_far_as_it_goes_with_a_warning(tmp_path, capsys, tiny_bundle):
    full = tmp_path / "full.flac"
    sf.write(str(full), speechlike(3.5, seed=2), 16000)
    half = tmp_path / "half.flac"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert main(["predict", str(half), "--model", str(tiny_bundle), "--format", "jsonl"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.5 < result["duration_s"] < 3.5 and "decoding stopped after" in result["warning"]


def test_float_samples_far_beyond_full_scale_are_clipped_and_said(tmp_path, capsys, tiny_bundle):
    loud = tmp_path / "loud.wav"
    sf.write(str(loud), (speechlike(2.0, seed=3) * 5e30).astype(np.float32), 16000, subtype="FLOAT")
    with np.errstate(all="raise"):  # no numpy warning on the way
        assert main(["predict", str(loud), "--model", str(tiny_bundle), "--format", "jsonl", "--no-gate"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "clipped to ±1" in result["warning"] and result["label"] is not None


def test_a_file_name_that_is_not_utf8_is_read_and_printed_escaped(tmp_path, tiny_bundle):
    name = os.fsdecode(b"caf\xe9.wav")  # Latin-1 bytes, not UTF-8
    os.rename(_wav(tmp_path / "cafe.wav"), tmp_path / name)
    proc = serapp("predict", tmp_path / name, "--model", tiny_bundle, "--format", "table", timeout=60,
                  env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert proc.returncode == 0, proc.stderr
    assert b"caf\\xe9.wav" in proc.stdout and b"Traceback" not in proc.stderr


def test_a_newline_in_a_file_name_stays_on_its_row_of_the_table(tmp_path, capsys, tiny_bundle):
    odd = _wav(tmp_path / "two\nlines.wav")
    assert main(["predict", str(odd), "--model", str(tiny_bundle), "--format", "table"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 2 and "two\\nlines.wav" in rows[1]  # the header, then one row


def test_the_app_given_a_fifo_or_a_damaged_rate_says_so_and_stays_usable(qtbot, tmp_path):
    from qt_helpers import open_window

    os.mkfifo(tmp_path / "fifo.wav")
    bad = _patched(_wav(tmp_path / "ok.wav"), tmp_path / "one-hz.wav", b"fmt ", 12, 1)
    w = open_window(qtbot, tmp_path)
    for given, cause in ((tmp_path / "fifo.wav", "a FIFO, not a regular file"), (bad, "sample rate of 1 Hz")):
        w.open_file(str(given))
        qtbot.waitUntil(lambda: any(cause in m for m in w.messages), timeout=30000)
    w.open_file(str(tmp_path / "ok.wav"))  # and the next file reads
    qtbot.waitUntil(lambda: w.file_view.analysis is not None, timeout=30000)
    w.close()


def test_results_sent_to_a_full_disk_end_in_one_line(tmp_path, tiny_bundle):
    clips = [_wav(tmp_path / f"{k}.wav", seconds=1.0, seed=k) for k in range(3)]
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "serapp", "predict", *map(str, clips), "--model", str(tiny_bundle),
                               "--format", "csv"], stdout=full, stderr=subprocess.PIPE, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "standard output: cannot write the results (No space left on device)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# --- answer files, manifests, bench-report --------------------------------------------------------

def _answers(path, rows, rater="ann"):
    from serapp.listening.answers import COLUMNS

    lines = [",".join(COLUMNS)]
    for clip, truth, chosen in rows:
        lines.append(f"s1,{rater},2026-12-03T10:00:00.000+00:00,/c,{clip},{truth},{chosen},{int(truth == chosen)},"
                     f"800,0,0,,happy|sad,0.1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_manifest_that_is_not_utf8_is_one_line(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(b"path,label\ncaf\xe9.wav,happy\n")
    from trainer.cli import main as train_main

    assert train_main(["evaluate", "--model", "small", "--data", f"manifest={manifest}", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "m.csv: line 2: not UTF-8 text (byte 0xe9 at column 4)" in err and err.count("\n") == 1


def test_a_huge_number_in_an_answer_file_is_named_not_pythons_limit(tmp_path, capsys):
    bad = _answers(tmp_path / "a.csv", [("a.wav", "happy", "happy")])
    bad.write_text(bad.read_text().replace(",800,", "," + "9" * 5000 + ","), encoding="utf-8")
    assert main(["bench-report", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "a.csv: line 2: response_ms must be whole milliseconds" in err and "digits" not in err
    assert err.count("\n") == 1


def test_a_nul_in_a_rater_name_is_refused_with_its_line(tmp_path, capsys):
    bad = _answers(tmp_path / "a.csv", [("a.wav", "happy", "happy")], rater="an\x00n")
    assert main(["bench-report", str(bad)]) == 1
    assert "line 2: rater holds a NUL character" in capsys.readouterr().err


def test_kappa_says_why_it_is_undefined(tmp_path, capsys):
    one = _answers(tmp_path / "ann.csv", [("a.wav", "happy", "happy"), ("b.wav", "happy", "happy")])
    two = _answers(tmp_path / "bob.csv", [("a.wav", "happy", "happy"), ("b.wav", "happy", "happy")], rater="bob")
    assert main(["bench-report", str(one), str(two)]) == 0
    assert "every answer on the clips rated twice or more names the same emotion" in capsys.readouterr().out
    assert main(["bench-report", str(one)]) == 0
    assert "needs two or more raters on the same clips" in capsys.readouterr().out


def test_bench_report_with_a_root_that_is_not_there_or_no_clip_found_fails(tmp_path, capsys, tiny_bundle):
    answers = _answers(tmp_path / "a.csv", [("a.wav", "happy", "happy")])
    assert main(["bench-report", str(answers), "--model", str(tiny_bundle), "--root", "/nonexistent"]) == 2
    assert "--root /nonexistent: no such folder" in capsys.readouterr().err
    assert main(["bench-report", str(answers), "--model", str(tiny_bundle), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "the model could score none of the answered clips: 1 could not be read" in err and err.count("\n") == 1
