"""Training configuration: TOML files under trainer/configs/, overridable from the command line."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from serapp.features import FrontEndConfig
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
    labels: list[str] | None = None  # None: every canonical label the corpus has
    protocol: str = "emobox"  # emobox | speakers | random
    speakers_per_fold: int = 2  # for protocol "speakers"
    n_folds: int = 5  # for protocol "random"
    val_speakers: int = 2
    epochs: int = 60
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    patience: int = 15
    ema_decay: float = 0.0  # > 0: validate, select and export an exponential average of the weights
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision, CUDA only
    threads: int | None = None  # CPU threads for training; None = torch's default

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
        if not 0.0 <= cfg.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay must be in [0, 1), got {cfg.ema_decay}")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return cfg


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
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
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
    path.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
