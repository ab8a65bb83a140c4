"""Voice profiles: made from one speaker's files, read back exactly, applied by `serapp predict
--profile` as `--adapt` applies the same files, managed by name, refused for another model."""

import json

import numpy as np
import pytest
from helpers import (
    WHISPER_FE,
    speechlike,
    tiny_whisper_folder,
    tiny_whisper_model,
    write_audio,
)

from serapp.audio.io import load_audio
from serapp.bundle import BundleMeta, save_bundle
from serapp.cli import main
from serapp.predictor import load_model
from serapp.profiles import ProfileError, ProfileStore, from_voice, read_profile


@pytest.fixture
def data_dir(private_data_dir):
    return private_data_dir


@pytest.fixture
def clips(tmp_path):
    # 11 s and more: each alone holds the 8 s of speech windows a profile needs (MIN_SPEECH_S)
    return [str(write_audio(tmp_path / f"voice-{i}.wav", speechlike(11.0 + i, seed=i) * (0.5 + 0.3 * i)))
            for i in range(3)]


def _readings(capsys, *argv) -> list[dict]:
    assert main(["predict", *argv, "--format", "jsonl", "--no-gate"]) == 0
    return [json.loads(line)["probabilities"] for line in capsys.readouterr().out.splitlines()]


def test_a_profile_reads_as_adapt_reads_the_same_files(data_dir, clips, capsys):
    assert main(["profile", "create", "Ann", *clips, "--no-gate"]) == 0
    out = capsys.readouterr()
    assert "voice profile 'Ann'" in out.out and str(data_dir / "profiles") in out.out
    with_profile = _readings(capsys, *clips, "--profile", "Ann")
    with_adapt = _readings(capsys, *clips, "--adapt", *clips)
    cold = _readings(capsys, *clips)
    assert with_profile == with_adapt and with_profile != cold
    # the profile file by its path works as its name does
    assert _readings(capsys, clips[0], "--profile", str(data_dir / "profiles" / "Ann.json"))[0] == with_profile[0]


def test_a_profile_file_keeps_the_voice_exactly(data_dir, clips):
    predictor = load_model(None, device="cpu")
    voice = predictor.new_voice()
    voice.update(np.random.default_rng(0).normal(size=(7, *voice.prior_mean.shape)))
    store = ProfileStore()
    path = store.save(from_voice("Bob", voice, predictor))
    profile = read_profile(path)
    mean, std = profile.voice(predictor).statistics()
    expected_mean, expected_std = voice.statistics()
    assert np.array_equal(mean, expected_mean) and np.array_equal(std, expected_std)
    assert profile.model == "default.safetensors" and profile.windows == 7
    assert json.loads(path.read_text())["version"] == 1  # JSON with a version, never a pickle


