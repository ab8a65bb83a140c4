"""Several corpora: loaders by naming scheme, the cache, the label mask, the balanced sampler,
the scoring rule, the protocols, and a two-corpus training run end to end."""

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import make_corpus, nemo_speaker, synth_emotion

from serapp.corpora import CorpusError, detect_corpus, load_corpus
from serapp.labels import EMOTIONS
from serapp.scoring import RULE, ScoringRule
from trainer.cache import load_clips
from trainer.cli import main as train_main
from trainer.config import load_config
from trainer.data import ClipSet, Data, epoch_order
from trainer.folds import full_training_split, make_splits
from trainer.training import masked_cross_entropy, seeded_generator

ROOT = Path(__file__).resolve().parents[1]
FOUR = ("neutral", "happy", "sad", "angry")


# --- loaders --------------------------------------------------------------------------------------

@pytest.mark.parametrize("corpus, labels", [
    ("nemo", ("neutral", "happy", "sad", "angry", "fearful", "surprised")),
    ("urdu", FOUR),
    ("turev-db", ("calm", "happy", "sad", "angry")),
    ("tess", ("neutral", "happy", "fearful", "disgust", "surprised")),
    ("ased", ("neutral", "fearful", "happy", "sad", "angry")),
    ("emovo", ("neutral", "happy", "fearful", "sad", "angry", "disgust", "surprised")),
])
def test_each_loader_reads_its_corpus_naming(tmp_path, corpus, labels):
    make_corpus(tmp_path, corpus, speakers=[1, 2], labels=labels, reps=2, seconds=0.05)
    c = load_corpus(corpus, tmp_path)
    assert not c.unparsed and len(c.records) == 2 * len(labels) * 2
    assert sorted(c.labels) == sorted(labels)
    assert Counter(r.label for r in c.records) == {lab: 4 for lab in labels}
    assert len(c.speakers) == 2
    assert detect_corpus(tmp_path).name == corpus


def test_speakers_and_sex_come_from_names_or_the_corpus_table(tmp_path):
    make_corpus(tmp_path / "nemo", "nemo", speakers=[1, 2], labels=("angry",), reps=1, seconds=0.05)
    nemo = load_corpus("nemo", tmp_path / "nemo")
    assert {(r.speaker, r.get("sex")) for r in nemo.records} == {(nemo_speaker(1), "male"), (nemo_speaker(2), "female")}
    (tmp_path / "nemo" / "data.tsv").unlink()  # the names alone still give speaker and label
    assert {(r.speaker, r.label) for r in load_corpus("nemo", tmp_path / "nemo").records} == {
        (nemo_speaker(1), "angry"), (nemo_speaker(2), "angry")}
    for name in ("Angry/SM4_F48_A0100.wav", "Sad/SF10_F2_S002.wav"):  # URDU numbers run to 3 or 4 digits
        path = tmp_path / "urdu" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), synth_emotion("sad", 1, 0, 0.05), 16000)
    urdu = load_corpus("urdu", tmp_path / "urdu")
    assert sorted((r.speaker, r.label, r.get("sex")) for r in urdu.records) == [
        ("SF10", "sad", "female"), ("SM4", "angry", "male")]


def test_ased_speakers_go_by_their_number_and_their_sex_by_most_of_their_files(tmp_path):
    make_corpus(tmp_path, "ased", speakers=[3], labels=("neutral", "sad"), reps=2, seconds=0.05)
    odd = tmp_path / "04Sad" / "S4-07-02-01-03.wav"  # another gender code, and an upper-case letter
    sf.write(str(odd), synth_emotion("sad", 3, 5, 0.05), 16000)
    c = load_corpus("ased", tmp_path)
    assert not c.unparsed and c.speakers == ["03"] and len(c.records) == 5
    assert {r.get("sex") for r in c.records} == {"male"}  # speaker 3's files say male (02) but for one
    assert next(r for r in c.records if r.path == odd).label == "sad"
    emovo = load_corpus("emovo", make_corpus(tmp_path / "emovo", "emovo", speakers=[0, 1], labels=("sad",), reps=1,
                                             seconds=0.05))
    assert sorted((r.speaker, r.get("sex")) for r in emovo.records) == [("f1", "female"), ("m1", "male")]


def test_tess_file_named_oa_is_speaker_oaf(tmp_path):
    make_corpus(tmp_path, "tess", speakers=[0], labels=("neutral",), reps=1, seconds=0.05)
    odd = tmp_path / "OA_neutral" / "OA_bite_neutral.wav"
    odd.parent.mkdir()
    sf.write(str(odd), synth_emotion("neutral", 0, 1, 0.05), 16000)
    c = load_corpus("tess", tmp_path)
    assert not c.unparsed and c.speakers == ["OAF"]
    assert next(r for r in c.records if r.path == odd).label == "neutral"


