"""`ser-train encoder-table`: the encoder recipe across corpora, cold and adapted to each voice.

Leave one corpus out over every corpus given: the head of the frozen encoder (its outputs
cached once for all folds, trainer/frozen.py) trains on the other corpora, with validation
speakers drawn from them, and is scored on every clip of the held-out corpus:
- **cold**: the population's statistics from the bundle, as a new voice first reads;
- **adapted, N clips**: each test speaker's statistics estimated (with the bundle's prior, as
  the app does) from the speech windows of N of their clips drawn at random (seeded), no
  labels used; every clip of that speaker is then read with them;
- **adapted, N neutral clips**: the same from N of their neutral (or calm) clips, for
  neutral-reference normalisation.
Each is scored per clip (the whole-clip reading) and per window (3 s speech windows at a 0.5 s
hop, as `serapp predict --window 3 --hop 0.5` reads a file, each with its clip's label), by
the one scoring rule. Below that, the recipe on the EmoBox RAVDESS folds (the other corpora
added to training).

Each finished fold's figures are saved under --out, so the command resumes; the table is
rendered into the README between markers and its figures into docs/results/encoder.json.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from serapp.adaptation import VoiceState
from serapp.corpora import CORPUS_TITLES, Corpus
from serapp.features import FrontEnd
from serapp.labels import EMOTIONS
from serapp.models import build_model
from serapp.scoring import RULE
from trainer import report
from trainer.config import TrainConfig
from trainer.crosscorpus import LANGUAGES
from trainer.data import ClipSet, Data
from trainer.folds import make_splits
from trainer.frozen import (
    HOP_S,
    WindowCache,
    clip_probabilities,
    train_frozen_head,
    window_probabilities,
)

START, END = "<!-- encoder-table:start -->", "<!-- encoder-table:end -->"
CONDITIONS = (("cold", 0, False), ("adapted, 5 clips", 5, False), ("adapted, 20 clips", 20, False),
              ("adapted, 5 neutral clips", 5, True))


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Quiet:
    def line(self, text: str) -> None:
        pass


def voice_statistics(model, test: ClipSet, w, n_clips: int, neutral: bool, seed: int) -> dict[str, tuple]:
    """Per test speaker, the statistics a VoiceState reaches from the speech windows of `n_clips`
    of their clips (neutral or calm ones with `neutral`), drawn with a seeded generator."""
    out = {}
    rng = np.random.default_rng(seed)
    labels = test.labels
    for speaker in sorted(set(test.speakers)):
        clips = [i for i, s in enumerate(test.speakers) if s == speaker
                 and (not neutral or labels[test.targets[i]] in ("neutral", "calm"))]
        if not clips:
            continue
        chosen = rng.choice(clips, size=min(n_clips, len(clips)), replace=False)
        rows = np.isin(w.clip, chosen) & w.window & w.speech
        state = VoiceState(model.norm_mean.cpu().numpy(), model.norm_std.cpu().numpy(), model.prior_windows, HOP_S)
        state.update(w.feats[rows].astype(np.float32))
        out[speaker] = state.statistics()
    return out


def score_condition(model, test: ClipSet, w, stats: dict | None, device) -> dict:
    """Clip and window metrics, the statistics per speaker (None: the population's)."""
    from trainer.loop import score_clips

    n = len(test)
    clip_probs = np.zeros((n, len(test.labels)))
    win = w.select(w.window & w.speech)
    win_probs = np.zeros((len(win.clip), len(test.labels)))
    for speaker in sorted(set(test.speakers)):
        mean, std = (stats or {}).get(speaker, (None, None))
        members = np.array([s == speaker for s in test.speakers])
        rows = members[w.clip]
        clip_probs[members] = clip_probabilities(model, w.select(rows), n, device, mean, std)[members]
        wrows = members[win.clip]
        if wrows.any():
            win_probs[wrows] = window_probabilities(model, win.feats[wrows], device, mean, std)
    clip_m = score_clips(clip_probs, list(test.labels), test)
    as_windows = ClipSet([None] * len(win.clip), [test.targets[c] for c in win.clip], [test.groups[c] for c in win.clip],
                         test.label_sets, test.labels)
    win_m = score_clips(win_probs, list(test.labels), as_windows)
    return {"clip": _brief(clip_m), "window": {**_brief(win_m), "windows": int(len(win.clip))}}


def _brief(m: dict) -> dict:
    return {k: m[k] for k in ("n", "wa", "ua", "per_class_recall", "no_speech_clips") if k in m}


def run_fold(cfg: TrainConfig, data: Data, split, cache: WindowCache, device) -> dict:
    labels = data.model_labels(split.train)
    model = build_model(cfg.architecture, cfg.frontend.n_features, len(labels), cfg.hparams)
    model.encoder = cache.model.encoder  # one encoder for every fold (frozen, never trained)
    model.to(device)
    train, val, test = data.clipset(split.train, labels), data.clipset(split.val), data.clipset(split.test)
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    history, best_state, best_epoch = train_frozen_head(dataclasses.replace(cfg, labels=labels), model, cache.frontend,
                                                        train, val, device, _Quiet(), cache_dir=cache.cache_dir)
    model.load_state_dict(best_state)
    w = cache.windows(test)
    out = {"fold": split.name, "best_epoch": best_epoch, "val_ua": history[best_epoch - 1]["val_ua"],
           "train_seconds": round(time.perf_counter() - t0, 1), "labels": test.labels,
           "test_speakers": len(set(test.speakers)), "conditions": {}}
    for name, n, neutral in CONDITIONS:
        stats = None if n == 0 else voice_statistics(model, test, w, n, neutral, cfg.seed)
        out["conditions"][name] = score_condition(model, test, w, stats, device)
    return out


def run_encoder_table(cfg: TrainConfig, corpora: list[Corpus], out: Path, cache_dir: Path | None,
                      emobox_folds: list[str], progress=None) -> dict:
    """Every leave-one-corpus-out fold and EmoBox fold asked for; `progress(results)` after each."""
    cfg = dataclasses.replace(cfg, trim_top_db=None)
    data = Data(corpora, cfg, cache_dir)
    device = torch.device("cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    template = build_model(cfg.architecture, cfg.frontend.n_features, len(data.labels), cfg.hparams)
    window = int(round(cfg.window_s * cfg.frontend.sample_rate))
    cache = WindowCache(template, FrontEnd(cfg.frontend), window, int(round(HOP_S * cfg.frontend.sample_rate)),
                        cache_dir, device)
    for c in data.corpora:  # one extraction for every fold, corpus by corpus
        cache.windows(data.clipset(c.records), desc=f"encoder ({CORPUS_TITLES.get(c.name, c.name)})")
    results = {"scoring": RULE, "hop_s": HOP_S, "window_s": cfg.window_s,
               "corpora": {c.name: {"title": CORPUS_TITLES.get(c.name, c.name), "language": LANGUAGES.get(c.name, "?"),
                                    "labels": c.labels, "chance_ua": 1.0 / len(c.labels), "clips": len(c.records),
                                    "speakers": len(c.speakers)} for c in data.corpora},
               "loco": {}, "emobox": {}}
    plan = [("loco", s) for s in make_splits(data.corpora, "loco", cfg.val_speakers, cfg.seed, 2, 5,
                                             cfg.val_keep_speakers, cfg.val_min_clips)]
    if emobox_folds:
        plan += [("emobox", s) for s in make_splits(data.corpora, "emobox", cfg.val_speakers, cfg.seed, 2, 5,
                                                    cfg.val_keep_speakers, cfg.val_min_clips)
                 if s.name.removeprefix("fold") in emobox_folds]
    for protocol, split in plan:
        path = out / protocol / f"{split.name}.json"
        if path.is_file():
            results[protocol][split.name] = json.loads(path.read_text())
        else:
            _log(f"== {protocol} {split.name}")
            results[protocol][split.name] = run_fold(cfg, data, split, cache, device)
            path.parent.mkdir(parents=True, exist_ok=True)
            report.write_json(path, results[protocol][split.name])
        r = results[protocol][split.name]["conditions"]
        _log(f"{protocol} {split.name}: " + ", ".join(f"{k} {100 * v['clip']['ua']:.1f}/{100 * v['window']['ua']:.1f}"
                                                      for k, v in r.items()) + " (clip/window UA %)")
        if progress is not None:
            progress(results)
    return results


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def render_markdown(results: dict, reference: dict | None = None) -> str:
    """The tables from a results record; `reference`: the CRNN recipe's cross-corpus figures."""
    corpora, loco = results["corpora"], results["loco"]
    ref = (reference or {}).get("multicorpus", {}).get("loco", {})
    names = [n for n in corpora if n in loco]
    conds = [c for c, _, _ in CONDITIONS]
    lines = ["| held-out corpus | language | labels | chance | CRNN recipe | "
             + " | ".join(f"{c}: clip / window" for c in conds) + " |",
             "|---|---|--:|--:|--:|" + "--:|" * len(conds)]
    for n in names:
        c = corpora[n]
        cells = [f"{_pct(loco[n]['conditions'][k]['clip']['ua'])} / {_pct(loco[n]['conditions'][k]['window']['ua'])}"
                 for k in conds]
        lines.append(f"| {c['title']} | {c['language']} | {len(c['labels'])} | {_pct(c['chance_ua'])} | "
                     f"{_pct(ref.get(n, {}).get('ua'))} | " + " | ".join(cells) + " |")
    if names:
        means = [f"**{_pct(statistics.fmean(loco[n]['conditions'][k]['clip']['ua'] for n in names))}** / "
                 f"{_pct(statistics.fmean(loco[n]['conditions'][k]['window']['ua'] for n in names))}" for k in conds]
        with_ref = [n for n in names if n in ref]
        lines.append(f"| **mean of {len(names)}** | | | {_pct(statistics.fmean(corpora[n]['chance_ua'] for n in names))} | "
                     f"{_pct(statistics.fmean(ref[n]['ua'] for n in with_ref)) + f' ({len(with_ref)})' if with_ref else '—'} | "
                     + " | ".join(means) + " |")
        silent = {corpora[n]["title"]: loco[n]["conditions"]["cold"]["clip"].get("no_speech_clips", 0) for n in names}
        if any(silent.values()):
            lines += ["", "Clips left out of the clip figures because no window of theirs holds speech (the app "
                          "reads them \"no speech\"): " + ", ".join(f"{t} {k} of {corpora[n]['clips']}"
                                                              for (t, k), n in zip(silent.items(), names) if k) + "."]
        emotions = [e for e in EMOTIONS if any(e in loco[n]["conditions"]["cold"]["clip"]["per_class_recall"] for n in names)]
        lines += ["", "Recall per emotion on the held-out corpus, per clip, cold / adapted with 20 clips (%):", "",
                  "| held-out corpus | " + " | ".join(emotions) + " |", "|---|" + "--:|" * len(emotions)]
        for n in names:
            cold = loco[n]["conditions"]["cold"]["clip"]["per_class_recall"]
            ad = loco[n]["conditions"]["adapted, 20 clips"]["clip"]["per_class_recall"]
            lines.append(f"| {corpora[n]['title']} | " + " | ".join(
                f"{_pct(cold[e])} / {_pct(ad[e])}" if e in cold else "" for e in emotions) + " |")
    emo = results.get("emobox") or {}
    if emo:
        lines += ["", f"RAVDESS EmoBox folds, the other six corpora added to training ({len(emo)} of 6 folds), UA %:", "",
                  "| fold | " + " | ".join(f"{c}: clip / window" for c in conds) + " |", "|---|" + "--:|" * len(conds)]
        for name, f in emo.items():
            lines.append(f"| {name} | " + " | ".join(
                f"{_pct(f['conditions'][k]['clip']['ua'])} / {_pct(f['conditions'][k]['window']['ua'])}" for k in conds) + " |")
        lines.append("| **mean** | " + " | ".join(
            f"**{_pct(statistics.fmean(f['conditions'][k]['clip']['ua'] for f in emo.values()))}** / "
            f"{_pct(statistics.fmean(f['conditions'][k]['window']['ua'] for f in emo.values()))}" for k in conds) + " |")
    lines += report.made_by(results)
    return "\n".join(lines) + "\n"


def as_cv_summary(results: dict, condition: str = "cold") -> dict:
    """The leave-one-corpus-out figures of one condition (clip UA) in the form of a `ser-train
    cv` summary, so that `ser-train train --cv-summary docs/results/encoder.json` records them
    in the bundle (serapp model-info shows them)."""
    folds = [{"fold": name, "test_corpus": name,
              "test": {**{k: r["conditions"][condition]["clip"][k] for k in ("n", "wa", "ua")},
                       "labels": results["corpora"][name]["labels"]}}
             for name, r in results["loco"].items()]
    if not folds:
        raise ValueError("no leave-one-corpus-out folds in it")

    def stats(key: str) -> dict:
        values = np.array([f["test"][key] for f in folds])
        return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else None}

    return {"protocol": f"cross-corpus (leave one corpus out; clip UA, {condition}: "
                        + ("the population's statistics)" if condition == "cold" else "the test speakers' own statistics)"),
            "config": "whisper.toml", "data": " + ".join(c["title"] for c in results["corpora"].values()),
            "command": results.get("command"), "ua": stats("ua"), "wa": stats("wa"), "folds": folds}
