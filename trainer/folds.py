"""Evaluation protocols. Speaker-independent by default; a random split is flagged everywhere.

Validation (early stopping, model choice) always comes from training speakers, never from a
test fold or a test corpus. With several corpora, every training corpus that has speakers to
spare gives its own validation speakers (`n_val` each, as long as `keep` stay for training).

Protocols over several corpora:
- `emobox`: the EmoBox RAVDESS folds; every other corpus is added to training.
- `speakers`, `random`: folds of the first corpus; the others are added to training.
- `loco`: leave one corpus out: each fold tests on all of one corpus and trains on the rest.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
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
PROTOCOLS = ("emobox", "speakers", "random", "loco")


@dataclass
class Split:
    name: str
    train: list[Record]
    val: list[Record]
    test: list[Record]
    speaker_dependent: bool = False
    held_out: str | None = None  # loco: the corpus tested

    @property
    def protocol_note(self) -> str:
        if self.speaker_dependent:
            return "speaker-dependent (random split: test speakers also in training)"
        if self.held_out is not None:
            return f"cross-corpus (leave one corpus out: {self.held_out} never seen in training)"
        return "speaker-independent"

    def speakers(self, part: str) -> set:
        return {r.speaker for r in getattr(self, part)}

    def speakers_by_corpus(self, part: str) -> dict[str, list]:
        out: dict[str, set] = defaultdict(set)
        for r in getattr(self, part):
            out[r.corpus].add(r.speaker)
        return {c: sorted(s, key=str) for c, s in sorted(out.items())}


def _pick_val_speakers(speakers: list[str], records: list[Record], n_val: int, rng: random.Random) -> list[str]:
    """n_val training speakers for validation, alternating sexes when the corpus records them
    (n_val = len(speakers): all of them, in the order they would be picked)."""
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


def _train_val(name: str, records: list[Record], n_val: int, seed: int, keep: int,
               min_clips: int = 0) -> tuple[list, list]:
    """One corpus' training records split into (train, val) by speaker; no speaker, no validation.

    `n_val` speakers, fewer if `keep` would not stay for training; then more, one at a time in
    the same order, while their clips number under `min_clips` (a corpus of many speakers with
    a few clips each would otherwise be judged on a handful of clips)."""
    speakers = sorted({r.speaker for r in records if r.speaker is not None})
    most = max(0, len(speakers) - keep)
    n = min(n_val, most)
    if not n:
        return list(records), []
    order = _pick_val_speakers(speakers, records, len(speakers), random.Random(f"{seed}-{name}"))
    clips = Counter(r.speaker for r in records)
    while n < most and sum(clips[s] for s in order[:n]) < min_clips:
        n += 1
    val = set(order[:n])
    return [r for r in records if r.speaker not in val], [r for r in records if r.speaker in val]


def _by_corpus(records: list[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(r.corpus, []).append(r)
    return out


def _training_part(name: str, records: list[Record], n_val: int, seed: int, keep: int,
                   min_clips: int = 0) -> tuple[list, list]:
    train, val = [], []
    groups = _by_corpus(records)
    for part in groups.values():
        t, v = _train_val(name, part, n_val, seed, keep, min_clips)
        train += t
        val += v
    speakers = [len({(r.corpus, r.speaker) for r in rs}) for rs in (train, val)]
    spare = {c: max(0, len({r.speaker for r in part if r.speaker is not None}) - keep) for c, part in groups.items()}
    if n_val > max(spare.values(), default=0) and speakers[0] < speakers[1]:
        # more asked than any corpus has, so most speakers would validate and few train: say so
        raise CorpusError(f"{name}: data.val_speakers={n_val} would leave {speakers[0]} speaker(s) to train on and "
                          f"{speakers[1]} to validate ({', '.join(f'{c}: {n} to spare' for c, n in spare.items())}); "
                          "ask for fewer")
    if not val:
        corpora = ", ".join(_by_corpus(records))
        raise CorpusError(f"{name}: the training speakers of {corpora} cannot spare any for validation "
                          f"({n_val} per corpus, keeping {keep} for training)")
    return train, val


def _split_by_speakers(name: str, records: list[Record], test_speakers, n_val: int, seed: int,
                       keep: int = 1, extra: list[Record] = (), min_clips: int = 0) -> Split:
    test_speakers = set(test_speakers)
    rest = [r for r in records if r.speaker not in test_speakers]
    train, val = _training_part(name, rest + list(extra), n_val, seed, keep, min_clips)
    return Split(name=name, train=train, val=val, test=[r for r in records if r.speaker in test_speakers])


def _require_speakers(corpus: Corpus) -> None:
    if any(r.speaker is None for r in corpus.records):
        raise CorpusError(f"{corpus.root}: speaker-independent folds need a speaker for every clip "
                          "(use a manifest with a speaker column, or --protocol random)")


def emobox_folds(corpus: Corpus, n_val: int = 2, seed: int = 0, keep: int = 1, extra: list[Record] = (),
                 min_clips: int = 0) -> list[Split]:
    """The EmoBox 6-fold actor split (RAVDESS only); `extra` records join every fold's training part."""
    if corpus.name != "ravdess":
        raise CorpusError(f"the EmoBox folds are defined for RAVDESS, not {corpus.name}; use --protocol speakers")
    missing = sorted({a for actors in EMOBOX_RAVDESS.values() for a in actors} - set(corpus.speakers))
    if missing:
        raise CorpusError(f"{corpus.root}: the EmoBox folds need actors {', '.join(missing)}, which are absent")
    return [_split_by_speakers(f"fold{k}", corpus.records, actors, n_val, seed, keep, extra, min_clips)
            for k, actors in EMOBOX_RAVDESS.items()]


