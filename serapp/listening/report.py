"""Scores from answer files: per rater, pooled, agreement (Fleiss' kappa), and a model on the same clips.

Skipped rows are counted and otherwise left out. Kappa uses, for each clip that two or more
raters answered, each rater's last answer; the number of raters may differ between clips
(Fleiss' formula with per-item rater counts).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from serapp.corpora import NAMED_PARSERS
from serapp.errors import SerappError, counted, printable
from serapp.labels import EMOTIONS
from serapp.listening.answers import Answer, read_answers
from serapp.metrics import accuracy_ua_by_group, classification_metrics, recall_by_group
from serapp.scoring import RULE, ScoringRule


def ordered_labels(labels) -> list[str]:
    labels = set(labels)
    return [e for e in EMOTIONS if e in labels] + sorted(labels - set(EMOTIONS))


def score(pairs: list[tuple[str, str]], labels: list[str]) -> dict:
    """Accuracy, UA (mean recall over the true labels present), recall per class (None where a
    label never was the truth), confusion (rows: true label, columns: chosen, in `labels` order)."""
    index = {lab: i for i, lab in enumerate(labels)}
    m = classification_metrics([index[t] for t, _ in pairs], [index[c] for _, c in pairs], labels)
    recall = m["per_class_recall"]
    return {"n": m["n"], "accuracy": m["wa"] if m["n"] else None, "ua": m["ua"] if recall else None,
            "per_class_recall": {lab: recall.get(lab) for lab in labels}, "confusion": m["confusion"]}


def fleiss_kappa(items: list[list[str]]) -> float | None:
    """Fleiss' kappa over items each rated by two or more raters (counts may differ per item);
    None when undefined (no items, or every answer in one category)."""
    items = [item for item in items if len(item) >= 2]
    if not items:
        return None
    totals: Counter = Counter()
    agreement = 0.0
    for item in items:
        counts = Counter(item)
        k = len(item)
        totals.update(counts)
        agreement += (sum(c * c for c in counts.values()) - k) / (k * (k - 1))
    p_bar = agreement / len(items)
    n_all = sum(totals.values())
    p_e = sum((c / n_all) ** 2 for c in totals.values())
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1 - p_e)


def load_answer_files(paths, problems: list[str] | None = None) -> list[Answer]:
    """Every answer in the files; with `problems`, a bad line is named there and the rest kept."""
    rows: list[Answer] = []
    for p in paths:
        rows += read_answers(p, problems)
    return rows


def build_report(answers: list[Answer]) -> dict:
    answered = [a for a in answers if not a.skipped]
    labels = ordered_labels({lab for a in answers for lab in a.labels})
    names = list(dict.fromkeys(a.rater for a in answers))  # raters in order of first answer
    rater_id = {name: i for i, name in enumerate(names)}
    index = {lab: i for i, lab in enumerate(labels)}
    skipped = np.bincount([rater_id[a.rater] for a in answers if a.skipped], minlength=len(names))
    # every rater at once, grouped by one pass over the answers: linear in raters, not quadratic
    groups = ([rater_id[a.rater] for a in answered], [index[a.true_label] for a in answered],
              [index[a.chosen_label] for a in answered], len(names), len(labels))
    n, acc, ua = accuracy_ua_by_group(*groups)
    recall = recall_by_group(*groups).tolist()
    raters = {name: {"n": int(n[i]), "accuracy": None if n[i] == 0 else float(acc[i]),
                     "ua": None if n[i] == 0 else float(ua[i]), "skipped": int(skipped[i]),
                     "per_class_recall": {lab: None if r != r else r for lab, r in zip(labels, recall[i])}}
              for i, name in enumerate(names)}
    pooled = score([(a.true_label, a.chosen_label) for a in answered], labels)
    # the classes the test had clips of (answered or skipped); the others were only offered as choices
    tested = {a.true_label for a in answers}
    pooled.update(skipped=len(answers) - len(answered), labels=labels, tested=[k for k in labels if k in tested])
    last: dict[tuple, dict[str, str]] = defaultdict(dict)
    for a in answered:
        last[a.key][a.rater] = a.chosen_label
    shared = [list(by_rater.values()) for by_rater in last.values() if len(by_rater) >= 2]
    kappa = fleiss_kappa(shared)
    if not shared:
        why = "needs two or more raters on the same clips"
    elif kappa is None:  # agreement by chance is certain, so kappa divides by zero
        why = "undefined: every answer on the clips rated twice or more names the same emotion"
    else:
        why = ""
    return {"raters": raters, "pooled": pooled, "kappa": kappa, "kappa_why": why,
            "kappa_detail": {"clips": len(shared), "raters": len({r for v in last.values() if len(v) >= 2 for r in v})}}


def _training_speakers(training: dict) -> dict[str, set[str]]:
    """Corpus -> the speakers a bundle was trained (or validated) on, from its training record:
    per corpus in newer bundles, or one list with the corpus named in the data line in older ones."""
    if training.get("corpora"):
        return {c["name"]: set(map(str, c.get("train_speakers", []))) | set(map(str, c.get("val_speakers", [])))
                for c in training["corpora"] if c.get("name") in NAMED_PARSERS and c.get("name") != "folders"}
    data = str(training.get("data", "")).lower()
    speakers = set(map(str, training.get("train_speakers", []))) | set(map(str, training.get("val_speakers", [])))
    return {name: speakers for name in NAMED_PARSERS if name != "folders" and name in data and speakers}


def heard_in_training(training: dict, clips: list[str]) -> tuple[int, str]:
    """How many clips are by speakers the model was trained on, judged from the bundle's
    training record (corpus names and speakers) and the clips' corpus naming scheme."""
    corpora = {name: speakers for name, speakers in _training_speakers(training).items() if speakers}
    if not corpora:
        return 0, ""
    seen, where = 0, set()
    for clip in clips:
        for name, speakers in corpora.items():
            parsed = NAMED_PARSERS[name](Path(clip))
            if parsed is not None and parsed[1] in speakers:
                seen += 1
                where.add(name)
                break
    return seen, ", ".join(sorted(where) if where else corpora)


