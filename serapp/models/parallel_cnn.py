"""Parallel CNNs + Transformer encoder, after "Parallel is All You Want" (IliaZenkov, 2020).

Two identical 2D conv branches over the (MFCC x time) image, each conv-BN-ReLU-maxpool three
times while the channels widen (16, 32, 64) and the maps shrink; beside them a Transformer
encoder over time on a max-pooled copy of the input, averaged over time. The three embeddings
are concatenated into one linear classifier. The origin took 40 MFCC x 282 frames at 48 kHz
and had 248k parameters; here the frames follow the window (301 for 3 s at a 10 ms hop), and the
conv branches average what is left of time before flattening, so any window builds the same
model (the origin flattened a fixed 282-frame map).
"""

from __future__ import annotations

import torch
from torch import nn

from serapp.models.layers import BlockMaxPool2d


class _ConvBranch(nn.Module):
    def __init__(self, channels: tuple[int, ...], pools: tuple[int, ...], dropout: float):
        super().__init__()
        layers, c = [], 1
        for c_out, pool in zip(channels, pools):
            layers += [nn.Conv2d(c, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                       BlockMaxPool2d((pool, pool), ceil_mode=True), nn.Dropout(dropout)]
            c = c_out
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=-1).flatten(1)  # mean over what is left of time: any window works


class ParallelCNNTransformer(nn.Module):
    """(batch, n_features, frames) -> logits."""

    def __init__(self, n_features: int, n_classes: int, conv_channels: int = 16, transformer_layers: int = 4,
                 heads: int = 4, feedforward: int = 512, time_pool: int = 4, dropout: float = 0.3):
        super().__init__()
        self.hparams = dict(conv_channels=conv_channels, transformer_layers=transformer_layers, heads=heads,
                            feedforward=feedforward, time_pool=time_pool, dropout=dropout)
        if n_features % heads:
            raise ValueError(f"the Transformer's heads ({heads}) must divide the features ({n_features})")
        widths = (conv_channels, 2 * conv_channels, 4 * conv_channels)
        self.branches = nn.ModuleList([_ConvBranch(widths, (2, 4, 4), dropout) for _ in range(2)])
        self.time_pool = BlockMaxPool2d((1, time_pool), ceil_mode=True)
        layer = nn.TransformerEncoderLayer(n_features, heads, feedforward, dropout=0.4, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, transformer_layers, enable_nested_tensor=False)
        bands = n_features
        for pool in (2, 4, 4):  # max-pooling with ceil_mode keeps ceil(bands / pool)
            bands = -(-bands // pool)
        conv_dim = widths[-1] * bands
        self.head = nn.Linear(2 * conv_dim + n_features, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        image = features.unsqueeze(1)  # (b, 1, f, t)
        convs = [branch(image) for branch in self.branches]
        seq = self.time_pool(image).squeeze(1).transpose(1, 2)  # (b, t', f)
        attended = self.transformer(seq).mean(dim=1)
        return self.head(torch.cat([*convs, attended], dim=1))
