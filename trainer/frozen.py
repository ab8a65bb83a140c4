"""Training the head of a frozen pretrained speech encoder, in minutes on a CPU.

The encoder never changes, so its output is computed once per window and cached on disk:
each clip is cut into the windows the app reads (`window_starts` at `hop_s`, the model's
length, untrimmed, so silence at the edges is in them as it is live), each read as the app
reads it (a piece looped to the model's length), pooled per layer over time
(`model.pooled`). The speech gate's verdict on each window is kept beside it. The cache is
keyed by the audio's bytes, the encoder's weights and the windowing, one file per corpus, so
every protocol over the same corpora costs one extraction, and an interrupted extraction
resumes where it stopped.

The head (speaker normalisation, the layers' weighting, a small classifier) then trains on
those numbers alone, seconds an epoch. Each training window is seen twice: z-scored by its
speaker's own statistics (a voice the app has adapted to) and by the population's (a voice it
has not heard yet, the cold start); the population's statistics go into the bundle.
Validation scores each clip as the app would (the mean of its pieces' probabilities, the one
scoring rule), with the population's statistics, and picks the epoch. A model with a head for
the basic four then trains that head the same way on those emotions' clips (trainer/basic_head.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from serapp.adaptation import WINDOW_HOP_S, mean_and_std
from serapp.analysis import speech_frames
from serapp.bundle import tensors_digest
from serapp.files import WriteError, write_atomically
from serapp.predictor import Predictor, loop_to_length, model_pieces, window_starts
from serapp.readout import BASIC
from serapp.settings import AnalysisSettings
from trainer.basic_head import basic_clips, basic_sibling, take_basic_head
from trainer.data import ClipSet
from trainer.evaluation import evaluate, score_clips
from trainer.training import Start, TrainResult, masked_cross_entropy, seeded_generator

HOP_S = WINDOW_HOP_S  # windows for training, window scores and a voice's statistics (as --adapt reads them)
MIN_SPEECH_S = AnalysisSettings().min_speech_s  # a window with less speech reads "no speech"
_SAVE_EVERY = 400  # clips between saves of a growing cache (an interrupted extraction resumes)


@dataclass
class Windows:
    """The cached windows of a list of clips, concatenated."""

    feats: np.ndarray  # (windows, layers, size) float16
    clip: np.ndarray  # index of the clip each window belongs to
    start: np.ndarray  # samples
    end: np.ndarray
    speech_s: np.ndarray  # seconds of speech the gate found in the window (inf: not gated)
    piece: np.ndarray  # bool: one of the whole-clip reading's pieces (`model_pieces`)
    window: np.ndarray  # bool: one of the sliding windows (`window_starts` at the hop)

    def select(self, mask: np.ndarray) -> "Windows":
        return Windows(*(getattr(self, f)[mask] for f in Windows.__dataclass_fields__))

    @property
    def speech(self) -> np.ndarray:
        return self.speech_s >= MIN_SPEECH_S - 1e-9


def clip_spans(n: int, window: int, hop: int) -> tuple[list[tuple[int, int]], list[bool], list[bool]]:
    """The spans to read for a clip of n samples: its sliding windows and its whole-clip pieces
    (with hop dividing half the model window, the pieces are among the windows)."""
    wins = [(s, min(s + window, n)) for s in window_starts(n, window, hop)]
    pieces = model_pieces(0, n, window)
    spans = list(dict.fromkeys(wins + pieces))
    return spans, [s in pieces for s in spans], [s in wins for s in spans]


def _clip_key(clip: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(clip, np.float32).tobytes(), digest_size=16).hexdigest()


class WindowCache:
    """Pooled encoder features per window, on disk per corpus, keyed by the clips' bytes."""

    def __init__(self, model, frontend, window: int, hop: int, cache_dir: Path | None, device, gate: bool = True):
        self.model, self.frontend, self.window, self.hop, self.device = model, frontend, window, hop, device
        self.gate = gate
        encoder = model.speech_encoder.state_dict()
        params = {"v": 1, "encoder": tensors_digest(encoder), "pooling": model.pooling, "window": window, "hop": hop,
                  "frontend": frontend.config.to_dict(), "gate": gate}
        self.tag = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.entries: dict[str, dict[str, dict]] = {}

    def _path(self, group: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"encoder-{self.tag}-{group or 'clips'}.npz"

    def _load(self, group: str) -> dict[str, dict]:
        if group in self.entries:
            return self.entries[group]
        found: dict[str, dict] = {}
        path = self._path(group)
        if path is not None and path.is_file():
            try:
                with np.load(path) as z:
                    keys, bounds = z["keys"], z["bounds"]
                    arrays = {k: z[k] for k in ("feats", "start", "end", "speech_s", "piece", "window")}
                for i, key in enumerate(keys):
                    a, b = bounds[i], bounds[i + 1]
                    found[str(key)] = {k: v[a:b] for k, v in arrays.items()}
            except (OSError, KeyError, ValueError, IndexError):
                print(f"encoder cache {path} is damaged; computing it again", file=sys.stderr)
                found = {}
        self.entries[group] = found
        return found

    def _save(self, group: str) -> None:
        path = self._path(group)
        if path is None:
            return
        found = self.entries[group]
        keys = list(found)
        bounds = np.concatenate([[0], np.cumsum([len(found[k]["start"]) for k in keys])]).astype(np.int64)
        arrays = {k: np.concatenate([found[key][k] for key in keys]) for k in ("feats", "start", "end", "speech_s", "piece", "window")}

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, keys=np.array(keys), bounds=bounds, **arrays)

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, write)
        except (WriteError, OSError) as exc:  # the cache only saves time
            print(f"encoder outputs not cached ({exc}); the next run computes them again", file=sys.stderr)

    @torch.no_grad()
    def _compute(self, clip: np.ndarray, gate) -> dict:
        spans, piece, win = clip_spans(clip.size, self.window, self.hop)
        rows = []
        for i in range(0, len(spans), 8):
            batch = np.stack([loop_to_length(clip[s:e], self.window) for s, e in spans[i:i + 8]])
            rows.append(self.model.pooled(self.frontend(torch.from_numpy(batch).to(self.device))).float().cpu())
        if gate is not None:
            decisions = gate.frames(clip, reset=True)
            speech = [speech_frames(decisions, gate.frame, s, e)[0] * gate.frame / 16000 for s, e in spans]
        else:
            speech = [math.inf] * len(spans)
        return {"feats": torch.cat(rows).numpy().astype(np.float16), "start": np.array([s for s, _ in spans], np.int64),
                "end": np.array([e for _, e in spans], np.int64), "speech_s": np.array(speech, np.float32),
                "piece": np.array(piece), "window": np.array(win)}

    def windows(self, data: ClipSet, desc: str = "encoder") -> Windows:
        """Every window of every clip in `data`, computing (and caching) what is missing."""
        self.model.eval()
        keys = [_clip_key(c) for c in data.clips]
        missing = [i for i, (k, g) in enumerate(zip(keys, data.groups)) if k not in self._load(g)]
        gate = None
        if missing and self.gate:
            from serapp.audio.vad import SileroGate

            gate = SileroGate(16000)
        done_since_save: dict[str, int] = {}
        for i in tqdm(missing, desc=desc, unit="clip", file=sys.stderr, disable=None or not missing, leave=False):
            g = data.groups[i]
            self.entries[g][keys[i]] = self._compute(data.clips[i], gate)
            done_since_save[g] = done_since_save.get(g, 0) + 1
            if done_since_save[g] >= _SAVE_EVERY:
                self._save(g)
                done_since_save[g] = 0
        for g, n in done_since_save.items():
            if n:
                self._save(g)
        parts = [self.entries[g][k] for k, g in zip(keys, data.groups)]
        out = {f: np.concatenate([p[f] for p in parts]) for f in ("feats", "start", "end", "speech_s", "piece", "window")}
        owner = np.concatenate([np.full(len(p["start"]), i) for i, p in enumerate(parts)]).astype(np.int64)
        return Windows(out["feats"], owner, out["start"], out["end"], out["speech_s"], out["piece"], out["window"])


