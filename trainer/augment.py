"""Waveform and spectrogram augmentation, and the fixed conditions of the robustness report.

Everything is generated in code (no downloaded noises or impulse responses) and driven by an
explicit torch.Generator, so a run is reproducible and a resumed run repeats the same draws.
All waveform functions take and return (batch, samples) float32 tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.square().mean(dim=-1, keepdim=True).clamp_min(1e-12).sqrt()


def _freqs(n: int, sample_rate: int) -> torch.Tensor:
    return torch.fft.rfftfreq(n, 1.0 / sample_rate)


def _filter(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Zero-phase filtering by a real gain per rfft bin ((bins,) or (batch, bins))."""
    return torch.fft.irfft(torch.fft.rfft(x) * gain, n=x.shape[-1])


def white_noise(shape, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=gen)


def pink_noise(shape, sample_rate: int, gen: torch.Generator) -> torch.Tensor:
    n = shape[-1]
    f = _freqs(n, sample_rate)
    return _filter(torch.randn(shape, generator=gen), 1.0 / f.clamp_min(20.0).sqrt())


def babble_noise(pool: torch.Tensor, batch: int, gen: torch.Generator, talkers: int = 6) -> torch.Tensor:
    """Sum of `talkers` randomly chosen and shifted utterances from `pool` (n, samples)."""
    n, length = pool.shape
    idx = torch.randint(0, n, (batch, talkers), generator=gen)
    shifts = torch.randint(0, length, (batch, talkers), generator=gen)
    out = torch.zeros(batch, length)
    for b in range(batch):
        for t in range(talkers):
            voice = pool[idx[b, t]]
            out[b] += torch.roll(voice, int(shifts[b, t])) / _rms(voice)[..., 0]
    return out


def add_noise(x: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor | float) -> torch.Tensor:
    """Mix noise into x at the given signal-to-noise ratio (dB, scalar or per row)."""
    snr = torch.as_tensor(snr_db, dtype=x.dtype).reshape(-1, 1)
    scale = _rms(x) / (_rms(noise) * 10.0 ** (snr / 20.0))
    return x + noise * scale


def room_impulse(rt60_s: float, sample_rate: int, gen: torch.Generator, direct_ratio_db: float = 0.0) -> torch.Tensor:
    """Synthetic room impulse response: a direct path plus exponentially decaying noise."""
    n = max(2, int(rt60_s * sample_rate))
    t = torch.arange(n) / sample_rate
    rir = torch.randn(n, generator=gen) * torch.exp(-6.9078 * t / rt60_s)  # -60 dB at rt60
    rir[0] = 0.0
    rir = rir / rir.norm() * 10.0 ** (-direct_ratio_db / 20.0)  # reverberant energy vs the direct path
    rir[0] = 1.0
    return rir


def reverberate(x: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """Convolve each row with an impulse response (FFT), same length and RMS as the input."""
    n = x.shape[-1] + rir.shape[-1] - 1
    size = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(rir, size), size)[..., : x.shape[-1]]
    return y * (_rms(x) / _rms(y))


def telephone_band(x: torch.Tensor, sample_rate: int, low: float = 300.0, high: float = 3400.0) -> torch.Tensor:
    f = _freqs(x.shape[-1], sample_rate)
    # Butterworth-like skirts of order 8 rather than a brick wall: over 25 dB down by 4.6 kHz,
    # as a telephone channel's mask asks.
    gain = 1.0 / torch.sqrt(1 + (low / f.clamp_min(1.0)) ** 16) / torch.sqrt(1 + (f / high) ** 16)
    return _filter(x, gain)


def tilt_eq(x: torch.Tensor, sample_rate: int, db_per_octave: float | torch.Tensor, pivot_hz: float = 1000.0,
            limit_db: float = 15.0) -> torch.Tensor:
    """Spectral tilt around a pivot, like a microphone off-axis or a cheap capsule."""
    f = _freqs(x.shape[-1], sample_rate).clamp_min(20.0)
    slope = torch.as_tensor(db_per_octave, dtype=x.dtype).reshape(-1, 1)
    db = (slope * torch.log2(f / pivot_hz)).clamp(-limit_db, limit_db)
    return _filter(x, 10.0 ** (db / 20.0))


def gain_db(x: torch.Tensor, db: float | torch.Tensor) -> torch.Tensor:
    return x * 10.0 ** (torch.as_tensor(db, dtype=x.dtype).reshape(-1, 1) / 20.0)


