"""How each known corpus names its files: one parser per documented naming scheme, label maps,
titles and licences.

A parser takes a path and returns (canonical label, speaker, extra fields), or None when the
name does not follow the scheme. A label with no canonical counterpart comes back as
("!", original name), so the loader can count it. Parsers look at names only, never at the
extension or the sample rate: the official WAV release and a FLAC or Opus copy of a corpus
give the same records.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from serapp.labels import EMOTIONS

# Licence notes carried into bundles; for other corpora the user must check the corpus' own terms.
CORPUS_LICENCES = {
    "ravdess": "CC BY-NC-SA 4.0 (RAVDESS, Livingstone & Russo 2018): non-commercial use, credit RAVDESS",
    "tess": "CC BY-NC-ND 4.0 (TESS, Dupuis & Pichora-Fuller, University of Toronto): non-commercial use, "
            "no derivatives, credit TESS",
    "nemo": "CC BY-NC-SA 4.0 (nEMO, Christop, LREC-COLING 2024): non-commercial use, credit nEMO",
    "urdu": "research purposes only (URDU dataset, Latif et al. 2018, arXiv 1812.10411)",
    "turev-db": "CC BY-NC-ND 4.0 (TurEV-DB, Canpolat et al. 2020; its repository's licence file says GPL-3.0, "
                "the stricter terms are followed): non-commercial use, no derivatives",
    "ased": "research use (ASED v1, Retta et al., ACM TALLIP 2022; no licence file, the authors ask that the paper "
            "be cited): treated as non-commercial research use",
    "emovo": "research use with acknowledgement of the authors (EMOVO, Costantini et al., LREC 2014)",
}

CORPUS_TITLES = {"ravdess": "RAVDESS", "crema-d": "CREMA-D", "tess": "TESS", "emodb": "EMO-DB",
                 "savee": "SAVEE", "emovo": "EMOVO", "nemo": "nEMO", "urdu": "URDU", "turev-db": "TurEV-DB", "ased": "ASED",
                 "folders": "folder-per-label corpus", "manifest": "CSV manifest"}


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
TESS_SPEAKERS = {"OAF": "OAF", "YAF": "YAF", "OA": "OAF"}  # one original file is named OA_bite_neutral
EMODB_EMOTIONS = {"W": "angry", "L": None, "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}
EMODB_ORIGINAL = {"L": "boredom"}
SAVEE_EMOTIONS = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprised"}
EMOVO_EMOTIONS = {"dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fearful", "rab": "angry",
                  "sor": "surprised", "tri": "sad"}
NEMO_EMOTIONS = {"anger": "angry", "fear": "fearful", "happiness": "happy", "neutral": "neutral",
                 "sadness": "sad", "surprised": "surprised"}
URDU_EMOTIONS = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}
TUREV_EMOTIONS = {"kz": "angry", "sk": "calm", "mt": "happy", "hl": "sad"}
ASED_EMOTIONS = {"n": "neutral", "f": "fearful", "h": "happy", "s": "sad", "a": "angry"}

_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_CREMA_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_TESS_RE = re.compile(r"^(OAF|YAF|OA)_([^_]+)_([A-Za-z]+)$", re.IGNORECASE)
_EMODB_RE = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])$")
_SAVEE_RE = re.compile(r"^(?:([A-Z]{2})_)?(sa|su|[adfhn])(\d\d)$")
_EMOVO_RE = re.compile(r"^([a-z]{3})-([fm]\d)-([a-z]\d)$")
_NEMO_RE = re.compile(r"^([A-Z]{2}\d)_([a-z]+)_(\d+)$")
_URDU_RE = re.compile(r"^S([MF])(\d+)_F(\d+)_([AHNS])(\d+)$")
_TUREV_RE = re.compile(r"^(\d+)_([a-z]{2})_(.+)$")
_ASED_RE = re.compile(r"^([nfhsaNFHSA])(\d)-(\d\d)-(\d\d)-(0[12])-(\d\d)$")


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
    return TESS_EMOTIONS[emo.lower()], TESS_SPEAKERS[speaker.upper()], (("word", word), ("sex", "female"))


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
    return EMOVO_EMOTIONS[emo], speaker, (("sentence", sentence), ("sex", "female" if speaker[0] == "f" else "male"))


def _parse_nemo(path: Path):
    """`<SPK>_<emotion>_<n>`, e.g. EB0_anger_12; the speaker's sex comes from data.tsv (see below)."""
    m = _NEMO_RE.match(path.stem)
    if not m or m.group(2) not in NEMO_EMOTIONS:
        return None
    speaker, emo, number = m.groups()
    return NEMO_EMOTIONS[emo], speaker, (("number", number),)


