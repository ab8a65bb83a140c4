"""The end-to-end trainer: the whole network trained on waveforms (augmented, cropped) through
the front-end, single process or DDP under torchrun, a checkpoint every epoch, resume.

Reproducibility: every random draw of epoch e (clip order, crops, augmentation) comes from
generators seeded by (seed, e[, rank]), so a run resumed from the checkpoint after epoch e
repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from serapp.errors import SerappError
from serapp.files import WriteError, write_atomically
from serapp.predictor import Predictor, loop_to_length
from trainer.augment import augment_waveforms, mixup, spec_augment
from trainer.config import TrainConfig
from trainer.data import ClipSet, epoch_order
from trainer.distributed import barrier
from trainer.ema import WeightAverage
from trainer.evaluation import evaluate
from trainer.training import Start, TrainingInterrupted, TrainResult, masked_cross_entropy, seeded_generator

CHECKPOINT = "checkpoint.pt"


class CheckpointError(SerappError):
    """A checkpoint that cannot be read (damaged, or not one ser-train wrote)."""


def read_checkpoint(path: Path) -> dict:
    """A run's checkpoint: tensors and plain values only (weights_only: a pickle put in its place
    is never executed), or CheckpointError naming the file and the cause."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, zipfile errors...
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable ser-train checkpoint ({why[:200]}); delete it, or the run "
                              "with it, to start that run again") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointError(f"{path}: not a ser-train checkpoint (it holds no model weights)")
    return ckpt


def random_crops(clips: list[np.ndarray], window: int, gen: torch.Generator) -> torch.Tensor:
    """One window per clip: a random crop, or for a short clip its loop from a random offset."""
    out = np.empty((len(clips), window), dtype=np.float32)
    for i, y in enumerate(clips):
        if y.size >= window:
            start = int(torch.randint(0, y.size - window + 1, (1,), generator=gen))
            out[i] = y[start : start + window]
        else:
            offset = int(torch.randint(0, y.size, (1,), generator=gen))
            out[i] = loop_to_length(y, window + y.size)[offset : offset + window]
    return torch.from_numpy(out)


def _lr_lambda(cfg: TrainConfig):
    def factor(epoch: int) -> float:
        if epoch < cfg.warmup_epochs:
            return (epoch + 1) / (cfg.warmup_epochs + 1)
        if cfg.lr_schedule == "constant":
            return 1.0
        span = max(1, cfg.epochs - cfg.warmup_epochs)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    return factor


