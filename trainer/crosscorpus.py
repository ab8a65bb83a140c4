"""`ser-train crosscorpus`: the README's cross-corpus table, from training runs to Markdown.

Two recipes are compared on every corpus given, each trained without the corpus it is tested on:
- the RAVDESS-only recipe (the baseline config trained on all RAVDESS actors), scored on each
  other corpus; it has no figure for RAVDESS itself, which it cannot be trained without;
- the multi-corpus recipe, leave one corpus out: trained on all the others, tested on all of
  the held-out one.
Below that, the multi-corpus recipe on the EmoBox RAVDESS folds (RAVDESS test actors, the other
corpora added to training), beside the RAVDESS-only recipe's figures on the same folds.

Every fold is a run directory under --out; a finished one is kept, an interrupted one resumes
from its checkpoint, so the command can be stopped and started again. The figures go to a JSON
file (docs/results/crosscorpus.json) and the table into the README between two markers;
`--render-only` redraws the table from the JSON without training.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from pathlib import Path

from serapp.corpora import Corpus, CorpusError
from serapp.labels import EMOTIONS
from serapp.scoring import RULE
from trainer import report
from trainer.config import TrainConfig, check_same_config
from trainer.run import run_cv, run_evaluate, run_train

START, END = "<!-- crosscorpus:start -->", "<!-- crosscorpus:end -->"


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _fold_dirs(out: Path, names: list[str]) -> list[Path]:
    return [out / n for n in names]


def run_crosscorpus(baseline: TrainConfig, recipe: TrainConfig, corpora: list[Corpus], out: Path,
                    emobox_folds: list[str], cache_dir: Path | None, names: tuple[str, str] = ("", ""),
                    progress=None) -> dict:
    """Train (or keep) every run the table needs and return the results record. `progress(results)`
    hears of the figures so far after each finished run, so hours of training show as they go."""
    by_name = {c.name: c for c in corpora}
    if "ravdess" not in by_name or len(corpora) < 2:
        raise CorpusError("the cross-corpus table needs RAVDESS and at least one other corpus (--data or --data-root)")
    results = {"scoring": RULE, "corpora": {c.name: report.corpus_row(c) for c in corpora},
               "baseline": {"config": names[0], "per_corpus": {}},
               "multicorpus": {"config": names[1], "loco": {}, "emobox": {}}}
    tell = progress or (lambda r: None)

    base_dir = out / "ravdess-only"
    check_same_config(base_dir, dataclasses.replace(baseline, labels=None))
    if not (base_dir / "metrics.json").is_file():
        _log("== RAVDESS-only recipe: all RAVDESS actors")
        run_train(baseline, [by_name["ravdess"]], base_dir, "all", resume=True, cache_dir=cache_dir)
    for c in corpora:
        if c.name != "ravdess":
            m = run_evaluate(base_dir / "model.safetensors", c, "cpu", cache_dir)
            results["baseline"]["per_corpus"][c.name] = _brief(m)
    tell(results)

    def loco_done(records: list[dict]) -> None:
        for fold in records:
            results["multicorpus"]["loco"][fold["fold"]] = {
                **_brief(fold["test"]), "best_epoch": fold["best_epoch"], "train_seconds": fold["train_seconds"],
                "val": fold["val"]}
        tell(results)

    loco = dataclasses.replace(recipe, protocol="loco")
    for d in _fold_dirs(out / "loco", list(by_name)):
        check_same_config(d, loco)
    _log("== multi-corpus recipe, leave one corpus out")
    run_cv(loco, corpora, out / "loco", names[1], resume=True, robustness=False, cache_dir=cache_dir, on_fold=loco_done)

    def emobox_done(records: list[dict]) -> None:
        s = report.summarize_cv(records, "", names[1], "")
        results["multicorpus"]["emobox"] = {
            "folds": [{"fold": f["fold"], "test_speakers": f["test_speakers"], **_brief(f["test"]),
                       "train_seconds": f["train_seconds"]} for f in records],
            "ua": s["ua"], "wa": s["wa"], "robustness_mean_drop": s.get("robustness_mean_drop")}
        tell(results)

    if emobox_folds:
        emo = dataclasses.replace(recipe, protocol="emobox")
        for d in _fold_dirs(out / "emobox", [f"fold{k}" for k in emobox_folds]):
            check_same_config(d, emo)
        _log(f"== multi-corpus recipe, EmoBox RAVDESS folds {' '.join(emobox_folds)}")
        run_cv(emo, corpora, out / "emobox", names[1], resume=True, robustness=True, cache_dir=cache_dir,
               folds=emobox_folds, on_fold=emobox_done)
    return results


def _brief(m: dict) -> dict:
    out = {k: m[k] for k in ("n", "wa", "ua", "macro_f1") if k in m}
    if "per_class_recall" in m:
        out["per_class_recall"] = m["per_class_recall"]
    if "scoring" in m:
        out["merged"] = m["scoring"].get("merged", {})
    return out


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def render_markdown(results: dict, reference: dict | None = None) -> str:
    """The table (and the EmoBox lines under it) from a results record."""
    corpora = results["corpora"]
    base = results["baseline"]["per_corpus"]
    loco = results["multicorpus"]["loco"]
    lines = ["| held-out corpus | language | labels | chance UA % | RAVDESS-only recipe UA % | multi-corpus recipe UA % |",
             "|---|---|--:|--:|--:|--:|"]
    for name, c in corpora.items():
        b = base.get(name, {}).get("ua")
        m = loco.get(name, {}).get("ua")
        lines.append(f"| {c['title']} | {c['language']} | {len(c['labels'])} | {_pct(c['chance_ua'])} | "
                     f"{_pct(b)} | {_pct(m)} |")
    both = [n for n in corpora if n in base and n in loco]
    all_m = [loco[n]["ua"] for n in corpora if n in loco]
    if all_m:
        which = f"all {len(all_m)}" if len(all_m) == len(corpora) else f"the {len(all_m)} run so far"
        lines.append(f"| **mean, {which}** | | | {_pct(statistics.fmean(corpora[n]['chance_ua'] for n in corpora if n in loco))} | "
                     f"— | **{_pct(statistics.fmean(all_m))}** |")
    if both:
        lines.append(f"| mean without RAVDESS ({len(both)}) | | | "
                     f"{_pct(statistics.fmean(corpora[n]['chance_ua'] for n in both))} | "
                     f"{_pct(statistics.fmean(base[n]['ua'] for n in both))} | "
                     f"{_pct(statistics.fmean(loco[n]['ua'] for n in both))} |")
    lines += _recall_table(corpora, base, loco)
    emo = results["multicorpus"].get("emobox") or {}
    if emo.get("folds"):
        ref = {f["fold"]: f for f in (reference or {}).get("folds", [])}
        n = len(emo["folds"])
        lines += ["", f"RAVDESS EmoBox folds with the other corpora added to training ({n} of 6 folds run; "
                      "the RAVDESS-only column is that recipe, the previous default, on the same test actors):", "",
                  "| fold | test actors | multi-corpus WA % | multi-corpus UA % | RAVDESS-only UA % |", "|---|---|--:|--:|--:|"]
        for f in emo["folds"]:
            r = ref.get(f["fold"], {})
            lines.append(f"| {f['fold']} | {' '.join(f['test_speakers'])} | {_pct(f['wa'])} | {_pct(f['ua'])} | {_pct(r.get('ua'))} |")
        same = [ref[f["fold"]]["ua"] for f in emo["folds"] if f["fold"] in ref]
        sd = f" ± {_pct(emo['ua']['sd'])}" if n > 1 else ""
        lines.append(f"| **mean** | | {_pct(emo['wa']['mean'])} | **{_pct(emo['ua']['mean'])}{sd}** | "
                     f"{_pct(statistics.fmean(same)) if len(same) == n else '—'} |")
    if len(all_m) < len(corpora):
        lines += ["", f"Leave one corpus out: {len(all_m)} of {len(corpora)} held-out corpora trained so far; "
                      "the same command resumes the rest."]
    lines += report.made_by(results)
    return "\n".join(lines) + "\n"


def _recall_table(corpora: dict, base: dict, loco: dict) -> list[str]:
    """Recall per emotion on each held-out corpus, both recipes side by side: a mean UA can hide an
    emotion never recognised."""
    done = [n for n in corpora if n in loco]
    if not done:
        return []
    emotions = [e for e in EMOTIONS if any(e in loco[n]["per_class_recall"] for n in done)]
    lines = ["", "Recall per emotion on the held-out corpus, multi-corpus / RAVDESS-only recipe (%):", "",
             "| held-out corpus | " + " | ".join(emotions) + " |", "|---|" + "--:|" * len(emotions)]
    for n in done:
        m, b = loco[n]["per_class_recall"], base.get(n, {}).get("per_class_recall", {})
        cells = [(f"{_pct(m[e])} / {_pct(b[e])}" if e in b else _pct(m[e])) if e in m else "" for e in emotions]
        lines.append(f"| {corpora[n]['title']} | " + " | ".join(cells) + " |")
    return lines
