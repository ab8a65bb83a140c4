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

import numpy as np
import torch
from torch import nn

from serapp.feature_config import (  # noqa: F401  (re-exported: the front-end's public names)
    FEATURE_KINDS,
    FrontEndConfig,
    display_config,
    mel_band_centers,
    slaney_mel_frequencies,
)


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised mel filterbank (n_mels, n_fft//2 + 1), built once per parameter set:
    triangles between neighbouring mel frequencies, each scaled to constant energy. The same
    arithmetic as `librosa.filters.mel(norm="slaney")` and equal to it to the bit (tested);
    written out because that module's import (scipy.signal) costs 1.5 s of a model's load."""
    mel_f = slaney_mel_frequencies(n_mels + 2, fmin, fmax)
    fft_f = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_f)
    fb = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        fb[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    fb *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    fb.setflags(write=False)
    return fb


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

    def whisper_log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Whisper's input, as openai-whisper computes it: reflect padding, the last frame dropped,
        log10 floored 8 below the window's maximum, scaled by (x + 4) / 4."""
        c = self.config
        lead = waveform.shape[:-1]
        flat = waveform.reshape(-1, waveform.shape[-1])
        spec = torch.stft(flat, n_fft=c.n_fft, hop_length=c.hop_length, window=self.window.to(flat.dtype),
                          center=True, pad_mode="reflect", return_complex=True)[..., :-1]
        mel = torch.matmul(self.mel_fb.to(flat.dtype), spec.real.square() + spec.imag.square())
        log = torch.log10(mel.clamp_min(1e-10))
        log = torch.maximum(log, log.amax(dim=(-2, -1), keepdim=True) - 8.0)
        return ((log + 4.0) / 4.0).reshape(*lead, c.n_mels, log.shape[-1])

    def forward(self, waveform: torch.Tensor, center: bool = True) -> torch.Tensor:
        if self.config.kind == "whisper":
            return self.whisper_log_mel(waveform)
        if self.config.kind == "waveform":
            features = waveform.unsqueeze(-2)
            return normalize_features(features) if self.config.normalize else features
        features = self.log_mel(waveform, center)
        if self.dct is not None:
            features = torch.matmul(self.dct.to(features.dtype), features)
        if self.config.normalize:
            features = normalize_features(features)
        return features


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
