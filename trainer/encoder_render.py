"""The encoder table drawn from its figures (trainer/encoder_table.py), with the recipe and the
adaptation that validation chose (trainer/encoder_choices.py); and those figures as the
cross-corpus record a bundle carries (`ser-train train --cv-summary docs/results/encoder.json`).
Every figure is clip UA, the mean over seeds; a mean row adds the sd over seeds."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from serapp.labels import EMOTIONS
from trainer import report
from trainer.encoder_choices import choices, condition_key

START, END = "<!-- encoder-table:start -->", "<!-- encoder-table:end -->"
CONDITION_NAMES = ("cold", "adapted, 5 clips", "adapted, 20 clips", "adapted, 5 neutral clips")


def _pct(x) -> str:
    return "—" if x is None or x != x else f"{100 * x:.1f}"


def chosen_runs(results: dict, protocol: str = "loco") -> tuple[dict, dict]:
    """{fold: {seed: run}} of the chosen recipe, and the choices."""
    picked = choices(results)
    recipe = picked["recipe"].get("chosen")
    runs = {fold: {seed: r[recipe] for seed, r in seeds.items() if recipe in r}
            for fold, seeds in results.get(protocol, {}).items()}
    return {f: s for f, s in runs.items() if s}, picked


def _value(run: dict, key: str, emotions: str, part: str, field: str) -> float:
    c = run["conditions"][key][emotions]
    return c["confidence"][field] if part == "confidence" else c[part][field]


def figure(runs: dict, fold: str, key: str, emotions: str, part: str = "clip", field: str = "ua") -> float:
    """A fold's figure, the mean over its seeds."""
    return float(np.mean([_value(r, key, emotions, part, field) for r in runs[fold].values()]))


def mean_and_sd(runs: dict, key: str, emotions: str, part: str = "clip", field: str = "ua") -> tuple[float, float]:
    """The mean over folds, and the sd over seeds of each seed's mean over folds."""
    seeds = sorted({s for f in runs.values() for s in f})
    per_seed = []
    for s in seeds:
        per_seed.append(statistics.fmean(_value(r[s], key, emotions, part, field) for r in runs.values() if s in r))
    mean = statistics.fmean(figure(runs, f, key, emotions, part, field) for f in runs)
    return mean, statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0


