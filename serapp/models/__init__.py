"""The architectures a bundle may name. The runtime must be able to build each of them.

Every model maps features (batch, n_features, frames) to logits (batch, n_classes), takes
`n_features` and `n_classes` plus keyword hyper-parameters, and records the hyper-parameters
it was built with in `model.hparams` (stored in bundles with defaults filled in).
"""

from __future__ import annotations

import inspect

from torch import nn

from serapp.models.baselines import (
    FrameTransformer,
    GlobalFeatureLogReg,
    LSTMNet,
    MFCCConvNet,
    StatsFeedForward,
)
from serapp.models.crnn import ConvRecurrentNet
from serapp.models.parallel_cnn import ParallelCNNTransformer
from serapp.models.speech_encoder import SpeechEncoderClassifier
from serapp.models.tcn import TemporalConvNet
from serapp.models.timnet import CkTIMNet, TIMNet

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "tcn": TemporalConvNet,
    "crnn": ConvRecurrentNet,
    "parallel_cnn_transformer": ParallelCNNTransformer,
    "timnet": TIMNet,
    "cktimnet": CkTIMNet,
    "logreg": GlobalFeatureLogReg,
    "ffn": StatsFeedForward,
    "lstm": LSTMNet,
    "transformer": FrameTransformer,
    "mfcc_cnn": MFCCConvNet,
    "speech_encoder": SpeechEncoderClassifier,
}


# Every size a hyper-parameter can set, bounded before anything is built (a bundle asking for a
# million blocks built for a minute on the meta device): (least, most, whole number?).
_COUNT, _WIDTH = (1, 64, True), (1, 16384, True)
HPARAM_RANGES = {
    "blocks": _COUNT, "conv_blocks": (1, 16, True), "temporal_blocks": _COUNT, "transformer_layers": _COUNT,
    "layers": _COUNT, "heads": _COUNT, "time_pool": _COUNT, "kernel_size": _COUNT,
    "channels": _WIDTH, "width": _WIDTH, "hidden": _WIDTH, "d_model": _WIDTH, "feedforward": _WIDTH,
    "conv_channels": _WIDTH, "filters": _WIDTH, "dense": _WIDTH,
    "dropout": (0.0, 0.99, False), "range_db": (1.0, 200.0, False), "prior_windows": (0.0, 1e6, False),
    "int8_bytes": (0, 2**31, True),
}


def _check_range(name: str, value) -> None:
    lo, hi, whole = HPARAM_RANGES[name]
    ok_type = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not lo <= value <= hi:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"hyper-parameter {name} must be {kind} in [{lo:g}, {hi:g}], not {value!r}")


def check_hparams(architecture: str, hparams: dict | None) -> type[nn.Module]:
    """The architecture's class, after checking the name, the hyper-parameter names and every
    size's range (HPARAM_RANGES)."""
    try:
        cls = ARCHITECTURES[architecture]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r} (this serapp knows: {known})") from None
    accepted = set(inspect.signature(cls).parameters) - {"n_features", "n_classes"}
    unknown = sorted(set(hparams or {}) - accepted)
    if unknown:
        raise ValueError(
            f"architecture {architecture!r} has no hyper-parameter {', '.join(unknown)} "
            f"(it takes: {', '.join(sorted(accepted))})"
        )
    for name, value in (hparams or {}).items():
        if name in HPARAM_RANGES:
            _check_range(name, value)
    return cls


def build_model(architecture: str, n_features: int, n_classes: int, hparams: dict | None = None) -> nn.Module:
    """Construct an architecture by name; unknown names or hyper-parameters raise ValueError."""
    cls = check_hparams(architecture, hparams)
    return cls(n_features=n_features, n_classes=n_classes, **dict(hparams or {}))


__all__ = ["ARCHITECTURES", "build_model", "check_hparams", "ConvRecurrentNet", "TemporalConvNet", "TIMNet",
           "CkTIMNet", "ParallelCNNTransformer", "GlobalFeatureLogReg", "StatsFeedForward", "LSTMNet",
           "FrameTransformer", "MFCCConvNet", "SpeechEncoderClassifier"]
