"""Pretrained speech encoders (wav2vec 2.0, HuBERT, WavLM through `transformers`, an optional
extra) with a small head: a learned weighted sum of the encoder's layers, averaged over time,
through a two-layer classifier.

The encoder is read only from a local folder the user names, in the Hugging Face layout
(`config.json` and `model.safetensors` or `pytorch_model.bin`); nothing is ever downloaded.
The bundle records the folder and a SHA-256 of those files: on another machine, a missing or
different encoder is a one-line error naming the folder.

Frozen (the default), the encoder's weights stay out of the bundle and out of training; only
the head and the layer weights learn, and `ser-train` computes each clip's per-layer averages
once (trainer/frozen.py). Fine-tuned (`finetune = true`), the encoder trains and its weights
are in the bundle.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

LAYOUT = "a Hugging Face model folder: config.json and model.safetensors (or pytorch_model.bin)"


class EncoderUnavailable(ValueError):
    """The pretrained encoder a model needs cannot be had; the message names the folder."""


def encoder_files(folder: Path) -> list[Path]:
    weights = sorted(p for p in folder.glob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    return [folder / "config.json", *weights] if (folder / "config.json").is_file() and weights else []


def encoder_checksum(folder: str | Path) -> str:
    """SHA-256 over the encoder's config and weight files (names and bytes)."""
    h = hashlib.sha256()
    for path in encoder_files(Path(folder)):
        h.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def load_encoder(folder: str, checksum: str = "", weights: bool = True) -> nn.Module:
    """The encoder from `folder` (never the network); `weights=False` builds it from its config
    alone (no weights read: for checking a bundle before loading it)."""
    path = Path(folder).expanduser() if folder else None
    if path is None or not path.is_dir() or not encoder_files(path):
        where = f"{folder!r}" if folder else "(none given: set model.encoder_dir)"
        raise EncoderUnavailable(f"the pretrained speech encoder folder {where} is missing; this model needs "
                                 f"{LAYOUT}, as it was trained with (nothing is downloaded)")
    try:
        import transformers
    except ImportError:
        raise EncoderUnavailable("speech encoders need the transformers package: pip install 'serapp[encoders]'") from None
    if checksum and weights and encoder_checksum(path) != checksum:
        raise EncoderUnavailable(f"the speech encoder in {folder!r} is not the one this model was trained with "
                                 "(its files' SHA-256 differs)")
    config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    if not weights:
        return transformers.AutoModel.from_config(config)
    transformers.logging.set_verbosity_error()  # its progress bars and notices are not the user's business
    return transformers.AutoModel.from_pretrained(str(path), local_files_only=True)


class SpeechEncoderClassifier(nn.Module):
    """(batch, 1, samples) normalised waveform -> logits."""

    frozen_encoder: bool

    def __init__(self, n_features: int, n_classes: int, encoder_dir: str = "", encoder_sha256: str = "",
                 finetune: bool = False, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        if n_features != 1:
            raise ValueError('speech encoders read the waveform: set features.kind = "waveform"')
        self.hparams = dict(encoder_dir=encoder_dir, encoder_sha256=encoder_sha256, finetune=finetune,
                            hidden=hidden, dropout=dropout)
        on_meta = torch.empty(0).device.type == "meta"  # a bundle being checked: no weights to read
        encoder = load_encoder(encoder_dir, encoder_sha256, weights=not on_meta)
        if not encoder_sha256 and not on_meta:  # recorded at training time, checked wherever it is loaded
            self.hparams["encoder_sha256"] = encoder_checksum(encoder_dir)
        self.frozen_encoder = not finetune
        if finetune:
            self.encoder = encoder
        else:  # kept out of the module tree: not in the bundle, not trained, always in eval mode
            encoder.requires_grad_(False).eval()
            self._frozen = [encoder]
        n_layers = encoder.config.num_hidden_layers + 1
        width = encoder.config.hidden_size
        self.layer_weights = nn.Parameter(torch.zeros(n_layers))
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    @property
    def speech_encoder(self) -> nn.Module:
        return self._frozen[0] if self.frozen_encoder else self.encoder

    def _apply(self, fn, *args, **kwargs):
        if self.frozen_encoder:  # .to(device) and friends reach the frozen encoder too
            self._frozen[0]._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def layer_means(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, layers, width): every layer's output averaged over time."""
        wave = features[:, 0, :]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_encoder):
            states = self.speech_encoder(wave, output_hidden_states=True).hidden_states
            return torch.stack([s.mean(dim=1) for s in states], dim=1)

    def classify(self, means: torch.Tensor) -> torch.Tensor:
        """Logits from per-layer means (what the trainer caches for a frozen encoder)."""
        pooled = torch.einsum("l,bld->bd", torch.softmax(self.layer_weights, dim=0), means)
        return self.head(pooled)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.layer_means(features))
