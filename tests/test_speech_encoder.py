"""Pretrained speech encoders, with a tiny randomly initialised wav2vec 2.0 saved to a folder:
loaded only from that folder, frozen or fine-tuned, bundled with its checksum, and refused
with a clear message where the folder is missing or different."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_ravdess_corpus, speechlike, write_audio

from serapp.bundle import BundleMeta, load_bundle, read_bundle_meta, save_bundle
from serapp.errors import BundleError
from serapp.features import FrontEndConfig
from serapp.models import build_model
from serapp.models.speech_encoder import EncoderUnavailable, encoder_checksum

ROOT = Path(__file__).resolve().parents[1]
WAVE = FrontEndConfig(kind="waveform", normalize=True)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2), num_feat_extract_layers=2,
                            num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2, vocab_size=10)
    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    Wav2Vec2Model(config).save_pretrained(str(folder))
    return folder


def _model(encoder_dir, finetune=False, n_classes=4):
    torch.manual_seed(1)
    return build_model("speech_encoder", 1, n_classes, {"encoder_dir": str(encoder_dir), "finetune": finetune,
                                                        "hidden": 8})


def test_a_frozen_encoder_stays_out_of_the_bundle_and_out_of_training(encoder_dir):
    model = _model(encoder_dir).train()
    assert set(model.state_dict()) == {"layer_weights", "head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"}
    assert model.hparams["encoder_sha256"] == encoder_checksum(encoder_dir)
    x = torch.randn(2, 1, 8000)
    logits = model(x)
    assert logits.shape == (2, 4)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert all(p.grad is None for p in model.speech_encoder.parameters())


@pytest.mark.parametrize("finetune", [False, True], ids=["frozen", "fine-tuned"])
def test_bundle_round_trip_and_onnx(encoder_dir, tmp_path, finetune):
    import onnxruntime as ort

    from trainer.export import export_onnx

    model = _model(encoder_dir, finetune).eval()
    meta = BundleMeta(architecture="speech_encoder", labels=["neutral", "happy", "sad", "angry"], frontend=WAVE,
                      window_s=0.5)
    path = save_bundle(tmp_path / "enc.safetensors", model, meta)
    loaded, meta2 = load_bundle(path)
    x = torch.randn(2, 1, 8000)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta2.hparams["encoder_dir"] == str(encoder_dir) and len(meta2.hparams["encoder_sha256"]) == 64
    assert any(k.startswith("encoder.") for k in loaded.state_dict()) == finetune
    # model-info counts what the file holds: the head alone where the encoder is frozen (and says so)
    from serapp.bundle import read_bundle_summary
    from serapp.model_card import model_card

    stored = read_bundle_summary(path)[1]
    assert stored == sum(p.numel() for p in model.parameters())  # a frozen encoder is outside the module tree
    card = model_card(meta2, path, stored)
    assert ("plus the frozen speech encoder's" in card) == (not finetune) and str(encoder_dir) in card
    onnx_path = export_onnx(model, 1, 8000, tmp_path / "enc.onnx")
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(["logits"], {"features": x.numpy()})[0]
    with torch.no_grad():
        want = torch.softmax(model(x), -1).numpy()
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(got), -1).numpy(), want, atol=1e-4)


def test_a_missing_or_different_encoder_is_a_one_line_error_naming_the_folder(encoder_dir, tmp_path):
    import shutil

    moved = tmp_path / "elsewhere"
    shutil.copytree(encoder_dir, moved)
    model = _model(moved).eval()
    meta = BundleMeta(architecture="speech_encoder", labels=["a", "b", "c", "d"], frontend=WAVE, window_s=0.5)
    bundle = save_bundle(tmp_path / "b.safetensors", model, meta)
    clip = write_audio(tmp_path / "x.wav", speechlike(1.0), 16000)
    (moved / "config.json").rename(moved / "config.json.away")  # the folder as another machine has it
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert str(moved) in str(e.value) and "config.json" in str(e.value) and "nothing is downloaded" in str(e.value)
    proc = subprocess.run([sys.executable, "-m", "serapp", "predict", str(clip), "--model", str(bundle)],
                          capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1 and str(moved) in err[0] and "Traceback" not in proc.stderr
    (moved / "config.json.away").rename(moved / "config.json")
    weights = next(moved.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)  # same layout, other numbers
    with pytest.raises(BundleError, match="not the one this model was trained with"):
        load_bundle(bundle)
    with pytest.raises(EncoderUnavailable, match="set model.encoder_dir"):
        build_model("speech_encoder", 1, 4, {})


def test_the_head_of_a_frozen_encoder_trains_from_cached_outputs(encoder_dir, tmp_path):
    corpus = make_ravdess_corpus(tmp_path / "c", actors=range(1, 7), labels=("neutral", "angry"), reps=2)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "trainer", "train", "--config", str(ROOT / "trainer/configs/speech_encoder.toml"),
                           "--data", f"ravdess={corpus}", "--fold", "all", "--out", str(out), "--no-cache", "--epochs", "3",
                           "--set", f'model.encoder_dir="{encoder_dir}"', "--set", "model.hidden=8",
                           "--set", "data.window_s=0.5", "--set", "data.val_speakers=2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "encoder outputs of" in proc.stderr and "computed once" in proc.stderr
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    meta = read_bundle_meta(out / "model.safetensors")
    assert meta.architecture == "speech_encoder" and meta.hparams["encoder_sha256"] == encoder_checksum(encoder_dir)
    # calibrated on its validation speakers: a temperature and a "not sure" threshold per readout
    assert set(meta.readout) == {"all", "basic"} and all(0 <= e["threshold"] <= 1 for e in meta.readout.values())
    assert meta.frontend.kind == "waveform"
