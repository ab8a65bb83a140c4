"""What the two trainers (trainer/end_to_end.py, trainer/frozen.py) share: the start of a run
(device, threads, the seeded model, its bundle metadata, the front-end), seeded random draws,
the masked loss, progress, and what a trained split returns."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from serapp.bundle import BundleMeta
from serapp.features import FrontEnd
from serapp.models import build_model
from serapp.predictor import resolve_device
from trainer.config import TrainConfig
from trainer.distributed import dist_context


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the last completed epoch's checkpoint is on disk."""


@dataclass
class TrainResult:
    model: nn.Module
    meta: BundleMeta
    history: list[dict]
    best_epoch: int
    val_metrics: dict


def seeded_generator(*parts) -> torch.Generator:
    seed = 0
    for p in parts:
        seed = (seed * 1_000_003 + int(p)) % (2**62)
    return torch.Generator().manual_seed(seed)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None,
                         smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy over the labels each clip's corpus has (mask rows), with label smoothing
    spread over those labels only: a corpus without calm never teaches "not calm".
    Without a mask this is torch's own cross-entropy."""
    if mask is None:
        return nn.functional.cross_entropy(logits, target, label_smoothing=smoothing)
    logp = torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
    picked = logp.gather(1, target[:, None])[:, 0]
    spread = torch.where(mask, logp, torch.zeros_like(logp)).sum(-1) / mask.sum(-1)
    return -((1 - smoothing) * picked + smoothing * spread).mean()


class _Bar:
    """Progress within an epoch (clips, clips per second, ETA): a live tqdm bar on a terminal;
    into a log file, tqdm's same line written out every 30 seconds."""

    def __init__(self, enabled: bool, live: bool, total: int, desc: str, stream):
        self.enabled, self.live, self.stream = enabled, live, stream
        self.bar = tqdm(total=total, desc=desc, unit="clip", file=stream, leave=False, dynamic_ncols=True,
                        disable=not (enabled and live))
        self.total, self.desc, self.n, self.postfix = total, desc, 0, ""
        self.t0 = self.last = time.perf_counter()

    def update(self, n: int, postfix: str) -> None:
        self.n += n
        self.postfix = postfix
        self.bar.update(n)
        self.bar.set_postfix_str(postfix, refresh=False)
        now = time.perf_counter()
        if self.enabled and not self.live and now - self.last >= 30.0 and self.n < self.total:
            self.last = now
            meter = tqdm.format_meter(self.n, self.total, now - self.t0, prefix=self.desc, unit="clip",
                                      postfix=self.postfix, ncols=0)
            self.stream.write(meter + "\n")
            self.stream.flush()

    def close(self) -> None:
        self.bar.close()


class Progress:
    """A progress bar per epoch and one line per finished epoch."""

    def __init__(self, enabled: bool, stream=None):
        # sys.stderr as it is now, not at import: it can be replaced (pytest, redirection).
        self.enabled, self.stream = enabled, stream or sys.stderr
        self.live = enabled and self.stream.isatty()

    def bar(self, total: int, desc: str) -> _Bar:
        return _Bar(self.enabled, self.live, total, desc, self.stream)

    def line(self, text: str) -> None:
        if self.enabled:
            tqdm.write(text, file=self.stream)
            self.stream.flush()


def bundle_meta(cfg: TrainConfig, labels: list[str], hparams: dict, training: dict | None = None) -> BundleMeta:
    return BundleMeta(architecture=cfg.architecture, labels=list(labels), frontend=cfg.frontend,
                      window_s=cfg.window_s, hparams=hparams, trim_top_db=cfg.trim_top_db,
                      training=training or {})


@dataclass
class Start:
    """A split's training begun: where it runs, its progress, the model as initialised (seeded),
    its bundle metadata and the front-end."""

    rank: int
    world: int
    device: torch.device
    progress: Progress
    model: nn.Module
    meta: BundleMeta
    frontend: FrontEnd


def start(cfg: TrainConfig, labels: list[str], verbose: bool = True) -> Start:
    rank, world = dist_context()
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    progress = Progress(verbose and rank == 0)
    torch.manual_seed(cfg.seed)  # model initialisation
    model = build_model(cfg.architecture, cfg.frontend.n_features, len(labels), cfg.hparams).to(device)
    meta = bundle_meta(cfg, labels, dict(model.hparams))
    frontend = FrontEnd(cfg.frontend).to(device)
    return Start(rank, world, device, progress, model, meta, frontend)
