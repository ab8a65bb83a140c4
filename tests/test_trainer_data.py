"""Corpus loaders, label maps and evaluation protocols."""

import re

import numpy as np
import pytest
import soundfile as sf
from helpers import make_ravdess_corpus, tone

from serapp.corpora import CorpusError, load_corpus, load_manifest, parse_data_arg
from trainer.folds import (
    EMOBOX_RAVDESS,
    emobox_folds,
    full_training_split,
    leave_speakers_out,
    random_folds,
)


def _touch_audio(path, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(0.05, rate), rate)


@pytest.mark.parametrize("ext, rate", [("wav", 48000), ("flac", 16000)])
def test_ravdess_both_release_forms(tmp_path, ext, rate):
    make_ravdess_corpus(tmp_path, actors=[1, 2], labels=("neutral", "angry"), reps=2, rate=rate, ext=ext, seconds=0.05)
    _touch_audio(tmp_path / "Actor_01" / "02-01-05-01-01-01-01.wav")  # modality 02 = video: not audio-only
    c = load_corpus("ravdess", tmp_path)
    assert len(c.records) == 8 and c.speakers == ["01", "02"] and c.labels == ["neutral", "angry"]
    r = next(r for r in c.records if r.speaker == "01" and r.label == "angry")
    assert r.get("sex") == "male" and r.get("intensity") == "normal" and r.get("vocal") == "speech"
    assert [p.name for p in c.unparsed] == ["02-01-05-01-01-01-01.wav"]


@pytest.mark.parametrize(
    "corpus, names, expected",
    [
        ("crema-d", ["1001_DFA_ANG_XX.wav", "1002_IEO_HAP_HI.wav", "1002_IEO_NEU_XX.wav"],
         [("angry", "1001"), ("happy", "1002"), ("neutral", "1002")]),
        ("tess", ["OAF_angry/OAF_back_angry.wav", "YAF_pleasant_surprised/YAF_bite_ps.wav", "OAF_Fear/OAF_bar_fear.wav"],
         [("angry", "OAF"), ("surprised", "YAF"), ("fearful", "OAF")]),
        ("emodb", ["03a01Wa.wav", "08b02Tc.wav", "16a05Fb.wav"],
         [("angry", "03"), ("sad", "08"), ("happy", "16")]),
        ("savee", ["DC_a01.wav", "JE_sa03.wav", "KL/su12.wav"],
         [("angry", "DC"), ("sad", "JE"), ("surprised", "KL")]),
        ("emovo", ["f1/dis-f1-b1.wav", "m3/gio-m3-n5.wav", "m3/pau-m3-l2.wav"],
         [("disgust", "f1"), ("happy", "m3"), ("fearful", "m3")]),
        ("folders", ["anger/x.wav", "happy/y.flac", "Fear/z.wav"],
         [("angry", None), ("happy", None), ("fearful", None)]),
    ],
)
def test_named_corpora(tmp_path, corpus, names, expected):
    for name in names:
        _touch_audio(tmp_path / name)
    c = load_corpus(corpus, tmp_path)
    got = sorted((r.label, r.speaker) for r in c.records)
    assert got == sorted(expected)
    assert not c.unparsed


def test_labels_without_counterpart_are_counted_not_hidden(tmp_path):
    for name in ("03a01Wa.wav", "03a02La.wav", "09b01Lb.wav", "readme_notes.wav"):
        _touch_audio(tmp_path / name)
    c = load_corpus("emodb", tmp_path)
    assert [r.label for r in c.records] == ["angry"]
    assert c.excluded == {"boredom": 2}
    assert [p.name for p in c.unparsed] == ["readme_notes.wav"]
    text = c.summary()
    assert "boredom 2" in text and "1 file(s) not named per the emodb scheme" in text


def test_manifest(tmp_path):
    for n in ("a.wav", "sub/b.wav"):
        _touch_audio(tmp_path / n)
    m = tmp_path / "list.csv"
    m.write_text("path,label,speaker\na.wav,Anger,s1\nsub/b.wav,sad,s2\nsub/b.wav,boredom,s2\n\n")
    c = load_corpus("manifest", m)
    assert [(r.path, r.label, r.speaker) for r in c.records] == [
        (tmp_path / "a.wav", "angry", "s1"), (tmp_path / "sub/b.wav", "sad", "s2")]
    assert c.excluded == {"boredom": 1}
    m2 = tmp_path / "nospk.csv"
    m2.write_text("path,label\na.wav,happy\n")
    assert load_manifest(m2).records[0].speaker is None


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("file,emotion\na.wav,happy\n", "line 1: the header must be path,label[,speaker]"),
        ("path,label\na.wav,happy,extra\n", "line 2: expected 2 fields, found 3"),
        ("path,label\na.wav,happy\nb.wav,elated\n", "line 3: unknown emotion 'elated'"),
        ("path,label\n", "lists no usable clips"),
    ],
)
def test_bad_manifests(tmp_path, text, fragment):
    m = tmp_path / "m.csv"
    m.write_text(text)
    with pytest.raises(CorpusError, match=re.escape(fragment)) as e:
        load_manifest(m)
    assert str(m) in str(e.value)


