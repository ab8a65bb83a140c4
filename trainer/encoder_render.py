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


def chosen_runs(results: dict, protocol: str = "loco", recipe: str | None = None) -> tuple[dict, dict]:
    """{fold: {seed: run}} of the chosen recipe (or `recipe`), and the choices."""
    picked = choices(results)
    recipe = recipe or picked["recipe"].get("chosen")
    runs = {fold: {seed: r[recipe] for seed, r in seeds.items() if recipe in r}
            for fold, seeds in results.get(protocol, {}).items()}
    return {f: s for f, s in runs.items() if s}, picked


def all_label_runs(results: dict, protocol: str = "loco") -> tuple[dict, str]:
    """The runs the all-labels figures come from, and their recipe: the chosen one's, unless it
    reads the basic four only (a head trained for the four); then the first recipe's."""
    runs, picked = chosen_runs(results, protocol)
    recipe = picked["recipe"].get("chosen")
    if runs and all("all" in r["conditions"]["cold"] for f in runs.values() for r in f.values()):
        return runs, recipe
    first = next(iter(results.get("recipes") or {}), recipe)
    return chosen_runs(results, protocol, first)[0], first


def _value(run: dict, key: str, emotions: str, part: str, field: str) -> float:
    c = run["conditions"][key][emotions]
    return c["confidence"][field] if part == "confidence" else c[part][field]