def leave_speakers_out(corpus: Corpus, k: int = 2, n_val: int = 2, seed: int = 0, keep: int = 1,
                       extra: list[Record] = (), min_clips: int = 0) -> list[Split]:
    """Folds that each hold out k speakers for test; every speaker is tested exactly once."""
    _require_speakers(corpus)
    speakers = corpus.speakers
    if k < 1 or len(speakers) < k + n_val + 1:
        raise CorpusError(f"{corpus.root}: {len(speakers)} speakers are too few for leave-{k}-out with {n_val} validation speakers")
    order = speakers[:]
    random.Random(seed).shuffle(order)
    groups = [order[i : i + k] for i in range(0, len(order), k)]
    return [_split_by_speakers(f"fold{i + 1}", corpus.records, g, n_val, seed, keep, extra, min_clips)
            for i, g in enumerate(groups)]


def random_folds(corpus: Corpus, n_folds: int = 5, seed: int = 0, val_fraction: float = 0.1,
                 extra: list[Record] = ()) -> list[Split]:
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
        rest = [r for r in corpus.records if fold_of[r.path] != f] + list(extra)
        rng_f = random.Random(f"{seed}-{f}")
        shuffled = rest[:]
        rng_f.shuffle(shuffled)
        n_val = max(1, int(len(rest) * val_fraction))
        splits.append(Split(f"fold{f + 1}", shuffled[n_val:], shuffled[:n_val], test, speaker_dependent=True))
    return splits


def leave_one_corpus_out(corpora: list[Corpus], n_val: int = 2, seed: int = 0, keep: int = 1,
                         min_clips: int = 0) -> list[Split]:
    """One fold per corpus, named after it: test on all of it, train (and validate) on the others."""
    if len(corpora) < 2:
        raise CorpusError("leave-one-corpus-out needs two or more corpora (repeat --data)")
    splits = []
    for held in corpora:
        rest = [r for c in corpora if c is not held for r in c.records]
        train, val = _training_part(held.name, rest, n_val, seed, keep, min_clips)
        splits.append(Split(held.name, train, val, list(held.records), held_out=held.name))
    return splits


def full_training_split(corpora: Corpus | list[Corpus], n_val: int = 2, seed: int = 0, keep: int = 1,
                        min_clips: int = 0) -> Split:
    """All speakers of every corpus for training (the shipped model), still with held-out validation speakers."""
    corpora = [corpora] if isinstance(corpora, Corpus) else list(corpora)
    for c in corpora:
        _require_speakers(c)
    train, val = _training_part("all", [r for c in corpora for r in c.records], n_val, seed, keep, min_clips)
    return Split("all", train, val, [])


def make_splits(corpora: Corpus | list[Corpus], protocol: str, n_val: int = 2, seed: int = 0, k: int = 2,
                n_folds: int = 5, keep: int = 1, min_clips: int = 0, val_fraction: float = 0.1) -> list[Split]:
    corpora = [corpora] if isinstance(corpora, Corpus) else list(corpora)
    if protocol == "loco":
        return leave_one_corpus_out(corpora, n_val, seed, keep, min_clips)
    if protocol not in PROTOCOLS:
        raise CorpusError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    primary = next((c for c in corpora if c.name == "ravdess"), None) if protocol == "emobox" else corpora[0]
    if primary is None:
        raise CorpusError(f"the EmoBox folds are defined for RAVDESS, which is not among {', '.join(c.name for c in corpora)}")
    extra = [r for c in corpora if c is not primary for r in c.records]
    for c in corpora:
        if c is not primary and protocol != "random":
            _require_speakers(c)
    if protocol == "emobox":
        return emobox_folds(primary, n_val, seed, keep, extra, min_clips)
    if protocol == "speakers":
        return leave_speakers_out(primary, k, n_val, seed, keep, extra, min_clips)
    return random_folds(primary, n_folds, seed, val_fraction, extra=extra)
