"""Training the head of a frozen pretrained speech encoder, in minutes on a CPU.

The encoder never changes, so each clip's per-layer averages are computed once: for every
model-length piece of the clip (as the app reads it, `model_pieces`), the mean over time of
every layer's output. The head (the layers' weighting and a small classifier) then trains on
those numbers alone, seconds an epoch. No waveform augmentation here: the encoder's features
are fixed, which is the point. Validation scores each clip as the app would (the mean of its
pieces' probabilities, the one scoring rule) and picks the epoch, as in the main loop.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from serapp.predictor import loop_to_length, model_pieces
from trainer.data import ClipSet


@torch.no_grad()
def clip_layer_means(model, frontend, clips: list[np.ndarray], window: int, device, batch: int = 8,
                     desc: str = "encoder") -> list[torch.Tensor]:
    """Per clip, a (pieces, layers, width) tensor of the encoder's per-layer time averages."""
    model.eval()
    out = []
    for clip in tqdm(clips, desc=desc, unit="clip", file=sys.stderr, disable=None, leave=False):
        pieces = [loop_to_length(clip[s:e], window) for s, e in model_pieces(0, clip.size, window)]
        rows = []
        for i in range(0, len(pieces), batch):
            wave = torch.from_numpy(np.stack(pieces[i : i + batch])).to(device)
            rows.append(model.layer_means(frontend(wave)).float().cpu())
        out.append(torch.cat(rows))
    return out


def train_frozen_head(cfg, model, frontend, train: ClipSet, val: ClipSet, device, progress):
    """Train `model`'s head on cached encoder outputs; returns (history, best_state, best_epoch)."""
    from trainer.loop import masked_cross_entropy, score_clips, seeded_generator

    window = int(round(cfg.window_s * cfg.frontend.sample_rate))
    t0 = time.perf_counter()
    train_means = clip_layer_means(model, frontend, train.clips, window, device, desc="encoder (training clips)")
    val_means = clip_layer_means(model, frontend, val.clips, window, device, desc="encoder (validation clips)")
    progress.line(f"encoder outputs of {len(train)} + {len(val)} clips computed once ({time.perf_counter() - t0:.0f} s)")
    x = torch.cat(train_means).to(device)
    owner = torch.cat([torch.full((m.shape[0],), i) for i, m in enumerate(train_means)])
    y = torch.tensor(train.targets)[owner].to(device)
    masks = train.masks()
    m_all = masks[owner].to(device) if masks is not None else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    history, best, best_state, best_epoch, bad = [], -1.0, None, 0, 0
    for epoch in range(cfg.epochs):
        if bad >= cfg.patience:
            break
        t1 = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), generator=seeded_generator(cfg.seed, epoch))
        loss_sum, correct = 0.0, 0
        for b in range(math.ceil(len(order) / cfg.batch_size)):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size].to(device)
            logits = model.classify(x[idx])
            loss = masked_cross_entropy(logits, y[idx], None if m_all is None else m_all[idx], cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss) * len(idx)
            scored = logits if m_all is None else logits.masked_fill(~m_all[idx], float("-inf"))
            correct += int((scored.argmax(-1) == y[idx]).sum())
        model.eval()
        with torch.no_grad():
            probs = np.stack([torch.softmax(model.classify(m.to(device)), dim=-1).mean(dim=0).cpu().numpy()
                              for m in val_means]) if val_means else np.zeros((0, len(train.labels)))
        metrics = score_clips(probs, list(train.labels), val)
        record = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, len(x)), "train_acc": correct / max(1, len(x)),
                  "val_loss": metrics["loss"], "val_ua": metrics["ua"], "val_wa": metrics["wa"], "lr": cfg.lr,
                  "seconds": time.perf_counter() - t1, "train_clips": len(train), "world_size": 1}
        history.append(record)
        if metrics["ua"] >= best:  # ties go to the later epoch, as in the main loop
            best, best_epoch, bad = metrics["ua"], epoch + 1, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        progress.line(f"epoch {epoch + 1:3d}  loss {record['train_loss']:.3f}  val UA {metrics['ua']:.3f} "
                      f"WA {metrics['wa']:.3f}  ({record['seconds']:.1f}s)")
    return history, best_state, best_epoch