def figure(runs: dict, fold: str, key: str, emotions: str, part: str = "clip", field: str = "ua") -> float:
    """A fold's figure, the mean over its seeds (NaN where the fold has none)."""
    if fold not in runs:
        return float("nan")
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
    all_runs, all_recipe = all_label_runs(results)
    by = {"basic": runs, "all": all_runs}
    source = ("from a head trained for the four" if picked["recipe"]["chosen"] == "four-way"
              else "summed from the full head")
    lines = [f"Clip UA %, the mean over {len(seeds)} seeds; **basic**: neutral, happy, sad and angry (calm counted as "
             f"neutral), {source}; **all**: every label the held-out corpus has"
             + ("" if all_recipe == picked["recipe"]["chosen"] else f" (the {all_recipe} head's)") + ". Confidence: "
             "the basic readout's 3 s speech windows, cold. ECE uncalibrated → calibrated on validation speakers → "
             "calibrated on the other held-out corpora (the calibration the bundle ships: fitted where the voices and "
             "the recordings are new); coverage (windows that show a label, not \"not sure\") and how often a shown "
             "label is right, at the latter's threshold.", "",
             "| held-out corpus | language | labels | basic: cold | adapted 5 | adapted 20 | 5 neutral | all: cold | "
             "adapted 5 | adapted 20 | 5 neutral | ECE | shown / right |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]

    def confidence(n: str | None, field: str, part: str = "confidence") -> float:
        return mean_and_sd(runs, "cold", "basic", part, field)[0] if n is None else figure(runs, n, "cold", "basic",
                                                                                          part, field)

    def ece_cells(n: str | None) -> str:
        validation = confidence(n, "ece", "confidence_validation") if _has_validation(runs) else float("nan")
        return (f"{confidence(n, 'ece_raw'):.3f} → {validation:.3f} → **{confidence(n, 'ece'):.3f}** | "
                f"{_pct(confidence(n, 'coverage'))} / {_pct(confidence(n, 'shown_right'))}")

    for n in names:
        c = corpora[n]
        cells = [_pct(figure(by[e], n, k, e)) for e in ("basic", "all") for k in keys]
        lines.append(f"| {c['title']} | {c['language']} | {len(c['labels'])} | " + " | ".join(cells)
                     + f" | {ece_cells(n)} |")
    means = []
    for e in ("basic", "all"):
        for k in keys:
            m, sd = mean_and_sd(by[e], k, e)
            means.append(f"**{_pct(m)}** ± {100 * sd:.1f}")
    lines.append(f"| **mean of {len(names)}** | | | " + " | ".join(means) + f" | {ece_cells(None)} |")
    win = mean_and_sd(runs, "cold", "basic", "window")[0], mean_and_sd(all_runs, "cold", "all", "window")[0]
    lines += ["", f"Per 3 s speech window (`serapp predict --window 3 --hop 0.5`), cold: basic {_pct(win[0])}%, "
                  f"all {_pct(win[1])}% mean UA."]
    lines += _choice_lines(picked)
    emotions = [e for e in EMOTIONS if any(e in all_runs[n][s]["conditions"]["cold"]["all"]["clip"]["per_class_recall"]
                                           for n in names for s in all_runs[n])]
    lines += ["", f"Recall per emotion on the held-out corpus, all labels, cold / adapted with 20 clips (%, mean over "
                  "seeds):", "", "| held-out corpus | " + " | ".join(emotions) + " |", "|---|" + "--:|" * len(emotions)]
    for n in names:
        cells = []
        for e in emotions:
            rec = [[r["conditions"][k]["all"]["clip"]["per_class_recall"].get(e) for r in all_runs[n].values()]
                   for k in ("cold", keys[2])]
            cells.append("" if rec[0][0] is None else f"{_pct(np.mean(rec[0]))} / {_pct(np.mean(rec[1]))}")
        lines.append(f"| {corpora[n]['title']} | " + " | ".join(cells) + " |")
    emo, _ = chosen_runs(results, "emobox")
    emo_all = all("all" in r["conditions"]["cold"] for f in emo.values() for r in f.values())

    def emo_cell(name, k, sep=" / "):
        basic = figure(emo, name, k, "basic") if name else mean_and_sd(emo, k, "basic")[0]
        if not emo_all:
            return _pct(basic) if name else f"**{_pct(basic)}**"
        every = figure(emo, name, k, "all") if name else mean_and_sd(emo, k, "all")[0]
        return f"{_pct(basic)}{sep}{_pct(every)}" if name else f"**{_pct(basic)}**{sep}{_pct(every)}"
    if emo:
        lines += ["", f"RAVDESS EmoBox folds, the other six corpora added to training ({len(emo)} of 6 folds), clip UA % "
                      "(mean over seeds), " + ("basic / all" if emo_all else "basic") + ":", "",
                  "| fold | " + " | ".join(CONDITION_NAMES) + " |", "|---|" + "--:|" * len(keys)]
        for name in emo:
            lines.append(f"| {name} | " + " | ".join(emo_cell(name, k) for k in keys) + " |")
        lines.append("| **mean** | " + " | ".join(emo_cell(None, k) for k in keys) + " |")
    lines += report.made_by(results)
    return "\n".join(lines) + "\n"


def _has_validation(runs: dict) -> bool:
    return all("confidence_validation" in r["conditions"]["cold"]["basic"] for f in runs.values() for r in f.values())


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
                "random clips among those whose one-emotion voices (each speaker's clips of one emotion, adapted to 20 of "
                "them and read) never read below cold in any fold"
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
    all_runs, _ = all_label_runs(results)
    adapted = condition_key("adapted, 20 clips", picked["adapt"]["chosen"])
    key = condition if condition == "cold" else adapted
    folds = [{"fold": name, "test_corpus": name,
              "test": {"n": next(iter(all_runs[name].values()))["conditions"][key]["all"]["clip"]["n"],
                       "wa": figure(all_runs, name, key, "all", "clip", "wa"), "ua": figure(all_runs, name, key, "all"),
                       "basic_ua": figure(runs, name, key, "basic"), "labels": results["corpora"][name]["labels"]}}
             for name in runs]

    def stats(k: str, emotions: str = "all", part: str = "clip", field: str = "ua") -> dict:
        mean, sd = mean_and_sd(all_runs if emotions == "all" else runs, k, emotions, part, field)
        return {"mean": mean, "sd": sd, "over": "seeds"}

    return {"protocol": f"cross-corpus (leave one corpus out; clip UA, {condition}, mean over seeds)",
            "config": "whisper.toml", "data": " + ".join(c["title"] for c in results["corpora"].values()),
            "command": results.get("command"), "ua": stats(key), "wa": stats(key, field="wa"),
            "basic_ua": stats(key, "basic"), "adapted_ua": stats(adapted), "basic_adapted_ua": stats(adapted, "basic"),
            "ece": stats("cold", "basic", "confidence", "ece"), "coverage": stats("cold", "basic", "confidence", "coverage"),
            "shown_right": stats("cold", "basic", "confidence", "shown_right"),
            "recipe": picked["recipe"]["chosen"], "adapt": picked["adapt"]["chosen"], "folds": folds,
            **({"readout": results["bundle_readout"]} if results.get("bundle_readout") else {})}
