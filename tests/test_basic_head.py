"""A head for the basic four beside the full head (`basic_head`): the basic readout reads it, all
emotions read the full head, a model without one reads exactly as before; bundles carry and
check it; `ser-train train --set model.basic_head=true` trains it."""

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import WHISPER_FE, make_ravdess_corpus, rewrite_bundle, speechlike, tiny_whisper_folder, tiny_whisper_model, write_audio

from serapp.bundle import BundleMeta, check_bundle, load_bundle, save_bundle
from serapp.errors import BundleError
from serapp.model_card import model_card
from serapp.predictor import load_model
from serapp.readout import BASIC, Readout, collapse_matrix, with_temperature

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful"]
CALIBRATION = {"basic": {"temperature": 1.7, "threshold": 0.4}, "all": {"temperature": 0.8, "threshold": 0.3}}


def _scramble(model, seed=3):
    """Population statistics and heads that differ, so that reading the wrong one shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.named_buffers():
            if name.endswith("norm_mean"):
                t.copy_(torch.randn(t.shape, generator=g))
            elif name.endswith("norm_std"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
        for name, p in model.named_parameters():
            if "head" in name or "layer_weights" in name:
                p.copy_(torch.randn(p.shape, generator=g))
    return model.eval()


def _bundle(path, model, labels=LABELS):
    meta = BundleMeta("speech_encoder", list(labels), WHISPER_FE, 1.0, dict(model.hparams), None, readout=CALIBRATION)
    return save_bundle(path, model, meta)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return tiny_whisper_folder(tmp_path_factory.mktemp("enc") / "enc")


@pytest.fixture(scope="module")
def windows():
    return np.stack([speechlike(1.0, seed=s) for s in range(3)])


def _pooled_and_features(predictor, windows):
    feats = predictor.frontend(torch.from_numpy(windows))
    return predictor.model.pooled(feats), feats


def test_the_basic_readout_reads_the_basic_head_and_all_emotions_the_full_head(encoder, windows, tmp_path):
    model = _scramble(tiny_whisper_model(encoder, n_classes=len(LABELS), basic_head=True))
    basic = load_model(_bundle(tmp_path / "b.safetensors", model), device="cpu")
    assert basic.labels == list(BASIC) and basic.readout.inputs == BASIC
    got = basic.probabilities(windows)
    with torch.no_grad():
        pooled, feats = _pooled_and_features(basic, windows)
        direct = torch.softmax(basic.model.classify(pooled, basic=True), -1).numpy()
        full = torch.softmax(basic.model(feats), -1).numpy()
    # the basic head's softmax through the calibration of `basic`: softmax(logits / T)
    assert np.allclose(got, with_temperature(direct, 1.7), atol=1e-6)
    # not the full head's probabilities summed onto the four
    summed = Readout.for_bundle(LABELS, CALIBRATION, "basic").apply(full)
    assert not np.allclose(got, summed, atol=1e-3)
    # the basic head reads its own population's statistics, not the full head's
    with torch.no_grad():
        other = torch.softmax(basic.model.classify(pooled, basic.model.norm_mean, basic.model.norm_std, basic=True), -1)
    assert not np.allclose(got, with_temperature(other.numpy(), 1.7), atol=1e-3)

    every = basic.with_emotions("all")
    assert every.labels == LABELS and every.readout.inputs == tuple(LABELS)
    assert np.allclose(every.probabilities(windows), with_temperature(full, 0.8), atol=1e-6)
    # the file's reading (model-length pieces) goes the same way
    clip = speechlike(2.5, seed=7)
    assert basic.predict_prepared(clip).shape == (4,) and every.predict_prepared(clip).shape == (len(LABELS),)


def test_a_voice_normalises_the_basic_head_too(encoder, windows, tmp_path):
    model = _scramble(tiny_whisper_model(encoder, n_classes=len(LABELS), basic_head=True))
    predictor = load_model(_bundle(tmp_path / "b.safetensors", model), device="cpu")
    voice, pooled_out = predictor.new_voice(), []
    cold = predictor.probabilities(windows, voice, pooled_out)
    assert len(pooled_out) == len(windows)
    # the one VoiceState of the model: its prior is the full head's population
    assert np.array_equal(voice.prior_mean, predictor.model.norm_mean.numpy())
    predictor.learn(voice, np.stack(pooled_out))
    adapted = predictor.probabilities(windows, voice)
    # the head for the four starts the voice from its own population, as it was trained and measured
    own = (predictor.model.basic_norm_mean.numpy(), predictor.model.basic_norm_std.numpy())
    mean, std = (torch.as_tensor(a, dtype=torch.float32) for a in voice.statistics(own))
    with torch.no_grad():
        pooled, _ = _pooled_and_features(predictor, windows)
        direct = torch.softmax(predictor.model.classify(pooled, mean, std, basic=True), -1).numpy()
    # a voice not heard yet reads exactly as no voice: the cold start of each head
    assert np.array_equal(cold, predictor.probabilities(windows))
    assert np.allclose(adapted, with_temperature(direct, 1.7), atol=1e-6) and not np.allclose(adapted, cold, atol=1e-4)


def test_a_basic_head_without_speaker_normalisation(encoder, windows, tmp_path):
    model = _scramble(tiny_whisper_model(encoder, n_classes=len(LABELS), basic_head=True, speaker_norm=False))
    assert not hasattr(model, "basic_norm_mean")
    predictor = load_model(_bundle(tmp_path / "b.safetensors", model), device="cpu")
    assert predictor.new_voice() is None
    with torch.no_grad():
        pooled, _ = _pooled_and_features(predictor, windows)
        direct = torch.softmax(predictor.model.classify(pooled, basic=True), -1).numpy()
    assert np.allclose(predictor.probabilities(windows), with_temperature(direct, 1.7), atol=1e-6)


def test_a_model_without_a_basic_head_reads_bit_for_bit_as_before(encoder, windows, tmp_path):
    plain = _scramble(tiny_whisper_model(encoder, n_classes=len(LABELS)))
    assert plain.hparams["basic_head"] is False and not hasattr(plain, "basic_norm_mean")
    with_head = tiny_whisper_model(encoder, n_classes=len(LABELS), basic_head=True)
    with_head.load_state_dict(plain.state_dict(), strict=False)  # the same full head, a basic head beside it
    a = load_model(_bundle(tmp_path / "a.safetensors", plain), device="cpu")
    b = load_model(_bundle(tmp_path / "b.safetensors", with_head.eval()), device="cpu")
    assert a.readout == Readout(tuple(LABELS), "basic", 1.7, 0.4, True) and not a.readout.reads_basic_head
    # all emotions: the full head, the same bits with or without a basic head beside it
    for voice in (None, a.new_voice()):
        assert np.array_equal(a.with_emotions("all").probabilities(windows, voice),
                              b.with_emotions("all").probabilities(windows, voice))
    # the basic four of a model without one: its full head summed as before, to the bit
    with torch.no_grad():
        full = torch.softmax(a.model(a.frontend(torch.from_numpy(windows))).float(), -1).cpu().numpy()
    p = with_temperature(full, 1.7)
    q = p @ collapse_matrix(LABELS, list(BASIC))
    expected = (q / np.maximum(q.sum(axis=-1, keepdims=True), 1e-30)).astype(np.float32)
    assert np.array_equal(a.probabilities(windows), expected)
    with pytest.raises(ValueError, match="no head for the basic four"):
        a.model.classify(torch.zeros(1, 3, 64), basic=True)


def test_a_readout_says_which_labels_its_probabilities_are_over():
    summed = Readout.for_bundle(LABELS, None, "basic")
    own = Readout.for_bundle(LABELS, None, "basic", basic_head=True)
    assert summed.inputs == tuple(LABELS) and own.inputs == BASIC and own.labels == list(BASIC)
    assert Readout.for_bundle(LABELS, None, "all", basic_head=True).inputs == tuple(LABELS)
    p = np.array([[0.1, 0.2, 0.3, 0.4]])
    assert np.array_equal(own.apply(p), p.astype(np.float32))  # uncalibrated: shown as the head gives them
    with pytest.raises(ValueError, match="reads 6"):
        summed.apply(p)
    # a head with fewer than two of the four shows all its labels, unless it has a head for them
    assert Readout.for_bundle(["fearful", "angry"], None, "basic").emotions == "all"
    assert Readout.for_bundle(["fearful", "angry"], None, "basic", basic_head=True).emotions == "basic"


def test_round_trip_and_model_info(encoder, windows, tmp_path):
    model = _scramble(tiny_whisper_model(encoder, n_classes=len(LABELS), basic_head=True))
    path = _bundle(tmp_path / "b.safetensors", model)
    loaded, meta = load_bundle(path)
    assert meta.hparams["basic_head"] is True and loaded.has_basic_head
    for name, t in model.state_dict().items():
        if name.startswith("basic_"):
            assert torch.equal(loaded.state_dict()[name], t), name
    x = torch.randn(2, 3, 64)
    with torch.no_grad():
        assert torch.equal(loaded.classify(x, basic=True), model.classify(x, basic=True))
    meta, parameters = check_bundle(path)
    assert parameters == sum(p.numel() for p in model.parameters())  # its statistics are not parameters
    assert "a head for the basic four" in model_card(meta, path, parameters)
    plain = _bundle(tmp_path / "p.safetensors", tiny_whisper_model(encoder, n_classes=len(LABELS)))
    assert "a head for the basic four" not in model_card(check_bundle(plain)[0], plain)


def _drop_basic(tensors):
    for k in [k for k in tensors if k.startswith("basic_")]:
        del tensors[k]


def _misshape(tensors):
    tensors["basic_head.3.weight"] = tensors["basic_head.3.weight"][:3].clone()


@pytest.mark.parametrize("source, meta_edit, tensor_edit, fragment", [
    ("plain", lambda m: m["hparams"].update(basic_head=True), None, "missing basic_head"),  # claimed, not there
    ("head", None, _drop_basic, "missing basic_head"),
    ("head", None, _misshape, "tensor 'basic_head.3.weight' is [3, 8] in the file"),
    ("head", lambda m: m["hparams"].update(basic_head="yes"), None, "basic_head must be true or false"),
    ("head", lambda m: m.update(labels=["neutral", "happy", "angry", "fearful", "disgust", "surprised"]), None,
     "needs labels covering neutral, happy, sad, angry"),
    ("head", lambda m: m["hparams"].update(basic_head=False), None, "unexpected basic_"),
])
def test_a_damaged_basic_head_is_refused_in_one_line(encoder, tmp_path, capsys, source, meta_edit, tensor_edit,
                                                     fragment):
    from serapp.cli import main

    model = tiny_whisper_model(encoder, n_classes=len(LABELS), basic_head=source == "head")
    bad = rewrite_bundle(_bundle(tmp_path / "b.safetensors", model), tmp_path / "bad.safetensors", meta_edit, tensor_edit)
    for check in (load_bundle, check_bundle):
        with pytest.raises(BundleError) as e:
            check(bad)
        msg = str(e.value)
        assert fragment in msg and str(bad) in msg and "\n" not in msg, msg
    clip = write_audio(tmp_path / "a.wav", speechlike(1.0))
    assert main(["predict", str(clip), "--model", str(bad)]) == 1
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err


def test_basic_head_goes_only_with_a_frozen_encoder(encoder):
    with pytest.raises(ValueError, match="only with a frozen encoder"):
        tiny_whisper_model(encoder, basic_head=True, finetune=True)


def _train(tmp_path, corpus, encoder, capsys, *extra) -> tuple[int, str]:
    """`ser-train train` in this process (a subprocess would cost torch's import again)."""
    from trainer.cli import main

    rc = main(["train", "--config", str(ROOT / "trainer/configs/whisper.toml"), "--data", f"ravdess={corpus}",
               "--fold", "all", "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--epochs", "3",
               "--set", f'model.encoder_dir="{encoder}"', "--set", "model.blocks=2", "--set", "model.hidden=8",
               "--set", "data.window_s=1.0", "--set", "data.val_keep_speakers=1", "--set", "data.val_min_clips=0",
               "--set", "data.corpora=[]", "--set", "model.basic_head=true", *extra])
    return rc, capsys.readouterr().err


def test_ser_train_trains_a_basic_head_beside_the_full_head(encoder, tmp_path, capsys):
    from serapp.cli import main

    corpus = make_ravdess_corpus(tmp_path / "c", actors=range(1, 7), reps=1, seconds=1.2,
                                 labels=("neutral", "calm", "happy", "sad", "angry", "fearful"))
    rc, err = _train(tmp_path, corpus, encoder, capsys)
    assert rc == 0, err
    assert "the head for the basic four" in err
    bundle = tmp_path / "run" / "model.safetensors"
    model, meta = load_bundle(bundle)
    assert meta.hparams["basic_head"] is True and model.has_basic_head and len(meta.labels) == 6
    assert set(meta.readout) == {"basic", "all"}
    assert isinstance(meta.training["val_metrics"]["basic_ua"], float)
    # the basic head's own population: the windows of the four (calm as neutral), not every window
    assert not torch.equal(model.basic_norm_mean, torch.zeros_like(model.basic_norm_mean))
    assert not torch.allclose(model.basic_norm_mean, model.norm_mean)
    # trained: its layer weights moved from their initial zeros
    assert not torch.equal(model.basic_layer_weights, torch.zeros_like(model.basic_layer_weights))
    predictor = load_model(bundle, device="cpu")
    assert predictor.labels == list(BASIC) and predictor.with_emotions("all").labels == meta.labels
    assert main(["model-info", str(bundle)]) == 0 and "a head for the basic four" in capsys.readouterr().out


def test_a_basic_head_without_clips_of_the_four_or_with_a_fine_tuned_encoder_is_one_line(encoder, tmp_path, capsys):
    corpus = make_ravdess_corpus(tmp_path / "c", actors=range(1, 5), reps=1, seconds=1.2,
                                 labels=("neutral", "happy", "angry"))
    rc, err = _train(tmp_path, corpus, encoder, capsys)
    assert rc == 2 and "needs training clips of each of" in err and "there are none of sad" in err, err
    assert "epoch   1" not in err and not (tmp_path / "run" / "model.safetensors").exists()  # refused before training
    rc, err = _train(tmp_path, corpus, encoder, capsys, "--set", "model.finetune=true")
    assert rc == 2 and "model.basic_head (a head for the basic four) goes only with a frozen encoder" in err, err
    rc, err = _train(tmp_path, corpus, encoder, capsys, "--set", 'model.basic_head="yes"')
    assert rc == 2 and "model.basic_head must be true or false" in err, err


def test_a_neutral_weighted_voice_counts_its_windows_by_the_head_for_the_four(encoder, windows, tmp_path):
    """What the encoder table measured for the head for the four: a window's weight in the voice
    is that head's cold neutral probability (the default's basic readout reads that head)."""
    model = _scramble(tiny_whisper_model(encoder, n_classes=len(LABELS), basic_head=True, adapt="mean",
                                         adapt_weighting="neutral"))
    predictor = load_model(_bundle(tmp_path / "w.safetensors", model), device="cpu")
    pooled, _ = _pooled_and_features(predictor, windows)
    with torch.no_grad():
        basic = torch.softmax(predictor.model.classify(pooled, basic=True), -1)[:, BASIC.index("neutral")]
        full = torch.softmax(predictor.model.classify(pooled), -1)[:, [LABELS.index("neutral"), LABELS.index("calm")]]
    voice = predictor.new_voice()
    predictor.learn(voice, pooled.numpy())
    assert voice.windows == len(windows) and voice.weight == pytest.approx(float(basic.sum()), rel=1e-5)
    assert voice.weight != pytest.approx(float(full.sum()), rel=1e-3)  # not the full head's neutral and calm