def test_profiles_are_listed_renamed_and_deleted_by_name(data_dir, clips, capsys):
    assert main(["profile", "list"]) == 0
    assert "no voice profiles" in capsys.readouterr().out
    assert main(["profile", "create", "Ann", clips[0], "--no-gate"]) == 0
    assert main(["profile", "create", "Ann", clips[1], "--no-gate"]) == 2  # the name is taken: a usage error
    assert "exists" in capsys.readouterr().err
    assert main(["profile", "rename", "Ann", "Ann K"]) == 0
    assert "renamed voice profile 'Ann' to 'Ann K'" in capsys.readouterr().out
    assert main(["profile", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("Ann K\t") and "default.safetensors" in listed
    (data_dir / "profiles" / "broken.json").write_text("{not json")
    assert main(["profile", "list"]) == 0
    assert "broken.json: not a voice profile" in capsys.readouterr().err
    assert main(["profile", "delete", "Ann K"]) == 0
    assert main(["profile", "delete", "Ann K"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no voice profile named 'Ann K'" in err
    assert main(["profile", "create", "../escape", clips[0], "--no-gate"]) == 2
    assert "cannot name a voice profile" in capsys.readouterr().err


def test_a_profile_for_another_model_is_refused_naming_both(data_dir, clips, tmp_path, capsys):
    assert main(["profile", "create", "Ann", clips[0], "--no-gate"]) == 0
    capsys.readouterr()
    model = tiny_whisper_model(tiny_whisper_folder(tmp_path / "enc")).eval()
    other = save_bundle(tmp_path / "other.safetensors", model,
                        BundleMeta(architecture="speech_encoder", labels=["neutral", "happy", "sad", "angry"],
                                   frontend=WHISPER_FE, window_s=1.0, trim_top_db=None))
    assert main(["predict", clips[0], "--model", str(other), "--profile", "Ann"]) == 2
    err = capsys.readouterr().err
    assert "default.safetensors" in err and "other.safetensors" in err and err.count("\n") == 1
    assert main(["predict", clips[0], "--model", "small", "--profile", "Ann"]) == 2
    assert "does not adapt" in capsys.readouterr().err
    with pytest.raises(ProfileError, match="no voice profile named 'Nobody'"):
        ProfileStore().load("Nobody")


def test_a_neutral_weighted_model_counts_each_window_by_how_neutral_it_reads_cold(data_dir, clips, tmp_path):
    """The adaptation the encoder table can choose (`adapt_weighting = "neutral"`): in a file's
    adaptation and live, each speech window counts by the cold model's neutral probability; a
    profile keeps that weight exactly, and only a model weighting the same way takes it."""
    from serapp.analysis import adapt_to_file
    from serapp.audio.sources import FileSource
    from serapp.live import LiveAnalyzer
    from serapp.predictor import window_starts
    from serapp.readout import Readout
    from serapp.settings import AnalysisSettings

    folder = tiny_whisper_folder(tmp_path / "enc")
    meta = BundleMeta(architecture="speech_encoder", labels=["neutral", "happy", "sad", "angry"], frontend=WHISPER_FE,
                      window_s=1.0, trim_top_db=None)
    weighted = load_model(save_bundle(tmp_path / "w.safetensors", tiny_whisper_model(
        folder, adapt="mean", adapt_weighting="neutral").eval(), meta), device="cpu")
    plain = load_model(save_bundle(tmp_path / "p.safetensors", tiny_whisper_model(folder, adapt="mean").eval(), meta),
                       device="cpu")
    voice = weighted.new_voice()
    n = adapt_to_file(clips[0], weighted, voice, AnalysisSettings(gate=False))
    # The same windows read cold through the predictor's own reading, over every label, uncalibrated.
    audio = load_audio(clips[0], weighted.sample_rate)[0]
    w = weighted.model_window
    windows = np.stack([audio[s:s + w] for s in window_starts(audio.size, w, int(0.5 * weighted.sample_rate))])
    cold = weighted.probabilities(windows, None, readout=Readout(tuple(weighted.labels), "all"))
    assert voice.windows == n == len(windows) and 0 < voice.weight < n
    assert voice.weight == pytest.approx(float(cold[:, 0].sum()), rel=1e-4)
    plain_voice = plain.new_voice()
    adapt_to_file(clips[0], plain, plain_voice, AnalysisSettings(gate=False))
    assert plain_voice.weight == plain_voice.windows == n

    store = ProfileStore()
    path = store.save(from_voice("Weighed", voice, weighted))
    raw = json.loads(path.read_text())
    assert raw["version"] == 2 and raw["weight"] == voice.weight
    again = read_profile(path).voice(weighted)
    assert again.weight == voice.weight and np.array_equal(again.statistics()[0], voice.statistics()[0])
    with pytest.raises(ProfileError, match="made for the model w.safetensors"):
        read_profile(path).voice(plain)  # the same encoder, but its windows count otherwise
    raw["weight"] = n + 1
    path.write_text(json.dumps(raw))
    with pytest.raises(ProfileError, match="weight must be a number"):
        read_profile(path)

    # Live: the analyser learns each window by its weight too.
    src = FileSource(samples=audio, sample_rate=weighted.sample_rate, realtime=False)
    analyzer = LiveAnalyzer(src, weighted, AnalysisSettings(hop_s=0.5, gate=False))
    for i in range(0, audio.size, 800):
        src.ring.write(audio[i:i + 800])
        analyzer.poll()
    assert analyzer.voice.windows > 3 and 0 < analyzer.voice.weight < analyzer.voice.windows
