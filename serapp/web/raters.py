"""A listening test served to many raters: their sessions, trials by opaque ids, their answers.

No HTTP here (serapp.web.app turns requests into these calls). Each rater is the desktop test's
own ListeningSession (the seeded stratified selection, practice clips, resume) over the
desktop's own AnswerLog (the durable CSV), one answer file per rater in the answers folder.

A trial is named by an HMAC of the rater and the clip under a key the browser never sees: the
id says nothing of the file or its label, is the same after a restart (so a retried answer is
recognised as already saved), and is one rater's only.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import secrets
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from serapp.corpora import Corpus, Record
from serapp.errors import SerappError, printable
from serapp.listening.answers import AnswerLog, file_name_part
from serapp.listening.session import ListeningSession, ListeningSettings
from serapp.web.limits import TokenBucket

MAX_NAME = 60
MAX_RATERS = 1000  # rater sessions one server holds (each holds its plan and a file's rows)
MAX_RESPONSE_MS = 24 * 3600 * 1000
MAX_REPLAYS = 1000
SKIP_REASONS = ("cannot hear it well", "no emotion here fits", "the audio is broken", "another reason")
TRIAL_CHARS = 24
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud or copied by hand


class Refused(SerappError):
    """A request the test refuses: an HTTP status and one line that echoes nothing it was sent."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_name(text) -> str:
    """A rater's name as typed, made one form (NFC, runs of spaces as one); refused when empty,
    too long, or holding a control character (a terminal escape, a newline)."""
    if not isinstance(text, str):
        raise Refused(400, "the name must be text")
    if not text.isprintable():  # before any folding: a newline or an escape is refused, not hidden
        raise Refused(400, "the name holds a control character: letters, digits, spaces and punctuation only")
    name = re.sub(" {2,}", " ", unicodedata.normalize("NFC", text)).strip()
    if not name:
        raise Refused(400, "give a name (or ask for a code)")
    if len(name) > MAX_NAME:
        raise Refused(400, f"a name of at most {MAX_NAME} characters, please")
    return name


@dataclass(frozen=True)
class Trial:
    id: str
    record: Record
    practice: bool


@dataclass
class Rater:
    """One rater: the desktop's session over their own answer file, and the practice still to do."""

    name: str
    handle: str  # what the page sends with each request; random, never derived from the name
    session: ListeningSession
    practice: list[Trial]
    practice_total: int
    trials: dict[str, Trial]  # every id of this rater's plan and practice
    id_of: dict[str, str]  # a test clip's id by its clip (path in the corpus)
    done: set[str]  # ids already answered (saved, or practice given feedback)
    bucket: TokenBucket
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> Trial | None:
        if self.practice:
            return self.practice[0]
        record = self.session.current
        return None if record is None else self.trials[self.id_of[self.session.clip(record)]]

    def mine(self) -> list:
        """This test's rows of this rater, in the order answered."""
        s = self.session
        return [a for a in s.log.rows if a.rater == s.settings.rater and a.corpus == s.corpus_id
                and a.label_set == s.settings.label_set]


@dataclass(frozen=True)
class WebPlan:
    """What every rater is given: the desktop test's set-up, less the rater."""

    labels: tuple[str, ...]
    n_clips: int = 50
    seed: int = 1
    balance_speakers: bool = True
    practice_clips: int = 3

    def for_rater(self, name: str) -> ListeningSettings:
        return ListeningSettings(rater=name, labels=self.labels, n_clips=self.n_clips, seed=self.seed,
                                 balance_speakers=self.balance_speakers, practice_clips=self.practice_clips)


