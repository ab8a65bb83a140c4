"""`ser-train encoder-table`: the encoder recipe across corpora, cold and adapted to each voice,
over every label and over the basic four, with its confidence measured; every choice made on
validation speakers, every figure over several seeds.

Leave one corpus out over every corpus given. For each seed (the validation speakers drawn,
the head's initialisation and its batches) and each head recipe (`RECIPES`), the head of the
frozen encoder (its outputs cached once for all folds and seeds, trainer/frozen.py) trains on
the other corpora and picks its epoch on their validation speakers. On those same validation
speakers it is then calibrated (trainer/calibrate.py: a temperature and a "not sure" threshold
per readout), and each way of adapting to a voice (`ADAPTS`) is tried, with 20 of a speaker's
clips and on one-emotion voices (a voice heard angry all along, reading its angry clips). The
held-out corpus is scored, per clip and per window, for every recipe and adaptation, so that the choices,
made afterwards from validation figures alone (trainer/encoder_choices.py), pick which test
figures the table shows; none is made by a held-out score.

Conditions: **cold** (the population's statistics), **adapted, N clips** (each test speaker's
statistics from the speech windows of N of their clips drawn at random, no labels used; every
clip of theirs is then read with them), **adapted, N neutral clips** (neutral or calm ones).

Each finished (fold, seed, recipe) is saved under --out, so the command resumes; the table is
rendered (trainer/encoder_render.py) into the README between markers and its figures into
docs/results/encoder.json.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from serapp.adaptation import VoiceState, voice_windows
from serapp.corpora import CORPUS_TITLES, Corpus
from serapp.features import FrontEnd
from serapp.models import build_model
from serapp.readout import Readout
from serapp.scoring import RULE
from trainer import report
from trainer.calibrate import calibrate, calibrate_pooled, readout_metrics
from trainer.claims import claim_is_stale, claimed
from trainer.config import TrainConfig
from trainer.data import ClipSet, Data, basic_view
from trainer.encoder_choices import choose_recipe
from trainer.evaluation import score_clips
from trainer.folds import make_splits
from trainer.frozen import HOP_S, WindowCache, clip_probabilities, train_frozen_head, window_probabilities
from trainer.report import LANGUAGES

CONDITIONS = (("cold", 0, False), ("adapted, 5 clips", 5, False), ("adapted, 20 clips", 20, False),
              ("adapted, 5 neutral clips", 5, True))
# Head recipes: the layers' learned weighted sum over every label (the basic four summed from
# it), blocks 2, 3 and 4 side by side (the probe's one gain), or a head trained for the four.
RECIPES = {"weighted": {}, "blocks 2+3+4": {"concat_blocks": "2,3,4"}, "four-way": {"labels": "basic"}}
# Ways to adapt: what a voice's statistics replace (mean and spread, or the mean only), how many
# windows the population's statistics weigh against the voice's, and how a window counts: alike,
# by how neutral the cold model reads it (a voice heard angry all along barely moves), or less the
# offset of the emotion the cold model reads (the voice keeps its speaker's offset, not its anger).
ADAPTS = {"full, prior 10": ("full", 10.0, ""), "mean, prior 40": ("mean", 40.0, ""),
          "mean, neutral-weighted, prior 40": ("mean", 40.0, "neutral"),
          "mean, emotion-removed, prior 10": ("mean", 10.0, "emotion-removed"),
          "mean, emotion-removed, prior 20": ("mean", 20.0, "emotion-removed"),
          "mean, emotion-removed, prior 40": ("mean", 40.0, "emotion-removed")}
# (Left out since the run of 2026-12-07, never chosen there: the mean with the population as 10
# windows, a one-emotion voice's worst case; mean and spread as 40; neutral-weighted as 10.)
READOUTS = ("all", "basic")
SEEDS = (0, 1, 2)
VAL_ADAPT_CLIPS = 20


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Quiet:
    def line(self, text: str) -> None:
        pass


def seed_everything(seed: int) -> None:
    """The same seed, the same head: initialisation, dropout and batches all draw from it."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def voice_statistics(model, data: ClipSet, w, clips_of, adapt: tuple, labels: list[str], device) -> dict[str, tuple]:
    """Per speaker, the statistics a VoiceState (`adapt`: one of ADAPTS) reaches from the speech
    windows of the clips `clips_of(speaker, their clip indices)` chooses (none chosen: the
    speaker is read cold)."""
    mode, prior, weighting = adapt
    out = {}
    for speaker in sorted(set(data.speakers)):
        chosen = clips_of(speaker, [i for i, s in enumerate(data.speakers) if s == speaker])
        if not len(chosen):
            continue
        rows = np.isin(w.clip, chosen) & w.window & w.speech
        feats = w.feats[rows].astype(np.float32)
        cold = window_probabilities(model, feats, device) if weighting else None
        offsets = model.emotion_offsets.cpu().numpy() if weighting == "emotion-removed" else None
        state = VoiceState(model.norm_mean.cpu().numpy(), model.norm_std.cpu().numpy(), prior, HOP_S, mode)
        state.update(*voice_windows(weighting, feats, cold, labels, offsets))
        out[speaker] = state.statistics()
    return out


