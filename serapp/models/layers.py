"""Layers shared by the architectures."""

from __future__ import annotations

import torch
from torch import nn


class BlockMaxPool2d(nn.Module):
    """Max over non-overlapping (rows x columns) blocks: nn.MaxPool2d(kernel) to the bit
    (floor or ceil mode, no padding), without its cost on a CPU.

    torch's CPU max-pool always computes argmax indices: over a 16 x 64 x 300 map with a 2 x 1
    kernel it took 2.8 ms on one thread, against 0.09 ms for the element-wise maximum of the
    strided slices below; its four pools were about 40% of the bundled model's time per window.
    A training step needs the gradient, which flows back faster through torch's indices (a step
    of batch 32 took 411 ms with them, 540 ms through the maxima), so training uses torch's.
    """

    def __init__(self, kernel: tuple[int, int], ceil_mode: bool = False):
        super().__init__()
        self.kernel, self.ceil_mode = (int(kernel[0]), int(kernel[1])), ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:  # training: torch's backward through its indices is the faster one
            return nn.functional.max_pool2d(x, self.kernel, ceil_mode=self.ceil_mode)
        for dim, k in ((-2, self.kernel[0]), (-1, self.kernel[1])):
            if k > 1:
                x = _max_over_blocks(x, dim, k, self.ceil_mode)
        return x

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, ceil_mode={self.ceil_mode}"


def _max_over_blocks(x: torch.Tensor, dim: int, k: int, ceil_mode: bool) -> torch.Tensor:
    n = x.shape[dim]
    if ceil_mode and n % k:  # the last, shorter block counts as nn.MaxPool2d(ceil_mode=True) counts it
        pad = [0, 0] * (-dim - 1) + [0, k - n % k]
        x = nn.functional.pad(x, pad, value=float("-inf"))
        n = x.shape[dim]
    stop = n - n % k
    out = x.narrow(dim, 0, stop)
    slices = [out[(..., slice(i, stop, k)) if dim == -1 else (..., slice(i, stop, k), slice(None))] for i in range(k)]
    result = slices[0]
    for s in slices[1:]:
        result = torch.maximum(result, s)
    return result
