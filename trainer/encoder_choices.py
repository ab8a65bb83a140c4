"""The encoder table's choices, from validation speakers alone: the head recipe and the way of
adapting to a voice. A held-out corpus never chooses.

- **Recipe**: the one with the highest basic-four validation UA (cold), mean over the
  leave-one-corpus-out folds and seeds. A challenger replaces the incumbent (the first recipe
  run) only when it leads by more than the seed spread (the larger sd, over seeds, of the two
  recipes' fold means): smaller differences are noise.
- **Adaptation**: among the ways whose validation UA on one-emotion voices (each speaker's
  clips of one emotion as a voice heard so all along, adapted to 20 of them and reading them, as
  URDU's speakers are heard) is not below cold in any fold, the one with the highest UA adapted
  with 20 random clips; where none passes, the one whose worst fold loses least.
"""

from __future__ import annotations

import statistics

READOUT = "basic"  # the choices serve the default readout


def _runs(results: dict, protocol: str = "loco"):
    """(fold, seed, recipe, run) for every finished run."""
    for fold, seeds in results.get(protocol, {}).items():
        for seed, recipes in seeds.items():
            for recipe, r in recipes.items():
                yield fold, seed, recipe, r


def spread(values_by_seed: dict[str, list[float]]) -> tuple[float, float]:
    """Mean over everything, and the sd over seeds of each seed's mean (0 with one seed)."""
    per_seed = [statistics.fmean(v) for v in values_by_seed.values() if v]
    everything = [x for v in values_by_seed.values() for x in v]
    return statistics.fmean(everything), statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0


def choose_recipe(results: dict) -> dict:
    figures: dict[str, dict[str, list[float]]] = {}
    for _, seed, recipe, r in _runs(results):
        figures.setdefault(recipe, {}).setdefault(seed, []).append(r["validation"]["cold"][READOUT])
    if not figures:
        return {}
    table = {name: dict(zip(("mean", "sd"), spread(v))) for name, v in figures.items()}
    incumbent = next(iter(results.get("recipes") or table))
    incumbent = incumbent if incumbent in table else next(iter(table))
    best = max(table, key=lambda k: table[k]["mean"])
    noise = max(table[best]["sd"], table[incumbent]["sd"])
    lead = table[best]["mean"] - table[incumbent]["mean"]
    chosen = best if best != incumbent and lead > noise else incumbent
    return {"by": f"validation UA, {READOUT} readout, cold", "figures": table, "chosen": chosen,
            "lead": lead, "noise": noise}


def choose_adapt(results: dict, recipe: str) -> dict:
    random: dict[str, dict[str, list[float]]] = {}
    margin: dict[str, dict[str, list[float]]] = {}  # one-emotion minus cold, per fold (mean over seeds)
    for fold, seed, name, r in _runs(results):
        if name != recipe:
            continue
        v = r["validation"]
        for adapt, a in v["adapt"].items():
            random.setdefault(adapt, {}).setdefault(seed, []).append(a["random"][READOUT])
            margin.setdefault(adapt, {}).setdefault(fold, []).append(a["one_emotion"][READOUT] - v["cold"][READOUT])
    if not random:
        return {}
    table = {}
    for adapt in random:
        mean, sd = spread(random[adapt])
        worst = min(statistics.fmean(v) for v in margin[adapt].values())
        table[adapt] = {"mean": mean, "sd": sd, "worst_one_emotion_vs_cold": worst}
    safe = [a for a in table if table[a]["worst_one_emotion_vs_cold"] >= 0]
    chosen = (max(safe, key=lambda a: table[a]["mean"]) if safe
              else max(table, key=lambda a: table[a]["worst_one_emotion_vs_cold"]))
    return {"by": f"validation UA, {READOUT} readout: adapted with 20 random clips, guarded by one-emotion clips",
            "figures": table, "chosen": chosen, "guarded": bool(safe)}


def choices(results: dict) -> dict:
    recipe = choose_recipe(results)
    return {"recipe": recipe, "adapt": choose_adapt(results, recipe["chosen"]) if recipe else {}}


def condition_key(name: str, adapt: str) -> str:
    """The key a condition's figures are stored under in a run (cold has no adaptation)."""
    return name if name == "cold" else f"{name} | {adapt}"
