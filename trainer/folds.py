"""Evaluation protocols. Speaker-independent by default; a random split is flagged everywhere.

Validation (early stopping, model choice) always comes from the training speakers, never from
the test fold.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from serapp.corpora import Corpus, CorpusError, Record

# EmoBox 6-fold actor split of RAVDESS: test actors per fold.
EMOBOX_RAVDESS = {
    1: ("01", "11", "20", "21"),
    2: ("04", "10", "12", "14"),
    3: ("08", "09", "19", "23"),
    4: ("03", "05", "07", "24"),
    5: ("02", "15", "16", "18"),
    6: ("06", "13", "17", "22"),
}
PROTOCOLS = ("emobox", "speakers", "random")


@dataclass
class Split:
    name: str
    train: list[Record]
    val: list[Record]
    test: list[Record]
    speaker_dependent: bool = False

    @property
    def protocol_note(self) -> str:
        return "speaker-dependent (random split: test speakers also in training)" if self.speaker_dependent else "speaker-independent"

    def speakers(self, part: str) -> set:
        return {r.speaker for r in getattr(self, part)}


def _pick_val_speakers(speakers: list[str], records: list[Record], n_val: int, rng: random.Random) -> list[str]:
    """n_val training speakers for validation, alternating sexes when the corpus records them."""
    by_sex = defaultdict(list)
    sex_of = {r.speaker: r.get("sex") for r in records}
    for s in speakers:
        by_sex[sex_of.get(s)].append(s)
    groups = [sorted(v) for _, v in sorted(by_sex.items(), key=lambda kv: str(kv[0]))]
    for g in groups:
        rng.shuffle(g)
    chosen = []
    while len(chosen) < n_val and any(groups):
        for g in groups:
            if g and len(chosen) < n_val:
                chosen.append(g.pop())
    return chosen


def _split_by_speakers(name: str, records: list[Record], test_speakers, n_val: int, seed: int) -> Split:
    test_speakers = set(test_speakers)
    rest = [r for r in records if r.speaker not in test_speakers]
    rest_speakers = sorted({r.speaker for r in rest})
    if len(rest_speakers) <= n_val:
        raise CorpusError(f"{name}: {len(rest_speakers)} training speakers cannot spare {n_val} for validation")
    val_speakers = set(_pick_val_speakers(rest_speakers, rest, n_val, random.Random(f"{seed}-{name}")))
    return Split(
        name=name,
        train=[r for r in rest if r.speaker not in val_speakers],
        val=[r for r in rest if r.speaker in val_speakers],
        test=[r for r in records if r.speaker in test_speakers],
    )


def _require_speakers(corpus: Corpus) -> None:
    if any(r.speaker is None for r in corpus.records):
        raise CorpusError(f"{corpus.root}: speaker-independent folds need a speaker for every clip "
                          "(use a manifest with a speaker column, or --protocol random)")


def emobox_folds(corpus: Corpus, n_val: int = 2, seed: int = 0) -> list[Split]:
    """The EmoBox 6-fold actor split (RAVDESS only)."""
    if corpus.name != "ravdess":
        raise CorpusError(f"the EmoBox folds are defined for RAVDESS, not {corpus.name}; use --protocol speakers")
    missing = sorted({a for actors in EMOBOX_RAVDESS.values() for a in actors} - set(corpus.speakers))
    if missing:
        raise CorpusError(f"{corpus.root}: the EmoBox folds need actors {', '.join(missing)}, which are absent")
    return [_split_by_speakers(f"fold{k}", corpus.records, actors, n_val, seed) for k, actors in EMOBOX_RAVDESS.items()]


def leave_speakers_out(corpus: Corpus, k: int = 2, n_val: int = 2, seed: int = 0) -> list[Split]:
    """Folds that each hold out k speakers for test; every speaker is tested exactly once."""
    _require_speakers(corpus)
    speakers = corpus.speakers
    if k < 1 or len(speakers) < k + n_val + 1:
        raise CorpusError(f"{corpus.root}: {len(speakers)} speakers are too few for leave-{k}-out with {n_val} validation speakers")
    order = speakers[:]
    random.Random(seed).shuffle(order)
    groups = [order[i : i + k] for i in range(0, len(order), k)]
    return [_split_by_speakers(f"fold{i + 1}", corpus.records, g, n_val, seed) for i, g in enumerate(groups)]


def random_folds(corpus: Corpus, n_folds: int = 5, seed: int = 0, val_fraction: float = 0.1) -> list[Split]:
    """Stratified random folds: speaker-dependent, and marked so in every output."""
    rng = random.Random(seed)
    by_label = defaultdict(list)
    for r in corpus.records:
        by_label[r.label].append(r)
    fold_of = {}
    for label in sorted(by_label):
        items = by_label[label][:]
        rng.shuffle(items)
        for i, r in enumerate(items):
            fold_of[r.path] = i % n_folds
    splits = []
    for f in range(n_folds):
        test = [r for r in corpus.records if fold_of[r.path] == f]
        rest = [r for r in corpus.records if fold_of[r.path] != f]
        rng_f = random.Random(f"{seed}-{f}")
        shuffled = rest[:]
        rng_f.shuffle(shuffled)
        n_val = max(1, int(len(rest) * val_fraction))
        splits.append(Split(f"fold{f + 1}", shuffled[n_val:], shuffled[:n_val], test, speaker_dependent=True))
    return splits


def full_training_split(corpus: Corpus, n_val: int = 2, seed: int = 0) -> Split:
    """All speakers for training (the shipped model), still with held-out validation speakers."""
    _require_speakers(corpus)
    return _split_by_speakers("all", corpus.records, (), n_val, seed)


def make_splits(corpus: Corpus, protocol: str, n_val: int = 2, seed: int = 0, k: int = 2, n_folds: int = 5) -> list[Split]:
    if protocol == "emobox":
        return emobox_folds(corpus, n_val, seed)
    if protocol == "speakers":
        return leave_speakers_out(corpus, k, n_val, seed)
    if protocol == "random":
        return random_folds(corpus, n_folds, seed)
    raise CorpusError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
