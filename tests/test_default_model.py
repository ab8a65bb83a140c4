"""The bundled default model: present, small, self-describing, and used by default."""

import json
import subprocess
import sys
from pathlib import Path

from helpers import speechlike, write_audio

from serapp.bundle import read_bundle_meta
from serapp.labels import EMOTIONS
from serapp.models import build_model
from serapp.predictor import default_bundle_path, load_model
from trainer.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "assets" / "default.safetensors"


def test_default_config_fits_the_size_budget():
    cfg = load_config(ROOT / "trainer/configs/default.toml")
    model = build_model(cfg.architecture, cfg.frontend.n_features, 8, cfg.hparams)
    assert sum(p.numel() for p in model.parameters()) * 4 < 5 * 1024 * 1024
    assert cfg.protocol == "emobox" and cfg.frontend.normalize


def test_bundled_model_is_present_small_and_found():
    assert BUNDLE.is_file(), "assets/default.safetensors is missing"
    assert BUNDLE.stat().st_size <= 5 * 1024 * 1024
    assert default_bundle_path() == BUNDLE


def test_bundled_model_describes_its_training_and_cross_validation():
    meta = read_bundle_meta(BUNDLE)
    assert meta.labels == list(EMOTIONS)
    t = meta.training
    assert "RAVDESS" in t["data"] and "CC BY-NC-SA 4.0" in t["licence"]
    cv = t["cross_validation"]
    assert cv["protocol"].startswith("speaker-independent") and len(cv["folds"]) == 6
    assert 0 < cv["ua"]["mean"] <= 1 and 0 < cv["wa"]["mean"] <= 1


def test_predict_uses_the_bundled_model_by_default(tmp_path):
    clip = write_audio(tmp_path / "x.wav", speechlike(2.0), 16000)
    proc = subprocess.run([sys.executable, "-m", "serapp", "predict", str(clip), "--format", "jsonl"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(proc.stdout)["probabilities"]) == list(EMOTIONS)
    p = load_model(None, device="cpu")
    assert p.path == BUNDLE and p.meta.architecture == "crnn"