class WebTest:
    """The raters of one test, by handle and by name; `log` takes one printable line per event."""

    def __init__(self, corpus: Corpus, plan: WebPlan, folder: str | Path, key: bytes, log=lambda line: None,
                 rate: tuple[float, float] = (60, 20)):
        self.corpus, self.plan, self.folder, self.key, self.log = corpus, plan, Path(folder), key, log
        self.rate = rate
        self._root = Path(os.path.realpath(corpus.root))
        self._lock = threading.Lock()
        self._by_name: dict[str, Rater] = {}
        self._by_handle: dict[str, Rater] = {}
        self._audio = ByteCache(64 << 20)  # every rater hears the same clips: each decoded once, not per rater
        # the set-up is checked once, here, by the desktop's own rules (a rater name stands in)
        ListeningSession(corpus, plan.for_rater("check"), _NoLog())

    # --- raters ------------------------------------------------------------------------------

    def rater_file(self, name: str) -> Path:
        """One answer file per rater, whatever the case typed: the name made safe, and a hash of the
        name itself so that two names alike once made safe ("ann?" and "ann!") never share a file."""
        key = name.casefold()
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        return self.folder / f"{file_name_part(key, 'rater')}-{digest}.csv"

    def join(self, name: str | None) -> Rater:
        """The rater of that name (resumed from their file), or one with a new code when `name` is None."""
        with self._lock:
            if name is None:
                name = self._new_code()
            name = check_name(name)
            rater = self._by_name.get(name.casefold())
            if rater is not None:
                return rater
            if len(self._by_name) >= MAX_RATERS:
                raise Refused(503, "this test has all the raters one server takes")
            rater = self._open(name)
            self._by_name[name.casefold()] = self._by_handle[rater.handle] = rater
        s = rater.session
        self.log(f"rater {printable(rater.name)!r} " + (f"resumed: {s.answered} of {s.total} answered"
                                                       if s.resumed else f"joined: {s.total} clips"))
        return rater

    def _new_code(self) -> str:
        while True:
            code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))
            if code.casefold() not in self._by_name and not self.rater_file(code).exists():
                return code

    def _open(self, name: str) -> Rater:
        path = self.rater_file(name)
        try:
            log = AnswerLog(path)
        except OSError as exc:
            self.log(f"{printable(path)}: cannot open: {exc.strerror or exc}")
            raise Refused(503, "the server cannot open this rater's answer file") from None
        for problem in ([log.repaired] if log.repaired else []) + log.problems:
            self.log(f"{printable(path)}: {printable(problem)}")
        name = next((a.rater for a in log.rows), name)  # "Ann" resumes the file "ann" began
        session = ListeningSession(self.corpus, self.plan.for_rater(name), log)
        key = name.casefold()
        trials = {}
        for practice, records in ((False, session.plan), (True, session.practice)):
            for r in records:
                tid = self._trial_id(key, practice, session.clip(r))
                trials[tid] = Trial(tid, r, practice)
        practice = [t for t in trials.values() if t.practice] if not session.resumed else []
        remaining = {session.clip(r) for r in session.remaining}
        done = {i for i, t in trials.items() if not t.practice and session.clip(t.record) not in remaining}
        id_of = {session.clip(t.record): i for i, t in trials.items() if not t.practice}
        return Rater(name=name, handle=secrets.token_urlsafe(18), session=session, practice=practice,
                     practice_total=len(practice), trials=trials, id_of=id_of, done=done,
                     bucket=TokenBucket(*self.rate))

    def _trial_id(self, rater_key: str, practice: bool, clip: str) -> str:
        message = "\x1f".join(("practice" if practice else "test", rater_key, clip)).encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:TRIAL_CHARS]

    def rater(self, handle) -> Rater:
        rater = self._by_handle.get(handle) if isinstance(handle, str) else None
        if rater is None:  # a handle from before a restart: the page joins again by name
            raise Refused(401, "unknown rater: join again")
        return rater

    def counts(self) -> tuple[int, int]:
        """(raters, answers saved) so far in this run (resumed raters with their earlier answers)."""
        with self._lock:
            raters = list(self._by_name.values())
        return len(raters), sum(r.session.answered for r in raters)

    # --- trials ------------------------------------------------------------------------------

    def state(self, rater: Rater) -> dict:
        with rater.lock:
            return self._state(rater)

    def _state(self, rater: Rater) -> dict:
        s = rater.session
        trial = rater.current()
        if trial is None:
            rows = rater.mine()
            return {"done": True, "name": rater.name, "total": s.total,
                    "answers": [{"chosen": a.chosen_label, "skipped": bool(a.skipped)} for a in rows]}
        if trial.practice:
            number, of = rater.practice_total - len(rater.practice) + 1, rater.practice_total
        else:
            number, of = s.answered + 1, s.total
        return {"done": False, "name": rater.name, "trial": trial.id, "practice": trial.practice, "number": number,
                "of": of, "answered": s.answered, "total": s.total, "labels": list(s.settings.labels)}

    def _current(self, rater: Rater, trial_id: str) -> Trial:
        trial = rater.current()
        if trial is not None and trial.id == trial_id:
            return trial
        if trial_id in rater.trials:
            raise Refused(409, "that is not the clip being rated now: the page reloads the test")
        raise Refused(403, "that clip is not one of this rater's")

    def answer(self, rater: Rater, given: dict) -> dict:
        """Save an answer (fsync'd before this returns) or give practice feedback. A trial already
        answered is acknowledged again and written once only."""
        trial_id, label, reason, ms, replays = parse_answer(given, rater.session.settings.labels)
        with rater.lock:
            if trial_id in rater.done:
                return {"ok": True, "duplicate": True, "state": self._state(rater)}
            trial = self._current(rater, trial_id)
            feedback = None
            if trial.practice:
                rater.practice.pop(0)
                if label is not None:
                    feedback = {"correct": label == trial.record.label, "truth": trial.record.label}
            else:
                try:
                    if label is not None:
                        rater.session.answer(label, ms, replays)
                    else:
                        rater.session.skip(f"skipped by rater: {reason}", ms, replays)
                except OSError as exc:  # the file is as it was: the page retries
                    self.log(f"{printable(rater.session.log.path)}: cannot save an answer: {exc.strerror or exc}")
                    raise Refused(503, "the server could not save the answer: try again") from None
            rater.done.add(trial_id)
            out = {"ok": True, "duplicate": False, "state": self._state(rater)}
        if feedback is not None:
            out["feedback"] = feedback
        if out["state"]["done"]:
            self.log(f"rater {printable(rater.name)!r} finished: {rater.session.total} clips")
        return out

    def clip(self, rater: Rater, trial_id: str) -> bytes:
        """The current trial's audio as a plain 16-bit WAV (no name, no tags). A clip that cannot be
        read is recorded as skipped with the reason, as the desktop test does."""
        with rater.lock:
            trial = self._current(rater, trial_id)
        try:
            return self._audio.get(trial.record.path, lambda: wav_bytes(self._served_path(trial.record.path)))
        except SerappError as exc:
            reason = str(exc)
        with rater.lock:
            if rater.current() is trial and trial.id not in rater.done:
                if trial.practice:
                    rater.practice.pop(0)
                else:
                    try:
                        rater.session.skip(reason)
                    except OSError:
                        raise Refused(503, "the server could not save the answer: try again") from None
                rater.done.add(trial.id)
        self.log(f"skipped a clip that cannot be played: {printable(reason)}")
        raise Refused(410, "this clip cannot be played; it is recorded as skipped")

    def _served_path(self, path: Path) -> Path:
        """The clip's file, if no link leads out of the selection: inside the corpus folder no part of
        the path below it may be a link; a manifest's clip outside it may not be one itself."""
        try:
            rel = path.relative_to(self.corpus.root)
        except ValueError:
            if path.is_symlink():
                raise SerappError(f"{path}: a link, not served") from None
            return path
        if os.path.realpath(path) != os.path.join(self._root, *rel.parts):
            raise SerappError(f"{path}: a link inside the corpus folder, not served")
        return path


