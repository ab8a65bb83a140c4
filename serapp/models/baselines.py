"""The small models this project grew from, as its origins built them (adapted to one interface:
features (batch, n_features, frames) -> logits):

- `GlobalFeatureLogReg`: logistic regression on two global features, the floor (course project).
- `StatsFeedForward`: a feed-forward net on each band's mean and spread (course project).
- `LSTMNet`: a bidirectional LSTM over frames (course project).
- `FrameTransformer`: a small Transformer encoder over mel frames (course project, 377k parameters).
- `MFCCConvNet`: three conv + max-pool + batch-norm blocks, dense 64, dropout 0.3 (audio deep-learning notes).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class GlobalFeatureLogReg(nn.Module):
    """Logistic regression on two numbers per window, from log-mel in dB (un-normalised): the
    spread of the frame-to-frame change of the frame level ("std of the amplitude change") and
    the share of frames within `range_db` of the loudest (how long the voice lasts; the origin's
    clip length, which a fixed window can only see this way)."""

    def __init__(self, n_features: int, n_classes: int, range_db: float = 30.0):
        super().__init__()
        self.hparams = dict(range_db=range_db)
        self.norm = nn.BatchNorm1d(2)  # standardises the two features
        self.linear = nn.Linear(2, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        level = 10.0 * torch.logsumexp(features * (math.log(10.0) / 10.0), dim=1) / math.log(10.0)  # dB per frame
        change = (level[:, 1:] - level[:, :-1]).std(dim=-1, unbiased=False)
        voiced = (level > level.amax(dim=-1, keepdim=True) - self.hparams["range_db"]).float().mean(dim=-1)
        return self.linear(self.norm(torch.stack([change, voiced], dim=1)))


class StatsFeedForward(nn.Module):
    """Each band's mean and standard deviation over the window, standardised (a scaler's job),
    through a two-layer MLP. Its features must not be normalised per utterance: that sets every
    band's mean to 0 and spread to 1, and leaves the net nothing to see."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.hparams = dict(hidden=hidden, dropout=dropout)
        self.net = nn.Sequential(nn.BatchNorm1d(2 * n_features),
                                 nn.Linear(2 * n_features, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden // 2, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        stats = torch.cat((features.mean(dim=-1), features.std(dim=-1, unbiased=False)), dim=1)
        return self.net(stats)


class LSTMNet(nn.Module):
    """A bidirectional LSTM over frames; its outputs' mean and maximum over time feed the classifier."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 128, layers: int = 2, dropout: float = 0.2):
        super().__init__()
        self.hparams = dict(hidden=hidden, layers=layers, dropout=dropout)
        self.lstm = nn.LSTM(n_features, hidden, layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * hidden, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(features.transpose(1, 2))
        return self.head(torch.cat((out.mean(dim=1), out.amax(dim=1)), dim=1))


def sinusoidal_positions(length: int, dim: int, device, dtype) -> torch.Tensor:
    """(length, dim) sine/cosine positions (Vaswani et al. 2017): no length is fixed in advance."""
    pos = torch.arange(length, device=device, dtype=dtype)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, device=device, dtype=dtype) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device, dtype=dtype)
    table[:, 0::2] = torch.sin(pos * rate)
    table[:, 1::2] = torch.cos(pos * rate[: dim // 2])
    return table


class FrameTransformer(nn.Module):
    """Mel frames projected to `d_model`, with sinusoidal positions, through a Transformer
    encoder; the mean over time feeds the classifier."""

    def __init__(self, n_features: int, n_classes: int, d_model: int = 128, heads: int = 4, layers: int = 3,
                 feedforward: int = 256, dropout: float = 0.1, time_pool: int = 2):
        super().__init__()
        self.hparams = dict(d_model=d_model, heads=heads, layers=layers, feedforward=feedforward,
                            dropout=dropout, time_pool=time_pool)
        self.pool = nn.AvgPool1d(time_pool, ceil_mode=True) if time_pool > 1 else nn.Identity()
        self.project = nn.Linear(n_features, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, feedforward, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.project(self.pool(features).transpose(1, 2))
        x = x + sinusoidal_positions(x.shape[1], x.shape[2], x.device, x.dtype)
        return self.head(self.encoder(x).mean(dim=1))


class MFCCConvNet(nn.Module):
    """The MFCC image through three conv + max-pool + batch-norm blocks (32 filters; 3x3, 3x3,
    2x2), then dense 64 with dropout 0.3. The maps are averaged over time before the dense
    layer, so any window length builds the same model (the notes flattened a fixed-size map)."""

    def __init__(self, n_features: int, n_classes: int, filters: int = 32, dense: int = 64, dropout: float = 0.3):
        super().__init__()
        self.hparams = dict(filters=filters, dense=dense, dropout=dropout)
        blocks, c = [], 1
        for kernel, pool in ((3, 3), (3, 3), (2, 2)):
            blocks += [nn.Conv2d(c, filters, kernel, padding=kernel // 2 if kernel % 2 else 0), nn.ReLU(),
                       nn.MaxPool2d(pool, stride=2, padding=pool // 2), nn.BatchNorm2d(filters)]
            c = filters
        self.body = nn.Sequential(*blocks)
        bands = n_features
        for kernel, pool in ((3, 3), (3, 3), (2, 2)):
            bands = bands + (0 if kernel % 2 else -kernel + 1)  # a 2x2 conv without padding loses one
            bands = (bands + 2 * (pool // 2) - pool) // 2 + 1
        self.head = nn.Sequential(nn.Linear(filters * bands, dense), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(dense, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(features.unsqueeze(1)).mean(dim=-1).flatten(1))
