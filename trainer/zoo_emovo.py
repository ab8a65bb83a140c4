"""`ser-train zoo --emovo`: TIM-Net and CkTIM-net on their origin's own corpus, EMOVO.

The CkTIM-net origin reports TIM-Net and CkTIM-net with 1, 3 and 6 blocks on a random split of
EMOVO. Each variant here (and the default model's recipe, for scale) trains on two protocols:
- the origin's random split: 70% of the clips train, 10% validate, 20% test, drawn by emotion,
  so the same six actors are on every side (speaker-dependent, as the origin measured);
- leave one speaker out: six folds, each testing one actor, validating on one, training on four
  (the honest figure: a person at the microphone is a new speaker).
TIM-Net also trains on the random split with its published code's schedule ("timnet-N, origin's
schedule": 500 epochs, batch 64, Adam at 1e-3, no augmentation), its test accuracy watched every
epoch: that code kept the epoch best on the test fold, and the row shows both that figure and
the one at the epoch best on validation.
Runs are kept under OUT/emovo and resumed; the figures go into the zoo's JSON under "emovo" and
the table under the zoo's.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

from serapp.corpora import Corpus
from trainer.config import TrainConfig, check_same_config, load_config
from trainer.costs import CostBook
from trainer.jobs import run_stage, share_threads
from trainer.run import run_cv
from trainer.summaries import table_figures

BLOCKS = (1, 3, 6)
DEFAULT = "default"  # the bundled model's recipe (the Whisper encoder), for scale
# The CkTIM-net origin's table: EMOVO, random split, no augmentation (CkTIM-net with 6 blocks and
# augmentation: 90.2%), and its time per clip.
ORIGIN = {"timnet-1": 0.598, "timnet-3": 0.741, "timnet-6": 0.848,
          "cktimnet-1": 0.759, "cktimnet-3": 0.795, "cktimnet-6": 0.866}
ORIGIN_MS = {"timnet-6": "8", "cktimnet-6": "164–295"}
RANDOM_SPLIT = dict(protocol="random", n_folds=5, val_fraction=0.125)  # test 20%, then 10% of all validates
# TIM-Net's published training (its main.py and Model.py): 500 epochs at batch 64, Adam at a constant
# 1e-3, label smoothing 0.1, no augmentation, no early stopping; the epoch kept is the best on the
# test fold (its checkpoint callback watched the test set), which watch_test records. Not copied:
# Adam's betas (0.93, 0.98 there), our gradient clipping at norm 5, and its whole-utterance padded
# input (3 s crops here, as the app reads). AdamW without weight decay is Adam.
ORIGIN_SCHEDULE = ["train.epochs=500", "train.batch_size=64", "train.lr=0.001", "train.weight_decay=0.0",
                   "train.warmup_epochs=0", "train.lr_schedule=\"constant\"", "train.label_smoothing=0.1",
                   "train.patience=500", "train.ema_decay=0.0", "train.watch_test=true",
                   "augment.noise_prob=0.0", "augment.reverb_prob=0.0", "augment.telephone_prob=0.0",
                   "augment.tilt_prob=0.0", "augment.gain_db=[0.0, 0.0]", "augment.spec_masks=false",
                   "augment.mixup_alpha=0.0"]
SCHEDULE_SUFFIX = ", origin's schedule"
LOSO = dict(protocol="speakers", speakers_per_fold=1, val_speakers=1, val_keep_speakers=1, val_min_clips=0)


def variants(configs_dir: Path, overrides: list[str], encoder_dir: Path | None) -> dict[str, TrainConfig]:
    """TIM-Net and CkTIM-net with 1, 3 and 6 blocks (each otherwise its zoo config), TIM-Net's three
    again with its published schedule (random split only), and the default recipe when the
    encoder's folder is there."""
    out = {}
    for arch in ("timnet", "cktimnet"):
        base = load_config(configs_dir / f"{arch}.toml", overrides)
        for blocks in BLOCKS:
            out[f"{arch}-{blocks}"] = dataclasses.replace(base, hparams={**base.hparams, "blocks": blocks})
    origin = load_config(configs_dir / "timnet.toml", [*ORIGIN_SCHEDULE, *overrides])  # --set has the last word
    for blocks in BLOCKS:
        out[f"timnet-{blocks}{SCHEDULE_SUFFIX}"] = dataclasses.replace(origin, hparams={**origin.hparams, "blocks": blocks})
    if encoder_dir is not None:
        # scored over every label like every row: the default's head for the basic four is not trained here
        out[DEFAULT] = load_config(configs_dir / "whisper.toml", ["model.basic_head=false", *overrides,
                                                                  f"model.encoder_dir={json.dumps(str(encoder_dir))}"])
    return out


def protocols(cfg: TrainConfig) -> dict[str, TrainConfig]:
    one = dict(corpora=["emovo"], sampling="shuffle")
    return {"random": dataclasses.replace(cfg, **one, **RANDOM_SPLIT), "loso": dataclasses.replace(cfg, **one, **LOSO)}


def _origin_schedule(name: str) -> bool:
    return name.endswith(SCHEDULE_SUFFIX)


def _folder(name: str) -> str:
    return name.replace(SCHEDULE_SUFFIX, "-origin-schedule")


def _runs(name: str, cfg: TrainConfig, emovo: Corpus, out: Path, cache_dir) -> list[tuple]:
    """(config, corpora, directory, fold) for every run a variant's row reads: the random split,
    and but for the origin's schedule (500 epochs a run) leave one speaker out."""
    p = protocols(cfg)
    where = out / _folder(name)
    loso = [] if _origin_schedule(name) else [(p["loso"], [emovo], where / "loso", f"fold{k}")
                                                 for k in range(1, len(emovo.speakers) + 1)]
    return [(p["random"], [emovo], where / "random", "fold1"), *loso]


