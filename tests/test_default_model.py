"""The bundled models: the default (Whisper's encoder with a head) and `small` (the CRNN):
present, within their size budgets, self-describing, found by name, the default used by default."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import speechlike, write_audio

from serapp.bundle import bundled_model_path, read_bundle_meta, resolve_bundle
from serapp.corpora import CORPUS_TITLES, licence_note
from serapp.errors import BundleError
from serapp.labels import EMOTIONS
from serapp.models import build_model
from serapp.predictor import default_bundle_path, load_model
from trainer.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "assets" / "default.safetensors"
SMALL = ROOT / "assets" / "small.safetensors"
# The corpora each is trained on (README "Licence"): all seven of ../shared/data; the first five.
CORPORA = ("ravdess", "tess", "nemo", "urdu", "turev-db", "ased", "emovo")
SMALL_CORPORA = CORPORA[:5]


@pytest.mark.parametrize("name", ["default", "multicorpus"])
def test_the_bundled_models_configs_fit_the_size_budget(name):
    """multicorpus.toml makes the bundled model; default.toml is the same network on RAVDESS alone."""
    cfg = load_config(ROOT / f"trainer/configs/{name}.toml")
    model = build_model(cfg.architecture, cfg.frontend.n_features, 8, cfg.hparams)
    assert sum(p.numel() for p in model.parameters()) * 4 < 5 * 1024 * 1024
    assert cfg.protocol == "emobox" and cfg.frontend.normalize


def test_the_bundled_models_are_present_within_their_budgets_and_found_by_name():
    assert BUNDLE.is_file(), "assets/default.safetensors is missing"
    assert BUNDLE.stat().st_size <= 60 * 1024 * 1024  # the encoder, float16 and int8, and the head
    assert SMALL.stat().st_size <= 5 * 1024 * 1024
    assert default_bundle_path() == BUNDLE
    assert bundled_model_path("small") == SMALL and resolve_bundle("small") == SMALL
    meta, small = read_bundle_meta(BUNDLE), read_bundle_meta("small")
    assert meta.architecture == "speech_encoder" and meta.hparams["backbone"] == "whisper"
    assert meta.hparams["speaker_norm"] and meta.hparams["int8_bytes"] > 0
    assert "MIT" in meta.training["encoder_licence"]
    assert small.architecture == "crnn"


def test_a_file_named_like_a_bundled_model_wins_over_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small").write_bytes(b"not a bundle")
    with pytest.raises(BundleError, match="small"):
        read_bundle_meta("small")


@pytest.mark.parametrize("bundle,names", [(BUNDLE, CORPORA), (SMALL, SMALL_CORPORA)])
def test_bundled_model_names_every_corpus_it_was_trained_on_with_counts_and_licence(bundle, names):
    meta = read_bundle_meta(bundle)
    assert meta.labels == list(EMOTIONS)
    t = meta.training
    corpora = {c["name"]: c for c in t["corpora"]}
    assert sorted(corpora) == sorted(names)
    for name, c in corpora.items():
        assert c["clips"] > 0 and 0 < len(c["train_speakers"]) <= c["speakers"]
        assert c["licence"] == licence_note(name) and c["licence"] in t["licence"]
        assert CORPUS_TITLES[name] in t["data"]


@pytest.mark.parametrize("bundle,names", [(BUNDLE, CORPORA), (SMALL, SMALL_CORPORA)])
def test_bundled_model_carries_its_leave_one_corpus_out_figures(bundle, names):
    xc = read_bundle_meta(bundle).training["cross_corpus"]
    assert xc["protocol"].startswith("cross-corpus")
    assert sorted(f["test_corpus"] for f in xc["folds"]) == sorted(names)
    # chance is each held-out corpus' own (its number of labels)
    assert len({f["chance_ua"] for f in xc["folds"]}) > 1
    assert all(0 < f["ua"] <= 1 and f["chance_ua"] < 1 for f in xc["folds"])
    assert 0 < xc["ua"]["mean"] <= 1


def test_the_small_model_carries_its_ravdess_emobox_figures():
    """The multi-corpus recipe on EmoBox RAVDESS folds (the other corpora in training): README
    "Results: voices and languages the model never heard"."""
    cv = read_bundle_meta(SMALL).training["cross_validation"]
    assert cv["protocol"].startswith("speaker-independent")
    assert [f["fold"] for f in cv["folds"]] == ["fold1", "fold3"]
    assert all(len(f["test_speakers"]) == 4 and 0 < f["ua"] <= 1 for f in cv["folds"])
    assert min(f["ua"] for f in cv["folds"]) <= cv["ua"]["mean"] <= max(f["ua"] for f in cv["folds"])


def test_predict_uses_the_bundled_model_by_default(tmp_path):
    clip = write_audio(tmp_path / "x.wav", speechlike(2.0), 16000)
    proc = subprocess.run([sys.executable, "-m", "serapp", "predict", str(clip), "--format", "jsonl"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(proc.stdout)["probabilities"]) == ["neutral", "happy", "sad", "angry"]  # the basic four
    p = load_model(None, device="cpu")
    assert p.path == BUNDLE and p.meta.architecture == "speech_encoder" and p.adapts
    small = subprocess.run([sys.executable, "-m", "serapp", "predict", str(clip), "--format", "jsonl", "--model", "small"],
                           capture_output=True, text=True, timeout=120)
    assert small.returncode == 0, small.stderr
    assert json.loads(small.stdout)["probabilities"] != json.loads(proc.stdout)["probabilities"]


def test_model_info_tells_what_each_bundled_model_is():
    proc = subprocess.run([sys.executable, "-m", "serapp", "model-info", "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = {r["name"]: r for r in json.loads(proc.stdout)}
    assert sorted(records) == ["default", "small"]
    assert records["default"]["architecture"] == "speech_encoder" and records["small"]["architecture"] == "crnn"
    text = subprocess.run([sys.executable, "-m", "serapp", "model-info"], capture_output=True, text=True, timeout=60).stdout
    assert "== default (--model default)" in text and "== small (--model small)" in text
    assert "Whisper base's audio encoder" in text and "int8 through onnxruntime" in text


def test_the_default_is_what_the_encoder_table_chose_and_ships_its_calibration_across_corpora():
    """The recipe, the adaptation and the calibration that validation chose in the encoder table
    (docs/results/encoder.json) are the default's: a head for the basic four beside the full head,
    and the calibration fitted on corpora the heads reading them never heard."""
    from trainer.encoder_choices import choices

    meta = read_bundle_meta(BUNDLE)
    results = json.loads((ROOT / "docs" / "results" / "encoder.json").read_text())
    picked = choices(results)
    assert picked["recipe"]["chosen"] == "four-way" and meta.hparams["basic_head"] is True
    mode, prior, weighting = results["adapts"][picked["adapt"]["chosen"]]
    assert (meta.hparams["adapt"], meta.hparams["prior_windows"], meta.hparams["adapt_weighting"]) == (mode, prior, weighting)
    assert meta.readout == results["bundle_readout"] and meta.training["calibration"] == "held-out corpora"
    xc = meta.training["cross_corpus"]
    assert xc["recipe"] == "four-way" and xc["adapt"] == picked["adapt"]["chosen"]
    text = subprocess.run([sys.executable, "-m", "serapp", "model-info"], capture_output=True, text=True, timeout=60).stdout
    assert "calibrated on held-out corpora" in text and "basic four" in text
