"""Training configuration: TOML files under trainer/configs/, overridable from the command line."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from serapp.corpora import CorpusError
from serapp.features import FrontEndConfig
from serapp.files import decode_utf8, write_text
from serapp.labels import EMOTIONS
from serapp.models import check_hparams
from trainer.augment import AugmentConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names it."""


@dataclass
class TrainConfig:
    architecture: str = "tcn"
    hparams: dict = field(default_factory=dict)
    frontend: FrontEndConfig = field(default_factory=lambda: FrontEndConfig(normalize=True))
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    window_s: float = 3.0  # training crop length = the model's inference window
    trim_top_db: float | None = 40.0
    labels: list[str] | None = None  # None: every canonical label the corpora have
    corpora: list[str] = field(default_factory=list)  # corpus names, found under --data-root DIR/NAME
    protocol: str = "emobox"  # emobox | speakers | random | loco
    speakers_per_fold: int = 2  # for protocol "speakers"
    n_folds: int = 5  # for protocol "random"
    val_fraction: float = 0.1  # for protocol "random": the share of the clips outside the test fold that validates
    val_speakers: int = 2  # per training corpus
    val_keep_speakers: int = 1  # a corpus gives validation speakers only while this many stay for training
    val_min_clips: int = 0  # ... and more than val_speakers while theirs number fewer clips than this
    sampling: str = "shuffle"  # shuffle: every clip once per epoch | balanced: draws balanced over corpora and labels
    epoch_clips: int = 0  # balanced: clips drawn per epoch (0: as many as there are training clips)
    corpus_weights: dict = field(default_factory=dict)  # balanced: corpus -> relative share (default 1)
    corpus_power: float = 0.0  # balanced: share ~ weight x clips**power (0: equal shares per corpus)
    epochs: int = 60
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    lr_schedule: str = "cosine"  # cosine: warm-up, then a cosine decay to 2% | constant: warm-up, then lr throughout
    patience: int = 15
    ema_decay: float = 0.0  # > 0: validate, select and export an exponential average of the weights
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision, CUDA only
    threads: int | None = None  # CPU threads for training; None = torch's default
    # Score the test clips after every epoch into history.json (test_wa, test_ua), to compare with
    # published figures that kept the epoch best on their test set. Never used to select or stop.
    watch_test: bool = False

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["frontend"] = self.frontend.to_dict()
        return d


_SECTIONS = {"model", "features", "augment", "data", "train"}
_TOP = {f.name for f in dataclasses.fields(TrainConfig)} - {"hparams", "frontend", "augment", "architecture"}


def _build(raw: dict, where: str) -> TrainConfig:
    unknown = sorted(set(raw) - _SECTIONS)
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)} (known: {', '.join(sorted(_SECTIONS))})")
    model = dict(raw.get("model", {}))
    top = {**raw.get("data", {}), **raw.get("train", {})}
    if top.get("trim_top_db") is False:  # TOML has no null: false reads the audio untrimmed
        top["trim_top_db"] = None
    bad = sorted(set(top) - _TOP)
    if bad:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(bad)}")
    try:
        frontend = FrontEndConfig.from_dict({"normalize": True, **raw.get("features", {})})
        aug_raw = dict(raw.get("augment", {}))
        for key in ("snr_db", "rt60_s", "gain_db", "tilt_db_per_octave"):
            if key in aug_raw:
                aug_raw[key] = tuple(aug_raw[key])
        augment = AugmentConfig(**aug_raw)
        cfg = TrainConfig(architecture=model.pop("architecture", "tcn"), hparams=model, frontend=frontend,
                          augment=augment, **top)
        check_hparams(cfg.architecture, cfg.hparams)
        check_values(cfg)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return cfg


def _number(name: str, value, lo: float, hi: float, integer: bool = False, lo_open: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ValueError(f"{name} must be {'a whole number' if integer else 'a number'}, not {value!r}")
    if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo):
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {value!r}")