def random_clips(data: ClipSet, n: int, neutral: bool, seed: int):
    """`clips_of` drawing n of a speaker's clips (neutral or calm ones with `neutral`), seeded."""
    rng = np.random.default_rng(seed)

    def choose(speaker, clips):
        if neutral:
            clips = [i for i in clips if data.labels[data.targets[i]] in ("neutral", "calm")]
        return rng.choice(clips, size=min(n, len(clips)), replace=False) if clips else []
    return choose


def _brief(m: dict) -> dict:
    return {k: m[k] for k in ("n", "wa", "ua", "per_class_recall", "no_speech_clips") if k in m}


def read_all(model, data: ClipSet, w, stats: dict | None, device) -> tuple[np.ndarray, np.ndarray, object]:
    """(clip probabilities, speech-window probabilities, those windows), each speaker read with
    their statistics (None, or a speaker without any: the population's)."""
    n = len(data)
    labels = model.head[-1].out_features
    clip_probs = np.full((n, labels), np.nan)
    win = w.select(w.window & w.speech)
    win_probs = np.zeros((len(win.clip), labels))
    speakers = np.array(data.speakers)
    for speaker in sorted(set(data.speakers)):
        mean, std = (stats or {}).get(speaker, (None, None))
        members = speakers == speaker
        clip_probs[members] = clip_probabilities(model, w.select(members[w.clip]), n, device, mean, std)[members]
        rows = members[win.clip]
        if rows.any():
            win_probs[rows] = window_probabilities(model, win.feats[rows], device, mean, std)
    return clip_probs, win_probs, win


def score_reading(model_labels: list[str], data: ClipSet, clip_probs, win_probs, win, calibration: dict,
                  readouts=READOUTS) -> dict:
    """Clip and window metrics for each readout; for the windows also the readout's confidence
    (ECE before and after calibration, coverage, how often a shown label is right)."""
    as_windows = ClipSet([None] * len(win.clip), [data.targets[c] for c in win.clip], [data.groups[c] for c in win.clip],
                         data.label_sets, data.labels, [data.speakers[c] for c in win.clip])
    out = {}
    for emotions in readouts:
        if emotions == "all":
            cm = score_clips(clip_probs, model_labels, data)
            wm = score_clips(win_probs, model_labels, as_windows)
        else:
            ro = Readout.for_bundle(model_labels, None, "basic")
            bd, keep = basic_view(data)
            bw, wkeep = basic_view(as_windows)
            cm = score_clips(_apply(ro, clip_probs[keep]), ro.labels, bd)
            wm = score_clips(_apply(ro, win_probs[wkeep]), ro.labels, bw)
        true = [data.labels[data.targets[c]] for c in win.clip]
        conf = readout_metrics(model_labels, win_probs, true, _corpus_labels(data), emotions, calibration.get(emotions))
        out[emotions] = {"clip": _brief(cm), "window": {**_brief(wm), "windows": int(len(win.clip))},
                         "confidence": conf}
    return out


def _apply(readout: Readout, probs: np.ndarray) -> np.ndarray:
    """A readout over rows that may be NaN (a clip with no speech window stays NaN)."""
    out = np.full((len(probs), len(readout.labels)), np.nan)
    ok = np.isfinite(probs).all(axis=1)
    if ok.any():
        out[ok] = readout.apply(probs[ok])
    return out


def _corpus_labels(data: ClipSet) -> list[str]:
    groups = set(data.groups)
    return [lab for lab in data.labels if any(lab in data.label_set(g) for g in groups)]


