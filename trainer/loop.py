"""Training one split: single process or DDP under torchrun, a checkpoint every epoch, resume.

Reproducibility: every random draw of epoch e (clip order, crops, augmentation) comes from
generators seeded by (seed, e[, rank]), so a run resumed from the checkpoint after epoch e
repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from serapp.bundle import BundleMeta
from serapp.errors import SerappError
from serapp.features import FrontEnd
from serapp.files import WriteError, write_atomically
from serapp.metrics import classification_metrics
from serapp.models import build_model
from serapp.predictor import Predictor, loop_to_length, resolve_device
from serapp.scoring import ScoringRule
from trainer.augment import augment_waveforms, mixup, spec_augment
from trainer.config import TrainConfig
from trainer.data import ClipSet, epoch_order
from trainer.ema import WeightAverage

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


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the last completed epoch's checkpoint is on disk."""


@dataclass
class TrainResult:
    model: nn.Module
    meta: BundleMeta
    history: list[dict]
    best_epoch: int
    val_metrics: dict


# --- distributed helpers -----------------------------------------------------------------------

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


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


# --- batches and evaluation ----------------------------------------------------------------------

def seeded_generator(*parts) -> torch.Generator:
    seed = 0
    for p in parts:
        seed = (seed * 1_000_003 + int(p)) % (2**62)
    return torch.Generator().manual_seed(seed)


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


def evaluate(predictor: Predictor, data: ClipSet, labels: list[str] | None = None, transform=None) -> dict:
    """Metrics of the predictor on clips (the app's own windowing), plus mean NLL as `loss`.

    Each corpus is scored by the one scoring rule over its own labels (serapp.scoring). With
    one corpus the metrics are that corpus'; with several, `per_corpus` holds each, and WA,
    UA and macro-F1 are their means (every corpus counts the same).
    """
    probs = np.stack([predictor.predict_prepared(clip if transform is None else transform(i, clip))
                      for i, clip in enumerate(data.clips)]) if len(data) else np.zeros((0, len(predictor.labels)))
    return score_clips(probs, predictor.labels, data, labels)


def score_clips(probs: np.ndarray, model_labels: list[str], data: ClipSet, labels: list[str] | None = None) -> dict:
    """`evaluate`'s metrics from the clips' probabilities (rows of `probs`, over `model_labels`)."""
    names = data.labels or list(labels or model_labels)
    per_corpus, nll, n_scored = {}, 0.0, 0
    read = np.isfinite(probs).all(axis=1) if len(probs) else np.zeros(0, bool)  # a NaN row: "no speech"
    for group, idx in data.by_group().items():
        rule = ScoringRule(model_labels, data.label_sets.get(group) or names)
        unread = sum(1 for i in idx if not read[i])
        idx = [i for i in idx if names[data.targets[i]] in rule.labels and read[i]]
        true = [rule.labels.index(names[data.targets[i]]) for i in idx]
        scores = rule.scores(probs[idx]) if idx else np.zeros((0, len(rule.labels)))
        m = classification_metrics(true, [int(p) for p in np.argmax(scores, axis=-1)], rule.labels)
        m["scoring"] = rule.describe()
        if unread:  # clips the app would read "no speech": not scored, counted
            m["no_speech_clips"] = unread
        nll -= float(np.log(np.maximum(scores[np.arange(len(true)), true], 1e-12)).sum())
        n_scored += len(true)
        per_corpus[group] = m
    if len(per_corpus) <= 1:
        metrics = next(iter(per_corpus.values()), classification_metrics([], [], names))
    else:
        metrics = {"n": n_scored, "per_corpus": per_corpus, "aggregate": "mean over corpora"}
        for key in ("wa", "ua", "macro_f1"):
            metrics[key] = float(np.mean([m[key] for m in per_corpus.values()]))
    metrics["loss"] = nll / max(1, n_scored)
    return metrics


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


class _Progress:
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


# --- the loop --------------------------------------------------------------------------------------

def _lr_lambda(cfg: TrainConfig):
    def factor(epoch: int) -> float:
        if epoch < cfg.warmup_epochs:
            return (epoch + 1) / (cfg.warmup_epochs + 1)
        if cfg.lr_schedule == "constant":
            return 1.0
        span = max(1, cfg.epochs - cfg.warmup_epochs)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    return factor


def bundle_meta(cfg: TrainConfig, labels: list[str], hparams: dict, training: dict | None = None) -> BundleMeta:
    return BundleMeta(architecture=cfg.architecture, labels=list(labels), frontend=cfg.frontend,
                      window_s=cfg.window_s, hparams=hparams, trim_top_db=cfg.trim_top_db,
                      training=training or {})


def train_split(cfg: TrainConfig, train: ClipSet, val: ClipSet, labels: list[str], run_dir: Path,
                resume: bool = False, stop_after_epochs: int | None = None, verbose: bool = True,
                cache_dir: Path | None = None, watched: ClipSet | None = None) -> TrainResult:
    """Train on `train`, keeping the epoch best on `val`'s UA. `watched` (the test clips, with
    cfg.watch_test) is scored after every epoch into the history only."""
    rank, world = dist_context()
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    progress = _Progress(verbose and rank == 0)
    torch.manual_seed(cfg.seed)  # model initialisation
    model = build_model(cfg.architecture, cfg.frontend.n_features, len(labels), cfg.hparams).to(device)
    meta = bundle_meta(cfg, labels, dict(model.hparams))
    frontend = FrontEnd(cfg.frontend).to(device)
    if getattr(model, "frozen_encoder", False):  # a pretrained encoder stays fixed: train its head on cached outputs
        from trainer.frozen import fit_readout, train_frozen_head

        history, best_state, best_epoch = train_frozen_head(cfg, model, frontend, train, val, device, progress, cache_dir)
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        meta = dataclasses.replace(meta, readout=fit_readout(cfg, labels, model, frontend, val, device, cache_dir))
        val_metrics = evaluate(Predictor(model, meta, device), val) if len(val) else {}
        return TrainResult(model=model, meta=meta, history=history, best_epoch=best_epoch, val_metrics=val_metrics)
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
            _barrier()
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
