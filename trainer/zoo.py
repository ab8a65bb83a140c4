"""`ser-train zoo`: every architecture on the same footing, one table in the README.

For each config: parameters, bundle MB, CPU milliseconds per 3 s window on one thread, the
speaker-independent EmoBox RAVDESS figures (the folds asked for; the table says how many),
optionally a random-split figure (speaker-dependent, as the origins measured) for the configs
whose origin reported one, beside that number, and, for the default and the --best configs by
validation UA (all six folds) and those named with --cross-corpus, the leave-one-corpus-out mean
(with the corpora the multicorpus recipe lists). Runs are kept under --out and resumed, as in
`ser-train crosscorpus`; the figures go to docs/results/zoo.json.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from trainer import report
from trainer.config import TrainConfig, check_same_config, same_recipe
from trainer.costs import CostBook
from trainer.folds import EMOBOX_RAVDESS
from trainer.jobs import run_stage, share_threads
from trainer.run import run_cv
from trainer.summaries import table_figures

START, END = "<!-- zoo:start -->", "<!-- zoo:end -->"
REFERENCE = "default"  # the bundled model's config: the one a zoo model must beat to replace it
# README "Seed noise": the default recipe's six-fold mean UA moved 3.2 points between seeds 0 and 1.
SEED_SPREAD_UA = 0.03

# What each origin reported, and how (never comparable with speaker-independent figures): the
# accuracy, where and how it was measured, and why ours on a random RAVDESS split may differ.
ORIGINS = {
    "parallel_cnn": (0.804, "80.4% (RAVDESS, random 80/10/10 split; its test set held noisy copies of training clips)",
                     "its test set held noisy copies of its own training clips, which a clean split does not"),
    "timnet": (0.741, "74.1% (EMOVO, random split, 3 blocks; 84.8% with 6)",
               "it was measured on EMOVO (6 Italian actors, 588 clips), not on RAVDESS"),
    "cktimnet": (0.795, "79.5% (EMOVO, random split, 3 blocks; 90.2% with augmentation)",
                 "it was measured on EMOVO (6 Italian actors, 588 clips), not on RAVDESS"),
    "logreg": (0.378, "37.8% (course project, random split)", "the course project's own clips and split"),
    "transformer": (0.514, "51.4% (course project, random split)", "the course project's own clips and split"),
    "speech_encoder": (0.625, "62.5% fine-tuned wav2vec2-base (course project, validation, random split); "
                              "published on unseen RAVDESS actors: 54% UA frozen wav2vec2-base, 72% WavLM-large",
                       "it was fine-tuned and scored on a validation split; which encoder and whether it is frozen "
                       "decide most of it"),
}
ENCODER_NOT_RUN = ("it needs pretrained weights in a local folder (--configs speech_encoder --set "
                   "model.encoder_dir=DIR), and none are downloaded")
FAR_FROM_ORIGIN = 0.10  # a random-split accuracy this far from the origin's gets a line saying why


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def loco_recipe(cfg: TrainConfig, multicorpus: TrainConfig) -> TrainConfig:
    """Leave one corpus out with the multi-corpus recipe's data and schedule, and this model's
    network, features and augmentation (what it trains with on RAVDESS: a network that underfits the
    shared chain keeps its own here too). For the default that is the cross-corpus table's recipe,
    whose runs are then shared."""
    own = ("architecture", "hparams", "frontend", "window_s", "augment")
    return dataclasses.replace(multicorpus, **{k: getattr(cfg, k) for k in own}, protocol="loco")


def choose_best(rows: dict, n: int) -> list[str]:
    """The n models (the reference aside) with the highest mean validation UA."""
    others = [name for name in rows if name != REFERENCE]
    return sorted(others, key=lambda name: -rows[name]["emobox"]["val_ua"])[:n]


def _emobox(name: str, cfg: TrainConfig, ravdess: list, out: Path, which: list[str] | None, cache_dir) -> dict:
    emo, where = dataclasses.replace(cfg, protocol="emobox"), out / name / "emobox"
    for k in which or [str(k) for k in EMOBOX_RAVDESS]:
        check_same_config(where / f"fold{k}", emo)
    return table_figures(run_cv(emo, ravdess, where, name, resume=True, robustness=False, cache_dir=cache_dir,
                           folds=which))


def _first_stage(name: str, cfg: TrainConfig, ravdess: list, out: Path, folds: list[str], cache_dir,
                 random_split: bool) -> dict:
    """A config's EmoBox folds asked, and its random split beside an origin's own number."""
    part = {"emobox": _emobox(name, cfg, ravdess, out, folds, cache_dir)}
    if random_split and name in ORIGINS:
        s = run_cv(dataclasses.replace(cfg, protocol="random"), ravdess, out / name / "random", name, resume=True,
                   robustness=False, cache_dir=cache_dir, folds=["1"])
        part["random_split"] = {**table_figures(s), "protocol": s["protocol"]}
    return part


def _second_stage(name: str, cfg: TrainConfig, ravdess: list, out: Path, cache_dir, six: bool,
                  recipe: TrainConfig | None, loco_dir: Path | None, all_corpora: list | None) -> dict:
    """All six EmoBox folds (`six`), and the leave-one-corpus-out mean with `recipe`."""
    part = {"emobox": _emobox(name, cfg, ravdess, out, None, cache_dir)} if six else {}
    if recipe is not None:
        for c in all_corpora:
            check_same_config(loco_dir / c.name, recipe)
        s = run_cv(recipe, all_corpora, loco_dir, name, resume=True, robustness=False, cache_dir=cache_dir)
        part["loco_mean_ua"] = s["ua"]["mean"]
    return part


def _first_folds(name: str, cfg: TrainConfig, ravdess: list, out: Path, folds: list[str], cache_dir,
                 random_split: bool) -> list[tuple]:
    """The runs `_first_stage` (with the same arguments) reads, one per fold: (config, corpora,
    directory, fold)."""
    emo = dataclasses.replace(cfg, protocol="emobox")
    runs = [(emo, ravdess, out / name / "emobox", f"fold{k}") for k in folds]
    if random_split and name in ORIGINS:
        runs.append((dataclasses.replace(cfg, protocol="random"), ravdess, out / name / "random", "fold1"))
    return runs


def _second_folds(name: str, cfg: TrainConfig, ravdess: list, out: Path, cache_dir, six: bool,
                  recipe: TrainConfig | None, loco_dir: Path | None, all_corpora: list | None) -> list[tuple]:
    """The runs `_second_stage` (with the same arguments) reads, one per fold, the long
    cross-corpus ones first."""
    runs = [(recipe, all_corpora, loco_dir, c.name) for c in all_corpora] if recipe is not None else []
    if six:
        runs += _first_folds(name, cfg, ravdess, out, [str(k) for k in EMOBOX_RAVDESS], cache_dir, False)
    return runs


def run_zoo(configs: dict[str, TrainConfig], corpora: list, out: Path, folds: list[str], cache_dir,
            random_split: bool = False, cross: list[str] = (), best: int = 0,
            multicorpus: TrainConfig | None = None, all_corpora: list | None = None, progress=None,
            shared_loco: Path | None = None, jobs: int = 1, book: CostBook | None = None) -> dict:
    """Train (or keep) every run the table needs; return the results record. Costs come from
    `book` (kept from an earlier run's figures, or measured now).

    First every config on the EmoBox folds asked (and a random split), cheapest per window first;
    then the reference and the `best` models by validation UA get all six folds, and they and
    those named in `cross` are trained leave one corpus out on `all_corpora` with `multicorpus`'s
    recipe. A recipe equal to it keeps its runs in `shared_loco` (`ser-train crosscorpus`'s).
    With `jobs` > 1, that many runs (one fold each) train at once, each with its share of the threads.
    `progress(results)` hears of the figures so far after each step."""
    ravdess = [c for c in corpora if c.name == "ravdess"]
    results = {"folds_asked": list(folds), "models": {}}
    if jobs > 1:
        configs = {n: share_threads(c, jobs) for n, c in configs.items()}
        multicorpus = multicorpus and share_threads(multicorpus, jobs)

    book = book if book is not None else CostBook()
    costs = {name: book.cost(cfg) for name, cfg in configs.items()}
    # Cheapest first, so the table fills early on a slow machine (and reads in order of cost).
    results["planned"] = planned = sorted(configs, key=lambda n: costs[n]["cpu_ms"])
    done = {}

    def first_done(name: str, part: dict) -> None:
        figure, origin, why = ORIGINS.get(name, (None, None, None))
        done[name] = {"architecture": configs[name].architecture, **costs[name], "origin": origin,
                      "origin_accuracy": figure, "origin_differs_because": why, **part}
        results["models"] = {n: done[n] for n in planned if n in done}  # in the planned order, however they end
        _log(f"== {name}: done")
        if progress is not None:
            progress(results)

    run_stage(_first_stage, _first_folds, {n: (n, configs[n], ravdess, out, list(folds), cache_dir, random_split)
                                            for n in planned}, jobs, out, cache_dir, first_done)
    full = []
    if best:
        results["chosen_by_validation"] = choose_best(results["models"], best)
        full = [REFERENCE] * (REFERENCE in configs) + results["chosen_by_validation"]
        if progress is not None:  # the table names the second stage's configs while they train
            progress(results)
    second, what = {}, {}
    for name in dict.fromkeys([*full, *cross]):
        recipe = where = None
        if multicorpus is not None and all_corpora:
            recipe = loco_recipe(configs[name], multicorpus)
            shared = shared_loco is not None and same_recipe(recipe, dataclasses.replace(multicorpus, protocol="loco"))
            where = shared_loco if shared else out / name / "loco"
        steps = ["all six EmoBox folds"] * (name in full) + ["leave one corpus out"] * (recipe is not None)
        if not steps:
            continue
        what[name] = ", ".join(steps)
        second[name] = (name, configs[name], ravdess, out, cache_dir, name in full, recipe, where, all_corpora)

    def second_done(name: str, part: dict) -> None:
        results["models"][name].update(part)
        if progress is not None:
            progress(results)

    run_stage(_second_stage, _second_folds, second, jobs, out, cache_dir, second_done, what)
    results["finished"] = True
    return results


def verdict(results: dict) -> str | None:
    """Whether a model takes the default's place: only by beating it by more than the seed-to-seed
    spread on both the RAVDESS (all six folds) and the cross-corpus UA."""
    rows = results["models"]
    ref = rows.get(REFERENCE)
    if ref is None or ref.get("loco_mean_ua") is None:
        return None
    six = len(EMOBOX_RAVDESS)
    rivals = {n: r for n, r in rows.items() if n != REFERENCE and r["emobox"]["folds"] == six
              and r.get("loco_mean_ua") is not None}
    if not rivals:
        return None
    spread = f"the seed-to-seed spread ({_pct(SEED_SPREAD_UA)} points UA)"
    winners = sorted((n for n, r in rivals.items()
                      if r["emobox"]["ua"]["mean"] - ref["emobox"]["ua"]["mean"] > SEED_SPREAD_UA
                      and r["loco_mean_ua"] - ref["loco_mean_ua"] > SEED_SPREAD_UA),
                     key=lambda n: -rivals[n]["emobox"]["val_ua"])  # among winners, validation decides
    if not winners:
        return (f"The default stays: no model compared ({', '.join(rivals)}) beats it by more than {spread} "
                "on both the RAVDESS and the cross-corpus UA.")
    return (f"{' and '.join(winners)} beat{'s' * (len(winners) == 1)} the default by more than {spread} on both "
            f"the RAVDESS and the cross-corpus UA: {winners[0]}"
            f"{', with the best validation UA,' * (len(winners) > 1)} becomes the new default.")


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def render_markdown(results: dict, more: list[str] = ()) -> str:
    """The table, what it says under it, then the lines `more` (the EMOVO table of `zoo --emovo`,
    trainer/zoo_emovo.py), then the command that made it."""
    lines = ["| model | parameters | bundle MB | CPU ms per 3 s window | RAVDESS WA % | RAVDESS UA % | folds | "
             "validation UA % | cross-corpus UA % | random-split accuracy % (speaker-dependent) | the origin's own figure |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    why = []
    for name, r in results["models"].items():
        e = r["emobox"]
        sd = f" ± {_pct(e['ua']['sd'])}" if e["folds"] > 1 else ""
        slow = " (too slow for live)" if r["too_slow_for_live"] else ""
        rnd = r.get("random_split", {}).get("wa", {}).get("mean")
        params = f"{r['parameters'] / 1e3:.0f}k" if r["parameters"] >= 1000 else str(r["parameters"])
        lines.append(f"| {name} | {params} | {r['bundle_mb']:.2f} | {r['cpu_ms']:.1f}{slow} | "
                     f"{_pct(e['wa']['mean'])} | {_pct(e['ua']['mean'])}{sd} | {e['folds']} | "
                     f"{_pct(e.get('val_ua'))} | {_pct(r.get('loco_mean_ua'))} | {_pct(rnd)} | {r.get('origin') or '—'} |")
        theirs = r.get("origin_accuracy")
        if rnd is not None and theirs is not None and abs(rnd - theirs) >= FAR_FROM_ORIGIN:
            why.append(f"- {name}: {_pct(rnd)}% here against {_pct(theirs)}% there: {r['origin_differs_because']}.")
    for name, reason in results.get("not_run", {}).items():
        lines += ["", f"Not run: {name}, because {reason}. Its origin: {ORIGINS[name][1]}."]
    chosen = results.get("chosen_by_validation")
    if chosen is not None:
        default = "the default and " * (REFERENCE in results["models"])
        lines += ["", f"All six folds and the cross-corpus column: {default}the {len(chosen)} with the best "
                      f"validation UA (RAVDESS validation actors of the folds asked, never a test score): "
                      f"{', '.join(chosen)}."]
    if results.get("finished"):
        decision = verdict(results)
        if decision:
            lines += ["", decision]
    else:  # figures saved as the runs went: no verdict until every run the table needs is done
        waiting = [n for n in results.get("planned", []) if n not in results["models"]]
        lines += ["", "Still running: these are the runs finished so far"
                      + f"; not finished yet: {', '.join(waiting) or 'the second stage'}"
                      + ". The same command resumes where it stopped."]
    if why:
        lines += ["", "Where a random-split accuracy is 10 points or more from its origin's:", "", *why]
    if more:
        lines += ["", *more]
    lines += report.made_by(results)
    return "\n".join(lines) + "\n"
