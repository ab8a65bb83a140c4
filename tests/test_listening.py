"""The listening test without Qt: answer file, clip selection, resume, report, bench-report."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import make_bundle, make_ravdess_corpus

from serapp.analysis import analyse_file
from serapp.cli import main as serapp_main
from serapp.corpora import detect_corpus, load_corpus
from serapp.listening.answers import (
    COLUMNS,
    Answer,
    AnswerFileError,
    AnswerLog,
    read_answers,
)
from serapp.listening.report import build_report, fleiss_kappa, score_model
from serapp.listening.session import (
    ListeningSession,
    ListeningSettings,
    SetupError,
    select_clips,
)
from serapp.predictor import load_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return make_ravdess_corpus(tmp_path_factory.mktemp("corpus"), actors=range(1, 7), reps=4, seconds=0.3)


@pytest.fixture(scope="module")
def corpus(corpus_dir):
    return load_corpus("ravdess", corpus_dir)


def _answer(**kw) -> Answer:
    base = dict(session_id="s1", rater="ann", timestamp_utc="2026-11-21T10:00:00.000+00:00", corpus="/c",
                clip="a.wav", true_label="angry", chosen_label="angry", correct=1, response_ms=812, replays=0,
                skipped=0, skip_reason="", label_set="angry|happy|sad", app_version="0.1.0")
    base.update(kw)
    return Answer(**base)


# --- the answer file ----------------------------------------------------------------------------

def test_header_once_columns_in_order_and_rows_round_trip(tmp_path):
    path = tmp_path / "sub" / "answers.csv"
    log = AnswerLog(path)
    rows = [_answer(), _answer(clip="b.wav", chosen_label="sad", correct=0, replays=2),
            _answer(clip="c.wav", chosen_label="", correct=0, response_ms=None, skipped=1, skip_reason="skipped by rater")]
    for r in rows:
        log.append(r)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 4
    assert COLUMNS == ("session_id", "rater", "timestamp_utc", "corpus", "clip", "true_label", "chosen_label",
                       "correct", "response_ms", "replays", "skipped", "skip_reason", "label_set", "app_version")
    assert read_answers(path) == rows
    assert AnswerLog(path).rows == rows  # reopening (resume) reads them back


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "'already quoted"])
def test_formula_cells_are_escaped_and_read_back_unchanged(tmp_path, text):
    path = tmp_path / "a.csv"
    AnswerLog(path).append(_answer(rater=text, skip_reason=text, skipped=1, chosen_label="", correct=0))
    with open(path, newline="", encoding="utf-8") as f:
        raw = list(csv.reader(f))[1]
    for cell in (raw[COLUMNS.index("rater")], raw[COLUMNS.index("skip_reason")]):
        assert cell == "'" + text and not cell.startswith(("=", "+", "-", "@", "\t"))
    back = read_answers(path)[0]
    assert back.rater == text and back.skip_reason == text


def test_a_torn_last_line_is_removed_on_resume_and_said(tmp_path):
    path = tmp_path / "a.csv"
    log = AnswerLog(path)
    log.append(_answer())
    with open(path, "a") as f:
        f.write("s1,ann,2026-11-21T10:00:01")  # a crash in the middle of a row
    again = AnswerLog(path)
    assert len(again.rows) == 1 and "incomplete last line" in again.repaired
    again.append(_answer(clip="b.wav"))
    assert [a.clip for a in read_answers(path)] == ["a.wav", "b.wav"]


@pytest.mark.parametrize("content, line, fragment", [
    ("session_id,rater\n", 1, "wrong header"),
    ("", 1, "empty file"),
    ("{h}\n{r}\ns1,ann,2026-11-21T10:00:00+00:00,/c,b.wav,angry\n", 3, "expected 14 fields, found 6"),
    ("{h}\n{r}\n{r2}\n", 3, "correct must be 0 or 1"),
    ("{h}\n{r3}\n", 2, "not ISO 8601"),
    ("{h}\n{r4}\n", 2, "chosen_label 'calm' is not in label_set"),
    ("{h}\n{r5}\n", 2, "correct is 0 but"),
])
def test_bad_answer_files_name_the_file_and_line(tmp_path, content, line, fragment):
    from serapp.listening.answers import format_row
    good = format_row(_answer()).strip()
    bad_correct = good.replace(",1,812,", ",yes,812,")
    bad_time = good.replace("2026-11-21T10:00:00.000+00:00", "yesterday")
    bad_label = format_row(_answer(chosen_label="calm", correct=0)).strip()
    bad_flag = format_row(_answer(correct=0)).strip()
    path = tmp_path / "bad.csv"
    path.write_text(content.format(h=",".join(COLUMNS), r=good, r2=bad_correct, r3=bad_time, r4=bad_label, r5=bad_flag))
    with pytest.raises(AnswerFileError) as err:
        read_answers(path)
    assert str(err.value).startswith(f"{path}: line {line}: ") and fragment in str(err.value)


# --- selection and sessions -----------------------------------------------------------------

def test_selection_is_stratified_seeded_and_spread_over_speakers(corpus):
    labels = ["happy", "sad", "angry"]  # neutral left out
    chosen = select_clips(corpus, labels, 12, seed=5)
    assert len(chosen) == 12 and Counter(r.label for r in chosen) == {"happy": 4, "sad": 4, "angry": 4}
    for lab in labels:  # 4 clips of a label come from 4 different speakers when balancing
        assert len({r.speaker for r in chosen if r.label == lab}) == 4
    assert select_clips(corpus, labels, 12, seed=5) == chosen  # same seed, same clips, same order
    shuffled = type(corpus)(corpus.name, corpus.root, random.Random(1).sample(corpus.records, len(corpus.records)))
    assert select_clips(shuffled, labels, 12, seed=5) == chosen  # the listing order does not matter
    assert select_clips(corpus, labels, 12, seed=6) != chosen
    assert [r.label for r in chosen] != sorted(r.label for r in chosen)  # presentation order is mixed


def test_a_label_short_of_clips_hands_its_share_to_the_others(corpus):
    few_sad = type(corpus)(corpus.name, corpus.root,
                           [r for r in corpus.records if r.label != "sad"] + [r for r in corpus.records if r.label == "sad"][:2])
    chosen = select_clips(few_sad, ["happy", "sad", "angry"], 14, seed=1)
    assert Counter(r.label for r in chosen) == {"happy": 6, "angry": 6, "sad": 2}


def test_session_writes_each_answer_and_resumes_with_the_rest(corpus, tmp_path):
    settings = ListeningSettings(rater="ann", labels=("happy", "sad", "angry"), n_clips=9, seed=2, practice_clips=3)
    path = tmp_path / "answers.csv"
    first = ListeningSession(corpus, settings, AnswerLog(path))
    plan = [first.clip(r) for r in first.plan]
    assert not {first.clip(r) for r in first.practice} & set(plan) and len(first.practice) == 3
    a = first.answer(first.current.label, 640.4, replays=1)
    assert (a.correct, a.response_ms, a.replays, a.skipped) == (1, 640, 1, 0)
    b = first.skip("skipped by rater")
    assert (b.skipped, b.chosen_label, b.correct, b.response_ms) == (1, "", 0, None)
    assert len(read_answers(path)) == 2  # on disk already, before any "save"

    again = ListeningSession(corpus, settings, AnswerLog(path))
    assert again.session_id == first.session_id and again.resumed == 2 and again.answered == 2
    assert [again.clip(r) for r in again.remaining] == plan[2:]
    other = ListeningSession(corpus, ListeningSettings(rater="bob", labels=settings.labels, n_clips=9, seed=2), AnswerLog(path))
    assert other.answered == 0 and other.session_id != first.session_id and [other.clip(r) for r in other.plan] == plan


@pytest.mark.parametrize("settings, fragment", [
    (ListeningSettings(rater=" ", labels=("happy", "sad")), "rater name"),
    (ListeningSettings(rater="a", labels=("happy",)), "at least two"),
    (ListeningSettings(rater="a", labels=("happy", "calm")), "no calm"),
])
def test_unusable_settings_are_refused(corpus, tmp_path, settings, fragment):
    with pytest.raises(SetupError, match=fragment):
        ListeningSession(corpus, settings, AnswerLog(tmp_path / "a.csv"))


def test_detect_corpus_by_naming_scheme(corpus_dir, tmp_path):
    assert detect_corpus(corpus_dir).name == "ravdess"
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "hello.wav").write_bytes(b"x")
    with pytest.raises(Exception, match="no known corpus scheme"):
        detect_corpus(tmp_path / "junk")


# --- killing the labelling process ------------------------------------------------------------

LABELLER = textwrap.dedent("""
    import sys
    from serapp.audio.io import load_audio
    from serapp.corpora import load_corpus
    from serapp.listening.answers import AnswerLog
    from serapp.listening.session import ListeningSession, ListeningSettings
    corpus = load_corpus("ravdess", sys.argv[1])
    settings = ListeningSettings(rater="kim", labels=("neutral", "happy", "sad", "angry"), n_clips=24, seed=9)
    session = ListeningSession(corpus, settings, AnswerLog(sys.argv[2]))
    while session.current is not None:
        load_audio(session.current.path)  # what the app does before offering a clip
        session.answer("happy", 500.0)
        print(session.answered, flush=True)