def training_windows(w: Windows, n_clips: int) -> np.ndarray:
    """Which windows train: what the app reads, the speech windows; a labelled clip in which the
    gate heard no speech at all is speech the gate missed, and all its windows train."""
    heard = np.bincount(w.clip[w.window & w.speech], minlength=n_clips) > 0
    return w.window & (w.speech | ~heard[w.clip])


def speaker_statistics(feats: np.ndarray, speakers: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each speaker's (mean, std) over their windows' features."""
    return {s: mean_and_std(feats[speakers == s]) for s in np.unique(speakers)}


def label_offsets(feats: np.ndarray, targets: np.ndarray, n_labels: int, pop_mean: np.ndarray) -> np.ndarray:
    """How far each label's training windows sit from the population's mean, (labels, *shape):
    what an emotion-removed voice takes off each window (serapp.adaptation.emotion_removed);
    0 for a label no window has."""
    out = np.zeros((n_labels, *pop_mean.shape))
    for label in np.unique(targets):
        out[label] = feats[targets == label].mean(axis=0, dtype=np.float64) - pop_mean
    return out


def normalised(feats: np.ndarray, speakers: np.ndarray, stats: dict) -> np.ndarray:
    out = np.empty(feats.shape, np.float32)
    for s, (mean, std) in stats.items():
        rows = speakers == s
        out[rows] = (feats[rows] - mean) / std
    return out


def clip_probabilities(model, w: Windows, n_clips: int, device, mean=None, std=None) -> np.ndarray:
    """Each clip's reading as the app makes it (serapp.analysis.overall_reading): the mean of its
    speech windows' probabilities, each weighted by its share of speech; a NaN row for a clip
    with no speech window (the app reads it "no speech"). `mean`/`std`: a voice's statistics
    (default: the population's)."""
    win = w.select(w.window & w.speech)
    probs = window_probabilities(model, win.feats, device, mean, std)
    seconds = (win.end - win.start) / 16000  # the cache's windows are at 16 kHz (_compute)
    share = np.where(np.isfinite(win.speech_s), np.minimum(win.speech_s / np.maximum(seconds, 1e-9), 1.0), 1.0)
    weight = np.maximum(share, 1e-6)
    out = np.zeros((n_clips, probs.shape[1]))
    np.add.at(out, win.clip, probs * weight[:, None])
    total = np.bincount(win.clip, weights=weight, minlength=n_clips)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total[:, None] > 0, out / total[:, None], np.nan)


@torch.no_grad()
def window_probabilities(model, feats: np.ndarray, device, mean=None, std=None, basic: bool = False) -> np.ndarray:
    """Windows' probabilities from their pooled features; `basic`: from the head for the four."""
    x = torch.from_numpy(np.asarray(feats, np.float32)).to(device)
    m = None if mean is None else torch.as_tensor(np.asarray(mean), dtype=torch.float32, device=device)
    s = None if std is None else torch.as_tensor(np.asarray(std), dtype=torch.float32, device=device)
    model.eval()
    logits = model.classify(x, m, s, basic=True) if basic else model.classify(x, m, s)
    return torch.softmax(logits, dim=-1).cpu().numpy()


def window_cache(cfg, model, frontend, device, cache_dir) -> WindowCache:
    """The cache of a config's windows (the model's length, at HOP_S)."""
    window = int(round(cfg.window_s * cfg.frontend.sample_rate))
    return WindowCache(model, frontend, window, int(round(HOP_S * cfg.frontend.sample_rate)), cache_dir, device,
                       gate=cfg.frontend.sample_rate == 16000)  # the speech gate works at 16 kHz


def fit_readout(cfg, labels: list[str], model, frontend, val: ClipSet, device, cache_dir=None) -> dict:
    """The bundle's `readout` entry (serapp.readout): temperature and "not sure" threshold per
    readout, fitted on the validation speakers' speech windows read cold, as a new voice reads;
    a model with a head for the basic four has `basic` fitted on that head's outputs."""
    from trainer.calibrate import calibrate

    if not len(val):
        return {}
    win = window_cache(cfg, model, frontend, device, cache_dir).windows(val, desc="encoder (validation clips)")
    win = win.select(win.window & win.speech)
    true = [val.labels[val.targets[c]] for c in win.clip]
    out = calibrate(list(labels), window_probabilities(model, win.feats, device), true)
    if getattr(model, "has_basic_head", False):  # the basic readout reads the head for the four
        out.pop("basic", None)
        basic = calibrate(list(BASIC), window_probabilities(model, win.feats, device, basic=True), true).get("basic")
        out.update({"basic": basic} if basic else {})
    return out


def train_frozen_head(cfg, model, frontend, train: ClipSet, val: ClipSet, device, progress, cache_dir=None):
    """Train `model`'s head on the encoder's outputs (cached in `cache_dir` unless None); returns
    (history, best_state, best_epoch)."""
    cache = window_cache(cfg, model, frontend, device, cache_dir)
    t0 = time.perf_counter()
    tw = cache.windows(train, desc="encoder (training clips)")
    vw = cache.windows(val, desc="encoder (validation clips)")
    progress.line(f"encoder outputs of {len(train)} + {len(val)} clips ({len(tw.start)} + {len(vw.start)} windows) "
                  f"computed once and cached ({time.perf_counter() - t0:.0f} s)")
    tw = tw.select(training_windows(tw, len(train)))
    feats = tw.feats.astype(np.float32)
    owner = tw.clip
    if model.speaker_norm:
        speakers = np.array(train.speakers)[tw.clip]
        stats = speaker_statistics(feats, speakers)
        pop_mean, pop_std = mean_and_std(feats)  # the cold start: every training voice together
        model.norm_mean.copy_(torch.from_numpy(pop_mean))
        model.norm_std.copy_(torch.from_numpy(pop_std))
        if hasattr(model, "emotion_offsets") and not getattr(model, "has_basic_head", False):  # (else the sibling's)
            targets = np.asarray(train.targets)[tw.clip]
            model.emotion_offsets.copy_(torch.from_numpy(label_offsets(feats, targets, len(train.labels), pop_mean)))
        # Each window twice: normalised by its speaker's statistics (an adapted voice) and by the
        # population's (a voice not heard yet), so the one head reads both.
        feats = np.concatenate([normalised(feats, speakers, stats), ((feats - pop_mean) / pop_std).astype(np.float32)])
        owner = np.concatenate([tw.clip, tw.clip])
        # the head sees already normalised features in training: identity statistics
        ident = (torch.zeros_like(model.norm_mean), torch.ones_like(model.norm_std))
    else:
        ident = (None, None)
    x = torch.from_numpy(feats).to(device)
    y = torch.tensor(train.targets)[torch.from_numpy(owner)].to(device)
    masks = train.masks()
    m_all = masks[torch.from_numpy(owner)].to(device) if masks is not None else None
    draw = None
    if cfg.sampling == "balanced":
        from trainer.data import balanced_weights

        per_clip = balanced_weights(train, cfg.corpus_weights, cfg.corpus_power)
        n_windows = np.bincount(owner, minlength=len(train))
        draw = (per_clip[owner] / torch.from_numpy(np.maximum(n_windows, 1)[owner])).float()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    history, best, best_state, best_epoch, bad = [], -1.0, None, 0, 0
    id_mean = None if ident[0] is None else ident[0].to(device)
    id_std = None if ident[1] is None else ident[1].to(device)
    for epoch in range(cfg.epochs):
        if bad >= cfg.patience:
            break
        t1 = time.perf_counter()
        model.train()
        gen = seeded_generator(cfg.seed, epoch)
        if draw is None:
            order = torch.randperm(len(x), generator=gen)
        else:  # balanced over corpora and their emotions, as the main loop's "balanced" sampling
            order = torch.multinomial(draw, len(x), replacement=True, generator=gen)
        loss_sum, correct = 0.0, 0
        for b in range(math.ceil(len(order) / cfg.batch_size)):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size].to(device)
            logits = model.classify(x[idx], id_mean, id_std)
            loss = masked_cross_entropy(logits, y[idx], None if m_all is None else m_all[idx], cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            scored = logits if m_all is None else logits.masked_fill(~m_all[idx], float("-inf"))
            correct += int((scored.argmax(-1) == y[idx]).sum())
        probs = clip_probabilities(model, vw, len(val), device) if len(val) else np.zeros((0, len(train.labels)))
        metrics = score_clips(probs, list(train.labels), val)
        record = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, len(x)), "train_acc": correct / max(1, len(x)),
                  "val_loss": metrics["loss"], "val_ua": metrics["ua"], "val_wa": metrics["wa"], "lr": cfg.lr,
                  "seconds": time.perf_counter() - t1, "train_clips": len(train), "train_windows": len(x), "world_size": 1}
        history.append(record)
        if metrics["ua"] >= best:  # ties go to the later epoch, as in the main loop
            best, best_epoch, bad = metrics["ua"], epoch + 1, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        progress.line(f"epoch {epoch + 1:3d}  loss {record['train_loss']:.3f}  val UA {metrics['ua']:.3f} "
                      f"WA {metrics['wa']:.3f}  ({record['seconds']:.1f}s)")
    return history, best_state, best_epoch


