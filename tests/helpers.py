"""Generators of small test data: audio signals, audio files and model bundles."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from serapp.bundle import BundleMeta, save_bundle
from serapp.features import FrontEndConfig
from serapp.labels import EMOTIONS
from serapp.models import build_model


def tone(seconds: float = 1.0, rate: int = 16000, freq: float = 440.0, amp: float = 0.5,
         noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A sine with optional white noise, float32 mono."""
    t = np.arange(int(round(seconds * rate))) / rate
    y = amp * np.sin(2 * np.pi * freq * t)
    if noise:
        y = y + noise * np.random.default_rng(seed).standard_normal(t.size)
    return y.astype(np.float32)


def speechlike(seconds: float = 2.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a moving pitch, syllable-like amplitude envelope and some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    y = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (0.2 * y * env + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def write_audio(path, samples: np.ndarray, rate: int = 16000, subtype: str | None = None, format: str | None = None):
    sf.write(str(path), samples, rate, subtype=subtype, format=format)
    return path


def make_bundle(path, labels=EMOTIONS, frontend: FrontEndConfig | None = None, window_s: float = 1.0,
                seed: int = 0, **hparams):
    torch.manual_seed(seed)
    frontend = frontend or FrontEndConfig(normalize=True)
    hparams = {"channels": 16, "blocks": 2, **hparams}
    model = build_model("tcn", frontend.n_features, len(labels), hparams).eval()
    meta = BundleMeta(architecture="tcn", labels=list(labels), frontend=frontend, window_s=window_s,
                      training={"data": "random init (test)", "protocol": "none"})
    save_bundle(path, model, meta)
    return path, model