""")


def test_sigkill_mid_session_loses_nothing_and_resume_offers_the_rest(corpus_dir, corpus, tmp_path):
    path = tmp_path / "kim.csv"
    child = subprocess.Popen([sys.executable, "-c", LABELLER, str(corpus_dir), str(path)], stdout=subprocess.PIPE,
                             text=True, cwd=ROOT)
    for _ in range(5):
        reported = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)  # at whatever point the loop has reached
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    settings = ListeningSettings(rater="kim", labels=("neutral", "happy", "sad", "angry"), n_clips=24, seed=9)
    log = AnswerLog(path)
    assert len(log.rows) >= reported and len({a.clip for a in log.rows}) == len(log.rows)
    session = ListeningSession(corpus, settings, log)
    assert session.answered == len(log.rows) < 24
    assert {session.clip(r) for r in session.remaining} == {session.clip(r) for r in session.plan} - {a.clip for a in log.rows}
    while session.current is not None:
        session.answer("sad", 400.0)
    rows = read_answers(path)
    assert sorted(a.clip for a in rows) == sorted(session.clip(r) for r in session.plan)  # each exactly once
    assert len({a.session_id for a in rows}) == 1


# --- the report ------------------------------------------------------------------------------

def _fixture_rows():
    """Three raters, four clips; hand-computed figures in the test below."""
    truth = {"c1": "angry", "c2": "angry", "c3": "happy", "c4": "sad"}
    said = {"A": ["angry", "happy", "happy", "sad"], "B": ["angry", "angry", "sad", "sad"],
            "C": ["happy", "angry", "happy", None]}
    rows = []
    for rater, answers in said.items():
        for clip, chosen in zip(truth, answers):
            skipped = chosen is None
            rows.append(_answer(rater=rater, clip=clip, true_label=truth[clip], chosen_label=chosen or "",
                                correct=int(chosen == truth[clip]), skipped=int(skipped),
                                skip_reason="skipped by rater" if skipped else "", response_ms=None if skipped else 900))
    return rows


def test_report_matches_hand_computed_values():
    r = build_report(_fixture_rows())
    assert r["raters"]["A"] == {"n": 4, "accuracy": 0.75, "ua": pytest.approx((0.5 + 1 + 1) / 3), "skipped": 0,
                                "per_class_recall": {"happy": 1.0, "sad": 1.0, "angry": 0.5}}
    for rater, (n, acc, ua, skipped) in {"B": (4, 0.75, (1 + 0 + 1) / 3, 0), "C": (3, 2 / 3, 0.75, 1)}.items():
        got = r["raters"][rater]
        assert (got["n"], got["accuracy"], got["ua"], got["skipped"]) == (n, pytest.approx(acc), pytest.approx(ua), skipped)
        recall = [v for v in got["per_class_recall"].values() if v is not None]
        assert got["ua"] == pytest.approx(sum(recall) / len(recall))  # UA is the mean of the rater's own recalls
    p = r["pooled"]
    assert (p["n"], p["skipped"], p["labels"], p["tested"]) == (11, 1, ["happy", "sad", "angry"], ["happy", "sad", "angry"])
    assert p["accuracy"] == pytest.approx(8 / 11)
    assert p["per_class_recall"] == pytest.approx({"happy": 2 / 3, "sad": 1.0, "angry": 4 / 6})
    assert p["ua"] == pytest.approx((2 / 3 + 1 + 4 / 6) / 3)
    assert p["confusion"] == [[2, 1, 0], [0, 2, 0], [2, 0, 4]]  # rows true, columns chosen: happy, sad, angry
    # Fleiss with 3, 3, 3 and 2 raters per clip: P-bar = (1/3 + 1/3 + 1/3 + 1) / 4 = 0.5,
    # category shares 4/11 angry, 4/11 happy, 3/11 sad, so P_e = 41/121 and kappa = 19.5 / 80.
    assert r["kappa"] == pytest.approx(19.5 / 80)
    assert r["kappa_detail"] == {"clips": 4, "raters": 3}


def test_fleiss_kappa_on_the_textbook_table():
    # Fleiss (1971) / the standard worked example: 10 subjects, 14 raters, 5 categories, kappa 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    items = [[c for c, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.2099, abs=5e-4)
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) is None  # one category only: undefined
    assert fleiss_kappa([["a"]]) is None


def _write_rows(path, rows):
    log = AnswerLog(path)
    for a in rows:
        log.append(a)
    return path


def test_bench_report_json_and_text(tmp_path, capsys):
    rows = _fixture_rows()
    a = _write_rows(tmp_path / "a.csv", [x for x in rows if x.rater != "C"])
    c = _write_rows(tmp_path / "c.csv", [x for x in rows if x.rater == "C"])
    assert serapp_main(["bench-report", str(a), str(c), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"raters", "pooled", "kappa"} and "model" not in out
    assert set(out["raters"]["A"]) >= {"n", "accuracy", "ua"}
    assert set(out["pooled"]) >= {"n", "accuracy", "ua", "per_class_recall", "confusion"}
    assert out["kappa"] == pytest.approx(19.5 / 80) and out["pooled"]["n"] == 11
    assert serapp_main(["bench-report", str(a), str(c)]) == 0
    text = capsys.readouterr().out
    assert "pooled" in text and "72.7%" in text and "Fleiss' kappa: 0.244 over 4 clips rated by 3 raters" in text


def test_bench_report_bad_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(COLUMNS) + "\nnot,enough\n")
    assert serapp_main(["bench-report", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"serapp: {bad}: line 2: expected 14 fields, found 2"


def _spoken_corpus(root, labels, humming=None):
    """RAVDESS-named clips of a voice the speech gate hears (the synthetic class cues are too short
    and plain for it); the actor named `humming` only hums."""
    from helpers import speechlike, tone, write_audio

    corpus_dir = make_ravdess_corpus(root, actors=range(1, 7), labels=labels, reps=2)
    for k, clip in enumerate(sorted(corpus_dir.rglob("*.wav"))):
        write_audio(clip, tone(1.0, 16000, 50) if clip.parent.name == humming else speechlike(1.0, seed=k))
    return corpus_dir


def test_model_scored_on_the_same_clips_with_the_same_label_choice(tmp_path, capsys):
    """Each clip is read as `serapp predict` reads a file (the mean of its speech windows), so a
    clip with no speech in it is left out, and says why."""
    corpus_dir = _spoken_corpus(tmp_path / "corpus", ("happy", "angry"), humming="Actor_01")
    corpus = load_corpus("ravdess", corpus_dir)
    bundle, _ = make_bundle(tmp_path / "m.safetensors", window_s=0.5)
    settings = ListeningSettings(rater="ann", labels=("happy", "angry"), n_clips=8, seed=3)
    path = tmp_path / "ann.csv"
    session = ListeningSession(corpus, settings, AnswerLog(path))
    broken = session.current  # one skipped row: the model skips that clip too
    session.skip("skipped by rater")
    while session.current is not None:
        session.answer("happy", 700.0)
    predictor = load_model(bundle, device="cpu")
    model = score_model(predictor, read_answers(path), bundle="m")
    answered = [a for a in read_answers(path) if not a.skipped]
    humming = [a for a in answered if a.clip.startswith("Actor_01")]
    assert len(answered) == 7 and humming and model["excluded"] == {"no speech found": len(humming)}
    n = len(answered) - len(humming)
    assert model["n"] == n and model["labels"] == ["happy", "angry"]
    expected = Counter()
    for a in read_answers(path):
        if a.skipped:
            assert a.clip == session.clip(broken)
            continue
        if a in humming:
            assert analyse_file(corpus_dir / a.clip, predictor).overall.label is None
            continue
        probs = analyse_file(corpus_dir / a.clip, predictor).overall.probabilities
        expected[(a.true_label, max(("happy", "angry"), key=probs.get))] += 1
    assert model["confusion"] == [[expected[(t, c)] for c in ("happy", "angry")] for t in ("happy", "angry")]
    assert model["humans_same_clips"]["n"] == n and model["humans_same_clips"]["accuracy"] == pytest.approx(
        sum(a.correct for a in answered if a not in humming) / n)
    assert serapp_main(["bench-report", str(path), "--model", str(bundle), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["n"] == n and out["model"]["accuracy"] == pytest.approx(model["accuracy"])
    # The corpus moved: --root finds the clips again.
    moved = tmp_path / "moved"
    os.symlink(corpus_dir, moved)
    rows = [a.__class__(**{**a.__dict__, "corpus": "/nowhere"}) for a in read_answers(path)]
    assert score_model(predictor, rows, root=moved)["n"] == n
    assert score_model(predictor, rows)["excluded"] == {"could not be read": 7}


_FULL_DISK_SCRIPT = textwrap.dedent("""
    import resource, sys
    from serapp.corpora import load_corpus
    from serapp.listening.answers import AnswerLog
    from serapp.listening.session import ListeningSession, ListeningSettings
    path, corpus_dir, room = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = ListeningSettings(rater="ann", labels=("happy", "sad"), n_clips=4, seed=1)
    session = ListeningSession(load_corpus("ravdess", corpus_dir), settings, AnswerLog(path))
    before, current = open(path, "rb").read(), session.current
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + room, hard))  # the disk fills mid-row
    try:
        session.answer("sad", 500.0)
    except OSError as exc:
        print("refused:", exc.strerror)
    else:
        sys.exit("the write was not refused")
    assert open(path, "rb").read() == before, "a torn row was left behind"
    assert session.current == current and session.answered == 1
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # room again: the same clip is answered
    session.answer("sad", 500.0)
