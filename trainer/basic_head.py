"""A head for the basic four beside the full head (`model.basic_head = true`, a frozen encoder).

The full head trains as it does without one (trainer/frozen.py). Then a four-way sibling, the
same architecture with four outputs (serapp.readout.BASIC: neutral, happy, sad, angry) sharing
the model's encoder, trains the same way on the clips of those emotions alone, calm counted as
neutral (`trainer.data.basic_view`), with the population statistics of its own training windows:
the encoder table's four-way recipe. Its head, layer weights and statistics are copied into the
model's basic_* slots (serapp/models/speech_encoder.py), where the basic readout reads them.
"""

from __future__ import annotations

import torch
from torch import nn

from serapp.corpora import CorpusError
from serapp.models import build_model
from serapp.readout import BASIC
from trainer.data import ClipSet, basic_view


def basic_clips(train: ClipSet, val: ClipSet) -> tuple[ClipSet, ClipSet]:
    """The training and validation clips a head for the four trains and picks its epoch on;
    refused in one line where the training clips lack one of the four."""
    basic_train, basic_val = basic_view(train)[0], basic_view(val)[0]
    have = {basic_train.labels[t] for t in basic_train.targets}
    missing = [k for k in BASIC if k not in have]
    if missing:
        raise CorpusError(f"a head for the basic four (model.basic_head) needs training clips of each of "
                          f"{', '.join(BASIC)} (calm counts as neutral); there are none of {', '.join(missing)}")
    return basic_train, basic_val


def basic_sibling(model: nn.Module, n_features: int) -> nn.Module:
    """A four-way model with `model`'s hyper-parameters (no head for the four of its own, no int8
    graph), sharing `model`'s frozen encoder, on its device; its head initialised from torch's
    current seed."""
    hparams = {**model.hparams, "basic_head": False, "int8_bytes": 0}
    sibling = build_model("speech_encoder", n_features, len(BASIC), hparams)
    if model.backbone == "whisper":
        sibling.encoder = model.encoder  # one encoder, never trained
    else:
        sibling._frozen = model._frozen
    device = next(model.parameters()).device
    return sibling.to(device)


@torch.no_grad()
def take_basic_head(model: nn.Module, sibling: nn.Module) -> None:
    """Copy the trained sibling's head, layer weights, population statistics and label offsets
    into `model`'s head for the four."""
    model.basic_head.load_state_dict(sibling.head.state_dict())
    model.basic_layer_weights.copy_(sibling.layer_weights)
    if model.speaker_norm:
        model.basic_norm_mean.copy_(sibling.norm_mean)
        model.basic_norm_std.copy_(sibling.norm_std)
    if hasattr(model, "emotion_offsets"):  # an emotion-removed voice: the reading head's labels' offsets
        model.emotion_offsets.copy_(sibling.emotion_offsets)
