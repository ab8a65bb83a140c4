"""Emotional speech corpora: one Record type and one loader per corpus' documented naming.

Every label is mapped onto serapp's canonical vocabulary (serapp.labels.EMOTIONS). A label
with no counterpart (EMO-DB's boredom) is excluded and counted in `Corpus.excluded`; a file
whose name does not follow the corpus' scheme is listed in `Corpus.unparsed`. Nothing is
dropped silently.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from serapp.audio import AUDIO_EXTENSIONS
from serapp.errors import SerappError
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


# Licence notes carried into bundles; for other corpora the user must check the corpus' own terms.
CORPUS_LICENCES = {
    "ravdess": "CC BY-NC-SA 4.0 (RAVDESS, Livingstone & Russo 2018): non-commercial use, credit RAVDESS",
}


CORPUS_TITLES = {"ravdess": "RAVDESS", "crema-d": "CREMA-D", "tess": "TESS", "emodb": "EMO-DB",
                 "savee": "SAVEE", "emovo": "EMOVO", "folders": "folder-per-label corpus", "manifest": "CSV manifest"}


def licence_note(corpus: str) -> str:
    return CORPUS_LICENCES.get(corpus, f"see the licence of the {corpus} corpus")


# Aliases used by folder-per-label corpora and manifests; corpus codes have their own maps below.
LABEL_ALIASES = {
    **{e: e for e in EMOTIONS},
    "anger": "angry", "ang": "angry", "happiness": "happy", "joy": "happy", "hap": "happy",
    "sadness": "sad", "fear": "fearful", "afraid": "fearful", "disgusted": "disgust",
    "surprise": "surprised", "pleasant_surprise": "surprised", "ps": "surprised", "neu": "neutral",
}
NO_COUNTERPART = {"boredom", "bored", "contempt", "frustrated", "excited", "other"}

RAVDESS_EMOTIONS = dict(zip(["01", "02", "03", "04", "05", "06", "07", "08"], EMOTIONS))
CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
TESS_EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy",
                 "neutral": "neutral", "ps": "surprised", "sad": "sad"}
EMODB_EMOTIONS = {"W": "angry", "L": None, "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}
EMODB_ORIGINAL = {"L": "boredom"}
SAVEE_EMOTIONS = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprised"}
EMOVO_EMOTIONS = {"dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fearful", "rab": "angry",
                  "sor": "surprised", "tri": "sad"}

_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_CREMA_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_TESS_RE = re.compile(r"^([A-Za-z]{3})_([A-Za-z]+)_([A-Za-z]+)$")
_EMODB_RE = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])$")
_SAVEE_RE = re.compile(r"^(?:([A-Z]{2})_)?(sa|su|[adfhn])(\d\d)$")
_EMOVO_RE = re.compile(r"^([a-z]{3})-([fm]\d)-([a-z]\d)$")


def _audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def _parse_ravdess(path: Path):
    m = _RAVDESS_RE.match(path.stem)
    if not m or m.group(1) != "03" or m.group(3) not in RAVDESS_EMOTIONS:
        return None
    _, vocal, emo, intensity, statement, repetition, actor = m.groups()
    extra = (("vocal", "speech" if vocal == "01" else "song"),
             ("intensity", "normal" if intensity == "01" else "strong"),
             ("statement", statement), ("repetition", repetition),
             ("sex", "male" if int(actor) % 2 else "female"))
    return RAVDESS_EMOTIONS[emo], f"{int(actor):02d}", extra


def _parse_crema(path: Path):
    m = _CREMA_RE.match(path.stem)
    if not m or m.group(3) not in CREMA_EMOTIONS:
        return None
    speaker, sentence, emo, level = m.groups()
    return CREMA_EMOTIONS[emo], speaker, (("sentence", sentence), ("intensity", level))


def _parse_tess(path: Path):
    m = _TESS_RE.match(path.stem)
    if not m or m.group(3).lower() not in TESS_EMOTIONS:
        return None
    speaker, word, emo = m.groups()
    return TESS_EMOTIONS[emo.lower()], speaker.upper(), (("word", word),)


def _parse_emodb(path: Path):
    m = _EMODB_RE.match(path.stem)
    if not m:
        return None
    speaker, text, emo, version = m.groups()
    return EMODB_EMOTIONS[emo] or ("!", EMODB_ORIGINAL[emo]), speaker, (("text", text), ("version", version))


def _parse_savee(path: Path):
    m = _SAVEE_RE.match(path.stem)
    if not m:
        return None
    speaker = m.group(1) or path.parent.name  # "DC_a01.wav" or the original "DC/a01.wav"
    if not re.fullmatch(r"[A-Z]{2}", speaker):
        return None
    return SAVEE_EMOTIONS[m.group(2)], speaker, (("sentence", m.group(3)),)


def _parse_emovo(path: Path):
    m = _EMOVO_RE.match(path.stem)
    if not m or m.group(1) not in EMOVO_EMOTIONS:
        return None
    emo, speaker, sentence = m.groups()
    return EMOVO_EMOTIONS[emo], speaker, (("sentence", sentence),)


def _parse_folder_label(path: Path):
    name = path.parent.name.lower()
    if name in NO_COUNTERPART:
        return ("!", name), None, ()
    label = LABEL_ALIASES.get(name)
    return (label, None, ()) if label else None


NAMED_PARSERS: dict[str, Callable] = {
    "ravdess": _parse_ravdess,
    "crema-d": _parse_crema,
    "tess": _parse_tess,
    "emodb": _parse_emodb,
    "savee": _parse_savee,
    "emovo": _parse_emovo,
    "folders": _parse_folder_label,
}
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
    for path in files:
        parsed = parse(path)
        if parsed is None:
            corpus.unparsed.append(path)
            continue
        label, speaker, extra = parsed
        if isinstance(label, tuple):  # ("!", original): a label with no canonical counterpart
            corpus.excluded[label[1]] += 1
            continue
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
    with open(path, newline="", encoding="utf-8") as f:
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
