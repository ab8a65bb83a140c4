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
        self._cached_spectrum: tuple | None = None  # (key, spectrum): see spectrum()
        with torch.no_grad():  # SIREN initialisation: sine layers stay in their useful range
            self.l1.weight.uniform_(-1.0, 1.0)
            bound = math.sqrt(6.0 / hidden) / omega_0
            self.l2.weight.uniform_(-bound, bound)
            self.l3.weight.uniform_(-bound, bound)

    def _hidden(self, length: int, device, dtype) -> torch.Tensor:
        """(length, hidden): the sine MLP's features of each relative position."""
        pos = torch.linspace(-1.0, 1.0, length, device=device, dtype=dtype)[:, None]
        return torch.sin(self.omega_0 * self.l2(torch.sin(self.omega_0 * self.l1(pos))))

    def kernel(self, length: int, device, dtype) -> torch.Tensor:
        """(c_out, c_in, length): tap k weighs the input k frames back."""
        h = self._hidden(length, device, dtype)
        return self.l3(h).t().reshape(self.c_out, self.c_in, length) / length

    def kernel_spectrum(self, length: int, size: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The real and imaginary parts of rfft(kernel, size), each (freq, c_in, c_out). The
        transform is linear, so it is the last layer applied to the transform of the hidden
        features: 33 transforms instead of c_in * c_out."""
        h = self._hidden(length, device, dtype)
        h = torch.cat([h, torch.ones_like(h[:, :1])], dim=1).t()  # the bias is a constant feature
        spectrum = torch.fft.rfft(h, size).t()  # (freq, hidden + 1)
        weight = torch.cat([self.l3.weight, self.l3.bias[:, None]], dim=1) / length  # rows (c_out, c_in)
        # Rows reordered to (c_in, c_out) first, so the products come out contiguous, ready for bmm.
        weight = weight.reshape(self.c_out, self.c_in, -1).transpose(0, 1).reshape(self.c_out * self.c_in, -1)
        return tuple((part.contiguous() @ weight.t()).reshape(-1, self.c_in, self.c_out)
                     for part in (spectrum.real, spectrum.imag))

    def spectrum(self, length: int, size: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """kernel_spectrum, kept between calls when nothing can learn from it: in eval mode without
        gradients (the app reads every window at one length, and the kernel is half the cost of
        a read). The key holds each weight's storage and in-place version, so loading, averaging
        or training the weights makes it stale."""
        weights = list(self.parameters())
        if self.training or torch.is_grad_enabled() or any(w.is_inference() for w in weights):
            return self.kernel_spectrum(length, size, device, dtype)
        key = (length, size, device, dtype, tuple((w.data_ptr(), w._version) for w in weights))
        cached = self._cached_spectrum  # read once: another thread may read another length meanwhile
        if cached is None or cached[0] != key:
            cached = self._cached_spectrum = (key, self.kernel_spectrum(length, size, device, dtype))
        return cached[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = int(x.shape[-1])  # a plain number: an exported graph has the window's fixed kernel
        if torch.onnx.is_in_onnx_export():
            # y[t] = sum_j kernel[j] x[t - j] as a plain convolution: ONNX has no real FFT; the
            # cost grows with the square of the frames, as the origin's 164-295 ms per clip shows.
            k = self.kernel(n, x.device, x.dtype)
            return nn.functional.conv1d(nn.functional.pad(x, (n - 1, 0)), k.flip(-1), self.bias)
        # The same sum through the FFT, as CkConv's own code does for long kernels: zero-padded to
        # at least 2n - 1, so nothing wraps round.
        # torch's FFT has no bfloat16 kernels: under autocast (bf16 training on a GPU) this sum
        # runs in float32.
        with torch.autocast(x.device.type, enabled=False):
            x = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
            size = fft_size(2 * n - 1)
            xs = torch.fft.rfft(x, size).permute(2, 0, 1)  # (freq, batch, c_in)
            kr, ki = self.spectrum(n, size, x.device, x.dtype)
            # The complex product as real batched matmuls on contiguous parts (torch's complex or
            # strided matmul on the CPU is 35 times slower): [xr; xi] @ kr and [xr; xi] @ ki.
            both = torch.cat([xs.real, xs.imag], dim=1).contiguous()
            by_r, by_i = torch.bmm(both, kr), torch.bmm(both, ki)
            b = x.shape[0]
            y = torch.complex(by_r[:, :b] - by_i[:, b:], by_i[:, :b] + by_r[:, b:]).permute(1, 2, 0)
            return torch.fft.irfft(y, size)[..., :n] + self.bias[:, None]


def fft_size(length: int) -> int:
    """The smallest 2^k, 3 * 2^k or 5 * 2^k at least `length`. torch's CPU FFT does these fastest:
    for a 3 s window (601 points) 640 takes a quarter of the time of 602 (a factor 43) and under
    half of 625, the size scipy.fft.next_fast_len picks."""
    return min(m << max(0, (length - 1) // m).bit_length() for m in (1, 3, 5))


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
