"""Voice profiles: a voice's adaptation statistics (serapp.adaptation.VoiceState), saved under a
name so that the app and `serapp predict --profile` read that voice adapted from the first word.

A profile is a small JSON file (never a pickle) in the profiles folder: its format version,
its name, when it was made, the model it was made with, the features it is valid for, and the
voice's float64 sums over the pooled features of its speech windows (JSON keeps a float64
exactly). The features key is what two models must share for one profile to serve both: the
front-end, the window and the encoder the statistics were taken over (a compared model with
the same encoder may use it; any other model refuses it, naming both models).

The folder is `SERAPP_DATA_DIR/profiles` when that is set, else the user's data folder
(platformdirs: ~/.local/share/serapp on Linux).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from serapp.adaptation import WINDOW_HOP_S, VoiceState
from serapp.errors import SerappError, UsageError, printable
from serapp.files import special_kind, write_atomically

FORMAT = "serapp-voice-profile"
VERSION = 2  # 2: a voice whose windows count by weight (a neutral-weighted model) says their total weight
SUFFIX = ".json"
TAKE_SUFFIX = ".wav"
_NAME = re.compile(r"^[\w][\w .()-]{0,63}$")  # a file name on every platform, shown as typed
# What the statistics depend on: the encoder and how windows reach it (not the head).
_FEATURE_HPARAMS = ("backbone", "encoder_sha256", "blocks", "pooling", "width", "heads", "finetune")
# ...and how its windows count, where they do not count alike (keys of older models unchanged).
_WEIGHTING_HPARAM = "adapt_weighting"


class ProfileError(SerappError):
    """A voice profile could not be made, read, used or changed; the message names it."""


class ProfileUsageError(ProfileError, UsageError):
    """A profile asked for that is not there, or asked of a model it does not fit."""


# The one speech rule for a voice (the app's take, `profile create`, `profile list`, predict):
# speech is counted as the model-length speech windows at WINDOW_HOP_S, as a profile stores it.
MIN_SPEECH_S = 8.0  # a voice heard for less than this makes no profile


def speech_heard(seconds: float) -> str:
    """How much speech a voice was heard for, said the same way everywhere ("1.5 s of speech")."""
    return f"{seconds:.1f}".removesuffix(".0") + " s of speech"


def too_little_speech(seconds: float, advice: str = "give more of the voice") -> str | None:
    """Why a voice heard for `seconds` makes no profile (ending with `advice`), or None."""
    if seconds + 1e-9 >= MIN_SPEECH_S:
        return None
    return f"only {speech_heard(seconds)} was heard; a profile needs at least {MIN_SPEECH_S:g} s: {advice}"


def profiles_dir() -> Path:
    base = os.environ.get("SERAPP_DATA_DIR")
    if not base:
        import platformdirs

        base = platformdirs.user_data_dir("serapp", appauthor=False)
    return Path(base) / "profiles"


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise ProfileUsageError(f"{name!r} cannot name a voice profile: use up to 64 letters, digits, spaces "
                                "and . ( ) - _, starting with a letter or digit")
    return name


def features_key(meta) -> str:
    """What a model's pooled features depend on, as a short digest (bundle metadata `meta`)."""
    record = {"frontend": dataclasses.asdict(meta.frontend), "window_s": meta.window_s,
              **{k: meta.hparams.get(k) for k in _FEATURE_HPARAMS}}
    if meta.hparams.get(_WEIGHTING_HPARAM):
        record[_WEIGHTING_HPARAM] = meta.hparams[_WEIGHTING_HPARAM]
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def model_name(predictor) -> str:
    return predictor.path.name if predictor.path else predictor.meta.architecture


