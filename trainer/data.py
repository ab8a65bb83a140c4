"""Training data over one or several corpora: decoded clips, each corpus' label set, the sampler.

A model trained on several corpora predicts the union of their labels; each clip knows its
corpus, so the loss and the scores look only at the labels that corpus has. The corpus is
never an input to the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from serapp.corpora import CORPUS_TITLES, Corpus, CorpusError, Record, licence_note
from serapp.labels import EMOTIONS
from serapp.readout import FOLD_INTO, Readout
from trainer.cache import load_clips
from trainer.distributed import log


@dataclass
class ClipSet:
    """Decoded clips with integer targets into `labels`, and the corpus of each clip."""

    clips: list[np.ndarray]
    targets: list[int]
    groups: list[str] = field(default_factory=list)  # corpus name per clip ("" when unknown)
    label_sets: dict[str, list[str]] = field(default_factory=dict)  # corpus -> the labels it has
    labels: list[str] = field(default_factory=list)  # what the targets index
    speakers: list[str] = field(default_factory=list)  # "corpus/speaker" per clip ("" when unknown)

    def __post_init__(self):
        if not self.groups:
            self.groups = [""] * len(self.clips)
        if not self.speakers:
            self.speakers = [""] * len(self.clips)

    def __len__(self) -> int:
        return len(self.clips)

    def label_set(self, group: str) -> list[str]:
        return self.label_sets.get(group) or list(self.labels)

    def masks(self) -> torch.Tensor | None:
        """(clips, labels) bool: the labels each clip's corpus has; None when every clip has all."""
        if all(set(self.label_set(g)) >= set(self.labels) for g in set(self.groups)):
            return None
        rows = {g: torch.tensor([lab in self.label_set(g) for lab in self.labels]) for g in set(self.groups)}
        return torch.stack([rows[g] for g in self.groups]) if self.groups else torch.zeros(0, len(self.labels), dtype=torch.bool)

    def by_group(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, g in enumerate(self.groups):
            out.setdefault(g, []).append(i)
        return out


def basic_view(data: ClipSet) -> tuple[ClipSet, np.ndarray]:
    """The clips whose emotion the basic readout shows (calm counted as neutral), targets into
    the four, and their indices in `data` (what a head trained for the four trains on)."""
    shown = Readout.for_bundle(data.labels, None, "basic").labels
    folded = [FOLD_INTO.get(lab, lab) for lab in (data.labels[t] for t in data.targets)]
    keep = np.array([i for i, lab in enumerate(folded) if lab in shown], np.int64)
    sets = {g: [k for k in shown if k in {FOLD_INTO.get(x, x) for x in v}] for g, v in data.label_sets.items()}
    return ClipSet([data.clips[i] for i in keep], [shown.index(folded[i]) for i in keep],
                   [data.groups[i] for i in keep], sets, shown, [data.speakers[i] for i in keep]), keep


def balanced_weights(data: ClipSet, corpus_weights: dict | None = None, power: float = 0.0) -> torch.Tensor:
    """A draw weight per clip: each corpus gets a share proportional to weight x clips**power
    (power 0: equal shares), split equally among the labels it has, then among their clips."""
    corpus_weights = corpus_weights or {}
    groups = data.by_group()
    share = {g: float(corpus_weights.get(g, 1.0)) * len(idx) ** power for g, idx in groups.items()}
    total = sum(share.values())
    if total <= 0:
        raise CorpusError("the corpus weights leave nothing to sample (all zero)")
    weights = torch.zeros(len(data), dtype=torch.float64)
    for g, idx in groups.items():
        per_label: dict[int, list[int]] = {}
        for i in idx:
            per_label.setdefault(data.targets[i], []).append(i)
        for members in per_label.values():
            weights[members] = share[g] / total / len(per_label) / len(members)
    return weights


def epoch_order(data: ClipSet, sampling: str, gen: torch.Generator, epoch_clips: int = 0,
                corpus_weights: dict | None = None, power: float = 0.0) -> torch.Tensor:
    """The clip indices of one epoch: every clip once in a seeded order ("shuffle"), or
    `epoch_clips` draws balanced over corpora and labels ("balanced")."""
    if sampling == "shuffle":
        return torch.randperm(len(data), generator=gen)
    sampler = WeightedRandomSampler(balanced_weights(data, corpus_weights, power), epoch_clips or len(data),
                                    replacement=True, generator=gen)
    return torch.tensor(list(sampler), dtype=torch.long)


class Data:
    """Corpora with their decoded clips, restricted to the run's labels."""

    def __init__(self, corpora: Corpus | list[Corpus], cfg, cache_dir: Path | None):
        self.corpora = [corpora] if isinstance(corpora, Corpus) else list(corpora)
        self.cache_dir = cache_dir  # also where a frozen encoder's outputs are cached
        names = [c.name for c in self.corpora]
        if len(set(names)) != len(names):
            raise CorpusError(f"a corpus is given twice: {', '.join(names)}")
        wanted = list(cfg.labels) if cfg.labels else None
        self.label_sets = {c.name: [lab for lab in c.labels if wanted is None or lab in wanted] for c in self.corpora}
        for c in self.corpora:
            if not self.label_sets[c.name]:
                raise CorpusError(f"{c.root}: none of the labels {', '.join(wanted)} is in this {c.name} corpus")
        present = {lab for labs in self.label_sets.values() for lab in labs}
        if wanted is not None:
            missing = [lab for lab in wanted if lab not in present]
            if missing:
                raise CorpusError(f"{', '.join(str(c.root) for c in self.corpora)}: no clips labelled {', '.join(missing)}")
        self.labels = wanted if wanted is not None else [e for e in EMOTIONS if e in present]
        self.audio: dict[Path, np.ndarray] = {}
        self.failures: list[str] = []
        for c in self.corpora:
            records = [r for r in c.records if r.label in self.label_sets[c.name]]
            title = CORPUS_TITLES.get(c.name, c.name)
            clips, failures = load_clips(records, cfg.frontend.sample_rate, cfg.trim_top_db, cache_dir, log=log,
                                         desc=f"{title} ({c.root})")
            for f in failures:
                log(f"skipped (cannot decode): {f}")
            self.failures += failures
            self.audio.update({r.path: clip for r, clip in zip(records, clips) if clip is not None})
            if records and all(clip is None for clip in clips):  # nothing to train or score on
                raise CorpusError(f"{c.root}: none of its {len(records)} clips could be decoded "
                                  f"(the first: {failures[0] if failures else 'unknown'})")

    @property
    def corpus(self) -> Corpus:
        """The first corpus (the only one in a single-corpus run)."""
        return self.corpora[0]

    def model_labels(self, records: list[Record]) -> list[str]:
        """The labels a model trained on these records predicts: the union of their corpora's."""
        corpora = {r.corpus for r in records}
        return [lab for lab in self.labels if any(lab in self.label_sets.get(c, ()) for c in corpora)]

    def clipset(self, records: list[Record], labels: list[str] | None = None) -> ClipSet:
        """The decoded clips of `records` with targets into `labels` (default: every label here)."""
        labels = list(self.labels if labels is None else labels)
        kept = [r for r in records if r.label in self.label_sets.get(r.corpus, ()) and r.label in labels
                and r.path in self.audio]
        return ClipSet([self.audio[r.path] for r in kept], [labels.index(r.label) for r in kept],
                       [r.corpus for r in kept], {g: list(v) for g, v in self.label_sets.items()}, labels,
                       [f"{r.corpus}/{r.speaker}" if r.speaker is not None else "" for r in kept])

    def clips_of(self, corpus: Corpus) -> int:
        return sum(1 for r in corpus.records if r.path in self.audio)

    def note(self, names=None) -> str:
        """One line naming the corpora (those in `names`, default all) with their clips and speakers."""
        return " + ".join(f"{d['title']} ({d['clips']} clips, {d['speakers']} speakers, {d['folder']})"
                          for d in self.describe() if names is None or d["name"] in names)

    def describe(self) -> list[dict]:
        """What a bundle records about each corpus: clips and speakers used, labels, licence."""
        return [{"name": c.name, "title": CORPUS_TITLES.get(c.name, c.name), "folder": c.root.name,
                 "clips": self.clips_of(c), "speakers": len({r.speaker for r in c.records if r.path in self.audio}),
                 "labels": self.label_sets[c.name], "licence": licence_note(c.name)} for c in self.corpora]