def validation_figures(model, model_labels, val: ClipSet, vw, device, calibration: dict, seed: int,
                       readouts=READOUTS) -> dict:
    """What the choices rest on, all on validation speakers: cold UA per readout, and for each
    way of adapting, UA with 20 random clips, and UA of **one-emotion voices**: each speaker's
    clips of one emotion taken as a voice heard in that emotion all along (as URDU's speakers
    are), adapted with 20 of them and reading them; every clip is read so once, as its emotion's
    voice, and the UA is over them all (the cold UA is over the same clips)."""
    cold, wp, win = read_all(model, val, vw, None, device)

    def ua(clip_probs) -> dict:  # (the windows' figures, unused here, are the cold ones)
        r = score_reading(model_labels, val, clip_probs, wp, win, calibration, readouts)
        return {e: r[e]["clip"]["ua"] for e in readouts}

    out = {"cold": ua(cold), "adapt": {}}
    targets = np.array(val.targets)
    for name, adapt in ADAPTS.items():
        random20 = ua(read_all(model, val, vw, voice_statistics(
            model, val, vw, random_clips(val, VAL_ADAPT_CLIPS, False, seed), adapt, model_labels, device), device)[0])
        as_voices = None
        for target in sorted(set(val.targets)):
            rng = np.random.default_rng(seed)

            def only(speaker, clips, target=target, rng=rng):
                clips = [i for i in clips if val.targets[i] == target]
                return rng.choice(clips, size=min(VAL_ADAPT_CLIPS, len(clips)), replace=False) if clips else []
            probs = read_all(model, val, vw, voice_statistics(model, val, vw, only, adapt, model_labels, device),
                             device)[0]
            as_voices = probs if as_voices is None else as_voices
            as_voices[targets == target] = probs[targets == target]
        out["adapt"][name] = {"random": random20, "one_emotion": ua(as_voices)}
    return out


def run_fold(cfg: TrainConfig, data: Data, split, cache: WindowCache, device, recipe: str, seed: int) -> dict:
    labels = data.model_labels(split.train)
    spec = dict(RECIPES[recipe])
    four = spec.pop("labels", None) == "basic"
    train, val, test = data.clipset(split.train, labels), data.clipset(split.val), data.clipset(split.test)
    if four:  # trained, validated and scored on the basic four only (calm counted as neutral)
        train, val, test = (basic_view(x)[0] for x in (train, val, test))
        labels = list(train.labels)
    readouts = ("basic",) if four else READOUTS
    hparams = {k: v for k, v in {**cfg.hparams, **spec}.items() if k != "basic_head"}  # one head a run
    hparams["adapt_weighting"] = "emotion-removed"  # the model keeps its labels' offsets; ADAPTS say how a voice adapts
    cfg = dataclasses.replace(cfg, labels=labels, seed=seed, hparams=hparams)
    seed_everything(seed)
    model = build_model(cfg.architecture, cfg.frontend.n_features, len(labels), hparams)
    model.encoder = cache.model.encoder  # one encoder for every fold (frozen, never trained)
    model.to(device)
    t0 = time.perf_counter()
    seed_everything(seed)
    history, best_state, best_epoch = train_frozen_head(cfg, model, cache.frontend, train, val, device, _Quiet(),
                                                        cache_dir=cache.cache_dir)
    model.load_state_dict(best_state)
    vw = cache.windows(val)
    _, val_probs, val_win = read_all(model, val, vw, None, device)
    calibration = calibrate(labels, val_probs, [val.labels[val.targets[c]] for c in val_win.clip])
    w = cache.windows(test)
    out = {"fold": split.name, "recipe": recipe, "seed": seed, "best_epoch": best_epoch,
           "val_ua": history[best_epoch - 1]["val_ua"], "train_seconds": round(time.perf_counter() - t0, 1),
           "labels": test.labels, "model_labels": labels, "test_speakers": len(set(test.speakers)),
           "calibration": calibration, "conditions": {},
           "validation": validation_figures(model, labels, val, vw, device, calibration, seed, readouts)}
    for name, n, neutral in CONDITIONS:
        for adapt, spec in (ADAPTS.items() if n else [("", None)]):
            stats = None if n == 0 else voice_statistics(model, test, w, random_clips(test, n, neutral, seed), spec,
                                                         labels, device)
            key = name if n == 0 else f"{name} | {adapt}"
            clip_probs, win_probs, win = read_all(model, test, w, stats, device)
            out["conditions"][key] = score_reading(labels, test, clip_probs, win_probs, win, calibration, readouts)
            if n == 0:  # kept beside the run's figures for the calibration across corpora
                out["cold_windows"] = {"probs": win_probs, "true": [test.labels[test.targets[c]] for c in win.clip]}
    return out