def render_markdown(results: dict, reference: dict | None = None) -> str:
    corpora = results["corpora"]
    runs, picked = chosen_runs(results)
    names = [n for n in corpora if n in runs]
    if not names:
        return "(no folds finished yet)\n"
    adapt = picked["adapt"]["chosen"]
    keys = [condition_key(c, adapt) for c in CONDITION_NAMES]
    seeds = sorted({s for f in runs.values() for s in f})
    lines = [f"Clip UA %, the mean over {len(seeds)} seeds; **basic**: neutral, happy, sad and angry (calm counted as "
             "neutral), summed from the full head; **all**: every label the held-out corpus has. Confidence: the "
             "basic readout's 3 s speech windows, cold: ECE before → after calibration; coverage (windows that show "
             "a label, not \"not sure\") and how often a shown label is right.", "",
             "| held-out corpus | language | labels | basic: cold | adapted 5 | adapted 20 | 5 neutral | all: cold | "
             "adapted 5 | adapted 20 | 5 neutral | ECE | shown / right |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for n in names:
        c = corpora[n]
        cells = [_pct(figure(runs, n, k, e)) for e in ("basic", "all") for k in keys]
        ece0 = figure(runs, n, "cold", "basic", "confidence", "ece_raw")
        ece1 = figure(runs, n, "cold", "basic", "confidence", "ece")
        cov = figure(runs, n, "cold", "basic", "confidence", "coverage")
        right = figure(runs, n, "cold", "basic", "confidence", "shown_right")
        lines.append(f"| {c['title']} | {c['language']} | {len(c['labels'])} | " + " | ".join(cells)
                     + f" | {ece0:.3f} → {ece1:.3f} | {_pct(cov)} / {_pct(right)} |")
    means = []
    for e in ("basic", "all"):
        for k in keys:
            m, sd = mean_and_sd(runs, k, e)
            means.append(f"**{_pct(m)}** ± {100 * sd:.1f}")
    ece0 = mean_and_sd(runs, "cold", "basic", "confidence", "ece_raw")[0]
    ece1, ece_sd = mean_and_sd(runs, "cold", "basic", "confidence", "ece")
    cov = mean_and_sd(runs, "cold", "basic", "confidence", "coverage")[0]
    right = mean_and_sd(runs, "cold", "basic", "confidence", "shown_right")[0]
    lines.append(f"| **mean of {len(names)}** | | | " + " | ".join(means)
                 + f" | {ece0:.3f} → **{ece1:.3f}** | {_pct(cov)} / {_pct(right)} |")
    win = mean_and_sd(runs, "cold", "basic", "window")[0], mean_and_sd(runs, "cold", "all", "window")[0]
    lines += ["", f"Per 3 s speech window (`serapp predict --window 3 --hop 0.5`), cold: basic {_pct(win[0])}%, "
                  f"all {_pct(win[1])}% mean UA."]
    lines += _choice_lines(picked)
    emotions = [e for e in EMOTIONS if any(e in runs[n][s]["conditions"]["cold"]["all"]["clip"]["per_class_recall"]
                                           for n in names for s in runs[n])]
    lines += ["", f"Recall per emotion on the held-out corpus, all labels, cold / adapted with 20 clips (%, mean over "
                  "seeds):", "", "| held-out corpus | " + " | ".join(emotions) + " |", "|---|" + "--:|" * len(emotions)]
    for n in names:
        cells = []
        for e in emotions:
            rec = [[r["conditions"][k]["all"]["clip"]["per_class_recall"].get(e) for r in runs[n].values()]
                   for k in ("cold", keys[2])]
            cells.append("" if rec[0][0] is None else f"{_pct(np.mean(rec[0]))} / {_pct(np.mean(rec[1]))}")
        lines.append(f"| {corpora[n]['title']} | " + " | ".join(cells) + " |")
    emo, _ = chosen_runs(results, "emobox")
    if emo:
        lines += ["", f"RAVDESS EmoBox folds, the other six corpora added to training ({len(emo)} of 6 folds), clip UA % "
                      "(mean over seeds), basic / all:", "", "| fold | " + " | ".join(CONDITION_NAMES) + " |",
                  "|---|" + "--:|" * len(keys)]
        for name in emo:
            lines.append(f"| {name} | " + " | ".join(f"{_pct(figure(emo, name, k, 'basic'))} / "
                                                     f"{_pct(figure(emo, name, k, 'all'))}" for k in keys) + " |")
        lines.append("| **mean** | " + " | ".join(f"**{_pct(mean_and_sd(emo, k, 'basic')[0])}** / "
                                                  f"{_pct(mean_and_sd(emo, k, 'all')[0])}" for k in keys) + " |")
    lines += report.made_by(results)
    return "\n".join(lines) + "\n"


def _choice_lines(picked: dict) -> list[str]:
    rec, ad = picked["recipe"], picked["adapt"]
    out = ["", "Chosen on validation speakers (training corpora's held-back speakers; mean ± sd over seeds, UA %):", "",
           "| choice | option | validation | |", "|---|---|--:|---|"]
    for name, f in rec["figures"].items():
        mark = "**chosen**" if name == rec["chosen"] else ""
        out.append(f"| head recipe (basic, cold) | {name} | {_pct(f['mean'])} ± {100 * f['sd']:.1f} | {mark} |")
    for name, f in ad["figures"].items():
        mark = "**chosen**" if name == ad["chosen"] else ""
        out.append(f"| adaptation (basic, 20 clips) | {name} | {_pct(f['mean'])} ± {100 * f['sd']:.1f}; one emotion "
                   f"vs cold, worst fold {100 * f['worst_one_emotion_vs_cold']:+.1f} | {mark} |")
    out += ["", f"A recipe replaces the first (weighted) only by leading by more than the seed spread (lead "
                f"{100 * rec['lead']:+.1f}, spread {100 * rec['noise']:.1f} points). Adaptation: the best with 20 "
                "random clips among those that never read below cold, in any fold, when adapted to clips of one emotion"
                + ("" if ad.get("guarded") else " (none passed: the one whose worst fold loses least)") + "."]
    return out


def reliability_diagrams(results: dict, folder: Path) -> list[Path]:
    """PNGs: the basic readout's reliability per held-out corpus, cold, before and after calibration."""
    from trainer.calibrate import reliability_png

    runs, _ = chosen_runs(results)
    curves = {}
    for n, seeds in runs.items():
        bins = [r["conditions"]["cold"]["basic"]["confidence"]["reliability"] for r in seeds.values()]
        merged = []
        for parts in zip(*bins):
            total = sum(b["n"] for b in parts)
            merged.append({"n": total, **{k: (sum(b[k] * b["n"] for b in parts if b["n"]) / total if total else None)
                                          for k in ("confidence", "accuracy")}})
        curves[results["corpora"][n]["title"]] = merged
    return [reliability_png(folder / "reliability-basic.png", curves,
                            "basic readout, calibrated, cold: accuracy against confidence per held-out corpus")]


def as_cv_summary(results: dict, condition: str = "cold") -> dict:
    """The chosen recipe's leave-one-corpus-out figures in the form of a `ser-train cv` summary
    (all labels, as the bundle's `cross_corpus` record always was), with the basic readout's
    and the adapted figures beside them, so `serapp model-info` and the status bar show the
    table's own numbers."""
    runs, picked = chosen_runs(results)
    if not runs:
        raise ValueError("no leave-one-corpus-out folds in it")
    adapted = condition_key("adapted, 20 clips", picked["adapt"]["chosen"])
    key = condition if condition == "cold" else adapted
    folds = [{"fold": name, "test_corpus": name,
              "test": {"n": next(iter(runs[name].values()))["conditions"][key]["all"]["clip"]["n"],
                       "wa": figure(runs, name, key, "all", "clip", "wa"), "ua": figure(runs, name, key, "all"),
                       "basic_ua": figure(runs, name, key, "basic"), "labels": results["corpora"][name]["labels"]}}
             for name in runs]

    def stats(k: str, emotions: str = "all", part: str = "clip", field: str = "ua") -> dict:
        mean, sd = mean_and_sd(runs, k, emotions, part, field)
        return {"mean": mean, "sd": sd, "over": "seeds"}

    return {"protocol": f"cross-corpus (leave one corpus out; clip UA, {condition}, mean over seeds)",
            "config": "whisper.toml", "data": " + ".join(c["title"] for c in results["corpora"].values()),
            "command": results.get("command"), "ua": stats(key), "wa": stats(key, field="wa"),
            "basic_ua": stats(key, "basic"), "adapted_ua": stats(adapted), "basic_adapted_ua": stats(adapted, "basic"),
            "ece": stats("cold", "basic", "confidence", "ece"), "coverage": stats("cold", "basic", "confidence", "coverage"),
            "shown_right": stats("cold", "basic", "confidence", "shown_right"),
            "recipe": picked["recipe"]["chosen"], "adapt": picked["adapt"]["chosen"], "folds": folds}