def _watched_peak(run_dir: Path) -> dict | None:
    """The test accuracy at the epoch best on the test set, where the run watched it: what a
    checkpoint callback on the test fold reports."""
    path = run_dir / "history.json"
    if not path.is_file():
        return None
    history = [h for h in json.loads(path.read_text(encoding="utf-8")) if "test_wa" in h]
    if not history:
        return None
    best = max(history, key=lambda h: h["test_wa"])  # the first epoch at the peak, as a save-if-better callback keeps
    return {"wa": best["test_wa"], "ua": best["test_ua"], "epoch": best["epoch"], "epochs": len(history)}


def _row(name: str, cfg: TrainConfig, emovo: Corpus, out: Path, cache_dir) -> dict:
    part = {}
    runs = _runs(name, cfg, emovo, out, cache_dir)
    for c, corpora, where, fold in runs:
        check_same_config(where / fold, c)
    for key in dict.fromkeys(where.name for _, _, where, _ in runs):
        folds = ["1"] if key == "random" else None
        s = run_cv(protocols(cfg)[key], [emovo], out / _folder(name) / key, name, resume=True, robustness=False,
                   cache_dir=cache_dir, folds=folds)
        part[key] = {**table_figures(s), "protocol": s["protocol"]}
    peak = _watched_peak(out / _folder(name) / "random" / "fold1")
    if peak is not None:
        part["random"]["test_peak"] = peak
    return part


def run_emovo(configs: dict[str, TrainConfig], emovo: Corpus, out: Path, cache_dir, jobs: int = 1,
              progress=None, book=None) -> dict:
    """Train (or keep) every EMOVO run; the figures, in the order trained (costs from `book`, a
    trainer.costs.CostBook, as the zoo's)."""
    if jobs > 1:
        configs = {n: share_threads(c, jobs) for n, c in configs.items()}
    book = book if book is not None else CostBook()
    costs = {n: book.cost(c, n_labels=len(emovo.labels)) for n, c in configs.items()}
    results = {"corpus": emovo.name, "clips": len(emovo.records), "speakers": len(emovo.speakers),
               "labels": list(emovo.labels),
               # cheapest per window first, but the default: its encoder's outputs are computed once and
               # cached, so its head trains in minutes
               "planned": sorted(configs, key=lambda n: (n != DEFAULT, costs[n]["cpu_ms"])), "models": {}}
    done = {}

    def row_done(name: str, part: dict) -> None:
        done[name] = {"architecture": configs[name].architecture, "blocks": configs[name].hparams.get("blocks"),
                      **costs[name], "origin_accuracy": ORIGIN.get(name.replace(SCHEDULE_SUFFIX, "")), "origin_ms": ORIGIN_MS.get(name), **part}
        results["models"] = {n: done[n] for n in results["planned"] if n in done}
        if progress is not None:
            progress(results)

    run_stage(_row, _runs, {n: (n, configs[n], emovo, out, cache_dir) for n in results["planned"]}, jobs, out,
               cache_dir, row_done)
    results["finished"] = True
    return results


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def render_markdown(results: dict) -> list[str]:
    """The EMOVO table's lines (under the zoo's)."""
    n = len(results["labels"])
    lines = [f"On EMOVO ({results['clips']} clips, {results['speakers']} actors, {n} emotions; chance "
             f"{100 / n:.1f}%), the origin's own corpus:", "",
             "| model | blocks | CPU ms per 3 s window | random split: accuracy % (speaker-dependent) "
             "| at the epoch best on the test clips (the origin's rule) | the origin's % "
             "| ours − origin's (points) | leave one speaker out: WA % | UA % | validation UA % | the origin's ms per clip |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for name, r in results["models"].items():
        rnd, loso, peak = r["random"]["wa"]["mean"], r.get("loso"), r["random"].get("test_peak")
        theirs = r.get("origin_accuracy")
        diff = "—" if theirs is None else f"{100 * (rnd - theirs):+.1f}"
        at_peak = "—" if peak is None else f"{_pct(peak['wa'])} (epoch {peak['epoch']} of {peak['epochs']})"
        if loso is None:
            loso_cells = "— | — | —"
        else:
            sd = f" ± {_pct(loso['ua']['sd'])}" if loso["folds"] > 1 else ""
            loso_cells = f"{_pct(loso['wa']['mean'])} | {_pct(loso['ua']['mean'])}{sd} | {_pct(loso['val_ua'])}"
        lines.append(f"| {name} | {r.get('blocks') or '—'} | {r['cpu_ms']:.1f} | {_pct(rnd)} | {at_peak} | {_pct(theirs)} | "
                     f"{diff} | {loso_cells} | {r.get('origin_ms') or '—'} |")
    if not results.get("finished"):
        waiting = [n for n in results.get("planned", []) if n not in results["models"]]
        lines += ["", f"Still running on EMOVO; not finished yet: {', '.join(waiting)}. The same command resumes."]
    rows = [r for name, r in results["models"].items() if r.get("origin_accuracy") is not None and not _origin_schedule(name)]
    if rows:
        gaps = [r["random"]["wa"]["mean"] - r["origin_accuracy"] for r in rows]
        lines += ["", f"Against the origin's random-split figures: {statistics.fmean(gaps) * 100:+.1f} points on average "
                      f"over the {len(rows)} variants run with the zoo's recipe."]
    return lines