@dataclass
class VoiceProfile:
    name: str
    created_utc: str
    model: str  # the model it was made with (a file name), for messages
    features: str  # features_key of that model
    windows: int
    sum: np.ndarray
    sumsq: np.ndarray
    path: Path | None = None
    weight: float | None = None  # the windows' total weight where they count by weight (None: all 1)

    @property
    def seconds(self) -> float:
        return self.windows * WINDOW_HOP_S

    def fits(self, predictor) -> bool:
        return predictor.adapts and features_key(predictor.meta) == self.features

    def voice(self, predictor) -> VoiceState:
        """The adaptation state this profile gives `predictor`; refused for a model with other features."""
        if not predictor.adapts:
            raise ProfileUsageError(f"voice profile {self.name!r}: the model {model_name(predictor)} "
                                    "does not adapt to a voice")
        if not self.fits(predictor):
            raise ProfileUsageError(f"voice profile {self.name!r} was made for the model {self.model}; the model "
                                    f"{model_name(predictor)} reads other features: make a new profile with it")
        state = predictor.new_voice()
        try:
            state.load_sums(self.windows, self.sum, self.sumsq, self.weight)
        except ValueError as exc:
            raise ProfileError(f"voice profile {self.name!r}: {exc}") from None
        return state

    def to_json(self) -> str:
        weighted = {} if self.weight is None else {"weight": self.weight}
        return json.dumps({"format": FORMAT, "version": VERSION if weighted else 1, "name": self.name,
                           "created_utc": self.created_utc, "model": self.model, "features": self.features,
                           "windows": self.windows, **weighted, "shape": list(self.sum.shape),
                           "sum": self.sum.ravel().tolist(), "sumsq": self.sumsq.ravel().tolist()})


def from_voice(name: str, voice: VoiceState, predictor) -> VoiceProfile:
    if not voice.adapted:
        raise ProfileError(f"voice profile {name!r}: no speech heard, nothing to save")
    d = voice.to_dict()
    return VoiceProfile(check_name(name), datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        model_name(predictor), features_key(predictor.meta), d["windows"],
                        np.asarray(d["sum"], np.float64), np.asarray(d["sumsq"], np.float64),
                        weight=None if d["weight"] == d["windows"] else d["weight"])


# Bounds on what a profile file may say: 10**9 windows is over 15 years of speech at the
# 0.5 s hop, and the file is a few hundred kB for the largest encoder's features.
MAX_WINDOWS = 10**9
MAX_VALUES = 1 << 20
MAX_FILE_BYTES = 64 << 20


def read_profile(path: Path) -> VoiceProfile:
    """A profile file, checked: a FIFO or device is refused unopened, and counts, shape and
    sums must be in range (a mean and a variance that a model can use), else one ProfileError."""
    try:
        kind = special_kind(path)
        if kind is not None or Path(path).is_dir():
            raise ProfileError(f"{path}: {kind or 'a folder'}, not a regular file (not opened)")
        if os.stat(path).st_size > MAX_FILE_BYTES:
            raise ProfileError(f"{path}: {os.stat(path).st_size} bytes, too large for a voice profile")
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such voice profile") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        raise ProfileError(f"{path}: not a voice profile (not JSON, or nested too deep)") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ProfileError(f"{path}: not a serapp voice profile")
    if not isinstance(raw.get("version"), int) or raw["version"] > VERSION:
        raise ProfileError(f"{path}: voice profile version {printable(raw.get('version'))[:20]} is newer than this "
                           f"serapp reads ({VERSION}); upgrade serapp")
    try:
        windows, weight, total, total_sq = _statistics(raw)
        return VoiceProfile(str(raw["name"]), str(raw["created_utc"]), str(raw["model"]), str(raw["features"]),
                            windows, total, total_sq, Path(path), weight)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ProfileError(f"{path}: damaged voice profile ({printable(exc)[:200]})") from None


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _statistics(raw: dict) -> tuple[int, float | None, np.ndarray, np.ndarray]:
    """(windows, their total weight or None, sums, sums of squares) from a profile's JSON, each
    in range."""
    windows, shape = raw["windows"], raw["shape"]
    if not (_is_count(windows) and 0 < windows <= MAX_WINDOWS):
        raise ValueError(f"windows must be a count from 1 to {MAX_WINDOWS}, not {printable(windows)[:20]}")
    weight = raw.get("weight") if raw["version"] >= 2 else None
    if weight is not None and not (isinstance(weight, (int, float)) and not isinstance(weight, bool)
                                   and 0 < weight <= windows):
        raise ValueError(f"weight must be a number above 0 and at most windows ({windows}), "
                         f"not {printable(weight)[:20]}")
    if not (isinstance(shape, list) and 0 < len(shape) <= 4 and all(_is_count(n) and n > 0 for n in shape)
            and np.prod(shape, dtype=np.float64) <= MAX_VALUES):
        raise ValueError(f"shape must be up to 4 sizes of at most {MAX_VALUES} values in all")
    total = np.asarray(raw["sum"], np.float64).reshape(shape)
    total_sq = np.asarray(raw["sumsq"], np.float64).reshape(shape)
    with np.errstate(all="ignore"):
        mean = total / (windows if weight is None else weight)
        var = total_sq / (windows if weight is None else weight) - mean * mean
    if not (np.isfinite(var).all() and np.isfinite(total_sq).all()):
        raise ValueError("its sums are out of range (not finite, or too large for a mean and a variance)")
    if (total_sq < 0).any():
        raise ValueError("a sum of squares is negative")
    return windows, weight, total, total_sq