def parse_answer(given, labels) -> tuple[str, str | None, str | None, int | None, int]:
    """(trial, label or None, skip reason or None, response_ms, replays) from a request's JSON;
    every field checked for type and range, unknown fields refused, nothing of it echoed."""
    if not isinstance(given, dict):
        raise Refused(400, "an answer is a JSON object")
    allowed = {"trial", "label", "skip", "response_ms", "replays"}
    if set(given) - allowed:
        raise Refused(400, "an answer holds trial, label or skip, response_ms and replays only")
    trial = given.get("trial")
    if not isinstance(trial, str) or len(trial) != TRIAL_CHARS or any(c not in "0123456789abcdef" for c in trial):
        raise Refused(400, "trial must be a trial id")
    label, skip = given.get("label"), given.get("skip")
    if (label is None) == (skip is None):
        raise Refused(400, "give either a label or a skip reason")
    if label is not None and (not isinstance(label, str) or label not in labels):
        raise Refused(400, "label is not one of this test's emotions")
    if skip is not None and skip not in SKIP_REASONS:
        raise Refused(400, "skip is not one of the reasons offered")
    ms = given.get("response_ms")
    if ms is not None and not (type(ms) is int and 0 <= ms <= MAX_RESPONSE_MS):
        raise Refused(400, f"response_ms must be whole milliseconds from 0 to {MAX_RESPONSE_MS}, or null")
    replays = given.get("replays", 0)
    if not (type(replays) is int and 0 <= replays <= MAX_REPLAYS):
        raise Refused(400, f"replays must be a count from 0 to {MAX_REPLAYS}")
    return trial, label, skip, ms, replays


def wav_bytes(path: Path) -> bytes:
    from serapp.audio.io import load_audio

    samples, rate = load_audio(path)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


class ByteCache:
    """Values made once by key, kept up to `budget` bytes in all (the least recently used go first)."""

    def __init__(self, budget: int):
        self.budget, self.size = budget, 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, make) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()  # outside the lock: two raters may make it at once, both get the same bytes
        with self._lock:
            if key not in self._items and len(value) <= self.budget:
                self._items[key] = value
                self.size += len(value)
                while self.size > self.budget:
                    self.size -= len(self._items.popitem(last=False)[1])
        return value


class _NoLog:
    """An answer log with no rows, for checking the set-up."""

    rows: list = []
    path = Path("-")
