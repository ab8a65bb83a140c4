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


def check_hparams(architecture: str, hparams: dict | None) -> type[nn.Module]:
    """The architecture's class, after checking the name and the hyper-parameter names."""
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
    return cls


def build_model(architecture: str, n_features: int, n_classes: int, hparams: dict | None = None) -> nn.Module:
    """Construct an architecture by name; unknown names or hyper-parameters raise ValueError."""
    cls = check_hparams(architecture, hparams)
    return cls(n_features=n_features, n_classes=n_classes, **dict(hparams or {}))


__all__ = ["ARCHITECTURES", "build_model", "check_hparams", "ConvRecurrentNet", "TemporalConvNet", "TIMNet",
           "CkTIMNet", "ParallelCNNTransformer", "GlobalFeatureLogReg", "StatsFeedForward", "LSTMNet",
           "FrameTransformer", "MFCCConvNet", "SpeechEncoderClassifier"]