@pytest.mark.parametrize("corpus, labels", [("ravdess", FOUR), ("tess", FOUR), ("nemo", FOUR), ("urdu", FOUR),
                                            ("turev-db", ("calm", "sad"))])
def test_an_opus_copy_gives_the_same_records_as_the_wav_release(tmp_path, corpus, labels):
    """Loaders go by names only: 48 kHz WAV (an official release) and 16 kHz Ogg Opus (the copy here)."""
    make_corpus(tmp_path / "wav", corpus, speakers=[1, 2], labels=labels, reps=2, ext="wav", rate=48000, seconds=0.1)
    for src in (tmp_path / "wav").rglob("*.wav"):
        dst = tmp_path / "ogg" / src.relative_to(tmp_path / "wav").with_suffix(".ogg")
        dst.parent.mkdir(parents=True, exist_ok=True)
        y, rate = sf.read(str(src))
        sf.write(str(dst), y[::3], rate // 3, format="OGG", subtype="OPUS")
    if corpus == "nemo":
        (tmp_path / "ogg" / "data.tsv").write_bytes((tmp_path / "wav" / "data.tsv").read_bytes())

    def key(c):
        return sorted((r.label, r.speaker, r.path.relative_to(c.root).with_suffix(""), r.extra) for r in c.records)

    wav, ogg = load_corpus(corpus, tmp_path / "wav"), load_corpus(corpus, tmp_path / "ogg")
    assert key(wav) == key(ogg) and len(wav.records) == len(labels) * 4


# --- the decoded-audio cache over several corpora -------------------------------------------------

def test_cache_keeps_several_corpora_apart_and_follows_changes(tmp_path):
    make_corpus(tmp_path / "a", "ravdess", speakers=[1, 2], labels=FOUR, reps=1, seconds=0.3)
    make_corpus(tmp_path / "b", "turev-db", speakers=[1, 2], labels=("calm", "sad"), reps=1, seconds=0.3, offset=3)
    cfg = load_config(None, ["data.trim_top_db=30.0"])
    corpora = [load_corpus("ravdess", tmp_path / "a"), load_corpus("turev-db", tmp_path / "b")]
    fresh = Data(corpora, cfg, None).audio
    cache = tmp_path / "cache"
    Data(corpora, cfg, cache)
    assert len(list(cache.glob("audio-*.npz"))) == 2  # one per corpus
    cached = Data(corpora, cfg, cache).audio
    assert fresh.keys() == cached.keys() and all(np.array_equal(fresh[k], cached[k]) for k in fresh)
    changed = next(r.path for r in corpora[1].records)  # a file of corpus b is replaced
    sf.write(str(changed), synth_emotion("angry", 9, 9, 0.5), 16000)
    again = Data([corpora[0], load_corpus("turev-db", tmp_path / "b")], cfg, cache).audio
    assert not np.array_equal(again[changed], cached[changed])
    assert all(np.array_equal(again[k], cached[k]) for k in cached if k != changed)
    assert len(list(cache.glob("audio-*.npz"))) == 3


def test_cache_follows_contents_so_a_fresh_copy_of_a_corpus_still_hits_it(tmp_path):
    make_corpus(tmp_path / "a", "ravdess", speakers=[1, 2], labels=FOUR, reps=1, seconds=0.3)
    cache = tmp_path / "cache"
    first, _ = load_clips(load_corpus("ravdess", tmp_path / "a").records, 16000, 30.0, cache, log=lambda *a, **k: None)
    shutil.copytree(tmp_path / "a", tmp_path / "copy", copy_function=shutil.copy)  # new path, new mtimes
    shutil.rmtree(tmp_path / "a")  # only the cache can give the old audio now
    said = []
    copy, _ = load_clips(load_corpus("ravdess", tmp_path / "copy").records, 16000, 30.0, cache,
                         log=lambda *a, **k: said.append(a))
    assert not said, f"a copied corpus was decoded again: {said}"
    assert len(list(cache.glob("audio-*.npz"))) == 1
    assert len(copy) == len(first) and all(np.array_equal(a, b) for a, b in zip(first, copy))


def test_a_cache_that_cannot_be_written_is_said_and_the_run_goes_on(tmp_path):
    make_corpus(tmp_path / "a", "ravdess", speakers=[1, 2], labels=FOUR, reps=1, seconds=0.3)
    (tmp_path / "file").write_text("not a folder")
    said = []
    clips, failures = load_clips(load_corpus("ravdess", tmp_path / "a").records, 16000, 30.0,
                                 tmp_path / "file" / "cache", log=lambda *a, **k: said.append(" ".join(a)))
    assert len(clips) == 8 and all(c is not None and c.size for c in clips) and not failures
    assert any(s.startswith("decoded audio not cached (") and ": cannot write: Not a directory)" in s for s in said), said


# --- the per-corpus label mask --------------------------------------------------------------------

def test_loss_ignores_labels_a_clip_corpus_lacks():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, requires_grad=True)
    target = torch.tensor([0, 2, 4])
    mask = torch.tensor([[1, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 0, 1]], dtype=torch.bool)
    loss = masked_cross_entropy(logits, target, mask, smoothing=0.1)
    loss.backward()
    assert torch.all(logits.grad[~mask] == 0), "a label the corpus lacks is never pushed down"
    pushed = logits.detach().clone()
    pushed[~mask] += 50.0
    assert torch.isclose(masked_cross_entropy(pushed, target, mask, 0.1), loss)
    expected = []
    for row, t, m in zip(logits.detach(), target, mask):  # cross-entropy over the corpus' labels alone
        logp = torch.log_softmax(row[m], dim=0)
        j = int(m[: t + 1].sum()) - 1
        expected.append(-(0.9 * logp[j] + 0.1 * logp.mean()))
    assert torch.isclose(loss, torch.stack(expected).mean())
    assert torch.equal(masked_cross_entropy(logits, target, None, 0.1),
                       torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.1))