def score_model(predictor, answers: list[Answer], root: str | Path | None = None, bundle: str = "") -> dict:
    """The model on exactly the clips people answered, each read as `serapp predict` reads a file
    (serapp.analysis: the mean of its speech windows), choosing only among each clip's label set
    (serapp.scoring: where the set has only one of neutral and calm, the other counts as it).

    `root` replaces the corpus folder recorded in the rows (when the files moved)."""
    from serapp.analysis import analyse_file, make_gate
    from serapp.settings import AnalysisSettings

    settings = AnalysisSettings()
    predictor = predictor.with_emotions("all")  # scored over the test's own label choices, not the app's readout
    gate = make_gate(settings, predictor.sample_rate)
    clips: dict[tuple, Answer] = {}
    for a in answers:
        if not a.skipped:
            clips.setdefault(a.key, a)
    pairs, excluded, errors = [], Counter(), []
    scored_keys = set()
    for key, a in clips.items():
        rule = ScoringRule(predictor.labels, a.labels)
        if a.true_label not in rule.labels:
            excluded[f"the model has no label {a.true_label}"] += 1
            continue
        path = Path(root) / a.clip if root is not None else Path(a.corpus) / a.clip
        try:
            probs = analyse_file(path, predictor, settings, gate=gate).overall.probabilities
        except SerappError as exc:
            excluded["could not be read"] += 1
            errors.append(str(exc))
            continue
        if probs is None:
            excluded["no speech found"] += 1
            continue
        pairs.append((a.true_label, rule.choose_label([probs[lab] for lab in predictor.labels])))
        scored_keys.add(key)
    labels = ordered_labels({lab for a in clips.values() for lab in a.labels})
    result = score(pairs, labels)
    humans = score([(a.true_label, a.chosen_label) for a in answers if not a.skipped and a.key in scored_keys], labels)
    seen, corpora = heard_in_training(dict(predictor.meta.training), [k[1] for k in scored_keys])
    result.update(bundle=bundle, labels=labels, scoring=RULE, excluded=dict(excluded), errors=errors[:10],
                  speakers_seen_in_training=seen, training_corpora=corpora,
                  humans_same_clips={"n": humans["n"], "accuracy": humans["accuracy"], "ua": humans["ua"]})
    return result


def _pct(x) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def format_text(report: dict, files: list[str] | None = None) -> str:
    pooled = report["pooled"]
    labels = pooled["labels"]
    lines = []
    if files:
        lines.append(f"Listening test: {len(files)} file(s), {len(report['raters'])} rater(s), "
                     f"{pooled['n']} answers ({pooled['skipped']} skipped, not scored)")
        lines.append("")
    lines.append(f"{'rater':<20} {'answered':>8} {'skipped':>8} {'accuracy':>9} {'UA':>7}")
    for name, r in report["raters"].items():
        lines.append(f"{printable(name)[:20]:<20} {r['n']:>8} {r['skipped']:>8} {_pct(r['accuracy']):>9} {_pct(r['ua']):>7}")
    lines.append(f"{'pooled':<20} {pooled['n']:>8} {pooled['skipped']:>8} {_pct(pooled['accuracy']):>9} {_pct(pooled['ua']):>7}")
    lines.append("")
    lines.append("Recall per class (pooled): " + "  ".join(f"{printable(k)} {_pct(v).strip()}" for k, v in pooled["per_class_recall"].items()))
    lines.append("Confusion (rows: true, columns: chosen):")
    short = [printable(lab)[:8] for lab in labels]
    lines.append(" " * 10 + "".join(f"{s:>9}" for s in short))
    for lab, row in zip(labels, pooled["confusion"]):
        lines.append(f"{printable(lab)[:10]:<10}" + "".join(f"{v:>9}" for v in row))
    detail = report["kappa_detail"]
    if report["kappa"] is None:
        lines.append(f"Fleiss' kappa: not available ({report['kappa_why']})")
    else:
        lines.append(f"Fleiss' kappa: {report['kappa']:.3f} over {counted(detail['clips'], 'clip')} rated by "
                     f"{detail['raters']} raters")
    model = report.get("model")
    if model is not None:
        lines.append("")
        h = model["humans_same_clips"]
        lines.append(f"Model {model['bundle']} on the same {counted(model['n'], 'clip')}, same label choices: "
                     f"accuracy {_pct(model['accuracy']).strip()}, UA {_pct(model['ua']).strip()}  "
                     f"(people on these clips: accuracy {_pct(h['accuracy']).strip()}, UA {_pct(h['ua']).strip()})")
        if model["speakers_seen_in_training"]:
            lines.append(f"  note: {model['speakers_seen_in_training']} of these clips are by speakers the model was "
                         f"trained on ({model['training_corpora']}), so its score here is optimistic, not speaker-independent")
        for reason, count in model["excluded"].items():
            lines.append(f"  not scored: {counted(count, 'clip')}: {reason}")
        for err in model["errors"]:
            lines.append(f"  {printable(err)}")
    return "\n".join(lines) + "\n"
