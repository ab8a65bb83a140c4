"""Whisper's audio encoder (OpenAI, MIT licence) in plain torch: nothing of whisper,
ctranslate2 or transformers is needed to run it.

The network as published: two convolutions (the second halves the frame rate: 100 frames a
second become 50), sinusoidal positions, pre-LayerNorm Transformer blocks, `ln_post`. The
state-dict names are openai-whisper's own, so its weights load as they are. `n_blocks` may be
smaller than the published network's: an emotion head reads the middle blocks
(docs: ../shared/docs/encoder-probe.md), and the blocks after the last one read cost time and
bundle size for nothing. `layer_outputs` returns the output of every block read (block 0:
after the convolutions and positions).

Its log-mel input is computed by `FrontEnd` with `kind = "whisper"` (serapp/features.py):
80 Slaney mel bands of a 400-sample power STFT, `log10`, floored 8 below the window's
maximum, then `(x + 4) / 4`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

LICENCE = ("Whisper's audio encoder: MIT licence, Copyright (c) 2022 OpenAI "
           "(https://github.com/openai/whisper); weights of Whisper base, multilingual")


@dataclass(frozen=True)
class WhisperDims:
    """The encoder's dimensions (Whisper base by default)."""

    n_mels: int = 80
    n_ctx: int = 1500  # positions: 30 s at 50 a second
    width: int = 512
    heads: int = 8
    n_blocks: int = 6

    def check(self) -> "WhisperDims":
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"encoder {name} must be a positive whole number, not {value!r}")
        if self.width > 1280 or self.n_ctx > 1500 or self.n_blocks > 32 or self.n_mels > 128 or self.heads > 20:
            raise ValueError("encoder dimensions beyond Whisper large's (width 1280, 20 heads, 32 blocks, 128 mel "
                             "bands, 1500 positions)")
        if self.width % self.heads:
            raise ValueError(f"encoder width {self.width} is not a multiple of its {self.heads} heads")
        return self


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's positional embedding (sin then cos halves); the stored one equals it."""
    increment = torch.log(torch.tensor(max_timescale)) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (proj(x).view(b, t, self.heads, -1).transpose(1, 2) for proj in (self.query, self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = _Attention(width, heads)
        self.attn_ln = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.mlp_ln = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoder(nn.Module):
    """(batch, n_mels, frames) Whisper log-mel -> per-block outputs (batch, frames // 2, width)."""

    def __init__(self, dims: WhisperDims = WhisperDims(), post_ln: bool = False):
        super().__init__()
        self.dims = dims.check()
        self.conv1 = nn.Conv1d(dims.n_mels, dims.width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dims.width, dims.width, kernel_size=3, stride=2, padding=1)
        # stored with the weights: the published float16 table (`sinusoids`, rounded), which the
        # reference outputs were computed with. Computing it here would cost 1.6 s on the meta
        # device (a bundle is checked there first) and is overwritten by every load.
        self.register_buffer("positional_embedding", torch.zeros(dims.n_ctx, dims.width))
        self.blocks = nn.ModuleList(_Block(dims.width, dims.heads) for _ in range(dims.n_blocks))
        self.ln_post = nn.LayerNorm(dims.width) if post_ln else None

    def stem(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > self.dims.n_ctx:
            raise ValueError(f"the encoder reads at most {self.dims.n_ctx // 50} s at once, not {x.shape[1] / 50:.1f} s")
        return x + self.positional_embedding[: x.shape[1]].to(x.dtype)

    def layer_outputs(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """The stem's output and each block's: n_blocks + 1 tensors (batch, positions, width)."""
        x = self.stem(mel)
        outs = [x]
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """The last block's output (through `ln_post` when the encoder has it): Whisper's own output."""
        x = self.layer_outputs(mel)[-1]
        return self.ln_post(x) if self.ln_post is not None else x


def load_whisper_weights(path, n_blocks: int | None = None, post_ln: bool | None = None) -> WhisperEncoder:
    """An encoder from an openai-whisper-named safetensors file (e.g. ../shared/models/whisper-base/
    encoder.safetensors), keeping its first `n_blocks` blocks; float16 weights become float32."""
    import json

    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        names = list(f.keys())
        raw = json.loads(meta.get("dims", "{}"))
        full = WhisperDims(n_mels=raw.get("n_mels", 80), n_ctx=raw.get("n_audio_ctx", 1500),
                           width=raw.get("n_audio_state", 512), heads=raw.get("n_audio_head", 8),
                           n_blocks=raw.get("n_audio_layer", 6))
        keep = full.n_blocks if n_blocks is None else n_blocks
        if not 0 <= keep <= full.n_blocks:
            raise ValueError(f"{path}: has {full.n_blocks} blocks, not {keep}")
        with_post = keep == full.n_blocks if post_ln is None else post_ln
        encoder = WhisperEncoder(WhisperDims(full.n_mels, full.n_ctx, full.width, full.heads, max(keep, 1)), with_post)
        if keep == 0:
            encoder.blocks = nn.ModuleList()
        wanted = encoder.state_dict()
        state = {k: f.get_tensor(k).float() for k in names if k in wanted}
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise ValueError(f"{path}: not a Whisper encoder (missing {', '.join(missing[:3])})")
    encoder.load_state_dict(state)
    return encoder.eval()