""")


def test_a_write_the_disk_refuses_leaves_no_torn_row_and_the_retry_lands(corpus_dir, corpus, tmp_path):
    """A real failing write: RLIMIT_FSIZE stops the row 20 bytes in, as a full disk would."""
    path = tmp_path / "a.csv"
    session = ListeningSession(corpus, ListeningSettings(rater="ann", labels=("happy", "sad"), n_clips=4, seed=1),
                               AnswerLog(path))
    session.answer("happy", 500.0)
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK_SCRIPT, str(path), str(corpus_dir), "20"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "refused: File too large" in proc.stdout
    rows = read_answers(path)
    assert [a.chosen_label for a in rows] == ["happy", "sad"]
    assert ListeningSession(corpus, session.settings, AnswerLog(path)).answered == 2


def test_answer_file_errors_name_the_real_cause(tmp_path):
    from serapp.listening.answers import format_row

    with pytest.raises(AnswerFileError) as err:
        read_answers(tmp_path / "absent.csv")
    assert str(err.value) == f"{tmp_path / 'absent.csv'}: no such file"
    latin = tmp_path / "latin1.csv"
    latin.write_bytes((",".join(COLUMNS) + "\n" + format_row(_answer(rater="Zoë"))).encode("latin-1"))
    with pytest.raises(AnswerFileError) as err:
        read_answers(latin)
    assert str(err.value).startswith(f"{latin}: line 2: not UTF-8 text (byte 0xeb at column 6)")


def test_a_very_long_cell_is_bounded_so_the_file_reads_back(tmp_path):
    log = AnswerLog(tmp_path / "a.csv")
    reason = "decoder says: " + "x" * 200_000
    log.append(_answer(skipped=1, chosen_label="", correct=0, skip_reason=reason))
    log.append(_answer(clip="b.wav"))
    rows = read_answers(tmp_path / "a.csv")
    assert [r.clip for r in rows] == ["a.wav", "b.wav"]
    assert rows[0].skip_reason.startswith("decoder says: xxx") and rows[0].skip_reason.endswith("…")
    assert len(rows[0].skip_reason) <= 4000


def test_an_answer_file_in_an_impossible_place_is_an_os_error(corpus, tmp_path):
    (tmp_path / "file").write_text("x")
    session = ListeningSession(corpus, ListeningSettings(rater="ann", labels=("happy", "sad"), n_clips=2, seed=1),
                               AnswerLog(tmp_path / "file" / "a.csv"))
    with pytest.raises(OSError):
        session.answer("happy", 1.0)
    assert session.answered == 0


def test_bare_model_flag_uses_the_bundled_model_and_flags_its_training_speakers(tmp_path, capsys):
    corpus = load_corpus("ravdess", _spoken_corpus(tmp_path / "corpus", ("happy", "sad")))
    path = tmp_path / "ann.csv"
    session = ListeningSession(corpus, ListeningSettings(rater="ann", labels=("happy", "sad"), n_clips=6, seed=2),
                               AnswerLog(path))
    while session.current is not None:
        session.answer("sad", 300.0)
    assert serapp_main(["bench-report", str(path), "--model", "--format", "json"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    # The bundled model was trained (or validated) on every RAVDESS actor, so clips named like
    # RAVDESS actors 01-06 count as heard in training. Newer bundles list speakers per corpus.
    from serapp.bundle import read_bundle_meta
    from serapp.predictor import default_bundle_path
    t = read_bundle_meta(default_bundle_path()).training
    ravdess = next((c for c in t.get("corpora", []) if c["name"] == "ravdess"), t)
    seen = set(ravdess["train_speakers"]) | set(ravdess.get("val_speakers", []))
    assert model["n"] == 6 and model["speakers_seen_in_training"] == sum(r.speaker in seen for r in session.plan) > 0
    assert model["training_corpora"] == "ravdess"
    assert serapp_main(["bench-report", str(path), "--model"]) == 0
    assert "trained on (ravdess)" in capsys.readouterr().out


def test_per_rater_scores_for_many_raters_match_the_one_metrics_rule():
    """bench-report is linear in raters (one vectorised pass; benchmarks/bench_report.py times
    100,000); each rater's figures must still be classification_metrics' own."""
    from serapp.metrics import accuracy_ua_by_group, classification_metrics

    rng = random.Random(3)
    labels = ["happy", "sad", "angry"]
    rows = []
    for i in range(3000):
        truth, chosen = rng.choice(labels), rng.choice(labels)
        skipped = int(rng.random() < 0.1)
        rows.append(_answer(rater=f"r{rng.randrange(700)}", clip=f"c{i}.wav", true_label=truth,
                            chosen_label="" if skipped else chosen, correct=int(not skipped and truth == chosen),
                            skipped=skipped, skip_reason="x" if skipped else "", label_set="|".join(labels)))
    report = build_report(rows)
    for name, got in report["raters"].items():
        mine = [a for a in rows if a.rater == name and not a.skipped]
        m = classification_metrics([labels.index(a.true_label) for a in mine],
                                   [labels.index(a.chosen_label) for a in mine], labels)
        assert got["n"] == m["n"] and got["skipped"] == sum(a.skipped for a in rows if a.rater == name)
        if m["n"]:
            assert got["accuracy"] == pytest.approx(m["wa"]) and got["ua"] == pytest.approx(m["ua"])
    n, acc, ua = accuracy_ua_by_group([0, 0, 2], [1, 0, 1], [1, 1, 1], 3, 2)
    assert list(n) == [2, 0, 1] and acc[0] == 0.5 and np.isnan(acc[1]) and ua[0] == 0.5 and ua[2] == 1.0