def test_each_clip_masks_the_labels_its_corpus_lacks(tmp_path):
    make_corpus(tmp_path / "r", "ravdess", speakers=[1, 2, 3], labels=FOUR, reps=1, seconds=0.1)
    make_corpus(tmp_path / "t", "turev-db", speakers=[1, 2, 3], labels=("calm", "angry"), reps=1, seconds=0.1)
    cfg = load_config(None, ["data.trim_top_db=30.0"])
    data = Data([load_corpus("ravdess", tmp_path / "r"), load_corpus("turev-db", tmp_path / "t")], cfg, None)
    assert data.labels == ["neutral", "calm", "happy", "sad", "angry"]
    records = [r for c in data.corpora for r in c.records]
    clips = data.clipset(records, data.labels)
    masks = clips.masks()
    for row, group in zip(masks.tolist(), clips.groups):
        have = dict(zip(data.labels, row))
        if group == "ravdess":
            assert have == {"neutral": True, "calm": False, "happy": True, "sad": True, "angry": True}
        else:
            assert have == {"neutral": False, "calm": True, "happy": False, "sad": False, "angry": True}
    only_r = data.clipset(data.corpora[0].records, data.model_labels(data.corpora[0].records))
    assert only_r.labels == list(FOUR) and only_r.masks() is None  # one corpus: torch's own loss


# --- the balanced sampler -------------------------------------------------------------------------

def _groups_clipset():
    # corpus "big": 900 clips, 800 of label 0 and 100 of label 1; corpus "small": 100 clips, labels 0 and 2
    targets = [0] * 800 + [1] * 100 + [0] * 50 + [2] * 50
    groups = ["big"] * 900 + ["small"] * 100
    return ClipSet([np.zeros(1)] * 1000, targets, groups, {"big": ["a", "b"], "small": ["a", "c"]}, ["a", "b", "c"])


def test_balanced_sampler_shares_corpora_and_emotions():
    data = _groups_clipset()
    order = epoch_order(data, "balanced", seeded_generator(0, 1), 40_000).tolist()
    assert len(order) == 40_000
    by = Counter((data.groups[i], data.targets[i]) for i in order)
    share = {k: v / len(order) for k, v in by.items()}
    for key in (("big", 0), ("big", 1), ("small", 0), ("small", 2)):  # a quarter each
        assert abs(share[key] - 0.25) < 0.02, share
    assert order == epoch_order(data, "balanced", seeded_generator(0, 1), 40_000).tolist()  # seeded
    assert order != epoch_order(data, "balanced", seeded_generator(0, 2), 40_000).tolist()
    weighted = epoch_order(data, "balanced", seeded_generator(0, 1), 40_000, {"big": 3.0}).tolist()
    big = sum(data.groups[i] == "big" for i in weighted) / len(weighted)
    assert abs(big - 0.75) < 0.02
    by_size = epoch_order(data, "balanced", seeded_generator(0, 1), 40_000, power=1.0).tolist()
    assert abs(sum(data.groups[i] == "big" for i in by_size) / 40_000 - 0.9) < 0.02
    shuffled = epoch_order(data, "shuffle", seeded_generator(0, 1)).tolist()
    assert sorted(shuffled) == list(range(1000))  # every clip once


# --- the scoring rule -----------------------------------------------------------------------------

def _probs(**p):
    return np.array([p.get(lab, 0.0) for lab in EMOTIONS])


