"""Emotional speech corpora: one Record type and one loader per corpus' documented naming.

Every label is mapped onto serapp's canonical vocabulary (serapp.labels.EMOTIONS). A label
with no counterpart (EMO-DB's boredom) is excluded and counted in `Corpus.excluded`; a file
whose name does not follow the corpus' scheme is listed in `Corpus.unparsed`. Nothing is
dropped silently.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from serapp.audio import AUDIO_EXTENSIONS
from serapp.corpus_schemes import (  # noqa: F401  (re-exported: the loaders' public names)
    CORPUS_LICENCES,
    CORPUS_TITLES,
    LABEL_ALIASES,
    NAMED_PARSERS,
    NO_COUNTERPART,
    SPEAKER_SEX_TABLES,
    licence_note,
)
from serapp.errors import SerappError
from serapp.files import decode_utf8
from serapp.labels import EMOTIONS


class CorpusError(SerappError, ValueError):
    """A corpus folder or manifest that cannot be used; the message names it."""


@dataclass(frozen=True)
class Record:
    path: Path
    label: str  # canonical emotion
    speaker: str | None
    corpus: str
    extra: tuple = ()  # corpus-specific fields as (key, value) pairs, e.g. (("intensity", "strong"),)

    def get(self, key: str, default=None):
        return dict(self.extra).get(key, default)


@dataclass
class Corpus:
    name: str
    root: Path
    records: list[Record]
    excluded: Counter = field(default_factory=Counter)  # original label -> count, no counterpart
    unparsed: list[Path] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        present = {r.label for r in self.records}
        return [e for e in EMOTIONS if e in present]

    @property
    def speakers(self) -> list[str]:
        return sorted({r.speaker for r in self.records if r.speaker is not None})

    def summary(self) -> str:
        counts = Counter(r.label for r in self.records)
        text = (f"{self.name}: {len(self.records)} clips, {len(self.speakers)} speakers, "
                + ", ".join(f"{k} {counts[k]}" for k in self.labels))
        if self.excluded:
            text += "; excluded (no counterpart): " + ", ".join(f"{k} {v}" for k, v in sorted(self.excluded.items()))
        if self.unparsed:
            text += f"; {len(self.unparsed)} file(s) not named per the {self.name} scheme"
        return text


def _audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


CORPUS_NAMES = tuple(NAMED_PARSERS) + ("manifest",)


def load_corpus(name: str, location: str | Path) -> Corpus:
    """Load a corpus by name from a folder (or, for "manifest", a CSV file `path,label[,speaker]`)."""
    name = name.lower()
    root = Path(location)
    if name == "manifest" or (root.is_file() and root.suffix.lower() == ".csv"):
        return load_manifest(root)
    if name not in NAMED_PARSERS:
        raise CorpusError(f"unknown corpus {name!r} (known: {', '.join(CORPUS_NAMES)})")
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder (corpus {name})")
    files = _audio_files(root)
    if not files:
        raise CorpusError(f"{root}: no audio files found (corpus {name})")
    return _parse_files(name, root, files)


def _parse_files(name: str, root: Path, files: list[Path]) -> Corpus:
    corpus = Corpus(name=name, root=root, records=[])
    parse = NAMED_PARSERS[name]
    sex_of = SPEAKER_SEX_TABLES[name](root) if name in SPEAKER_SEX_TABLES else {}
    for path in files:
        parsed = parse(path)
        if parsed is None:
            corpus.unparsed.append(path)
            continue
        label, speaker, extra = parsed
        if isinstance(label, tuple):  # ("!", original): a label with no canonical counterpart
            corpus.excluded[label[1]] += 1
            continue
        if speaker in sex_of:
            extra = (*extra, ("sex", sex_of[speaker]))
        corpus.records.append(Record(path, label, speaker, name, extra))
    if not corpus.records:
        raise CorpusError(f"{root}: none of the {len(files)} audio files is named per the {name} scheme")
    return corpus


def load_manifest(path: str | Path) -> Corpus:
    """CSV with a header `path,label[,speaker]`; paths relative to the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such manifest")
    corpus = Corpus(name="manifest", root=path.parent, records=[])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror or exc}") from None
    text, bad = decode_utf8(data)
    if bad is not None:
        raise CorpusError(f"{path}: line {bad[0]}: {bad[1]}; save the manifest as UTF-8")
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if header[:2] != ["path", "label"] or len(header) > 3 or (len(header) == 3 and header[2] != "speaker"):
            raise CorpusError(f"{path}: line 1: the header must be path,label[,speaker], not {','.join(header)}")
        for line_no, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) != len(header):
                raise CorpusError(f"{path}: line {line_no}: expected {len(header)} fields, found {len(row)}")
            clip, raw_label = row[0].strip(), row[1].strip().lower()
            speaker = row[2].strip() if len(header) == 3 and row[2].strip() else None
            if raw_label in NO_COUNTERPART:
                corpus.excluded[raw_label] += 1
                continue
            label = LABEL_ALIASES.get(raw_label)
            if label is None:
                raise CorpusError(f"{path}: line {line_no}: unknown emotion {raw_label!r}")
            clip_path = Path(clip) if Path(clip).is_absolute() else path.parent / clip
            corpus.records.append(Record(clip_path, label, speaker, "manifest"))
    if not corpus.records:
        raise CorpusError(f"{path}: the manifest lists no usable clips")
    return corpus


def parse_data_arg(text: str) -> tuple[str, str]:
    """`CORPUS=DIR` as given on the command line."""
    name, sep, where = text.partition("=")
    if not sep or not name or not where:
        raise CorpusError(f"--data takes CORPUS=DIR (e.g. ravdess=path/to/ravdess), not {text!r}")
    return name.strip().lower(), where.strip()


def detect_corpus(location: str | Path) -> Corpus:
    """A CSV manifest, or the folder read by whichever naming scheme parses most of its files."""
    root = Path(location)
    if root.is_file() and root.suffix.lower() == ".csv":
        return load_manifest(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder")
    files = _audio_files(root)
    if not files:
        raise CorpusError(f"{root}: no audio files found")
    best, best_count = None, 0
    for name, parse in NAMED_PARSERS.items():  # "folders" last: it accepts any folder named like a label
        count = sum(1 for p in files if parse(p) is not None)
        if count > best_count:
            best, best_count = name, count
    if best is None:
        raise CorpusError(f"{root}: the file names follow no known corpus scheme "
                          f"({', '.join(NAMED_PARSERS)}); a CSV manifest path,label[,speaker] works for any layout")
    return _parse_files(best, root, files)  # the folder is walked once
