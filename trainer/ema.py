"""An exponential moving average of a model's weights, used for validation, selection and export.

Averaging the last few hundred optimiser steps smooths the step-to-step noise of a small
model trained on a few hundred clips; the average costs nothing at inference.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """Keeps `model` (a copy of the trained net) at decay * average + (1 - decay) * live weights.

    The effective decay ramps up as (1 + n) / (10 + n) so the first steps are not dominated by
    the random initialisation: after n steps the average spans about the last n / 9 steps, and
    `decay` caps it only from n = (10 * decay - 1) / (1 - decay) on (1790 steps for 0.995,
    4490 for 0.998). Integer buffers (BatchNorm's step counters) are copied.
    """

    def __init__(self, live: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(live).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, live: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, cur in zip(self.model.state_dict().values(), live.state_dict().values()):
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(cur.detach(), alpha=1.0 - d)
            else:
                avg.copy_(cur)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
