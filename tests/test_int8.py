"""The int8 encoder graph (onnxruntime) against the float32 encoder (torch): the bundled default
on speech-like audio, and a tiny model made, saved and loaded here."""

import numpy as np
import pytest
import torch
from helpers import WHISPER_FE, speechlike, tiny_whisper_folder, tiny_whisper_model

from serapp.bundle import (
    BundleMeta,
    bundled_model_path,
    load_bundle,
    read_bundle_meta,
    save_bundle,
)
from serapp.features import FrontEnd
from serapp.models.int8 import PROBABILITY_TOLERANCE
from serapp.predictor import load_model
from trainer.quantise import attach_int8


def _probabilities(model, features: torch.Tensor, int8: bool) -> np.ndarray:
    model.use_int8 = int8
    with torch.inference_mode():
        return torch.softmax(model(features), dim=-1).numpy()


def test_the_bundled_default_runs_int8_within_the_tolerance_of_float32():
    path = bundled_model_path("default")
    assert path is not None and read_bundle_meta(path).hparams.get("int8_bytes"), "the default carries its int8 graph"
    predictor = load_model("default", device="cpu", threads=1)
    model = predictor.model
    assert model.runtime == "onnxruntime int8"
    window = int(predictor.meta.window_s * predictor.sample_rate)
    waves = np.stack([speechlike(predictor.meta.window_s, seed=s) * gain for s, gain in ((0, 1.0), (1, 0.3), (2, 2.0))])
    features = predictor.frontend(torch.from_numpy(waves[:, :window]))
    int8, float32 = _probabilities(model, features, True), _probabilities(model, features, False)
    assert model.runtime == "torch float32"  # use_int8 = False is the float path
    assert not np.array_equal(int8, float32)  # the int8 graph did run
    assert np.abs(int8 - float32).max() <= PROBABILITY_TOLERANCE
    np.testing.assert_allclose(int8.sum(axis=1), 1.0, atol=1e-5)


def test_a_model_given_its_int8_graph_carries_it_through_the_bundle(tmp_path):
    model = tiny_whisper_model(tiny_whisper_folder(tmp_path / "enc")).eval()
    model.norm_mean.normal_()
    model.norm_std.uniform_(0.5, 2)
    frames = WHISPER_FE.n_frames(16000)
    attach_int8(model, frames)
    assert model.hparams["int8_bytes"] > 0 and model.runtime == "onnxruntime int8"
    meta = BundleMeta(architecture="speech_encoder", labels=["neutral", "happy", "sad", "angry"], frontend=WHISPER_FE,
                      window_s=1.0, trim_top_db=None, hparams=dict(model.hparams))
    loaded, _ = load_bundle(save_bundle(tmp_path / "m.safetensors", model, meta))
    assert loaded.runtime == "onnxruntime int8"
    wave = torch.from_numpy(np.stack([speechlike(1.0, seed=s) for s in range(4)]))
    features = FrontEnd(WHISPER_FE)(wave)
    assert features.shape[-1] == frames
    reference = _probabilities(model, features, False)
    got = _probabilities(loaded, features, True)
    assert not np.array_equal(got, reference)
    assert np.abs(got - reference).max() <= PROBABILITY_TOLERANCE
    # a window of another length than the graph's runs the float path, exactly
    longer = FrontEnd(WHISPER_FE)(torch.from_numpy(speechlike(1.5))[None])
    assert np.array_equal(_probabilities(loaded, longer, True), _probabilities(model, longer, False))


def test_only_a_frozen_whisper_encoder_takes_an_int8_graph(tmp_path):
    model = tiny_whisper_model(tiny_whisper_folder(tmp_path / "enc"), finetune=True)
    with pytest.raises(ValueError, match="frozen Whisper"):
        model.attach_int8(b"graph", 100)
    attach_int8(model, 100)  # the trainer's step leaves such a model as it is
    assert model.hparams["int8_bytes"] == 0
