"""A small temporal convolution network over log-mel frames, fast on one CPU thread."""

from __future__ import annotations

import torch
from torch import nn


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=pad, bias=False)
        self.norm = nn.BatchNorm1d(channels)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.act(self.norm(self.conv(x))))


class TemporalConvNet(nn.Module):
    """(batch, n_features, frames) -> logits (batch, n_classes).

    A pointwise input projection, dilated residual conv blocks (receptive field grows as
    2^blocks frames), then mean+std statistics pooling over time, so any length works.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        channels: int = 128,
        blocks: int = 4,
        kernel_size: int = 3,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.hparams = dict(channels=channels, blocks=blocks, kernel_size=kernel_size, dropout=dropout)
        self.input = nn.Sequential(
            nn.Conv1d(n_features, channels, 1, bias=False), nn.BatchNorm1d(channels), nn.GELU()
        )
        self.blocks = nn.Sequential(
            *[_ResidualBlock(channels, kernel_size, 2**i, dropout) for i in range(blocks)]
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * channels, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.input(features))
        pooled = torch.cat((x.mean(dim=-1), x.std(dim=-1, unbiased=False)), dim=-1)
        return self.head(pooled)