def test_scoring_rule_argmax_over_the_test_labels_with_the_neutral_calm_merge():
    p = _probs(calm=0.35, neutral=0.2, happy=0.3, disgust=0.15)
    tess = ScoringRule(EMOTIONS, ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"])
    assert tess.choose_label(p) == "neutral"  # calm's 0.35 counts as neutral: 0.55
    assert tess.merged == {"calm": "neutral"} and not tess.unscorable
    turev = ScoringRule(EMOTIONS, ["angry", "calm", "happy", "sad"])
    assert turev.choose_label(_probs(neutral=0.3, calm=0.1, happy=0.35)) == "calm"
    assert turev.merged == {"neutral": "calm"}
    both = ScoringRule(EMOTIONS, EMOTIONS)  # both present: no merge, a plain argmax
    assert both.choose_label(p) == "calm" and both.merged == {}
    assert both.choose_label(_probs(happy=0.3, disgust=0.7)) == "disgust"
    four = ScoringRule(EMOTIONS, FOUR)
    assert four.choose_label(_probs(disgust=0.9, sad=0.06, angry=0.04)) == "sad"  # other labels never win
    small = ScoringRule(["neutral", "happy"], ["calm", "happy", "disgust"])
    assert small.labels == ["calm", "happy"] and small.unscorable == ["disgust"]
    assert small.choose_label(np.array([0.7, 0.3])) == "calm"
    batch = four.choose(np.stack([_probs(sad=1.0), _probs(angry=1.0)]))
    assert [four.labels[i] for i in batch] == ["sad", "angry"]
    assert four.describe()["rule"] == RULE


def test_evaluate_and_bench_report_score_by_the_rule(tmp_path):
    from helpers import make_bundle

    from serapp.predictor import load_model
    from trainer.run import run_evaluate

    make_corpus(tmp_path / "t", "turev-db", speakers=[1, 2], labels=("calm", "happy", "sad"), reps=2, seconds=0.4)
    bundle, _ = make_bundle(tmp_path / "m.safetensors", labels=("neutral", "happy", "sad"), window_s=0.5, seed=3)
    corpus = load_corpus("turev-db", tmp_path / "t")
    m = run_evaluate(bundle, corpus, "cpu", None)
    assert m["shared_labels"] == ["calm", "happy", "sad"] and m["scoring"]["merged"] == {"neutral": "calm"}
    predictor = load_model(bundle, device="cpu", threads=1)
    rule = ScoringRule(predictor.labels, corpus.labels)
    expected = np.zeros((3, 3), dtype=int)
    for r in corpus.records:
        from serapp.audio.io import load_audio

        probs = predictor.predict(*load_audio(r.path, predictor.sample_rate))
        expected[rule.labels.index(r.label), rule.labels.index(rule.choose_label(list(probs.values())))] += 1
    assert m["confusion"] == expected.tolist() and m["n"] == 12


# --- protocols ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    make_corpus(root / "ravdess", "ravdess", speakers=range(1, 25), labels=("neutral", "sad"), reps=1, seconds=0.05)
    make_corpus(root / "tess", "tess", speakers=[0, 1], labels=("neutral", "sad"), reps=2, seconds=0.05)
    make_corpus(root / "urdu", "urdu", speakers=range(1, 9), labels=("neutral", "sad"), reps=1, seconds=0.05)
    return [load_corpus(n, root / n) for n in ("ravdess", "tess", "urdu")]


def test_leave_one_corpus_out_never_validates_on_the_test_corpus(three_corpora):
    folds = make_splits(three_corpora, "loco", n_val=2, seed=0, keep=3)
    assert [f.name for f in folds] == ["ravdess", "tess", "urdu"]
    for f, held in zip(folds, three_corpora):
        assert {r.corpus for r in f.test} == {held.name} and len(f.test) == len(held.records)
        assert held.name not in {r.corpus for r in f.train + f.val}
        assert "cross-corpus" in f.protocol_note and held.name in f.protocol_note
        val = f.speakers_by_corpus("val")
        assert "tess" not in val  # two speakers: none to spare
        for name in set(val):
            assert len(val[name]) == 2 and not set(val[name]) & set(f.speakers_by_corpus("train")[name])


def test_emobox_with_more_corpora_keeps_the_ravdess_test_and_validation_actors(three_corpora):
    alone = make_splits(three_corpora[0], "emobox", n_val=2, seed=0)
    mixed = make_splits(three_corpora, "emobox", n_val=2, seed=0, keep=3)
    for a, m in zip(alone, mixed):
        assert m.speakers_by_corpus("test") == {"ravdess": sorted(a.speakers("test"))}
        assert m.speakers_by_corpus("val")["ravdess"] == sorted(a.speakers("val"))
        assert {r.corpus for r in m.train} == {"ravdess", "tess", "urdu"} and "urdu" in m.speakers_by_corpus("val")
    with pytest.raises(CorpusError, match="RAVDESS"):
        make_splits(three_corpora[1:], "emobox")


def test_validation_adds_speakers_until_it_has_enough_clips(three_corpora):
    urdu = three_corpora[2]  # 8 speakers with 2 clips each
    few = full_training_split([urdu], n_val=2, seed=0, keep=3)
    more = full_training_split([urdu], n_val=2, seed=0, keep=3, min_clips=7)
    assert len(few.speakers("val")) == 2 and len(more.speakers("val")) == 4
    assert few.speakers("val") < more.speakers("val")
    assert len(full_training_split([urdu], n_val=2, seed=0, keep=3, min_clips=100).speakers("val")) == 5  # keeps 3


# --- two corpora end to end -----------------------------------------------------------------------

TINY = ['model.architecture="tcn"', "model.channels=24", "model.blocks=2", "model.dropout=0.1",
        "data.window_s=0.5", "data.trim_top_db=30.0", 'data.sampling="balanced"', "data.epoch_clips=96",
        "data.val_keep_speakers=3", "train.batch_size=16", "train.lr=0.005", "train.warmup_epochs=1",
        "train.patience=50", "train.threads=1", "augment.noise_prob=0.2", "augment.reverb_prob=0.0",
        "augment.telephone_prob=0.0"]


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    make_corpus(root / "ravdess", "ravdess", speakers=range(1, 9), labels=FOUR, reps=2)
    make_corpus(root / "turev-db", "turev-db", speakers=range(1, 7), labels=("calm", "happy", "sad", "angry"),
                reps=2, offset=2)
    return root


def _train(*args):
    cmd = [sys.executable, "-m", "trainer", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr
    return proc


def _sets(*extra):
    out = []
    for s in (*TINY, *extra):
        out += ["--set", s]
    return out


def test_two_corpora_train_with_one_command_and_the_bundle_says_what_it_learned_from(two_corpora, tmp_path):
    out = tmp_path / "run"
    proc = _train("train", "--config", ROOT / "trainer/configs/tcn.toml", "--data", f"ravdess={two_corpora / 'ravdess'}",
                  "--data", f"turev-db={two_corpora / 'turev-db'}", "--fold", "all", "--out", out, "--no-cache",
                  "--epochs", 8, *_sets())
    assert "decoding RAVDESS" in proc.stderr and "decoding TurEV-DB" in proc.stderr  # says what the first decode does
    from serapp.bundle import read_bundle_meta

    meta = read_bundle_meta(out / "model.safetensors")
    assert meta.labels == ["neutral", "calm", "happy", "sad", "angry"]
    corpora = {c["name"]: c for c in meta.training["corpora"]}
    assert corpora["ravdess"]["clips"] == 64 and corpora["ravdess"]["speakers"] == 8
    assert corpora["turev-db"]["clips"] == 48 and corpora["turev-db"]["speakers"] == 6
    assert "CC BY-NC-SA" in corpora["ravdess"]["licence"] and "CC BY-NC-ND" in corpora["turev-db"]["licence"]
    assert corpora["turev-db"]["labels"] == ["calm", "happy", "sad", "angry"]
    assert all(len(c["val_speakers"]) == 2 for c in corpora.values())
    history = json.loads((out / "history.json").read_text())
    assert set(history[-1]["val_ua_per_corpus"]) == {"ravdess", "turev-db"}
    assert history[-1]["train_clips"] == 96  # the balanced draw per epoch
    predicted = subprocess.run([sys.executable, "-m", "serapp", "predict", str(next((two_corpora / "turev-db").rglob("*.wav"))),
                                "--model", str(out / "model.safetensors"), "--format", "jsonl", "--device", "cpu",
                                "--emotions", "all"], capture_output=True, text=True, timeout=120)
    assert predicted.returncode == 0 and len(json.loads(predicted.stdout)["probabilities"]) == 5
    # `serapp model-info` tells a person the same: each corpus, its speakers and licence.
    info = subprocess.run([sys.executable, "-m", "serapp", "model-info", str(out / "model.safetensors")],
                          capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert "RAVDESS: 64 clips, 8 speakers: 6 training, 2 validation; CC BY-NC-SA" in info.stdout
    assert "TurEV-DB: 48 clips, 6 speakers: 4 training, 2 validation; CC BY-NC-ND" in info.stdout


def test_leave_one_corpus_out_run_scores_each_held_out_corpus_by_the_rule(two_corpora, tmp_path):
    out = tmp_path / "cv"
    code = train_main(["cv", "--config", str(ROOT / "trainer/configs/tcn.toml"), "--data",
                       f"ravdess={two_corpora / 'ravdess'}", "--data", f"turev-db={two_corpora / 'turev-db'}",
                       "--out", str(out), "--no-cache", "--epochs", "10", *_sets('data.protocol="loco"')])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    folds = {f["fold"]: f for f in summary["folds"]}
    assert set(folds) == {"ravdess", "turev-db"} and "leave one corpus out" in summary["protocol"]
    turev = folds["turev-db"]["test"]
    assert turev["labels"] == ["calm", "happy", "sad", "angry"] and turev["scoring"]["merged"] == {"neutral": "calm"}
    assert turev["n"] == 48 and folds["ravdess"]["test"]["n"] == 64
    for f in folds.values():  # the cue carries over between corpora: well above the chance of 25%
        assert f["test"]["ua"] >= 0.5, f["test"]
    rav_meta = json.loads((out / "ravdess" / "config.json").read_text())
    assert rav_meta["labels"] == ["calm", "happy", "sad", "angry"]  # trained on TurEV-DB alone
    # A bundle exported with the summary carries the figures as cross-corpus ones, per held-out corpus.
    bundle = tmp_path / "b.safetensors"
    assert train_main(["export", str(out / "ravdess"), "--out", str(bundle), "--cv-summary", str(out / "summary.json")]) == 0
    from serapp.bundle import read_bundle_meta
    from serapp.model_card import model_brief, model_card

    exported, trained = read_bundle_meta(bundle).training, read_bundle_meta(out / "ravdess" / "model.safetensors").training
    assert exported["data"] == trained["data"] and exported["corpora"] == trained["corpora"]  # the run's record kept
    xc = exported["cross_corpus"]
    assert [f["test_corpus"] for f in xc["folds"]] == ["ravdess", "turev-db"]
    assert xc["ua"]["mean"] == pytest.approx((folds["ravdess"]["test"]["ua"] + turev["ua"]) / 2)
    card = model_card(read_bundle_meta(bundle), bundle).splitlines()
    assert f"  turev-db: UA {100 * turev['ua']:.1f}% (chance 25.0%)" in card
    assert any("over 2 corpora never seen in training" in line for line in card)
    brief = model_brief(read_bundle_meta(bundle), bundle)  # the line the app shows on opening it
    assert "\n" not in brief and "over 2 corpora never seen in training" in brief and "turev-db: UA" not in brief


def test_a_multi_corpus_run_resumes_to_the_same_weights(two_corpora, tmp_path):
    from serapp.bundle import load_bundle
    from trainer.training import TrainingInterrupted
    from trainer.run import train_one

    cfg = load_config(ROOT / "trainer/configs/tcn.toml", [*TINY, "train.epochs=3"])
    corpora = [load_corpus("ravdess", two_corpora / "ravdess"), load_corpus("turev-db", two_corpora / "turev-db")]
    data = Data(corpora, cfg, None)
    split = full_training_split(corpora, 2, 0, 3)
    train_one(cfg, data, split, tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        train_one(cfg, data, split, tmp_path / "broken", stop_after_epochs=1)
    train_one(cfg, data, split, tmp_path / "broken", resume=True)
    a = load_bundle(tmp_path / "straight" / "model.safetensors")[0].state_dict()
    b = load_bundle(tmp_path / "broken" / "model.safetensors")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_corpora_listed_in_the_config_are_found_under_data_root(two_corpora, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text((ROOT / "trainer/configs/tcn.toml").read_text().replace(
        "[data]", '[data]\ncorpora = ["ravdess", "turev-db"]'))
    out = tmp_path / "run"
    _train("train", "--config", cfg, "--data-root", two_corpora, "--fold", "all", "--out", out, "--no-cache",
           "--epochs", 1, *_sets())
    split = json.loads((out / "split.json").read_text())
    assert set(split["train"]) == {"ravdess", "turev-db"}
    missing = subprocess.run([sys.executable, "-m", "trainer", "train", "--config", str(cfg), "--out", str(tmp_path / "x")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "--data-root" in missing.stderr and "Traceback" not in missing.stderr


def test_the_crosscorpus_command_fills_the_table_resumes_and_redraws(two_corpora, tmp_path):
    from trainer.crosscorpus import render_markdown

    rav = make_corpus(tmp_path / "ravdess", "ravdess", speakers=range(1, 25), labels=FOUR, reps=1, seconds=0.5)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- crosscorpus:start -->\n(not yet run)\n<!-- crosscorpus:end -->\n\nafter\n")
    tcn = ROOT / "trainer/configs/tcn.toml"
    results_path = tmp_path / "cc.json"
    args = ["crosscorpus", "--data", f"ravdess={rav}", "--data", f"turev-db={two_corpora / 'turev-db'}",
            "--baseline", str(tcn), "--config", str(tcn), "--emobox-folds", "1", "--out", str(tmp_path / "runs"),
            "--results", str(results_path), "--readme", str(readme), "--reference", str(tmp_path / "none.json"),
            "--no-cache", *_sets("train.epochs=3")]
    assert train_main(args) == 0
    results = json.loads(results_path.read_text())
    assert set(results["multicorpus"]["loco"]) == {"ravdess", "turev-db"}
    assert set(results["baseline"]["per_corpus"]) == {"turev-db"}  # RAVDESS-only cannot leave RAVDESS out
    assert [f["fold"] for f in results["multicorpus"]["emobox"]["folds"]] == ["fold1"]
    assert results["command"].startswith("ser-train crosscorpus ")
    text = readme.read_text()
    table = text.split("<!-- crosscorpus:start -->\n", 1)[1].split("<!-- crosscorpus:end -->")[0]
    assert "| TurEV-DB | Turkish | 4 | 25.0 |" in table and "**mean, all 2**" in table and text.endswith("after\n")
    assert "1 of 6 folds run" in table and "trained so far" not in table and "(not yet run)" not in text
    assert "| held-out corpus | neutral | calm | happy | sad | angry |" in table  # recall per emotion, both recipes
    m = results["multicorpus"]["loco"]["turev-db"]["per_class_recall"]
    b = results["baseline"]["per_corpus"]["turev-db"]["per_class_recall"]
    assert f"| TurEV-DB |  | {100 * m['calm']:.1f} / {100 * b['calm']:.1f} | {100 * m['happy']:.1f} / " in table

    readme.write_text(text.replace(table, "stale\n"))
    assert train_main([*args, "--render-only"]) == 0  # redrawn from the saved figures, nothing trained
    assert table in readme.read_text()
    assert train_main([*args, "--set", 'train.device="cpu"']) == 0  # kept runs are kept, wherever they ran
    assert json.loads(results_path.read_text())["multicorpus"] == results["multicorpus"]
    changed = subprocess.run([sys.executable, "-m", "trainer", *args, "--set", "train.lr=0.001"],
                             capture_output=True, text=True, timeout=300)
    assert changed.returncode == 2 and "other settings (lr)" in changed.stderr and "Traceback" not in changed.stderr

    from trainer.crosscorpus import run_crosscorpus

    seen = []  # the figures are saved after each run, so hours of training show as they go
    cfg = load_config(tcn, [*TINY, "train.epochs=3"])
    corpora = [load_corpus("ravdess", rav), load_corpus("turev-db", two_corpora / "turev-db")]
    run_crosscorpus(cfg, cfg, corpora, tmp_path / "runs", ["1"], None, ("tcn.toml", "tcn.toml"),
                    lambda r: seen.append((sorted(r["multicorpus"]["loco"]), len(r["multicorpus"]["emobox"]))))
    assert seen == [([], 0), (["ravdess"], 0), (["ravdess", "turev-db"], 0), (["ravdess", "turev-db"], 4)]

    del results["multicorpus"]["loco"]["turev-db"]  # as it reads while the second fold still trains
    partial = render_markdown(results)
    assert "**mean, the 1 run so far**" in partial and "1 of 2 held-out corpora trained so far" in partial


def test_the_zoo_shares_the_default_networks_leave_one_corpus_out_runs_with_crosscorpus(two_corpora, tmp_path):
    rav = make_corpus(tmp_path / "ravdess", "ravdess", speakers=range(1, 25), labels=FOUR, reps=1, seconds=0.5)
    data = ["--data", f"ravdess={rav}", "--data", f"turev-db={two_corpora / 'turev-db'}"]
    small = []
    for s in ("train.epochs=2", "data.window_s=0.5", "data.epoch_clips=64", "train.threads=1", "augment.reverb_prob=0.0"):
        small += ["--set", s]
    runs = tmp_path / "cc"
    crosscorpus = [sys.executable, "-m", "trainer", "crosscorpus", *data, "--emobox-folds", "--out", str(runs),
                   "--results", str(tmp_path / "cc.json"), "--readme", str(tmp_path / "none.md"), "--no-cache", *small]
    proc = subprocess.run(crosscorpus, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "none.md: cannot read it" in proc.stderr and "Traceback" not in proc.stderr
    cc = json.loads((tmp_path / "cc.json").read_text())["multicorpus"]["loco"]  # the figures are kept all the same
    assert set(cc) == {"ravdess", "turev-db"}

    readme = tmp_path / "README.md"
    readme.write_text("<!-- zoo:start -->\n<!-- zoo:end -->\n")
    assert train_main(["zoo", *data, "--configs", "default", "--folds", "1", "--cross-corpus", "default",
                       "--crosscorpus-out", str(runs), "--out", str(tmp_path / "zoo"), "--results", str(tmp_path / "zoo.json"),
                       "--readme", str(readme), "--no-cache", *small]) == 0
    row = json.loads((tmp_path / "zoo.json").read_text())["models"]["default"]
    assert row["loco_mean_ua"] == pytest.approx(np.mean([cc[c]["ua"] for c in cc]))  # the same runs, not new ones
    assert not (tmp_path / "zoo" / "default" / "loco").exists()


def test_the_zoo_gives_the_best_by_validation_all_six_folds_and_the_cross_corpus_column(two_corpora, tmp_path, capsys):
    rav = make_corpus(tmp_path / "ravdess", "ravdess", speakers=range(1, 25), labels=FOUR, reps=1, seconds=0.5)
    small = []
    for s in ("train.epochs=2", "data.window_s=0.5", "data.epoch_clips=64", "train.threads=1"):
        small += ["--set", s]
    readme = tmp_path / "README.md"
    readme.write_text("<!-- zoo:start -->\n<!-- zoo:end -->\n")
    args = ["zoo", "--data", f"ravdess={rav}", "--data", f"turev-db={two_corpora / 'turev-db'}", "--configs", "logreg",
            "ffn", "--folds", "1", "--best", "1", "--out", str(tmp_path / "zoo"), "--results", str(tmp_path / "zoo.json"),
            "--readme", str(readme), "--no-cache", *small]
    assert train_main(args) == 0
    results = json.loads((tmp_path / "zoo.json").read_text())
    rows = results["models"]
    best = max(rows, key=lambda n: rows[n]["emobox"]["val_ua"])  # validation actors, not the test fold
    other = ({"logreg", "ffn"} - {best}).pop()
    assert results["chosen_by_validation"] == [best]
    assert rows[best]["emobox"]["folds"] == 6 and len(rows[best]["emobox"]["per_fold_ua"]) == 6
    assert 0 <= rows[best]["loco_mean_ua"] <= 1
    assert {"ravdess", "turev-db"} <= set(os.listdir(tmp_path / "zoo" / best / "loco"))
    assert rows[other]["emobox"]["folds"] == 1 and "loco_mean_ua" not in rows[other]
    log = [line for line in capsys.readouterr().err.splitlines() if line.startswith("== ")]
    assert log.count(f"== {best}: all six EmoBox folds, leave one corpus out") == 1
    assert log.count(f"== {best}") == log.count(f"== {other}") == 1  # the first stage, one line each
    assert f"the 1 with the best validation UA (RAVDESS validation actors of the folds asked, never a test score): {best}." \
        in readme.read_text()
    bad = subprocess.run([sys.executable, "-m", "trainer", *args[:-len(small)], "--best", "3"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--best 3: choose from 0 to 2" in bad.stderr and "Traceback" not in bad.stderr

    # With workers, each fold is a task of its own (the second stage's too) and the figures are the same.
    jobs = [*args, "--jobs", "2"]
    jobs[jobs.index("--out") + 1], jobs[jobs.index("--results") + 1] = str(tmp_path / "zoo2"), str(tmp_path / "zoo2.json")
    assert train_main(jobs) == 0
    again = json.loads((tmp_path / "zoo2.json").read_text())
    assert again["chosen_by_validation"] == [best]
    for name in rows:
        assert {k: again["models"][name].get(k) for k in ("emobox", "loco_mean_ua")} == \
            {k: rows[name].get(k) for k in ("emobox", "loco_mean_ua")}
    queued = capsys.readouterr().err
    assert f"== {best} loco turev-db: all six EmoBox folds, leave one corpus out: queued for a worker" in queued
    assert f"== {best} emobox fold6: all six EmoBox folds, leave one corpus out: queued for a worker" in queued


def test_a_zoo_model_replaces_the_default_only_by_beating_it_by_more_than_the_seed_spread_on_both_figures():
    from trainer.zoo import SEED_SPREAD_UA, verdict

    def row(ua, loco, folds=6, val=0.5):
        return {"emobox": {"folds": folds, "ua": {"mean": ua}, "val_ua": val}, "loco_mean_ua": loco}

    base = 0.60
    margin = SEED_SPREAD_UA + 0.01
    results = {"models": {"default": row(base, 0.35), "a": row(base + margin, 0.35 + margin), "b": row(base + margin, 0.36)}}
    assert verdict(results).startswith("a beats the default by more than the seed-to-seed spread")
    assert verdict(results).endswith(": a becomes the new default.")
    results["models"]["c"] = row(base + 2 * margin, 0.35 + 2 * margin, val=0.6)  # two win: validation picks
    assert verdict(results).startswith("c and a beat the default") and verdict(results).endswith(
        ": c, with the best validation UA, becomes the new default.")
    del results["models"]["c"]
    results["models"]["a"] = row(base + SEED_SPREAD_UA / 2, 0.35 + margin)
    assert verdict(results).startswith("The default stays: no model compared (a, b) beats it")
    results["models"]["a"] = row(base + margin, 0.35 + margin, folds=2)  # two folds are not the comparison
    assert verdict(results).startswith("The default stays: no model compared (b) ")
    del results["models"]["default"]["loco_mean_ua"]
    assert verdict(results) is None