def train_frozen(cfg, begun: Start, train: ClipSet, val: ClipSet, cache_dir: Path | None = None) -> TrainResult:
    """The frozen-encoder trainer: the head of `begun`'s model (trainer.training.start) trained on
    the encoder's cached outputs, the epoch best on `val`'s UA kept; with a head for the basic
    four, that head then the same way (trainer/basic_head.py; its validation UA is `basic_ua`);
    the readout calibrated on `val` (`fit_readout`)."""
    model, frontend, device, labels = begun.model, begun.frontend, begun.device, begun.meta.labels
    basic = getattr(model, "has_basic_head", False)
    if basic:  # refused before any training where a clip of one of the four is missing
        basic_train, basic_val = basic_clips(train, val)
    history, best_state, best_epoch = train_frozen_head(cfg, model, frontend, train, val, device, begun.progress,
                                                        cache_dir)
    if best_state is not None:
        model.load_state_dict(best_state)
    if basic:
        begun.progress.line("the head for the basic four (calm counted as neutral), on their clips alone:")
        torch.manual_seed(cfg.seed)
        sibling = basic_sibling(model, cfg.frontend.n_features)
        _, sibling_state, _ = train_frozen_head(cfg, sibling, frontend, basic_train, basic_val, device,
                                                begun.progress, cache_dir)
        if sibling_state is not None:
            sibling.load_state_dict(sibling_state)
        take_basic_head(model, sibling)
    model.eval()
    meta = dataclasses.replace(begun.meta, readout=fit_readout(cfg, labels, model, frontend, val, device, cache_dir))
    val_metrics = evaluate(Predictor(model, meta, device), val) if len(val) else {}
    if basic and len(basic_val):
        val_metrics["basic_ua"] = evaluate(Predictor(model, meta, device, emotions="basic"), basic_val)["ua"]
    return TrainResult(model=model, meta=meta, history=history, best_epoch=best_epoch, val_metrics=val_metrics)
