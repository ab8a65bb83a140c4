"""The one feature front-end shared by the app and the trainer: log-mel and MFCC in torch.

Padding: frames are centred (frame t covers samples [t*hop - n_fft/2, t*hop + n_fft/2)) with
zero padding of n_fft//2 on both sides, exactly like `librosa.feature.melspectrogram` with its
defaults (center=True, pad_mode="constant"). A signal of T samples gives 1 + T // hop frames.
Zero padding (rather than reflection) is what makes the streaming form below exact: the left
pad is known before the first sample arrives, and the right pad is applied by `flush()`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

FEATURE_KINDS = ("logmel", "mfcc", "waveform")  # waveform: the samples themselves (speech encoders)


@dataclass(frozen=True)
class FrontEndConfig:
    """Everything that defines the features; stored inside every model bundle."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400  # 25 ms at 16 kHz
    hop_length: int = 160  # 10 ms at 16 kHz
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None  # None: Nyquist
    log_floor: float = 1e-10  # power floor before the log: -100 dB
    normalize: bool = False  # per-utterance mean/variance per band (needs the whole window)
    kind: str = "logmel"  # "logmel" (dB), "mfcc", or "waveform" (1 feature: the samples; normalize per window)
    n_mfcc: int = 40

    def __post_init__(self):
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "n_mfcc"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a whole number, not {value!r}")
        if not 1000 <= self.sample_rate <= 384_000:
            raise ValueError(f"sample_rate must be in [1000, 384000] Hz, not {self.sample_rate}")
        if not 16 <= self.n_fft <= 16384 or not 1 <= self.n_mels <= 512:
            raise ValueError("n_fft must be in [16, 16384] and n_mels in [1, 512]")
        for name in ("fmin", "log_floor") + (("fmax",) if self.fmax is not None else ()):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number, not {value!r}")
        if not 0 <= self.fmin < self.nyquist_fmax <= self.sample_rate / 2 or not self.log_floor > 0:
            raise ValueError("need 0 <= fmin < fmax <= sample_rate / 2 and log_floor > 0")
        if not isinstance(self.normalize, bool):
            raise ValueError(f"normalize must be true or false, not {self.normalize!r}")
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature kind {self.kind!r} is not one of {', '.join(FEATURE_KINDS)}")
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError("win_length must be in (0, n_fft]")
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError("hop_length must be in (0, n_fft]")
        if self.kind == "mfcc" and not 0 < self.n_mfcc <= self.n_mels:
            raise ValueError("n_mfcc must be in (0, n_mels]")

    @property
    def n_features(self) -> int:
        return {"mfcc": self.n_mfcc, "waveform": 1}.get(self.kind, self.n_mels)

    @property
    def nyquist_fmax(self) -> float:
        return float(self.fmax) if self.fmax is not None else self.sample_rate / 2.0

    def n_frames(self, n_samples: int) -> int:
        """Frames the centred (batch) form gives for a signal of n_samples (samples, for "waveform")."""
        if self.kind == "waveform":
            return n_samples
        padded = n_samples + 2 * (self.n_fft // 2)
        return 1 + (padded - self.n_fft) // self.hop_length if padded >= self.n_fft else 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FrontEndConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown front-end parameters: {', '.join(unknown)}")
        return cls(**data)


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised mel filterbank (n_mels, n_fft//2 + 1), built once per parameter set."""
    import librosa  # imported here: it is slow to import and only needed once per parameter set

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    fb = np.ascontiguousarray(fb, dtype=np.float32)
    fb.setflags(write=False)
    return fb


def mel_band_centers(config: FrontEndConfig) -> np.ndarray:
    """Centre frequency (Hz) of each mel band, as librosa's Slaney scale places them.

    Computed here rather than by importing librosa, so the GUI can label its axis without
    paying librosa's import (about a second) before the window appears.
    """
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0

    def to_mel(f):
        return f / f_sp if f < min_log_hz else min_log_mel + np.log(f / min_log_hz) / logstep

    mels = np.linspace(to_mel(float(config.fmin)), to_mel(config.nyquist_fmax), config.n_mels + 2)[1:-1]
    return np.where(mels < min_log_mel, f_sp * mels, min_log_hz * np.exp(logstep * (mels - min_log_mel)))


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Orthonormal DCT-II as a (n_mfcc, n_mels) matrix, the transform librosa's mfcc uses."""
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    basis = np.cos(np.pi / n_mels * (n + 0.5) * k) * np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def normalize_features(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-utterance normalisation: zero mean, unit variance per band over time (last axis)."""
    mean = features.mean(dim=-1, keepdim=True)
    std = features.std(dim=-1, keepdim=True, unbiased=False)
    return (features - mean) / (std + eps)


class FrontEnd(nn.Module):
    """Waveform (..., T) -> features (..., n_features, frames). Works on any device and batch."""

    def __init__(self, config: FrontEndConfig | None = None):
        super().__init__()
        self.config = config or FrontEndConfig()
        c = self.config
        fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, float(c.fmin), c.nyquist_fmax)
        self.register_buffer("window", torch.hann_window(c.win_length, periodic=True), persistent=False)
        self.register_buffer("mel_fb", torch.from_numpy(fb.copy()), persistent=False)
        if c.kind == "mfcc":
            self.register_buffer("dct", torch.from_numpy(dct_matrix(c.n_mfcc, c.n_mels)), persistent=False)
        else:
            self.dct = None

    def mel_power(self, waveform: torch.Tensor, center: bool = True) -> torch.Tensor:
        """Mel-band power (..., n_mels, frames), before the log."""
        c = self.config
        lead = waveform.shape[:-1]
        flat = waveform.reshape(-1, waveform.shape[-1])
        if center:
            flat = torch.nn.functional.pad(flat, (c.n_fft // 2, c.n_fft // 2))
        spec = torch.stft(
            flat,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            win_length=c.win_length,
            window=self.window.to(flat.dtype),
            center=False,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.mel_fb.to(power.dtype), power)
        return mel.reshape(*lead, c.n_mels, mel.shape[-1])

    def log_mel(self, waveform: torch.Tensor, center: bool = True) -> torch.Tensor:
        """Log-mel in dB (..., n_mels, frames), floored at `log_floor`."""
        return 10.0 * torch.log10(self.mel_power(waveform, center).clamp_min(self.config.log_floor))

    def forward(self, waveform: torch.Tensor, center: bool = True) -> torch.Tensor:
        if self.config.kind == "waveform":
            features = waveform.unsqueeze(-2)
            return normalize_features(features) if self.config.normalize else features
        features = self.log_mel(waveform, center)
        if self.dct is not None:
            features = torch.matmul(self.dct.to(features.dtype), features)
        if self.config.normalize:
            features = normalize_features(features)
        return features


def display_config(config: FrontEndConfig) -> FrontEndConfig:
    """The log-mel a spectrogram shows for a model's front-end (whatever features the model takes)."""
    return dataclasses.replace(config, kind="logmel", normalize=False)


class StreamingFrontEnd:
    """Feeds arriving samples and returns only the new feature columns.

    The concatenation of everything `push` returns, followed by `flush()`, equals
    `FrontEnd` on the whole signal. Per-utterance normalisation needs the whole window, so
    this form never normalises; apply `normalize_features` to a window of columns instead.
    State is explicit: `reset()` starts a new stream.
    """

    def __init__(self, config: FrontEndConfig | None = None):
        config = config or FrontEndConfig()
        self.config = dataclasses.replace(config, normalize=False)
        self.frontend = FrontEnd(self.config)
        self.reset()

    def reset(self) -> None:
        # The left half-window of zeros is exactly the batch form's left padding.
        self._pending = np.zeros(self.config.n_fft // 2, dtype=np.float32)
        self.samples_seen = 0

    @torch.no_grad()
    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append mono float32 samples; returns (n_features, k) float32 for the k new frames."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples_seen += samples.size
        buf = np.concatenate((self._pending, samples)) if samples.size else self._pending
        c = self.config
        if buf.size < c.n_fft:
            self._pending = buf
            return np.zeros((c.n_features, 0), dtype=np.float32)
        k = 1 + (buf.size - c.n_fft) // c.hop_length
        used = (k - 1) * c.hop_length + c.n_fft
        out = self.frontend(torch.from_numpy(buf[:used]), center=False).numpy()
        self._pending = buf[k * c.hop_length :].copy()
        return np.ascontiguousarray(out)

    def flush(self) -> np.ndarray:
        """End of stream: pad the right half-window with zeros, return the last frames, reset."""
        tail = self.push(np.zeros(self.config.n_fft // 2, dtype=np.float32))
        self.reset()
        return tail
