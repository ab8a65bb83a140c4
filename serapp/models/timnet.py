"""TIM-Net (temporal-aware bi-directional multi-scale network, Ye et al., ICASSP 2023) and
CkTIM-net, its continuous-kernel variant.

The MFCC sequence and its time-reversed copy each pass through stacked temporal-aware blocks:
two causal convolutions (dilation 1, 2, 4, ... over the blocks) with batch norm, ReLU and
spatial dropout, whose sigmoid gates the block's input. Each block's output is averaged over
time and summed with its reverse-direction twin; a learned weighting over the blocks (dynamic
fusion) feeds the classifier.

CkTIM-net replaces the dilated convolutions and the input pointwise convolution by
continuous-kernel convolutions (CkConv, Romero et al. 2022): a small MLP with sine activations
(omega_0 = 25) generates the kernel from relative positions, one value per frame of the
sequence, so a single block already sees the whole window.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class CkConv1d(nn.Module):
    """Causal convolution whose kernel, as long as the input, comes from an MLP of position."""

    def __init__(self, c_in: int, c_out: int, hidden: int = 32, omega_0: float = 25.0):
        super().__init__()
        self.c_in, self.c_out, self.omega_0 = c_in, c_out, omega_0
        self.l1 = nn.Linear(1, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.l3 = nn.Linear(hidden, c_in * c_out)
        self.bias = nn.Parameter(torch.zeros(c_out))
        with torch.no_grad():  # SIREN initialisation: sine layers stay in their useful range
            self.l1.weight.uniform_(-1.0, 1.0)
            bound = math.sqrt(6.0 / hidden) / omega_0
            self.l2.weight.uniform_(-bound, bound)
            self.l3.weight.uniform_(-bound, bound)

    def kernel(self, length: int, device, dtype) -> torch.Tensor:
        """(c_out, c_in, length): tap k weighs the input k frames back."""
        pos = torch.linspace(-1.0, 1.0, length, device=device, dtype=dtype)[:, None]
        h = torch.sin(self.omega_0 * self.l1(pos))
        h = torch.sin(self.omega_0 * self.l2(h))
        return self.l3(h).t().reshape(self.c_out, self.c_in, length) / length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = int(x.shape[-1])  # a plain number: an exported graph has the window's fixed kernel
        k = self.kernel(n, x.device, x.dtype)
        # Causal, y[t] = sum_k kernel[k] x[t - k]: a plain convolution (exports to ONNX; the cost
        # grows with the square of the frames, as the origin's 164-295 ms per clip shows).
        return nn.functional.conv1d(nn.functional.pad(x, (n - 1, 0)), k.flip(-1), self.bias)


class _CausalConv(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.pad(x, (self.pad, 0)))


class _TemporalAwareBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float, continuous: bool):
        super().__init__()
        def conv():
            return CkConv1d(channels, channels) if continuous else _CausalConv(channels, kernel_size, dilation)
        self.body = nn.Sequential(conv(), nn.BatchNorm1d(channels), nn.ReLU(), nn.Dropout1d(dropout),
                                  conv(), nn.BatchNorm1d(channels), nn.ReLU(), nn.Dropout1d(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.body(x))


class TIMNet(nn.Module):
    """(batch, n_features, frames) -> logits."""

    def __init__(self, n_features: int, n_classes: int, channels: int = 39, blocks: int = 8, kernel_size: int = 2,
                 dropout: float = 0.1, continuous: bool = False):
        super().__init__()
        self.hparams = dict(channels=channels, blocks=blocks, kernel_size=kernel_size, dropout=dropout,
                            continuous=continuous)
        self.input = CkConv1d(n_features, channels) if continuous else nn.Conv1d(n_features, channels, 1)
        self.forward_blocks = nn.ModuleList([_TemporalAwareBlock(channels, kernel_size, 2**i, dropout, continuous)
                                             for i in range(blocks)])
        self.backward_blocks = nn.ModuleList([_TemporalAwareBlock(channels, kernel_size, 2**i, dropout, continuous)
                                              for i in range(blocks)])
        self.fusion = nn.Parameter(torch.zeros(blocks))  # dynamic fusion: a learned weight per block (softmax)
        self.head = nn.Linear(channels, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.input(features)
        fwd, bwd = x, torch.flip(x, dims=[-1])
        pooled = []
        for f_block, b_block in zip(self.forward_blocks, self.backward_blocks):
            fwd, bwd = f_block(fwd), b_block(bwd)
            pooled.append(fwd.mean(dim=-1) + bwd.mean(dim=-1))
        weights = torch.softmax(self.fusion, dim=0)
        fused = torch.einsum("k,kbc->bc", weights, torch.stack(pooled))
        return self.head(fused)


class CkTIMNet(TIMNet):
    """TIM-Net with continuous-kernel convolutions (fewer blocks suffice: each sees the whole window)."""

    def __init__(self, n_features: int, n_classes: int, channels: int = 39, blocks: int = 3, kernel_size: int = 2,
                 dropout: float = 0.1, continuous: bool = True):
        super().__init__(n_features, n_classes, channels, blocks, kernel_size, dropout, continuous)
