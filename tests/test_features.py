import dataclasses

import librosa
import numpy as np
import pytest
import torch
from helpers import speechlike, tone

from serapp.features import (
    FrontEnd,
    FrontEndConfig,
    StreamingFrontEnd,
    normalize_features,
)
from serapp.predictor import available_devices

CONFIGS = [
    FrontEndConfig(),
    FrontEndConfig(n_fft=400, win_length=400, hop_length=160, n_mels=40, fmin=20.0, fmax=7600.0),
    FrontEndConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=32),
    FrontEndConfig(n_fft=1024, win_length=1024, hop_length=256, n_mels=128),
]


def _librosa_mel(y, c: FrontEndConfig):
    return librosa.feature.melspectrogram(
        y=y, sr=c.sample_rate, n_fft=c.n_fft, win_length=c.win_length, hop_length=c.hop_length,
        n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, center=True, pad_mode="constant", power=2.0,
    )


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"sr{c.sample_rate}-fft{c.n_fft}-mels{c.n_mels}")
def test_mel_power_matches_librosa(config):
    y = speechlike(1.3, config.sample_rate) + tone(1.3, config.sample_rate, 1000, 0.05, noise=0.02)
    ours = FrontEnd(config).mel_power(torch.from_numpy(y)).numpy()
    ref = _librosa_mel(y, config)
    assert ours.shape == ref.shape == (config.n_mels, config.n_frames(y.size))
    # Same zero padding as librosa's default, so every frame matches, edges included.
    mask = ref > ref.max() * 1e-8  # ignore bins that are numerically zero
    rel = np.abs(ours - ref)[mask] / ref[mask]
    assert rel.max() <= 1e-4


def test_log_mel_is_floored_decibels():
    config = FrontEndConfig()
    fe = FrontEnd(config)
    silent = torch.zeros(16000)
    assert torch.allclose(fe.log_mel(silent), torch.full((64, 101), -100.0))
    y = torch.from_numpy(tone(1.0))
    assert torch.allclose(fe.log_mel(y), 10 * torch.log10(fe.mel_power(y).clamp_min(1e-10)))


def test_mfcc_matches_librosa():
    config = FrontEndConfig(kind="mfcc", n_mfcc=30)
    y = speechlike(1.5)
    ours = FrontEnd(config)(torch.from_numpy(y)).numpy()
    mel = _librosa_mel(y, config)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, amin=config.log_floor, top_db=None), n_mfcc=30)
    assert ours.shape == ref.shape == (30, config.n_frames(y.size))
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize("kind", ["logmel", "mfcc"])
def test_streaming_equals_batch(kind):
    config = FrontEndConfig(kind=kind)
    y = speechlike(2.0, seed=3)
    batch = FrontEnd(config)(torch.from_numpy(y)).numpy()
    stream = StreamingFrontEnd(config)
    rng = np.random.default_rng(1)
    cols, i = [], 0
    while i < y.size:
        n = int(rng.choice([0, 1, 7, 160, 511, 1600, 4000]))
        cols.append(stream.push(y[i : i + n]))
        i += n
    cols.append(stream.flush())
    streamed = np.concatenate(cols, axis=1)
    assert streamed.shape == batch.shape
    np.testing.assert_allclose(streamed, batch, atol=1e-3, rtol=1e-5)


