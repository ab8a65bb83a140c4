"""2D conv front over time-frequency, dilated temporal blocks, attentive statistics pooling."""

from __future__ import annotations

import torch
from torch import nn

from serapp.models.layers import BlockMaxPool2d
from serapp.models.tcn import _ResidualBlock


class _ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, pool: tuple[int, int]):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU(),
            BlockMaxPool2d(pool) if pool != (1, 1) else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time (as in ECAPA-style pooling)."""

    def __init__(self, channels: int, hidden: int = 64):
        super().__init__()
        self.attn = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.attn(x), dim=-1)
        mean = (x * w).sum(dim=-1)
        var = ((x - mean.unsqueeze(-1)).square() * w).sum(dim=-1)
        return torch.cat((mean, var.clamp_min(1e-6).sqrt()), dim=-1)


class ConvRecurrentNet(nn.Module):
    """(batch, n_features, frames) -> logits. 'Recurrent' in the loose sense: the temporal
    part is dilated convolution, which is faster than an RNN on a CPU and streams well.

    The 2D front pools frequency by 2 per block and time by 2 in all but the first block.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        width: int = 16,
        conv_blocks: int = 4,
        channels: int = 128,
        temporal_blocks: int = 3,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.hparams = dict(width=width, conv_blocks=conv_blocks, channels=channels,
                            temporal_blocks=temporal_blocks, dropout=dropout)
        layers, c = [], 1
        for i in range(conv_blocks):
            c_out = width * 2 ** min(i, 2)
            layers.append(_ConvBlock(c, c_out, (2, 1) if i == 0 else (2, 2)))
            c = c_out
        self.front = nn.Sequential(*layers)
        freq_left = max(1, n_features // 2**conv_blocks)
        self.project = nn.Sequential(nn.Conv1d(c * freq_left, channels, 1, bias=False),
                                     nn.BatchNorm1d(channels), nn.GELU())
        self.temporal = nn.Sequential(*[_ResidualBlock(channels, 3, 2**i, dropout) for i in range(temporal_blocks)])
        self.pool = AttentiveStatsPool(channels)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * channels, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.front(features.unsqueeze(1))  # (b, c, f', t')
        x = x.flatten(1, 2)
        x = self.temporal(self.project(x))
        return self.head(self.pool(x))
