"""A listening test without Qt: which clips, in which order, and where the rater is.

Selection is a pure function of the corpus, the included labels, the number of clips and the
seed, so several raters given the same seed hear the same clips in the same order. Order keys
are SHA-256 hashes of (seed, clip path): the same on every machine and Python version, and
independent of the order in which the file system lists the corpus.

Resuming: rows already in the answer file for the same rater, corpus and label set are taken
as answered; the session continues with the rest of the same selection.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from serapp import __version__
from serapp.corpora import Corpus, Record
from serapp.errors import SerappError
from serapp.listening.answers import Answer, AnswerLog, utc_now


class SetupError(SerappError, ValueError):
    """Test settings that cannot be used; the message says which."""


def _key(*parts) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def clip_id(record: Record, root: Path) -> str:
    """The clip's path relative to the corpus root, with forward slashes (absolute if outside)."""
    try:
        return record.path.relative_to(root).as_posix()
    except ValueError:
        return record.path.as_posix()


def _quotas(available: dict[str, int], n: int, seed: int) -> dict[str, int]:
    """n spread as evenly as the labels allow (one at a time, round robin in a seeded label
    order); a label short of clips drops out and the others share the rest."""
    quota = dict.fromkeys(available, 0)
    order = sorted(available, key=lambda label: _key(seed, "label", label))
    left = min(n, sum(available.values()))
    while left:
        for lab in order:
            if left and quota[lab] < available[lab]:
                quota[lab] += 1
                left -= 1
    return quota


def select_clips(corpus: Corpus, labels: list[str], n: int, seed: int, balance_speakers: bool = True,
                 exclude: set[str] = frozenset()) -> list[Record]:
    """n clips stratified over `labels` (equal shares), optionally round-robin over speakers
    within each label, in a seeded presentation order. `exclude` holds clip ids to leave out."""
    by_label: dict[str, list[Record]] = defaultdict(list)
    for r in corpus.records:
        cid = clip_id(r, corpus.root)
        if r.label in labels and cid not in exclude:
            by_label[r.label].append(r)
    for lab, recs in by_label.items():
        recs.sort(key=lambda r: _key(seed, "clip", clip_id(r, corpus.root)))
    quota = _quotas({lab: len(recs) for lab, recs in by_label.items()}, n, seed)
    chosen: list[Record] = []
    for lab, recs in by_label.items():
        if balance_speakers:
            groups: dict[str, list[Record]] = defaultdict(list)
            for r in recs:
                groups[r.speaker or ""].append(r)
            speakers = sorted(groups, key=lambda s: _key(seed, "speaker", lab, s))
            picked, depth = [], 0
            while len(picked) < quota[lab]:
                for s in speakers:
                    if depth < len(groups[s]) and len(picked) < quota[lab]:
                        picked.append(groups[s][depth])
                depth += 1
        else:
            picked = recs[: quota[lab]]
        chosen += picked
    chosen.sort(key=lambda r: _key(seed, "order", clip_id(r, corpus.root)))
    return chosen


@dataclass(frozen=True)
class ListeningSettings:
    rater: str
    labels: tuple[str, ...]
    n_clips: int = 50
    seed: int = 1
    balance_speakers: bool = True
    practice_clips: int = 0  # answered with feedback, never written to the answer file

    @property
    def label_set(self) -> str:
        return "|".join(self.labels)


class ListeningSession:
    """The test's state: the plan, what is answered, and writing each answer durably."""

    def __init__(self, corpus: Corpus, settings: ListeningSettings, log: AnswerLog, app_version: str = __version__):
        if not settings.rater.strip():
            raise SetupError("a rater name is needed")
        missing = [lab for lab in settings.labels if lab not in corpus.labels]
        if missing:
            raise SetupError(f"{corpus.root}: the corpus has no {', '.join(missing)} clips")
        if len(settings.labels) < 2:
            raise SetupError("choose at least two emotions")
        if settings.n_clips < 1:
            raise SetupError("the test needs at least one clip")
        self.corpus, self.settings, self.log, self.app_version = corpus, settings, log, app_version
        self.corpus_id = corpus.root.resolve().as_posix()
        self.plan = select_clips(corpus, list(settings.labels), settings.n_clips, settings.seed,
                                 settings.balance_speakers)
        mine = [a for a in log.rows if a.rater == settings.rater and a.corpus == self.corpus_id
                and a.label_set == settings.label_set]
        answered = {a.clip for a in mine}
        self.session_id = mine[-1].session_id if mine else uuid.uuid4().hex[:12]
        self.resumed = len(mine)
        self.remaining = [r for r in self.plan if self.clip(r) not in answered]
        # Practice clips come from outside the test set, so feedback never gives an answer away.
        self.practice = select_clips(corpus, list(settings.labels), settings.practice_clips, settings.seed + 7919,
                                     settings.balance_speakers, exclude={self.clip(r) for r in self.plan})

    def clip(self, record: Record) -> str:
        return clip_id(record, self.corpus.root)

    @property
    def total(self) -> int:
        return len(self.plan)

    @property
    def answered(self) -> int:
        return self.total - len(self.remaining)

    @property
    def current(self) -> Record | None:
        return self.remaining[0] if self.remaining else None

    def _write(self, chosen: str, response_ms: int | None, replays: int, skip_reason: str = "") -> Answer:
        record = self.current
        if record is None:
            raise RuntimeError("the test is finished")
        skipped = bool(skip_reason)
        answer = Answer(session_id=self.session_id, rater=self.settings.rater, timestamp_utc=utc_now(),
                        corpus=self.corpus_id, clip=self.clip(record), true_label=record.label,
                        chosen_label="" if skipped else chosen,
                        correct=int(not skipped and chosen == record.label),
                        response_ms=None if response_ms is None else int(round(response_ms)),
                        replays=int(replays), skipped=int(skipped), skip_reason=skip_reason,
                        label_set=self.settings.label_set, app_version=self.app_version)
        self.log.append(answer)  # durable before the next clip is offered
        self.remaining.pop(0)
        return answer

    def answer(self, chosen: str, response_ms: float | None, replays: int = 0) -> Answer:
        if chosen not in self.settings.labels:
            raise ValueError(f"{chosen!r} is not one of this test's emotions")
        return self._write(chosen, response_ms, replays)

    def skip(self, reason: str, response_ms: float | None = None, replays: int = 0) -> Answer:
        return self._write("", response_ms, replays, reason or "skipped")
