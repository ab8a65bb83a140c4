"""Whisper's audio encoder in plain torch, its front-end, the bundle that carries it, speaker
normalisation (the voice state) and `serapp predict --adapt`.

The reference outputs come with the published weights (../shared/models/whisper-base); the other
tests write a tiny encoder file under openai-whisper's names, so they run without it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    WHISPER_FE,
    make_ravdess_corpus,
    speechlike,
    tiny_whisper_folder,
    tiny_whisper_model,
    write_audio,
)

from serapp.adaptation import VoiceState, mean_and_std
from serapp.bundle import BundleMeta, load_bundle, read_bundle_summary, save_bundle
from serapp.features import FrontEnd
from serapp.models.whisper import (
    load_whisper_weights,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WHISPER = SHARED / "models" / "whisper-base"
needs_weights = pytest.mark.skipif(not (WHISPER / "reference.npz").is_file(),
                                   reason="the published Whisper weights are not in ../shared/models/whisper-base")


@needs_weights
def test_the_encoder_reproduces_the_published_reference():
    ref = np.load(WHISPER / "reference.npz")
    encoder = load_whisper_weights(WHISPER / "encoder.safetensors")
    with torch.no_grad():
        for i in range(3):
            out = encoder(torch.from_numpy(ref[f"mel_{i}"])[None])[0].numpy()
            assert out.shape == (150, 512)
            assert np.abs(out - ref[f"out_{i}"]).max() < 2e-3  # float16 weights computed in float32


@needs_weights
def test_the_whisper_front_end_reproduces_the_reference_log_mel():
    from serapp.audio.io import load_audio

    ref = np.load(WHISPER / "reference.npz")
    clip = SHARED / "data" / str(ref["clips"][0])
    if not clip.is_file():
        pytest.skip(f"{clip} is not here")
    y, _ = load_audio(clip, 16000)
    mel = FrontEnd(WHISPER_FE)(torch.from_numpy(y[:48000]))
    assert mel.shape == (80, 300) and WHISPER_FE.n_frames(48000) == 300
    assert np.abs(mel.numpy() - ref["mel_0"]).max() < 1e-4


def test_a_truncated_encoder_equals_the_first_blocks_of_the_whole(tmp_path):
    folder = tiny_whisper_folder(tmp_path / "enc", blocks=3)
    whole = load_whisper_weights(folder / "encoder.safetensors")
    first = load_whisper_weights(folder / "encoder.safetensors", n_blocks=2)
    mel = torch.randn(1, 80, 100)
    with torch.no_grad():
        a, b = whole.layer_outputs(mel), first.layer_outputs(mel)
    assert len(a) == 4 and len(b) == 3
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_the_bundle_carries_the_encoder_and_reads_the_same(tmp_path):
    model = tiny_whisper_model(tiny_whisper_folder(tmp_path / "enc")).eval()
    model.norm_mean.normal_()
    model.norm_std.uniform_(0.5, 2)
    assert model.hparams["encoder_dir"] == "" and model.hparams["width"] == 32  # the bundle needs no folder
    meta = BundleMeta(architecture="speech_encoder", labels=["neutral", "happy", "sad", "angry"], frontend=WHISPER_FE,
                      window_s=1.0, trim_top_db=None)
    path = save_bundle(tmp_path / "m.safetensors", model, meta)
    (tmp_path / "enc" / "encoder.safetensors").unlink()  # the folder is not needed to run the bundle
    loaded, _ = load_bundle(path)
    header = json.loads(path.read_bytes()[8 : 8 + int.from_bytes(path.read_bytes()[:8], "little")])
    assert header["encoder.blocks.0.mlp.0.weight"]["dtype"] == "F16" and header["head.0.weight"]["dtype"] == "F32"
    wave = torch.from_numpy(speechlike(1.0))[None]
    with torch.no_grad():
        feats = FrontEnd(WHISPER_FE)(wave)
        assert torch.allclose(model(feats), loaded(feats), atol=1e-5)
    _, parameters = read_bundle_summary(path)
    assert parameters == sum(p.numel() for p in model.parameters())


def test_a_voice_state_estimated_window_by_window_equals_the_batch_statistics():
    rng = np.random.default_rng(0)
    feats = rng.normal(2.0, 3.0, size=(40, 3, 6))
    state = VoiceState(np.zeros((3, 6)), np.ones((3, 6)), prior_windows=0)
    for row in feats:
        state.update(row)
    mean, std = state.statistics()
    batch_mean, batch_std = mean_and_std(feats)
    assert np.allclose(mean, batch_mean) and np.allclose(std, batch_std)
    assert state.windows == 40


def test_a_voice_state_leans_on_the_prior_and_reset_returns_to_the_cold_start():
    prior_mean, prior_std = np.full((2, 4), 1.0), np.full((2, 4), 2.0)
    state = VoiceState(prior_mean, prior_std, prior_windows=10)
    cold = state.statistics()
    assert np.array_equal(cold[0], prior_mean) and np.array_equal(cold[1], prior_std) and not state.adapted
    state.update(np.full((10, 2, 4), 5.0))  # as many windows as the prior weighs: half way
    mean, _ = state.statistics()
    assert np.allclose(mean, 3.0)
    state.reset()
    again = state.statistics()
    assert np.array_equal(again[0], cold[0]) and np.array_equal(again[1], cold[1]) and state.windows == 0


def test_the_head_trains_on_cached_windows_end_to_end_and_adapts(tmp_path):
    encoder = tiny_whisper_folder(tmp_path / "enc")
    corpus = make_ravdess_corpus(tmp_path / "c", actors=range(1, 7), labels=("neutral", "angry"), reps=2, seconds=1.2)
    out, cache = tmp_path / "run", tmp_path / "cache"
    cmd = [sys.executable, "-m", "trainer", "train", "--config", str(ROOT / "trainer/configs/whisper.toml"),
           "--data", f"ravdess={corpus}", "--fold", "all", "--out", str(out), "--cache-dir", str(cache), "--epochs", "3",
           "--set", f'model.encoder_dir="{encoder}"', "--set", "model.blocks=2", "--set", "model.hidden=8",
           "--set", "data.window_s=1.0", "--set", "data.val_keep_speakers=1", "--set", "data.val_min_clips=0",
           "--set", "data.corpora=[]",
           "--set", "model.basic_head=false"]  # two labels here: the head for the four is tests/test_basic_head.py's
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "computed once and cached" in proc.stderr and list(cache.glob("encoder-*.npz"))
    bundle = out / "model.safetensors"
    loaded, meta = load_bundle(bundle)
    assert meta.hparams["backbone"] == "whisper" and meta.trim_top_db is None
    assert meta.training["encoder_licence"].startswith("Whisper's audio encoder: MIT licence")
    assert not torch.equal(loaded.norm_mean, torch.zeros_like(loaded.norm_mean))  # population statistics stored
    # a second run reads the cache: no extraction, the same figures
    again = subprocess.run([*cmd[:cmd.index("--out") + 1], str(tmp_path / "run2"), *cmd[cmd.index("--out") + 2:]],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "history.json").read_text()) [-1]["val_ua"] == \
        json.loads((tmp_path / "run2" / "history.json").read_text())[-1]["val_ua"]

    # serapp predict --adapt: the files' voice statistics first, then readings with them
    clips = sorted((corpus / "Actor_03").glob("*.wav"))
    base = [sys.executable, "-m", "serapp", "predict", *map(str, clips), "--model", str(bundle), "--format", "jsonl",
            "--no-gate"]
    cold = subprocess.run(base, capture_output=True, text=True, timeout=300)
    adapted = subprocess.run([*base, "--adapt", *map(str, clips)], capture_output=True, text=True, timeout=300)
    assert cold.returncode == 0 and adapted.returncode == 0, adapted.stderr
    assert "adapted to the voice" in adapted.stderr
    cold_p = [json.loads(line)["probabilities"] for line in cold.stdout.splitlines()]
    adapted_p = [json.loads(line)["probabilities"] for line in adapted.stdout.splitlines()]
    assert len(cold_p) == len(adapted_p) == len(clips) and cold_p != adapted_p

    # the same, computed here: the voice from the clips' windows, then each clip read with it
    from serapp.analysis import adapt_to_file, analyse_file
    from serapp.predictor import load_model
    from serapp.settings import AnalysisSettings

    predictor = load_model(bundle, device="cpu")
    settings = AnalysisSettings(gate=False)
    voice = predictor.new_voice()
    for clip in clips:
        adapt_to_file(clip, predictor, voice, settings)
    for clip, expected in zip(clips, adapted_p):
        got = analyse_file(clip, predictor, settings, voice=voice).overall.probabilities
        assert got == pytest.approx(expected, abs=1e-6)
    # reset: the cold readings again, exactly
    voice.reset()
    for clip, expected in zip(clips, cold_p):
        assert analyse_file(clip, predictor, settings, voice=voice).overall.probabilities == pytest.approx(expected, abs=1e-6)


def test_adapt_with_a_model_that_does_not_adapt_is_a_usage_error(tmp_path):
    from helpers import make_bundle

    bundle, _ = make_bundle(tmp_path / "tcn.safetensors")
    clip = write_audio(tmp_path / "a.wav", speechlike(1.0))
    proc = subprocess.run([sys.executable, "-m", "serapp", "predict", str(clip), "--model", str(bundle), "--adapt", str(clip)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "does not adapt" in proc.stderr and "Traceback" not in proc.stderr


def test_the_trainers_clip_reading_is_the_apps(tmp_path):
    """The encoder table and the head's validation read a clip as the app reads a file: the mean
    of its speech windows weighted by their share of speech; no speech window, no reading."""
    from helpers import speechlike, tone, write_audio

    from serapp.analysis import analyse_file
    from serapp.audio.io import load_audio
    from serapp.predictor import load_model
    from trainer.data import ClipSet
    from trainer.frozen import HOP_S, WindowCache, clip_probabilities

    model = tiny_whisper_model(tiny_whisper_folder(tmp_path / "enc"), n_classes=2).eval()
    meta = BundleMeta("speech_encoder", ["neutral", "angry"], WHISPER_FE, 1.0, dict(model.hparams), None)
    predictor = load_model(save_bundle(tmp_path / "m.safetensors", model, meta), device="cpu")
    sounds = [speechlike(3.0, seed=1), np.concatenate([np.zeros(16000, np.float32), speechlike(2.0, seed=2)]),
              tone(2.0, 16000, 50)]  # a voice; silence then a voice; a hum
    paths = [write_audio(tmp_path / f"{k}.wav", y, 16000) for k, y in enumerate(sounds)]
    clips = ClipSet([load_audio(p, 16000)[0] for p in paths], [0, 1, 0], labels=["neutral", "angry"])
    cache = WindowCache(predictor.model, predictor.frontend, predictor.model_window, int(HOP_S * 16000), None, "cpu")
    probs = clip_probabilities(predictor.model, cache.windows(clips), len(clips), "cpu")
    for path, row in zip(paths, probs):
        overall = analyse_file(path, predictor).overall
        if overall.probabilities is None:
            assert np.isnan(row).all()
        else:
            np.testing.assert_allclose(row, [overall.probabilities[k] for k in predictor.labels], atol=1e-4)
    assert np.isnan(probs[2]).all() and np.isfinite(probs[:2]).all()