def test_corpus_errors(tmp_path):
    with pytest.raises(CorpusError, match="no such folder"):
        load_corpus("ravdess", tmp_path / "absent")
    with pytest.raises(CorpusError, match="no audio files found"):
        load_corpus("ravdess", tmp_path)
    with pytest.raises(CorpusError, match="unknown corpus 'iemocap'"):
        load_corpus("iemocap", tmp_path)
    _touch_audio(tmp_path / "whatever.wav")
    with pytest.raises(CorpusError, match="none of the 1 audio files is named per the ravdess scheme"):
        load_corpus("ravdess", tmp_path)
    with pytest.raises(CorpusError, match="CORPUS=DIR"):
        parse_data_arg("ravdess")
    assert parse_data_arg("RAVDESS=/x/y") == ("ravdess", "/x/y")


@pytest.fixture(scope="module")
def ravdess24(tmp_path_factory):
    root = tmp_path_factory.mktemp("rav24")
    make_ravdess_corpus(root, actors=range(1, 25), labels=("neutral", "sad"), reps=1, seconds=0.05)
    return load_corpus("ravdess", root)


def test_emobox_folds_are_speaker_disjoint(ravdess24):
    folds = emobox_folds(ravdess24, n_val=2, seed=0)
    assert len(folds) == 6
    tested = []
    for split, (k, actors) in zip(folds, EMOBOX_RAVDESS.items()):
        train, val, test = split.speakers("train"), split.speakers("val"), split.speakers("test")
        assert test == set(actors) and split.name == f"fold{k}"
        assert not (train & val) and not (train & test) and not (val & test)
        assert len(val) == 2 and len(train) == 18
        assert {int(s) % 2 for s in val} == {0, 1}, "validation takes one male and one female actor"
        assert split.protocol_note == "speaker-independent"
        tested += sorted(test)
    assert sorted(tested) == [f"{a:02d}" for a in range(1, 25)]


def test_emobox_needs_ravdess_with_all_actors(ravdess24, tmp_path):
    make_ravdess_corpus(tmp_path, actors=range(1, 5), labels=("neutral",), reps=1, seconds=0.05)
    with pytest.raises(CorpusError, match="need actors"):
        emobox_folds(load_corpus("ravdess", tmp_path))


def test_leave_speakers_out(ravdess24):
    folds = leave_speakers_out(ravdess24, k=3, n_val=2, seed=1)
    tested = [s for f in folds for s in f.speakers("test")]
    assert sorted(tested) == ravdess24.speakers  # each speaker tested exactly once
    for f in folds:
        assert not (f.speakers("train") & f.speakers("test")) and not (f.speakers("val") & f.speakers("test"))
        assert not (f.speakers("train") & f.speakers("val"))


def test_random_split_is_flagged_speaker_dependent(ravdess24):
    folds = random_folds(ravdess24, n_folds=4, seed=0)
    for f in folds:
        assert f.speaker_dependent and "speaker-dependent" in f.protocol_note
        assert not {r.path for r in f.train} & {r.path for r in f.test}
        assert not {r.path for r in f.val} & {r.path for r in f.test}
    assert sorted(r.path for f in folds for r in f.test) == sorted(r.path for r in ravdess24.records)


def test_full_training_split_keeps_validation_speakers_apart(ravdess24):
    s = full_training_split(ravdess24, n_val=2)
    assert not s.test and len(s.speakers("val")) == 2 and not (s.speakers("train") & s.speakers("val"))
    assert len(s.speakers("train")) == 22
    assert np.isclose(len(s.train) + len(s.val), len(ravdess24.records))


@pytest.mark.parametrize("setting, fragment", [
    ("train.lr=-1", "train.lr must be in (0, 10]"),
    ("train.lr=nan", "train.lr must be in (0, 10]"),
    ("train.lr=abc", "train.lr must be a number, not 'abc'"),
    ("train.batch_size=0", "train.batch_size must be in [1, 65536]"),
    ("train.batch_size=2.5", "train.batch_size must be a whole number"),
    ("data.window_s=-1", "data.window_s must be in (0, 60]"),
    ("train.epochs=inf", "train.epochs must be a whole number"),
    ("augment.snr_db=[30.0, 5.0]", "augment.snr_db must be [low, high]"),
    ("augment.noise_prob=1.5", "augment.noise_prob must be in [0, 1]"),
    ('data.sampling="often"', "data.sampling must be shuffle or balanced"),
    ('data.protocol="loso"', "data.protocol must be one of emobox, speakers, random, loco"),
    ('train.lr_schedule="step"', "train.lr_schedule must be cosine or constant"),
    ("train.watch_test=1", "train.watch_test must be true or false"),
])
def test_bad_settings_are_one_line_usage_errors_before_any_corpus_is_read(tmp_path, capsys, setting, fragment):
    from trainer.cli import main as train_main

    code = train_main(["train", "--data", f"ravdess={tmp_path / 'not-read'}", "--set", setting, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "not-read" not in err  # the corpus was never looked at


def test_a_constant_schedule_keeps_the_rate_after_warm_up_where_cosine_decays_it():
    from trainer.config import load_config
    from trainer.end_to_end import _lr_lambda

    cosine = _lr_lambda(load_config(None, ["train.epochs=10", "train.warmup_epochs=2"]))
    constant = _lr_lambda(load_config(None, ["train.epochs=10", "train.warmup_epochs=2", 'train.lr_schedule="constant"']))
    assert [constant(e) for e in range(2)] == [cosine(e) for e in range(2)] == [1 / 3, 2 / 3]
    assert [constant(e) for e in range(2, 10)] == [1.0] * 8
    assert cosine(2) == 1.0 and cosine(9) < 0.1