def train_network(cfg: TrainConfig, begun: Start, train: ClipSet, val: ClipSet, run_dir: Path,
                  resume: bool = False, stop_after_epochs: int | None = None,
                  watched: ClipSet | None = None) -> TrainResult:
    """Train the whole network `begun` (trainer.training.start) on `train`, keeping the epoch best
    on `val`'s UA. `watched` (the test clips, with cfg.watch_test) is scored after every epoch
    into the history only."""
    rank, world, device, progress = begun.rank, begun.world, begun.device, begun.progress
    model, meta, frontend = begun.model, begun.meta, begun.frontend
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    masks = train.masks()
    amp = cfg.amp and device.type == "cuda"
    window = int(round(cfg.window_s * cfg.frontend.sample_rate))
    ckpt_path = run_dir / CHECKPOINT
    # With an average, validation, model selection and the exported weights all use it.
    ema = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    scored = ema.model if ema is not None else model

    state = {"epoch": 0, "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0, "history": [], "best_state": None}
    if resume and ckpt_path.is_file():
        ckpt = read_checkpoint(ckpt_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = {k: ckpt[k] for k in state}
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        progress.line(f"resumed {run_dir} after epoch {state['epoch']}")

    predictor = Predictor(scored, meta, device)
    targets = torch.tensor(train.targets)
    try:
        for epoch in range(state["epoch"], cfg.epochs):
            if state["bad_epochs"] >= cfg.patience:
                break
            t0 = time.perf_counter()
            net.train()
            order = epoch_order(train, cfg.sampling, seeded_generator(cfg.seed, epoch), cfg.epoch_clips,
                                cfg.corpus_weights, cfg.corpus_power)
            shard = order[rank::world][: len(order) // world]
            gen = seeded_generator(cfg.seed, epoch, rank, 7)
            torch.manual_seed(int(seeded_generator(cfg.seed, epoch, rank, 13).initial_seed()))  # dropout draws
            seen = correct = 0
            loss_sum = 0.0
            # a last batch of one clip is left out (it comes back shuffled in the next epoch): batch
            # norm cannot train on one value per channel, and training must not depend on the remainder
            n_batches = len(shard) // cfg.batch_size + (len(shard) % cfg.batch_size > 1)
            bar = progress.bar(len(shard), f"{run_dir.name} epoch {epoch + 1}/{cfg.epochs}")
            for b in range(n_batches):
                idx = shard[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                waves = augment_waveforms(random_crops([train.clips[i] for i in idx], window, gen),
                                          cfg.augment, cfg.frontend.sample_rate, gen)
                y = targets[idx].to(device)
                m = masks[idx].to(device) if masks is not None else None
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                    feats = frontend(waves.to(device))
                    if cfg.augment.spec_masks:
                        feats = spec_augment(feats, gen)
                    if cfg.augment.mixup_alpha > 0:
                        feats, partner, lam = mixup(feats, cfg.augment.mixup_alpha, gen)
                        logits = net(feats)
                        p = partner.to(device)
                        loss = (lam * masked_cross_entropy(logits.float(), y, m, cfg.label_smoothing)
                                + (1 - lam) * masked_cross_entropy(logits.float(), y[p], None if m is None else m[p],
                                                                   cfg.label_smoothing))
                    else:
                        logits = net(feats)
                        loss = masked_cross_entropy(logits.float(), y, m, cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                if ema is not None:
                    ema.update(model)
                seen += len(idx)
                loss_sum += float(loss.detach()) * len(idx)
                scored_logits = logits if m is None else logits.masked_fill(~m, float("-inf"))
                correct += int((scored_logits.argmax(-1) == y).sum())
                bar.update(len(idx), f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}")
            bar.close()
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            scored.eval()
            val_metrics = evaluate(predictor, val)
            record = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, seen), "train_acc": correct / max(1, seen),
                      "val_loss": val_metrics["loss"], "val_ua": val_metrics["ua"], "val_wa": val_metrics["wa"],
                      "lr": lr, "seconds": time.perf_counter() - t0, "train_clips": seen, "world_size": world}
            if watched is not None and len(watched):
                test_metrics = evaluate(predictor, watched)
                record.update(test_wa=test_metrics["wa"], test_ua=test_metrics["ua"])
            if "per_corpus" in val_metrics:
                record["val_ua_per_corpus"] = {g: v["ua"] for g, v in val_metrics["per_corpus"].items()}
            state["history"].append(record)
            # Ties go to the later epoch: validation UA over a few speakers is coarse, and a later
            # epoch at the same score has seen a lower learning rate.
            if val_metrics["ua"] >= state["best_score"]:
                state.update(best_score=val_metrics["ua"], best_epoch=epoch + 1, bad_epochs=0,
                             best_state={k: v.detach().cpu().clone() for k, v in scored.state_dict().items()})
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch + 1
            progress.line(f"{run_dir.name} epoch {epoch + 1:3d}  loss {record['train_loss']:.3f}  acc {record['train_acc']:.3f}  "
                          f"val UA {record['val_ua']:.3f} WA {record['val_wa']:.3f}  ({record['seconds']:.1f}s)")
            if rank == 0:
                _save_checkpoint(ckpt_path, model, optimizer, scheduler, state, ema)
            barrier()
            if stop_after_epochs is not None and state["epoch"] >= stop_after_epochs:
                raise TrainingInterrupted(f"stopped after epoch {state['epoch']}")
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"interrupted; the checkpoint after epoch {state['epoch']} is in {run_dir}") from None

    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    elif ema is not None:
        model.load_state_dict(ema.model.state_dict())
    model.eval()
    predictor = Predictor(model, meta, device)
    val_metrics = evaluate(predictor, val) if len(val) else {}
    return TrainResult(model=model, meta=meta, history=state["history"], best_epoch=state["best_epoch"],
                       val_metrics=val_metrics)


def _save_checkpoint(path: Path, model, optimizer, scheduler, state: dict, ema: WeightAverage | None) -> None:
    """Atomic: a Ctrl-C or a full disk during the write leaves the previous checkpoint intact."""
    extra = {"ema": ema.state_dict()} if ema is not None else {}
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "scheduler": scheduler.state_dict(), **state, **extra}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object, so the OS's reason for a failed write reaches us
            torch.save(checkpoint, f)

    try:
        write_atomically(path, write)
    except WriteError as exc:
        raise WriteError(path, f"{exc.reason} (an earlier checkpoint, if any, is kept: make room, then "
                               f"run again with --resume --out {path.parent})") from exc