def spec_augment(features: torch.Tensor, gen: torch.Generator, freq_masks: int = 2, freq_width: int = 8,
                 time_masks: int = 2, time_width: int = 20) -> torch.Tensor:
    """SpecAugment-style masks on (batch, bands, frames); masked cells take the batch mean.

    The random draws use the CPU generator (reproducible anywhere); the masks are applied on
    the features' own device, so GPU training does no round trip through the host.
    """
    b, n_bands, n_frames = features.shape
    dev = features.device
    mask = torch.zeros(b, n_bands, n_frames, dtype=torch.bool, device=dev)
    for size, count, width, axis in ((n_bands, freq_masks, freq_width, 1),
                                     (n_frames, time_masks, min(time_width, max(1, n_frames // 5)), 2)):
        for _ in range(count):
            w = torch.randint(0, width + 1, (b,), generator=gen)
            s = (torch.rand(b, generator=gen) * (size - w).clamp_min(1)).long()
            idx = torch.arange(size)[None, :]
            hit = ((idx >= s[:, None]) & (idx < (s + w)[:, None])).to(dev)
            mask |= hit[:, :, None] if axis == 1 else hit[:, None, :]
    return torch.where(mask, features.mean(dim=(1, 2), keepdim=True), features)


@dataclass
class AugmentConfig:
    """Training-time augmentation. Probabilities are per clip; ranges are uniform."""

    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    babble_share: float = 0.4  # of the noisy clips, this share gets babble, the rest white/pink
    reverb_prob: float = 0.3
    rt60_s: tuple[float, float] = (0.2, 0.9)
    gain_db: tuple[float, float] = (-20.0, 6.0)
    telephone_prob: float = 0.1
    tilt_prob: float = 0.3
    tilt_db_per_octave: tuple[float, float] = (-4.0, 4.0)
    spec_masks: bool = True
    mixup_alpha: float = 0.0  # > 0: mix pairs of clips' features, weight ~ Beta(alpha, alpha); 0: off


def _uniform(lo_hi, n, gen) -> torch.Tensor:
    lo, hi = lo_hi
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def augment_waveforms(x: torch.Tensor, cfg: AugmentConfig, sample_rate: int, gen: torch.Generator) -> torch.Tensor:
    """Apply the random waveform chain to a batch (rows chosen independently per effect)."""
    b = x.shape[0]

    def pick(p):
        return torch.rand(b, generator=gen) < p

    if cfg.reverb_prob > 0:
        for i in torch.nonzero(pick(cfg.reverb_prob)).flatten().tolist():
            rt = float(_uniform(cfg.rt60_s, 1, gen))
            x[i : i + 1] = reverberate(x[i : i + 1], room_impulse(rt, sample_rate, gen, float(_uniform((0, 6), 1, gen))))
    if cfg.tilt_prob > 0:
        rows = pick(cfg.tilt_prob)
        if rows.any():
            x[rows] = tilt_eq(x[rows], sample_rate, _uniform(cfg.tilt_db_per_octave, int(rows.sum()), gen))
    if cfg.telephone_prob > 0:
        rows = pick(cfg.telephone_prob)
        if rows.any():
            x[rows] = telephone_band(x[rows], sample_rate)
    if cfg.noise_prob > 0:
        rows = pick(cfg.noise_prob)
        n = int(rows.sum())
        if n:
            babble = torch.rand(n, generator=gen) < cfg.babble_share
            white = white_noise((n, x.shape[1]), gen)
            pink = pink_noise((n, x.shape[1]), sample_rate, gen)
            coloured = torch.where((torch.rand(n, generator=gen) < 0.5)[:, None], white, pink)
            noise = torch.where(babble[:, None], babble_noise(x.detach().clone(), n, gen), coloured)
            x[rows] = add_noise(x[rows], noise, _uniform(cfg.snr_db, n, gen))
    return gain_db(x, _uniform(cfg.gain_db, b, gen))


def mixup(features: torch.Tensor, alpha: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mix each row with a partner row: returns (mixed, partner index, weight of the original)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)  # the original stays dominant, so its label stays the main one
    partner = torch.randperm(features.shape[0], generator=gen)
    return lam * features + (1.0 - lam) * features[partner], partner, lam


# --- the robustness report's fixed conditions -------------------------------------------------

CONDITIONS = (
    "clean",
    "white noise 20 dB",
    "white noise 10 dB",
    "babble 20 dB",
    "babble 10 dB",
    "reverb (RT60 0.6 s)",
    "level -20 dB",
    "telephone 300-3400 Hz",
    "tilted mic EQ",
)


def apply_condition(name: str, wave: torch.Tensor, sample_rate: int, gen: torch.Generator,
                    babble_pool: torch.Tensor | None = None) -> torch.Tensor:
    """One fixed condition on a (1, samples) waveform; deterministic for a given generator state."""
    if name == "clean":
        return wave
    if name.startswith("white noise"):
        return add_noise(wave, white_noise(wave.shape, gen), float(name.split()[2]))
    if name.startswith("babble"):
        if babble_pool is None:
            raise ValueError("babble needs a pool of other utterances")
        return add_noise(wave, babble_noise(_fit_pool(babble_pool, wave.shape[-1]), 1, gen), float(name.split()[1]))
    if name.startswith("reverb"):
        return reverberate(wave, room_impulse(0.6, sample_rate, gen, direct_ratio_db=3.0))
    if name == "level -20 dB":
        return gain_db(wave, -20.0)
    if name.startswith("telephone"):
        return telephone_band(wave, sample_rate)
    if name == "tilted mic EQ":
        return tilt_eq(wave, sample_rate, -3.0)  # a muffled, high-cut capsule
    raise ValueError(f"unknown condition {name!r}")


def _fit_pool(pool: torch.Tensor, length: int) -> torch.Tensor:
    if pool.shape[-1] >= length:
        return pool[:, :length]
    reps = math.ceil(length / pool.shape[-1])
    return pool.repeat(1, reps)[:, :length]
