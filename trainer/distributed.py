"""Distributed set-up: this process's rank and the world's size (the process group initialised
where torchrun launched it), a barrier, and progress printed by one process only."""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist


def dist_context() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def log(*args, file=None, **kw) -> None:
    """Progress and warnings go to stderr, from one process only under DDP."""
    if dist_context()[0] == 0:
        print(*args, file=file or sys.stderr, **kw)
