"""The bundled default model: present, small, self-describing, and used by default."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import speechlike, write_audio

from serapp.bundle import read_bundle_meta
from serapp.corpora import CORPUS_TITLES, licence_note
from serapp.labels import EMOTIONS
from serapp.models import build_model
from serapp.predictor import default_bundle_path, load_model
from trainer.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "assets" / "default.safetensors"
# The five corpora of ../shared/data, which the bundled model is trained on (README "Licence").
CORPORA = ("ravdess", "tess", "nemo", "urdu", "turev-db")


@pytest.mark.parametrize("name", ["default", "multicorpus"])
def test_the_bundled_models_configs_fit_the_size_budget(name):
    """multicorpus.toml makes the bundled model; default.toml is the same network on RAVDESS alone."""
    cfg = load_config(ROOT / f"trainer/configs/{name}.toml")
    model = build_model(cfg.architecture, cfg.frontend.n_features, 8, cfg.hparams)
    assert sum(p.numel() for p in model.parameters()) * 4 < 5 * 1024 * 1024
    assert cfg.protocol == "emobox" and cfg.frontend.normalize


def test_bundled_model_is_present_small_and_found():
    assert BUNDLE.is_file(), "assets/default.safetensors is missing"
    assert BUNDLE.stat().st_size <= 5 * 1024 * 1024
    assert default_bundle_path() == BUNDLE


def test_bundled_model_names_every_corpus_it_was_trained_on_with_counts_and_licence():
    meta = read_bundle_meta(BUNDLE)
    assert meta.labels == list(EMOTIONS)
    t = meta.training
    corpora = {c["name"]: c for c in t["corpora"]}
    assert sorted(corpora) == sorted(CORPORA)
    for name, c in corpora.items():
        assert c["clips"] > 0 and 0 < len(c["train_speakers"]) <= c["speakers"]
        assert c["licence"] == licence_note(name) and c["licence"] in t["licence"]
        assert CORPUS_TITLES[name] in t["data"]


def test_bundled_model_carries_its_leave_one_corpus_out_figures():
    xc = read_bundle_meta(BUNDLE).training["cross_corpus"]
    assert xc["protocol"].startswith("cross-corpus")
    assert sorted(f["test_corpus"] for f in xc["folds"]) == sorted(CORPORA)
    assert all(0 < f["ua"] <= 1 and f["chance_ua"] < 1 for f in xc["folds"])
    assert 0 < xc["ua"]["mean"] <= 1


def test_bundled_model_carries_its_ravdess_emobox_figures():
    """The multi-corpus recipe on EmoBox RAVDESS folds (the other corpora in training): README
    "Results: voices and languages the model never heard"."""
    cv = read_bundle_meta(BUNDLE).training["cross_validation"]
    assert cv["protocol"].startswith("speaker-independent")
    assert [f["fold"] for f in cv["folds"]] == ["fold1", "fold3"]
    assert all(len(f["test_speakers"]) == 4 and 0 < f["ua"] <= 1 for f in cv["folds"])
    assert min(f["ua"] for f in cv["folds"]) <= cv["ua"]["mean"] <= max(f["ua"] for f in cv["folds"])


def test_predict_uses_the_bundled_model_by_default(tmp_path):
    clip = write_audio(tmp_path / "x.wav", speechlike(2.0), 16000)
    proc = subprocess.run([sys.executable, "-m", "serapp", "predict", str(clip), "--format", "jsonl"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(proc.stdout)["probabilities"]) == list(EMOTIONS)
    p = load_model(None, device="cpu")
    assert p.path == BUNDLE and p.meta.architecture == "crnn"