def for_results(run: dict) -> dict:
    """A run as docs/results/encoder.json keeps it: the reliability bins only where the diagram
    reads them (cold, basic); the fold's own file under --out keeps them all."""
    conditions = {}
    for key, by_readout in run["conditions"].items():
        conditions[key] = {e: {**c, "confidence": {k: v for k, v in c["confidence"].items()
                                                   if k != "reliability" or (key, e) == ("cold", "basic")}}
                           for e, c in by_readout.items()}
    return {**run, "conditions": conditions}


def run_encoder_table(cfg: TrainConfig, corpora: list[Corpus], out: Path, cache_dir: Path | None,
                      emobox_folds: list[str], progress=None, seeds=SEEDS, recipes=tuple(RECIPES)) -> dict:
    """Every leave-one-corpus-out fold for every seed and recipe, then the EmoBox folds asked for
    with the recipe that validation chose; `progress(results)` after each."""
    cfg = dataclasses.replace(cfg, trim_top_db=None)
    data = Data(corpora, cfg, cache_dir)
    device = torch.device("cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)  # a rerun repeats a seed's figures exactly
    template = build_model(cfg.architecture, cfg.frontend.n_features, len(data.labels), cfg.hparams)
    window = int(round(cfg.window_s * cfg.frontend.sample_rate))
    cache = WindowCache(template, FrontEnd(cfg.frontend), window, int(round(HOP_S * cfg.frontend.sample_rate)),
                        cache_dir, device)
    for c in data.corpora:  # one extraction for every fold, corpus by corpus
        cache.windows(data.clipset(c.records), desc=f"encoder ({CORPUS_TITLES.get(c.name, c.name)})")
    results = {"scoring": RULE, "hop_s": HOP_S, "window_s": cfg.window_s, "seeds": list(seeds),
               "recipes": {r: RECIPES[r] for r in recipes}, "adapts": {k: list(v) for k, v in ADAPTS.items()},
               "corpora": {c.name: {"title": CORPUS_TITLES.get(c.name, c.name), "language": LANGUAGES.get(c.name, "?"),
                                    "labels": c.labels, "chance_ua": 1.0 / len(c.labels), "clips": len(c.records),
                                    "speakers": len(c.speakers)} for c in data.corpora},
               "loco": {}, "emobox": {}}

    later = []  # runs another process running this command has claimed

    def run(protocol: str, split, recipe: str, seed: int, wait: bool = False) -> None:
        path = run_path(out, protocol, split.name, seed, recipe)
        if not path.is_file():
            with claimed(path) as mine:
                if not mine:
                    if not wait:
                        later.append((protocol, split, recipe, seed))
                        return
                    _log(f"waiting for another process's {protocol} {split.name}, seed {seed}, {recipe}")
                    while not path.is_file() and not claim_is_stale(path):
                        time.sleep(10)
                    return run(protocol, split, recipe, seed, wait)
                _log(f"== {protocol} {split.name}, seed {seed}, {recipe}")
                r = run_fold(cfg, data, split, cache, device, recipe, seed)
                windows = r.pop("cold_windows")
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path.with_suffix(".npz"), probs=windows["probs"].astype(np.float32),
                         true=np.array(windows["true"]), model_labels=np.array(r["model_labels"]))
                report.write_json(path, r)
        r = json.loads(path.read_text())
        results[protocol].setdefault(split.name, {}).setdefault(f"seed{seed}", {})[recipe] = for_results(r)
        cold = r["conditions"]["cold"]
        _log(f"{protocol} {split.name} seed {seed} {recipe}: val UA {100 * r['val_ua']:.1f}; cold clip UA "
             + " / ".join(f"{100 * cold[e]['clip']['ua']:.1f} ({e})" for e in READOUTS if e in cold))
        if progress is not None:
            progress(results)

    def finish_later() -> None:
        while later:
            run(*later.pop(0), wait=True)

    def splits(protocol: str, seed: int):
        return make_splits(data.corpora, protocol, cfg.val_speakers, seed, 2, 5, cfg.val_keep_speakers,
                           cfg.val_min_clips)

    for seed in seeds:
        for split in splits("loco", seed):
            for recipe in recipes:
                run("loco", split, recipe, seed)
    finish_later()
    in_order(results, "loco", [c.name for c in data.corpora], seeds, recipes)
    calibrate_across_corpora(results, out)
    if emobox_folds:  # the recipe the leave-one-corpus-out validation chose, on RAVDESS's unseen actors
        chosen = choose_recipe(results)["chosen"]
        for seed in seeds:
            for split in splits("emobox", seed):
                if split.name.removeprefix("fold") in emobox_folds:
                    run("emobox", split, chosen, seed)
        finish_later()
        in_order(results, "emobox", sorted(results["emobox"], key=lambda f: int(f.removeprefix("fold"))), seeds, recipes)
    if progress is not None:
        progress(results)
    return results


