"""Emotion-removed adaptation (`model.adapt_weighting = "emotion-removed"`): each speech window
of a voice counts with the offset of the emotion the cold head reads taken off, so a voice heard
in one emotion all along keeps its speaker's offset and not its emotion. The arithmetic on a
generated one-emotion voice, the label offsets the trainer stores, the predictor's one rule
(the head for the four reads where there is one), and `ser-train train` filling the offsets."""

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import WHISPER_FE, make_ravdess_corpus, speechlike, tiny_whisper_folder, tiny_whisper_model

from serapp.adaptation import VoiceState, emotion_removed, voice_windows
from serapp.bundle import BundleMeta, load_bundle, save_bundle
from serapp.predictor import load_model
from serapp.readout import BASIC
from trainer.frozen import label_offsets

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful"]


def test_a_one_emotion_voice_keeps_its_emotion_and_gets_its_speakers_offset():
    """A generated voice heard angry all along: its windows sit 2 units up the 'arousal' axis (the
    angry label's offset) plus the voice's own offset (1.5) on another axis. Plain adaptation of
    the mean takes the anger for the voice's normal; emotion-removed adaptation, with the cold
    head reading the windows angry, moves the mean to the voice's offset only, so they still
    read a standard deviation up in arousal."""
    rng = np.random.default_rng(0)
    offsets = np.array([[[0.0, 0.0]], [[2.0, 0.0]]])  # neutral, angry: (labels, layers, size)
    angry = np.array([[2.0, 1.5]]) + 0.3 * rng.standard_normal((20, 1, 2))
    cold = np.tile([0.3, 0.7], (20, 1))  # the cold head reads every window angry
    prior = (np.zeros((1, 2)), np.ones((1, 2)))
    plain, removed = VoiceState(*prior, 10.0, 0.5, "mean"), VoiceState(*prior, 10.0, 0.5, "mean")
    plain.update(*voice_windows("", angry, cold, ["neutral", "angry"]))
    removed.update(*voice_windows("emotion-removed", angry, cold, ["neutral", "angry"], offsets))
    arousal = {name: float(((angry - s.statistics()[0]) / s.statistics()[1])[:, 0, 0].mean())
               for name, s in (("plain", plain), ("removed", removed))}
    assert arousal["plain"] < 1.0 < arousal["removed"]
    # the speaker's own offset is learnt alike: two thirds of the way (20 windows against 10)
    assert removed.statistics()[0][0, 1] == pytest.approx(angry[:, 0, 1].sum() / 30)
    assert removed.windows == 20 and removed.weight == 20
    # each window loses the offset of the label it is read as, the hard label
    mixed = np.array([[0.6, 0.4], [0.45, 0.55]])
    out = emotion_removed(angry[:2], mixed, offsets)
    assert np.allclose(out[0], angry[0]) and np.allclose(out[1], angry[1] - offsets[1])


def test_label_offsets_are_each_labels_distance_from_the_population():
    rng = np.random.default_rng(2)
    feats = rng.standard_normal((30, 2, 3)).astype(np.float32)
    targets = np.repeat([0, 2], 15)  # label 1: no window
    pop = feats.mean(axis=0, dtype=np.float64)
    out = label_offsets(feats, targets, 3, pop)
    assert out.shape == (3, 2, 3) and np.array_equal(out[1], np.zeros((2, 3)))
    assert np.allclose(out[0], feats[:15].mean(0) - pop, atol=1e-6)
    assert np.allclose(15 * out[0] + 15 * out[2], 0, atol=1e-5)  # the population's mean is theirs, weighed


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return tiny_whisper_folder(tmp_path_factory.mktemp("enc") / "enc")


def test_the_predictor_takes_off_the_emotion_the_head_for_the_four_reads(encoder, tmp_path):
    model = tiny_whisper_model(encoder, n_classes=len(LABELS), basic_head=True, adapt="mean",
                               adapt_weighting="emotion-removed").eval()
    assert tuple(model.emotion_offsets.shape[:1]) == (len(BASIC),)  # the reading head's labels
    with torch.no_grad():
        model.emotion_offsets.copy_(torch.randn(model.emotion_offsets.shape, generator=torch.Generator().manual_seed(4)))
        model.basic_norm_mean.copy_(0.1 * torch.randn(model.basic_norm_mean.shape))
    meta = BundleMeta("speech_encoder", LABELS, WHISPER_FE, 1.0, dict(model.hparams), None)
    bundle = save_bundle(tmp_path / "m.safetensors", model, meta)
    predictor = load_model(bundle, device="cpu")
    windows = np.stack([speechlike(1.0, seed=s) for s in range(4)])
    pooled = predictor.pooled(windows)
    with torch.no_grad():
        cold = predictor.model.classify(torch.from_numpy(pooled), basic=True).argmax(-1).numpy()
    voice = predictor.new_voice()
    predictor.learn(voice, pooled)
    expected = (pooled.astype(np.float64) - model.emotion_offsets.numpy().astype(np.float64)[cold]).sum(axis=0)
    assert voice.windows == 4 and np.allclose(voice.to_dict()["sum"], expected, atol=1e-4)
    assert not np.allclose(voice.to_dict()["sum"], pooled.astype(np.float64).sum(axis=0), atol=1e-3)
    predictor.learn(voice, pooled[:0])  # no windows: nothing learnt, nothing read
    assert voice.windows == 4


def test_ser_train_stores_the_offsets_of_the_head_for_the_four(encoder, tmp_path, capsys):
    from trainer.cli import main

    corpus = make_ravdess_corpus(tmp_path / "c", actors=range(1, 7), reps=1, seconds=1.2,
                                 labels=("neutral", "calm", "happy", "sad", "angry", "fearful"))
    rc = main(["train", "--config", str(ROOT / "trainer/configs/whisper.toml"), "--data", f"ravdess={corpus}",
               "--fold", "all", "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--epochs", "2",
               "--set", f'model.encoder_dir="{encoder}"', "--set", "model.blocks=2", "--set", "model.hidden=8",
               "--set", "data.window_s=1.0", "--set", "data.val_keep_speakers=1", "--set", "data.val_min_clips=0",
               "--set", "data.corpora=[]", "--set", "model.basic_head=true",
               "--set", 'model.adapt_weighting="emotion-removed"'])
    assert rc == 0, capsys.readouterr().err
    model, meta = load_bundle(tmp_path / "run" / "model.safetensors")
    assert meta.hparams["adapt_weighting"] == "emotion-removed"
    offsets = model.emotion_offsets
    assert offsets.shape == (len(BASIC), *model.basic_norm_mean.shape) and bool((offsets.abs().sum((1, 2)) > 0).all())
