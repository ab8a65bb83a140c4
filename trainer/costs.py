"""What a model costs to run: parameters, bundle size and CPU milliseconds per window.

The time is measured on one thread, as the least of several rounds (another process, or a busy
host, only ever adds time). On a shared machine it still moves by tens of percent between runs,
so a table keeps what it measured for a network the first time (`CostBook`, stored with the
table's figures) and measures again only a network it has not seen, or when asked.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import torch

from serapp.bundle import BundleMeta, save_bundle
from serapp.models import build_model
from serapp.predictor import Predictor
from serapp.settings import LIVE_BUDGET_MS
from trainer.config import TrainConfig


def measure(cfg: TrainConfig, n_labels: int = 8, runs: int = 20, rounds: int = 3) -> dict:
    """Parameters, bundle size and the CPU time of one window (front-end + model, 1 thread): the
    least over `rounds` of the median of `runs` reads."""
    torch.manual_seed(0)
    model = build_model(cfg.architecture, cfg.frontend.n_features, n_labels, cfg.hparams).eval()
    labels = [f"l{i}" for i in range(n_labels)]
    meta = BundleMeta(cfg.architecture, labels, cfg.frontend, cfg.window_s, dict(model.hparams), cfg.trim_top_db)
    with tempfile.TemporaryDirectory() as tmp:
        size = save_bundle(Path(tmp) / "m.safetensors", model, meta).stat().st_size
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        predictor = Predictor(model, meta, torch.device("cpu"))
        ms = min(predictor.window_cost_ms(runs) for _ in range(rounds))
    finally:
        torch.set_num_threads(threads)
    return {"parameters": sum(p.numel() for p in model.parameters()), "bundle_mb": size / 1e6, "cpu_ms": ms,
            "too_slow_for_live": ms > LIVE_BUDGET_MS}


def network_key(cfg: TrainConfig, n_labels: int) -> str:
    """What the cost depends on: the network, its input and its outputs (not how it trains)."""
    what = [cfg.architecture, cfg.hparams, cfg.frontend.to_dict(), cfg.window_s, n_labels]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


class CostBook:
    """Costs by network, kept from an earlier run's figures (`entries`, saved with them)."""

    def __init__(self, entries: dict | None = None):
        self.entries = dict(entries or {})

    @classmethod
    def kept_in(cls, results_path: Path) -> CostBook:
        """The costs an earlier run stored with its figures; none when there are none yet, or the
        file cannot be read (then every network is measured anew)."""
        try:
            stored = json.loads(Path(results_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        costs = stored.get("costs") if isinstance(stored, dict) else None
        return cls(costs if isinstance(costs, dict) else None)

    def cost(self, cfg: TrainConfig, n_labels: int = 8) -> dict:
        key = network_key(cfg, n_labels)
        if key not in self.entries:
            self.entries[key] = measure(cfg, n_labels)
        return dict(self.entries[key])