def in_order(results: dict, protocol: str, folds: list[str], seeds, recipes) -> None:
    """The runs of `protocol` in the order the command lists them, whichever process made which
    first: the figures, and what is fitted on them, do not depend on who ran what."""
    runs = results[protocol]
    results[protocol] = {f: {f"seed{s}": {r: runs[f][f"seed{s}"][r] for r in recipes if r in runs[f].get(f"seed{s}", {})}
                             for s in seeds if f"seed{s}" in runs[f]} for f in folds if f in runs}


def run_path(out: Path, protocol: str, fold: str, seed: int, recipe: str) -> Path:
    return out / protocol / fold / f"seed{seed}-{recipe.replace(' ', '_').replace('+', '')}.json"


def calibrate_across_corpora(results: dict, out: Path) -> None:
    """Each held-out corpus's confidence with the calibration a new corpus would get: a
    temperature and a threshold fitted on the other held-out corpora's cold windows, as the
    leave-one-corpus-out heads of the same seed and recipe read them (the corpus scored is in
    none of them). The figures with the validation speakers' calibration stay beside, as
    `confidence_validation`. Also `bundle_readout`: the same fitted on every held-out corpus
    of the chosen recipe, for the bundle trained on them all (trainer/run.py)."""
    windows = {}
    for fold, seeds in results["loco"].items():
        for seed, recipes in seeds.items():
            for recipe in recipes:
                path = run_path(out, "loco", fold, int(seed.removeprefix("seed")), recipe).with_suffix(".npz")
                if path.is_file():
                    with np.load(path) as z:
                        windows[fold, seed, recipe] = ([str(k) for k in z["model_labels"]], z["probs"],
                                                       [str(k) for k in z["true"]])
    for (fold, seed, recipe), (labels, probs, true) in windows.items():
        others = [v for (f, s, r), v in windows.items() if f != fold and s == seed and r == recipe]
        if not others:
            continue
        entry = calibrate_pooled(others)
        run = results["loco"][fold][seed][recipe]
        run["calibration_validation"] = run.get("calibration_validation", run["calibration"])
        run["calibration"] = entry
        corpus_labels = results["corpora"][fold]["labels"]
        for emotions, c in run["conditions"]["cold"].items():
            c.setdefault("confidence_validation", {k: v for k, v in c["confidence"].items() if k != "reliability"})
            c["confidence"] = readout_metrics(labels, probs, true, corpus_labels, emotions, entry.get(emotions))
            if emotions != "basic":  # the diagram reads the basic readout's bins only
                c["confidence"].pop("reliability")
    # The basic readout from the chosen recipe, every label from the first recipe where the chosen
    # one reads the basic four only (a bundle then carries both heads: serapp/models/speech_encoder.py).
    chosen = choose_recipe(results).get("chosen")
    every = chosen if RECIPES.get(chosen, {}).get("labels") != "basic" else next(iter(results["recipes"]))
    entry = {}
    for emotions, recipe in (("all", every), ("basic", chosen)):
        pooled = [v for (f, s, r), v in windows.items() if r == recipe]
        if pooled and emotions in (fitted := calibrate_pooled(pooled)):
            entry[emotions] = fitted[emotions]
    if entry:
        results["bundle_readout"] = entry