def _parse_urdu(path: Path):
    """`S<G><id>_F<n>_<E><nnn>`, e.g. SM2_F11_A033: speaker SM2 (male), file 11, angry clip 33."""
    m = _URDU_RE.match(path.stem)
    if not m:
        return None
    sex, speaker_id, file_no, emo, number = m.groups()
    return (URDU_EMOTIONS[emo], f"S{sex}{int(speaker_id)}",
            (("sex", "male" if sex == "M" else "female"), ("file", file_no), ("number", number)))


def _parse_turev(path: Path):
    """`<speaker>_<code>_<word>`, e.g. 1157_kz_acik: speaker 1157, angry, the word 'acik'."""
    m = _TUREV_RE.match(path.stem)
    if not m or m.group(2) not in TUREV_EMOTIONS:
        return None
    speaker, code, word = m.groups()
    return TUREV_EMOTIONS[code], speaker, (("word", word),)


def _parse_ased(path: Path):
    """`<e><N>-<ss>-<rr>-<gg>-<kk>`, e.g. a5-03-01-02-50: angry, sentence 3, first take, speaker 50.
    The speaker is `kk`: five files carry another gender code than the rest of their speaker's,
    so the speaker's sex comes from the majority of their files (`ased_speaker_sex`)."""
    m = _ASED_RE.match(path.stem)
    if not m:
        return None
    emo, _, sentence, repetition, sex, speaker = m.groups()
    return (ASED_EMOTIONS[emo.lower()], speaker,
            (("sentence", sentence), ("repetition", repetition), ("sex", "female" if sex == "01" else "male")))


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
    "nemo": _parse_nemo,
    "urdu": _parse_urdu,
    "turev-db": _parse_turev,
    "ased": _parse_ased,
    "folders": _parse_folder_label,  # last: it accepts any folder named like a label
}


def nemo_speaker_sex(root: Path) -> dict[str, str]:
    """Speaker -> sex from nEMO's own `data.tsv` (absent: an empty map; names still suffice)."""
    import csv

    table = root / "data.tsv"
    if not table.is_file():
        return {}
    out = {}
    with open(table, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            speaker, sex = (row.get("speaker_id") or "").strip(), (row.get("gender") or "").strip().lower()
            if speaker and sex in ("male", "female"):
                out[speaker] = sex
    return out


def ased_speaker_sex(root: Path) -> dict[str, str]:
    """Speaker -> the sex most of their file names give (five ASED files disagree with the rest)."""
    from collections import Counter

    votes: dict[str, Counter] = {}
    for path in root.rglob("*"):
        parsed = _parse_ased(path) if path.is_file() else None
        if parsed is not None:
            votes.setdefault(parsed[1], Counter())[dict(parsed[2])["sex"]] += 1
    return {speaker: c.most_common(1)[0][0] for speaker, c in votes.items()}


# Side tables: corpus -> function(root) -> {speaker: sex} (nEMO's data.tsv, ASED's majority vote).
SPEAKER_SEX_TABLES: dict[str, Callable[[Path], dict[str, str]]] = {"nemo": nemo_speaker_sex, "ased": ased_speaker_sex}
