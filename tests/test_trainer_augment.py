"""The simulated conditions do what their names say, and augmentation is reproducible."""

import numpy as np
import pytest
import torch
from helpers import speechlike

from serapp.metrics import classification_metrics
from trainer.augment import (
    CONDITIONS,
    AugmentConfig,
    add_noise,
    apply_condition,
    augment_waveforms,
    babble_noise,
    room_impulse,
    spec_augment,
    telephone_band,
    tilt_eq,
    white_noise,
)

SR = 16000


def _speech(n=1, seconds=1.0):
    return torch.from_numpy(np.stack([speechlike(seconds, SR, seed=i) for i in range(n)]))


def _band_energy(x, lo, hi):
    spec = torch.fft.rfft(x).abs().square()
    f = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    return float(spec[..., (f >= lo) & (f < hi)].sum())


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0])
def test_noise_is_mixed_at_the_requested_snr(snr):
    x = _speech()
    noise = white_noise(x.shape, torch.Generator().manual_seed(0))
    y = add_noise(x, noise, snr)
    measured = 10 * torch.log10(x.square().sum() / (y - x).square().sum())
    assert abs(float(measured) - snr) < 0.01


def test_babble_is_a_mixture_of_the_pool():
    pool = _speech(4)
    b = babble_noise(pool, 2, torch.Generator().manual_seed(1), talkers=3)
    assert b.shape == (2, pool.shape[1]) and float(b.abs().max()) > 0
    # Speech-like: most energy below 4 kHz, like the pool itself.
    assert _band_energy(b, 0, 4000) > 0.9 * _band_energy(b, 0, 8000)


def test_room_impulse_decays_by_60_db_at_rt60():
    rir = room_impulse(0.5, SR, torch.Generator().manual_seed(0))
    tail = rir[1:]
    early = tail[: SR // 20].square().mean()
    late = tail[int(0.45 * SR) : int(0.5 * SR)].square().mean()
    assert rir[0] == 1.0 and rir.shape[0] == SR // 2
    assert 45 < float(10 * torch.log10(early / late)) < 70


def test_telephone_band_removes_lows_and_highs():
    x = torch.randn(1, SR, generator=torch.Generator().manual_seed(0))
    y = telephone_band(x, SR)
    assert _band_energy(y, 0, 150) < 0.01 * _band_energy(x, 0, 150)
    assert _band_energy(y, 5000, 8000) < 0.01 * _band_energy(x, 5000, 8000)
    assert _band_energy(y, 800, 2500) > 0.9 * _band_energy(x, 800, 2500)


def test_tilt_eq_tilts():
    x = torch.randn(1, SR, generator=torch.Generator().manual_seed(0))
    y = tilt_eq(x, SR, -3.0)
    # -3 dB/octave: 4 kHz (2 octaves above 1 kHz) loses about 6 dB against 1 kHz.
    ratio = (_band_energy(y, 3800, 4200) / _band_energy(x, 3800, 4200)) / (_band_energy(y, 950, 1050) / _band_energy(x, 950, 1050))
    assert abs(10 * np.log10(ratio) + 6.0) < 0.5


def test_every_condition_is_deterministic_and_keeps_length():
    x = _speech()
    pool = _speech(3, 1.5)
    for name in CONDITIONS:
        a = apply_condition(name, x.clone(), SR, torch.Generator().manual_seed(5), pool)
        b = apply_condition(name, x.clone(), SR, torch.Generator().manual_seed(5), pool)
        assert a.shape == x.shape and torch.equal(a, b), name
    assert torch.equal(apply_condition("clean", x, SR, torch.Generator()), x)
    level = apply_condition("level -20 dB", x, SR, torch.Generator())
    assert torch.allclose(level, x * 0.1, atol=1e-7)
    with pytest.raises(ValueError):
        apply_condition("underwater", x, SR, torch.Generator())


def test_augmentation_is_reproducible_and_changes_the_batch():
    x = _speech(6)
    cfg = AugmentConfig(noise_prob=1.0, reverb_prob=0.5, tilt_prob=0.5, telephone_prob=0.5)
    a = augment_waveforms(x.clone(), cfg, SR, torch.Generator().manual_seed(3))
    b = augment_waveforms(x.clone(), cfg, SR, torch.Generator().manual_seed(3))
    c = augment_waveforms(x.clone(), cfg, SR, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)
    assert torch.isfinite(a).all()


def test_spec_augment_masks_bands_and_frames():
    feats = torch.randn(4, 64, 200)
    out = spec_augment(feats, torch.Generator().manual_seed(0), freq_masks=2, freq_width=8, time_masks=2, time_width=20)
    changed = (out != feats)
    assert changed.any() and out.shape == feats.shape
    assert changed.float().mean() < 0.5


def test_metrics_by_hand():
    labels = ["a", "b", "c"]
    true = [0, 0, 0, 0, 1, 1, 2, 2]
    pred = [0, 0, 0, 1, 1, 2, 2, 2]
    m = classification_metrics(true, pred, labels)
    assert m["wa"] == pytest.approx(6 / 8)
    assert m["ua"] == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    assert m["confusion"] == [[3, 1, 0], [0, 1, 1], [0, 0, 2]]
    # F1: a = 2*1*.75/1.75, b = 2*.5*.5/1, c = 2*(2/3)*1/(5/3)
    assert m["macro_f1"] == pytest.approx((6 / 7 + 0.5 + 0.8) / 3)
    assert m["per_class_recall"] == {"a": 0.75, "b": 0.5, "c": 1.0}


def test_mixup_keeps_the_original_dominant_and_is_reproducible():
    from trainer.augment import mixup

    feats = torch.randn(8, 16, 30)
    a, pa, la = mixup(feats, 0.4, torch.Generator().manual_seed(1))
    b, pb, lb = mixup(feats, 0.4, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(pa, pb) and la == lb
    assert 0.5 <= la <= 1.0 and sorted(pa.tolist()) == list(range(8))
    torch.testing.assert_close(a, la * feats + (1 - la) * feats[pa])