def test_streaming_returns_columns_as_soon_as_a_window_is_complete():
    config = FrontEndConfig()
    stream = StreamingFrontEnd(config)
    # The first frame is centred on sample 0: it needs n_fft/2 samples to complete.
    assert stream.push(np.zeros(config.n_fft // 2 - 1, np.float32)).shape == (64, 0)
    assert stream.push(np.zeros(1, np.float32)).shape == (64, 1)
    assert stream.push(np.zeros(config.hop_length * 3, np.float32)).shape == (64, 3)


def test_streaming_reset_starts_a_new_stream():
    config = FrontEndConfig()
    y = speechlike(0.5)
    stream = StreamingFrontEnd(config)
    first = np.concatenate([stream.push(y), stream.flush()], axis=1)
    stream.push(tone(0.3))
    stream.reset()
    second = np.concatenate([stream.push(y), stream.flush()], axis=1)
    np.testing.assert_array_equal(first, second)


def test_streaming_never_normalises():
    stream = StreamingFrontEnd(FrontEndConfig(normalize=True))
    assert stream.config.normalize is False


def test_batch_of_waveforms_equals_each_alone():
    fe = FrontEnd(FrontEndConfig(normalize=True))
    ys = np.stack([speechlike(1.0, seed=s) for s in range(3)])
    batch = fe(torch.from_numpy(ys))
    assert batch.shape == (3, 64, 101)
    for i in range(3):
        torch.testing.assert_close(batch[i], fe(torch.from_numpy(ys[i])), atol=1e-4, rtol=1e-4)


def test_normalisation_is_per_band_zero_mean_unit_variance():
    feats = FrontEnd(FrontEndConfig(normalize=True))(torch.from_numpy(speechlike(1.0)))
    torch.testing.assert_close(feats.mean(-1), torch.zeros(64), atol=1e-4, rtol=0)
    loud = feats.std(-1, unbiased=False) > 0.5  # bands that are not constant
    torch.testing.assert_close(feats.std(-1, unbiased=False)[loud], torch.ones(int(loud.sum())), atol=1e-3, rtol=0)
    x = torch.randn(2, 5, 50) * 3 + 7
    torch.testing.assert_close(normalize_features(x).mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)


@pytest.mark.parametrize("device", available_devices())
def test_front_end_runs_on_every_available_device(device):
    fe = FrontEnd(FrontEndConfig()).to(device)
    y = torch.from_numpy(speechlike(1.0)).to(device)
    out = fe(y.unsqueeze(0).repeat(2, 1))
    assert out.device.type == device and out.shape == (2, 64, 101)
    cpu = FrontEnd(FrontEndConfig())(y.cpu())
    torch.testing.assert_close(out[0].cpu(), cpu, atol=1e-2, rtol=1e-4)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"sr{c.sample_rate}-mels{c.n_mels}-fmin{c.fmin}")
def test_mel_band_centers_match_librosa(config):
    from serapp.features import mel_band_centers

    ref = librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=config.nyquist_fmax)[1:-1]
    np.testing.assert_allclose(mel_band_centers(config), ref, rtol=1e-12)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"sr{c.sample_rate}-mels{c.n_mels}-fmin{c.fmin}")
def test_mel_filterbank_is_librosas_to_the_bit(config):
    """Written out to spare the load librosa's import; trained models must see the same numbers."""
    from serapp.features import mel_filterbank

    ours = mel_filterbank(config.sample_rate, config.n_fft, config.n_mels, float(config.fmin), config.nyquist_fmax)
    ref = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                              fmin=float(config.fmin), fmax=config.nyquist_fmax)
    assert ours.dtype == ref.dtype == np.float32
    np.testing.assert_array_equal(ours, ref)


def test_config_round_trip_and_validation():
    c = FrontEndConfig(n_mels=40, fmax=7000.0, normalize=True, kind="mfcc", n_mfcc=20)
    assert FrontEndConfig.from_dict(c.to_dict()) == c
    assert c.n_features == 20
    with pytest.raises(ValueError, match="unknown front-end parameters: bogus"):
        FrontEndConfig.from_dict({**c.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="feature kind"):
        FrontEndConfig(kind="cqt")
    with pytest.raises(ValueError, match="win_length"):
        FrontEndConfig(win_length=1024, n_fft=512)
    with pytest.raises(ValueError, match="n_mfcc"):
        dataclasses.replace(c, n_mfcc=100)


def test_frame_count_formula():
    c = FrontEndConfig()
    for n in (0, 1, 159, 160, 16000, 48123):
        assert c.n_frames(n) == 1 + n // c.hop_length
        if n:
            assert FrontEnd(c)(torch.zeros(n)).shape[-1] == c.n_frames(n)
