"""The weight average: its arithmetic, its ramp, and that it leaves integer buffers exact."""

import pytest
import torch
from torch import nn

from trainer.ema import WeightAverage


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_average_follows_the_formula_with_its_ramp():
    live = _net()
    avg = WeightAverage(live, decay=0.9)
    start = {k: v.clone() for k, v in avg.model.state_dict().items()}
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
    live.train()(torch.randn(8, 3))  # moves BatchNorm's running stats and its step counter
    avg.update(live)
    d = min(0.9, 2 / 11)  # the ramp: (1 + n) / (10 + n) after the first update
    now, cur = avg.model.state_dict(), live.state_dict()
    for k in now:
        if now[k].dtype.is_floating_point:
            assert torch.allclose(now[k], d * start[k] + (1 - d) * cur[k]), k
        else:
            assert torch.equal(now[k], cur[k]), k
    assert not any(p.requires_grad for p in avg.model.parameters())


def test_average_converges_to_constant_weights_and_round_trips():
    live = _net()
    avg = WeightAverage(live, decay=0.5)
    with torch.no_grad():
        for p in live.parameters():
            p.fill_(2.0)
    for _ in range(40):
        avg.update(live)
    assert all(torch.allclose(p, torch.full_like(p, 2.0)) for p in avg.model.parameters())
    other = WeightAverage(_net(), decay=0.5)
    other.load_state_dict(avg.state_dict())
    assert other.updates == 40
    assert all(torch.equal(a, b) for a, b in zip(other.model.parameters(), avg.model.parameters()))


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(_net(), decay)
