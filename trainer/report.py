"""Run outputs: JSON, confusion-matrix and curve PNGs, and the Markdown cross-validation table; a
table's figures, what it shows of each corpus, and its place between two markers in a document."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from serapp.corpora import CORPUS_TITLES, Corpus, CorpusError
from serapp.files import write_atomically, write_text

LANGUAGES = {"ravdess": "English", "tess": "English", "nemo": "Polish", "urdu": "Urdu", "turev-db": "Turkish",
             "crema-d": "English", "emodb": "German", "savee": "English", "emovo": "Italian", "ased": "Amharic"}


def write_json(path: Path, data) -> None:
    """Whole or not at all: a run stopped while writing keeps the previous file."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def made_by(results: dict) -> list[str]:
    """The line under a README table that says which command made it, and how to redraw it."""
    if not results.get("command"):
        return []
    return ["", f"Made by `{results['command']}`; `--render-only` redraws it from the figures it saved."]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _save_png(plt, fig, path: Path) -> None:
    """Write the figure whole or not at all, and free it either way (pyplot keeps every figure)."""
    fig.tight_layout()
    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def plot_confusion(path: Path, confusion: list[list[int]], labels: list[str], title: str) -> None:
    plt = pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n), dpi=110)
    rows = [sum(r) or 1 for r in confusion]
    share = [[c / rows[i] for c in r] for i, r in enumerate(confusion)]
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(confusion[i][j]), ha="center", va="center",
                    color="white" if share[i][j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    _save_png(plt, fig, path)


def plot_curves(path: Path, history: list[dict], title: str) -> None:
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    a.plot(epochs, [h["train_loss"] for h in history], label="train")
    a.plot(epochs, [h["val_loss"] for h in history], label="validation")
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    a.legend()
    b.plot(epochs, [h["train_acc"] for h in history], label="train accuracy")
    b.plot(epochs, [h["val_ua"] for h in history], label="validation UA")
    b.plot(epochs, [h["val_wa"] for h in history], label="validation WA")
    b.set_xlabel("epoch")
    b.set_ylim(0, 1)
    b.legend()
    fig.suptitle(title, fontsize=10)
    _save_png(plt, fig, path)


def mean_sd(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize_cv(folds: list[dict], protocol_note: str, config_name: str, data: str) -> dict:
    """folds: [{"fold", "test": metrics, "robustness": {condition: ua}}] -> summary dict."""
    summary = {"protocol": protocol_note, "config": config_name, "data": data, "folds": folds}
    for key in ("wa", "ua", "macro_f1"):
        m, s = mean_sd([f["test"][key] for f in folds])
        summary[key] = {"mean": m, "sd": s}
    conditions = list(folds[0].get("robustness", {})) if folds else []
    if conditions:
        clean = statistics.fmean(f["robustness"]["clean"] for f in folds)
        rob = {}
        for c in conditions:
            m, s = mean_sd([f["robustness"][c] for f in folds])
            rob[c] = {"ua_mean": m, "ua_sd": s, "drop": clean - m}
        summary["robustness"] = rob
        drops = [v["drop"] for c, v in rob.items() if c != "clean"]
        summary["robustness_mean_drop"] = statistics.fmean(drops) if drops else 0.0
    return summary


def cv_markdown(summary: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lines = [f"Protocol: {summary['protocol']}; data: {summary['data']}; config: {summary['config']}", "",
             "| fold | test speakers | WA % | UA % | macro-F1 % |", "|---|---|--:|--:|--:|"]
    for f in summary["folds"]:
        t = f["test"]
        lines.append(f"| {f['fold']} | {' '.join(f.get('test_speakers', []))} | {pct(t['wa'])} | {pct(t['ua'])} | {pct(t['macro_f1'])} |")
    lines.append(f"| **mean ± sd** | | **{pct(summary['wa']['mean'])} ± {pct(summary['wa']['sd'])}** | "
                 f"**{pct(summary['ua']['mean'])} ± {pct(summary['ua']['sd'])}** | "
                 f"{pct(summary['macro_f1']['mean'])} ± {pct(summary['macro_f1']['sd'])} |")
    if "robustness" in summary:
        lines += ["", "| condition | UA % (mean ± sd) | drop (points) |", "|---|--:|--:|"]
        for c, v in summary["robustness"].items():
            lines.append(f"| {c} | {pct(v['ua_mean'])} ± {pct(v['ua_sd'])} | {pct(v['drop'])} |")
        lines.append(f"| **mean drop (all but clean)** | | **{pct(summary['robustness_mean_drop'])}** |")
    return "\n".join(lines) + "\n"


def corpus_row(c: Corpus) -> dict:
    """What a table shows of a corpus: its title and language, labels, chance UA, clips and speakers."""
    return {"title": CORPUS_TITLES.get(c.name, c.name), "language": LANGUAGES.get(c.name, "?"),
            "labels": c.labels, "chance_ua": 1.0 / len(c.labels), "clips": len(c.records),
            "speakers": len(c.speakers)}


def write_results(path: Path, results: dict) -> None:
    """A table's figures (docs/results/NAME.json), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, results)


def update_readme(readme: Path, markdown: str, start: str, end: str) -> None:
    """Put `markdown` between the document's two markers `start` and `end` (the rest stays as it is)."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise CorpusError(f"{readme}: cannot read it to put the table in ({exc.strerror or exc})") from None
    if start not in text or end not in text:
        raise CorpusError(f"{readme}: no {start} … {end} markers to put the table between")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_text(readme, f"{head}{start}\n{markdown}{end}{tail}")