def check_values(cfg: TrainConfig) -> None:
    """Every setting's type and range, before any corpus is loaded (ValueError naming the setting)."""
    from trainer.folds import PROTOCOLS

    for name, lo, hi in (("train.epochs", 1, 100_000), ("train.batch_size", 1, 65_536),
                         ("train.warmup_epochs", 0, 100_000), ("train.patience", 1, 100_000),
                         ("data.val_speakers", 0, 10_000), ("data.val_keep_speakers", 1, 10_000), ("data.val_min_clips", 0, 10_000_000),
                         ("data.speakers_per_fold", 1, 10_000), ("data.n_folds", 2, 1000),
                         ("data.epoch_clips", 0, 100_000_000), ("train.seed", 0, 2**62)):
        key = name.split(".")[1]
        _number(name, getattr(cfg, key), lo, hi, integer=True)
    _number("train.lr", cfg.lr, 0.0, 10.0, lo_open=True)
    _number("train.weight_decay", cfg.weight_decay, 0.0, 10.0)
    _number("train.label_smoothing", cfg.label_smoothing, 0.0, 0.99)
    _number("train.ema_decay", cfg.ema_decay, 0.0, 0.999999)
    _number("data.window_s", cfg.window_s, 0.0, 60.0, lo_open=True)
    _number("data.corpus_power", cfg.corpus_power, 0.0, 1.0)
    _number("data.val_fraction", cfg.val_fraction, 0.0, 0.9, lo_open=True)
    if cfg.trim_top_db is not None:
        _number("data.trim_top_db", cfg.trim_top_db, 0.0, 200.0, lo_open=True)
    if cfg.threads is not None:
        _number("train.threads", cfg.threads, 1, 1024, integer=True)
    if cfg.protocol not in PROTOCOLS:
        raise ValueError(f"data.protocol must be one of {', '.join(PROTOCOLS)}, not {cfg.protocol!r}")
    if cfg.lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"train.lr_schedule must be cosine or constant, not {cfg.lr_schedule!r}")
    if not isinstance(cfg.watch_test, bool):
        raise ValueError(f"train.watch_test must be true or false, not {cfg.watch_test!r}")
    if "basic_head" in cfg.hparams:  # type, and a frozen encoder (the one trainer that trains it)
        from serapp.models.speech_encoder import check_basic_head

        try:
            check_basic_head(cfg.hparams["basic_head"], cfg.hparams.get("finetune", False))
        except ValueError as exc:
            raise ValueError(f"model.{exc}") from None
    if cfg.sampling not in ("shuffle", "balanced"):
        raise ValueError(f"data.sampling must be shuffle or balanced, not {cfg.sampling!r}")
    if cfg.device not in ("auto", "cpu", "cuda", "mps") and not str(cfg.device).startswith("cuda:"):
        raise ValueError(f"train.device must be auto, cpu, cuda or mps, not {cfg.device!r}")
    if not isinstance(cfg.corpus_weights, dict):
        raise ValueError("data.corpus_weights must be a table, e.g. {tess = 0.5}")
    for name, w in cfg.corpus_weights.items():
        _number(f"data.corpus_weights.{name}", w, 0.0, 1e6)
    if not isinstance(cfg.corpora, list) or not all(isinstance(c, str) for c in cfg.corpora):
        raise ValueError("data.corpora must be a list of corpus names, e.g. [\"ravdess\", \"tess\"]")
    if cfg.labels is not None and (not isinstance(cfg.labels, list) or not cfg.labels
                                   or not all(lab in EMOTIONS for lab in cfg.labels)):
        raise ValueError(f"data.labels must be a non-empty list drawn from {', '.join(EMOTIONS)}")
    aug = cfg.augment
    for name in ("noise_prob", "babble_share", "reverb_prob", "telephone_prob", "tilt_prob"):
        _number(f"augment.{name}", getattr(aug, name), 0.0, 1.0)
    _number("augment.mixup_alpha", aug.mixup_alpha, 0.0, 100.0)
    for name, lo, hi in (("snr_db", -30.0, 100.0), ("rt60_s", 0.01, 10.0), ("gain_db", -80.0, 40.0),
                         ("tilt_db_per_octave", -24.0, 24.0)):
        pair = getattr(aug, name)
        if len(pair) != 2:
            raise ValueError(f"augment.{name} must be a pair [low, high]")
        for v in pair:
            _number(f"augment.{name}", v, lo, hi)
        if pair[0] > pair[1]:
            raise ValueError(f"augment.{name} must be [low, high] with low <= high, got {list(pair)}")


def _set(raw: dict, dotted: str, value) -> None:
    section, _, key = dotted.partition(".")
    if not key:
        raise ConfigError(f"--set {dotted}: use SECTION.KEY=VALUE, e.g. train.epochs=5")
    raw.setdefault(section, {})[key] = value


def parse_override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise ConfigError(f"--set {text!r}: expected SECTION.KEY=VALUE")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare string
    return key.strip(), parsed


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    raw: dict = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            text, bad = decode_utf8(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if bad is not None:
            raise ConfigError(f"{path}: line {bad[0]}: {bad[1]}; a config is UTF-8 TOML")
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    for item in overrides:
        _set(raw, *parse_override(item))
    return _build(raw, where)


def config_from_dict(d: dict) -> TrainConfig:
    """Inverse of TrainConfig.to_dict (for resuming a run from its config.json)."""
    d = dict(d)
    d["frontend"] = FrontEndConfig.from_dict(d["frontend"])
    aug = dict(d["augment"])
    for key in ("snr_db", "rt60_s", "gain_db", "tilt_db_per_octave"):
        aug[key] = tuple(aug[key])
    d["augment"] = AugmentConfig(**aug)
    return TrainConfig(**d)


def dump_config(cfg: TrainConfig, path: Path) -> None:
    write_text(path, json.dumps(cfg.to_dict(), indent=2) + "\n")


def window_frames(cfg: TrainConfig) -> int:
    """The frames of the model's window: what its ONNX and int8 graphs are made for."""
    return cfg.frontend.n_frames(int(cfg.window_s * cfg.frontend.sample_rate))


# Where a run trains, not what it learns: a fold begun on a CPU may finish on a GPU.
WHERE_IT_RUNS = {"labels", "device", "threads"}


def _as_stored(cfg: TrainConfig) -> dict:
    return json.loads(json.dumps(cfg.to_dict()))  # as config.json holds it (tuples become lists)


def _differences(stored: dict, current: dict) -> list[str]:
    # a setting newer than a stored run had its default there
    defaults = _as_stored(TrainConfig())
    return sorted(k for k in current if k not in WHERE_IT_RUNS and stored.get(k, defaults.get(k)) != current[k])


def same_recipe(a: TrainConfig, b: TrainConfig) -> bool:
    """Whether two configs train the same model the same way (wherever they run)."""
    return not _differences(_as_stored(a), _as_stored(b))


def check_same_config(run_dir: Path, cfg: TrainConfig, allow: tuple[str, ...] = ()) -> None:
    """A kept or resumed fold must come from the same recipe, or the table would mix two
    (`allow`: settings that may differ, as a resumed run's epochs)."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{path}: cannot read the run's config ({exc})") from None
    differ = [k for k in _differences(stored, _as_stored(cfg)) if k not in allow]
    if differ:
        raise CorpusError(f"{run_dir} was trained with other settings ({', '.join(differ)}); "
                          "use a new --out, or delete that run to retrain it")
