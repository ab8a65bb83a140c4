"""Layers written for speed: the block max-pool gives nn.MaxPool2d's output to the bit, with or
without a gradient; CkConv's FFT path gives the direct causal convolution's output and gradients."""

import pytest
import torch
from torch import nn

from serapp.models.layers import BlockMaxPool2d
from serapp.models.timnet import CkConv1d, fft_size

CASES = [(kernel, ceil_mode, shape)
         for kernel in [(2, 1), (2, 2), (1, 4), (4, 4), (3, 2)]
         for ceil_mode in (False, True)
         for shape in [(2, 3, 64, 300), (1, 4, 13, 37), (1, 1, 5, 3)]
         if ceil_mode or (shape[2] >= kernel[0] and shape[3] >= kernel[1])]  # floor mode: a map at least a kernel


@pytest.mark.parametrize("kernel, ceil_mode, shape", CASES)
def test_block_max_pool_is_max_pool_to_the_bit(kernel, ceil_mode, shape):
    torch.manual_seed(0)
    x = torch.randn(shape)
    ours, theirs = BlockMaxPool2d(kernel, ceil_mode)(x), nn.MaxPool2d(kernel, ceil_mode=ceil_mode)(x)
    assert ours.shape == theirs.shape and torch.equal(ours, theirs)


def test_the_training_path_gives_the_same_output_and_a_gradient_to_each_blocks_maximum():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 7, 9)
    pool = BlockMaxPool2d((2, 2), ceil_mode=True)
    with torch.no_grad():
        inference = pool(x)
    leaf = x.clone().requires_grad_(True)
    training = pool(leaf)
    assert torch.equal(training.detach(), inference)
    training.sum().backward()
    assert int(leaf.grad.sum()) == inference.numel() and set(leaf.grad.unique().tolist()) == {0.0, 1.0}


def _direct_causal(conv: CkConv1d, x: torch.Tensor) -> torch.Tensor:
    """y[b, o, t] = bias[o] + sum_i sum_(j <= t) kernel[o, i, j] x[b, i, t - j], term by term."""
    n = x.shape[-1]
    k = conv.kernel(n, x.device, x.dtype)
    back = x.flip(-1)  # back[..., n - 1 - t:] is x[..., t], x[..., t - 1], ..., x[..., 0]
    cols = [torch.einsum("oij,bij->bo", k[:, :, : t + 1], back[:, :, n - 1 - t:]) for t in range(n)]
    return torch.stack(cols, dim=-1) + conv.bias[:, None]


@pytest.mark.parametrize("frames", [1, 2, 7, 64, 301])
def test_the_continuous_kernel_convolution_through_the_fft_is_the_causal_sum(frames):
    torch.manual_seed(frames)
    conv = CkConv1d(3, 5)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 3, frames, requires_grad=True)
    fast, slow = conv(x), _direct_causal(conv, x)
    assert fast.shape == slow.shape == (2, 5, frames)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-4)
    weights = torch.randn_like(slow)
    grads = [torch.autograd.grad((out * weights).sum(), [x, *conv.parameters()]) for out in (conv(x), slow)]
    for g_fast, g_slow in zip(*grads):
        torch.testing.assert_close(g_fast, g_slow, atol=1e-4, rtol=1e-3)


def test_the_continuous_kernel_convolution_trains_under_bfloat16_autocast():
    """bf16 autocast (the trainer's `amp` on a GPU; CPU autocast takes the same path) hands the
    layer bfloat16 input, which torch's FFT refuses: the sum runs in float32 and matches it."""
    torch.manual_seed(0)
    conv = CkConv1d(3, 5)
    x = torch.randn(2, 3, 40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x.bfloat16())
        out.float().square().sum().backward()
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, conv(x.bfloat16().float()), atol=1e-5, rtol=1e-4)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in conv.parameters())


def test_the_fft_length_holds_the_whole_linear_convolution_and_has_only_factors_two_three_five():
    for needed in range(1, 3000):
        size = fft_size(needed)
        odd = size
        while odd % 2 == 0:
            odd //= 2
        assert size >= needed and odd in (1, 3, 5)
        assert size < 2 * needed or size == 1  # never more than double what is needed


def test_a_kept_kernel_follows_every_change_of_weights_and_never_stands_in_for_training():
    torch.manual_seed(3)
    conv, other = CkConv1d(3, 5).eval(), CkConv1d(3, 5)
    x = torch.randn(2, 3, 40)

    def matches_the_causal_sum(frames: int = 40):
        with torch.inference_mode():
            fast = conv(x[..., :frames])
        with torch.no_grad():
            torch.testing.assert_close(fast, _direct_causal(conv, x[..., :frames]), atol=1e-5, rtol=1e-4)

    matches_the_causal_sum()
    matches_the_causal_sum()  # read again: the kernel kept from the first read
    matches_the_causal_sum(25)  # another length
    with torch.no_grad():
        conv.l1.weight.mul_(1.5)  # in place, as an optimiser or a weight average does
    matches_the_causal_sum()
    conv.load_state_dict(other.state_dict())
    matches_the_causal_sum()
    # With gradients on (eval mode, as in a saliency map) every weight still gets its gradient.
    grads = torch.autograd.grad(conv(x).sum(), list(conv.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)