class ProfileStore:
    """The profiles in one folder, by name."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else profiles_dir()

    def path(self, name: str) -> Path:
        return self.folder / f"{check_name(name)}{SUFFIX}"

    def list(self) -> tuple[list[VoiceProfile], list[str]]:
        """(the readable profiles by name, one line for each file that is not one, or whose
        name is not its file's)."""
        found, problems = [], []
        for path in sorted(self.folder.glob(f"*{SUFFIX}")) if self.folder.is_dir() else []:
            try:
                found.append(self._read_named(path))
            except ProfileError as exc:
                problems.append(str(exc))
        return sorted(found, key=lambda p: p.name.lower()), problems

    def _read_named(self, path: Path) -> VoiceProfile:
        """A profile in this folder, whose stored name must be its file's (else two files could
        show as one profile)."""
        profile = read_profile(path)
        if profile.name != path.name[: -len(SUFFIX)]:
            raise ProfileError(f"{path}: this file says it is the voice profile {printable(profile.name)!r}; "
                               "the name and the file name must agree (rename the file, or delete it)")
        return profile

    def load(self, name_or_path: str) -> VoiceProfile:
        """A profile by name, or a profile file's path (a file of that name wins)."""
        given = Path(name_or_path)
        if given.suffix == SUFFIX and given.is_file():
            return read_profile(given)
        path = self.path(name_or_path)
        if not path.exists():
            raise ProfileUsageError(f"no voice profile named {name_or_path!r} (in {self.folder})")
        return self._read_named(path)

    def check_free(self, name: str) -> None:
        if self.path(name).exists():
            raise ProfileUsageError(f"a voice profile named {name!r} exists (in {self.folder}); choose another name")

    def save(self, profile: VoiceProfile, replace: bool = False) -> Path:
        path = self.path(profile.name)
        if not replace:
            self.check_free(profile.name)
        text = profile.to_json()
        write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        profile.path = path
        return path

    def take(self, name: str) -> Path:
        """Where the recording a profile was made from is kept (the app's calibration take)."""
        return self.folder / f"{check_name(name)}{TAKE_SUFFIX}"

    def delete(self, name: str) -> None:
        """The profile and its take, if any."""
        path = self.path(name)
        if not path.is_file():
            raise ProfileUsageError(f"no voice profile named {name!r} (in {self.folder})")
        for p in (path, self.take(name)):
            try:
                p.unlink(missing_ok=True)
            except OSError as exc:
                raise ProfileError(f"{p}: cannot delete: {exc.strerror or exc}") from None

    def rename(self, old: str, new: str) -> VoiceProfile:
        """Both files move or neither: the new profile is written first, then the take is moved
        (a rename within the folder, which needs no space), then the old profile is removed."""
        profile = self.load(old)
        new = check_name(new)
        if new == profile.name:
            return profile
        self.check_free(new)
        take, new_take = self.take(old), self.take(new)
        if take.is_file() and new_take.exists():
            raise ProfileError(f"{new_take} exists; choose another name")
        self.save(dataclasses.replace(profile, name=new))  # a failed write leaves every file as it was
        if take.is_file():
            try:
                take.rename(new_take)
            except OSError as exc:
                self.path(new).unlink(missing_ok=True)
                raise ProfileError(f"{take}: cannot rename: {exc.strerror or exc}") from None
        self.path(old).unlink(missing_ok=True)
        profile.name, profile.path = new, self.path(new)
        return profile
