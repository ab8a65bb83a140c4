"""What defines a model's features: a plain value stored in every bundle, and the mel axis the
GUI draws. No torch here, so the window can be drawn before torch is imported."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

# waveform: the samples themselves (speech encoders); whisper: Whisper's own log-mel (its encoder's input)
FEATURE_KINDS = ("logmel", "mfcc", "waveform", "whisper")


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
    kind: str = "logmel"  # "logmel" (dB), "mfcc", "waveform" (1 feature: the samples) or "whisper"
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
        if self.kind == "whisper" and (self.sample_rate, self.n_fft, self.win_length, self.hop_length) != (16000, 400, 400, 160):
            raise ValueError("Whisper's log-mel is 16 kHz with n_fft = win_length = 400 and hop_length = 160")

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
        if self.kind == "whisper":  # reflect-padded and the last frame dropped, as Whisper does
            return n_samples // self.hop_length
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


def slaney_mel_frequencies(n: int, fmin: float, fmax: float) -> np.ndarray:
    """n frequencies (Hz) evenly spaced on librosa's Slaney mel scale (linear below 1 kHz,
    logarithmic above), the same float64 arithmetic as `librosa.mel_frequencies(htk=False)`.

    Written out here (and tested equal to librosa) because librosa's filters module imports
    scipy.signal, about 1.5 s of the model's load, and the GUI labels its axis from it.
    """
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0

    def to_mel(f):
        return f / f_sp if f < min_log_hz else min_log_mel + np.log(f / min_log_hz) / logstep

    mels = np.linspace(to_mel(float(fmin)), to_mel(float(fmax)), n)
    return np.where(mels < min_log_mel, f_sp * mels, min_log_hz * np.exp(logstep * (mels - min_log_mel)))


def mel_band_centers(config: FrontEndConfig) -> np.ndarray:
    """Centre frequency (Hz) of each mel band of a front-end."""
    return slaney_mel_frequencies(config.n_mels + 2, config.fmin, config.nyquist_fmax)[1:-1]


def display_config(config: FrontEndConfig) -> FrontEndConfig:
    """The log-mel a spectrogram shows for a model's front-end (whatever features the model takes)."""
    return dataclasses.replace(config, kind="logmel", normalize=False)
