"""Shared layers: the block max-pool gives nn.MaxPool2d's output to the bit, with or without a gradient."""

import pytest
import torch
from torch import nn

from serapp.models.layers import BlockMaxPool2d

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
