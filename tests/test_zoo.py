"""Every architecture of the zoo: it learns (a step of gradient reaches every weight), it survives a
bundle round trip bit for bit, it runs through the predictor, and its ONNX export gives torch's
probabilities."""

from pathlib import Path

import numpy as np
import pytest
import torch

from serapp.bundle import BundleMeta, load_bundle, read_bundle_summary, save_bundle
from serapp.models import ARCHITECTURES, build_model
from serapp.predictor import Predictor
from trainer.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "trainer" / "configs").glob("*.toml"))
# Small hyper-parameters per architecture, so each test takes a fraction of a second.
TINY = {
    "tcn": dict(channels=16, blocks=2), "crnn": dict(width=4, conv_blocks=2, channels=16, temporal_blocks=1),
    "parallel_cnn_transformer": dict(conv_channels=4, transformer_layers=1, feedforward=32),
    "timnet": dict(channels=8, blocks=3), "cktimnet": dict(channels=6, blocks=1), "logreg": {},
    "ffn": dict(hidden=16), "lstm": dict(hidden=8, layers=1), "transformer": dict(d_model=16, layers=1, feedforward=32),
    "mfcc_cnn": dict(filters=4, dense=8),
}


def test_every_architecture_has_a_config_and_a_tiny_form():
    in_configs = {load_config(p).architecture for p in CONFIGS}
    assert set(ARCHITECTURES) == in_configs == set(TINY) | {"speech_encoder"}  # that one: tests/test_speech_encoder.py


def test_the_cross_corpus_recipe_is_the_multi_corpus_data_and_schedule_with_the_models_own_training():
    import dataclasses

    from trainer.config import same_recipe
    from trainer.zoo import loco_recipe

    multicorpus = load_config(ROOT / "trainer" / "configs" / "multicorpus.toml")
    for path in CONFIGS:
        cfg = load_config(path)
        recipe = loco_recipe(cfg, multicorpus)
        mine = ("architecture", "hparams", "frontend", "window_s", "augment")
        assert all(getattr(recipe, k) == getattr(cfg, k) for k in mine), path.stem
        theirs = {f.name for f in dataclasses.fields(cfg)} - set(mine) - {"protocol"}
        assert all(getattr(recipe, k) == getattr(multicorpus, k) for k in theirs), path.stem
        assert recipe.protocol == "loco"
    # the default's recipe is the cross-corpus table's, so the zoo reads those runs
    default = loco_recipe(load_config(ROOT / "trainer" / "configs" / "default.toml"), multicorpus)
    assert same_recipe(default, dataclasses.replace(multicorpus, protocol="loco"))
    # a config that leaves the shared chain keeps its own augmentation across corpora too
    noise_only = loco_recipe(load_config(ROOT / "trainer" / "configs" / "parallel_cnn.toml"), multicorpus)
    assert noise_only.augment != multicorpus.augment and noise_only.augment.mixup_alpha == 0


@pytest.mark.parametrize("config", [p for p in CONFIGS if p.stem not in ("speech_encoder", "whisper")], ids=lambda p: p.stem)
def test_each_config_builds_its_model_within_the_bundle_budget(config):
    cfg = load_config(config)
    model = build_model(cfg.architecture, cfg.frontend.n_features, 8, cfg.hparams)
    assert sum(p.numel() for p in model.parameters()) * 4 < 5 * 1024 * 1024  # a bundle of at most 5 MB


@pytest.mark.parametrize("config", [p for p in CONFIGS if p.stem not in ("speech_encoder", "whisper")], ids=lambda p: p.stem)
def test_each_configs_model_tells_two_clips_apart_through_its_own_front_end(config):
    """A front-end can hide what a model reads (per-utterance normalisation leaves band means and
    spreads constant): untrained, the model must still give two different clips different logits."""
    from helpers import speechlike

    from serapp.features import FrontEnd

    cfg = load_config(config)
    torch.manual_seed(0)
    model = build_model(cfg.architecture, cfg.frontend.n_features, 8, cfg.hparams).eval()
    n = int(cfg.window_s * cfg.frontend.sample_rate)
    clips = torch.from_numpy(np.stack([speechlike(cfg.window_s, cfg.frontend.sample_rate, seed=1)[:n],
                                       0.3 * speechlike(cfg.window_s, cfg.frontend.sample_rate, seed=2)[:n]]))
    with torch.no_grad():
        logits = model(FrontEnd(cfg.frontend)(clips.float()))
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)


def _tiny(name, n_features=12, n_classes=4, seed=0):
    torch.manual_seed(seed)
    return build_model(name, n_features, n_classes, TINY[name])


@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_and_backward_on_tiny_inputs(name):
    model = _tiny(name).train()
    x = torch.randn(3, 12, 37) * 10 - 40  # log-mel-like dB values; any window length
    logits = model(x)
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 3])).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not dead
    assert any(float(p.grad.abs().sum()) > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 12, 61)).shape == (1, 4)  # another length


@pytest.mark.parametrize("name", sorted(TINY))
def test_bundle_round_trip_is_bit_identical_and_runs_in_the_predictor(name, tmp_path):
    from serapp.features import FrontEndConfig

    fe = FrontEndConfig(n_mels=24, kind="mfcc", n_mfcc=12, normalize=True)
    model = _tiny(name).eval()
    meta = BundleMeta(architecture=name, labels=["neutral", "happy", "sad", "angry"], frontend=fe, window_s=0.5)
    path = save_bundle(tmp_path / f"{name}.safetensors", model, meta)
    loaded, meta2 = load_bundle(path)
    x = torch.randn(2, 12, 51)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta2.hparams == model.hparams
    assert read_bundle_summary(path)[1] == sum(p.numel() for p in model.parameters())  # as model-info counts
    probs = Predictor(loaded, meta2, torch.device("cpu")).predict_prepared(np.random.default_rng(0).standard_normal(12000).astype(np.float32) * 0.1)
    assert probs.shape == (4,) and abs(probs.sum() - 1) < 1e-5


@pytest.mark.parametrize("name", sorted(TINY))
def test_onnx_export_gives_torchs_probabilities(name, tmp_path):
    import onnxruntime as ort

    from trainer.export import export_onnx

    model = _tiny(name).eval()
    path = export_onnx(model, 12, 51, tmp_path / f"{name}.onnx")
    x = torch.randn(2, 12, 51)
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=-1).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"features": x.numpy()})[0]
    got = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_the_zoo_command_trains_each_config_and_fills_the_table(tmp_path):
    import json

    from helpers import make_ravdess_corpus

    from trainer.cli import main as train_main

    corpus = make_ravdess_corpus(tmp_path / "rav", actors=range(1, 25), labels=("neutral", "angry"), reps=1, seconds=0.3)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- zoo:start -->\nPLACEHOLDER\n<!-- zoo:end -->\n\nafter\n")
    args = ["zoo", "--data", f"ravdess={corpus}", "--configs", "logreg", "ffn", "--folds", "1", "--random-split",
            "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "zoo.json"), "--readme", str(readme),
            "--no-cache", "--set", "train.epochs=2", "--set", "data.window_s=0.5", "--set", "train.threads=1"]
    assert train_main(args) == 0
    results = json.loads((tmp_path / "zoo.json").read_text())
    for name in ("logreg", "ffn"):
        row = results["models"][name]
        assert row["emobox"]["folds"] == 1 and 0 <= row["emobox"]["ua"]["mean"] <= 1 and row["parameters"] > 0
        assert row["cpu_ms"] > 0
    assert "speaker-dependent" in results["models"]["logreg"]["random_split"]["protocol"]
    assert results["models"]["logreg"]["origin"].startswith("37.8%")
    costs = [row["cpu_ms"] for row in results["models"].values()]
    assert costs == sorted(costs)  # trained, and listed, cheapest per window first
    assert "random_split" not in results["models"]["ffn"]  # no origin figure to stand beside: not trained
    from trainer import zoo
    from trainer.zoo import render_markdown

    logreg = results["models"]["logreg"]
    logreg["random_split"]["wa"]["mean"] = logreg["origin_accuracy"] + 0.2  # far from the origin: one line says why
    assert "- logreg: 57.8% here against 37.8% there: the course project's own clips and split." in render_markdown(results)
    logreg["random_split"]["wa"]["mean"] = logreg["origin_accuracy"] + 0.05
    assert "here against" not in render_markdown(results)
    text = readme.read_text()
    assert "| logreg |" in text and "| ffn |" in text and "Made by `ser-train zoo " in text and "PLACEHOLDER" not in text and text.endswith("after\n")
    assert "Not run" not in text  # the configs were named; run with none named, it says why the encoders were not
    assert results["finished"] and "Still running" not in text
    partial = {**results, "finished": False, "planned": [*results["planned"], "tcn"]}  # as saved mid-run
    assert "Still running: these are the runs finished so far; not finished yet: tcn." in render_markdown(partial)
    assert "not finished yet: the second stage." in render_markdown({**results, "finished": False})
    assert "Not run: speech_encoder, because it needs pretrained weights" in render_markdown(
        {**results, "not_run": {"speech_encoder": zoo.ENCODER_NOT_RUN}})
    assert train_main(args) == 0  # a second run keeps the finished folds
    assert json.loads((tmp_path / "zoo.json").read_text())["models"]["ffn"]["emobox"] == results["models"]["ffn"]["emobox"]


def test_the_zoo_with_two_jobs_gives_the_same_figures_as_one_and_a_log_per_config(tmp_path, capsys):
    import json
    import subprocess
    import sys

    from helpers import make_ravdess_corpus

    from trainer.cli import main as train_main

    corpus = make_ravdess_corpus(tmp_path / "rav", actors=range(1, 25), labels=("neutral", "angry"), reps=1, seconds=0.3)

    def args(out, jobs, threads):
        readme = tmp_path / f"README-{out}.md"
        readme.write_text("<!-- zoo:start -->\n<!-- zoo:end -->\n")
        return ["zoo", "--data", f"ravdess={corpus}", "--configs", "logreg", "ffn", "--folds", "1",
                "--random-split", "--jobs", str(jobs), "--out", str(tmp_path / out), "--results",
                str(tmp_path / f"{out}.json"), "--readme", str(readme), "--no-cache", "--set", "train.epochs=2",
                "--set", "data.window_s=0.5", "--set", f"train.threads={threads}"]

    assert train_main(args("one", 1, 1)) == 0
    capsys.readouterr()
    assert train_main(args("two", 2, 2)) == 0  # each worker gets one of the two threads: the same arithmetic
    queued = capsys.readouterr().err
    # the workers take single folds, so one config's two runs can train at once
    for run in ("logreg emobox fold1", "logreg random fold1", "ffn emobox fold1"):
        assert f"== {run}: queued for a worker" in queued
    assert train_main(args("two", 2, 2)) == 0  # again: the finished folds are read, no worker starts
    assert "queued for a worker" not in capsys.readouterr().err
    one, two = (json.loads((tmp_path / f"{out}.json").read_text()) for out in ("one", "two"))
    assert list(two["models"]) == two["planned"] and two["finished"]  # the planned order, however the jobs ended
    for name in two["planned"]:
        for figure in ("emobox", "random_split"):
            assert one["models"][name].get(figure) == two["models"][name].get(figure)
        assert "epoch" in (tmp_path / "two" / name / "train.log").read_text()
        assert json.loads((tmp_path / "two" / name / "emobox" / "fold1" / "config.json").read_text())["threads"] == 1

    # a worker's failure ends the command with its one line, as without workers
    stored = tmp_path / "two" / "ffn" / "emobox" / "fold1" / "config.json"
    stored.write_text(stored.read_text().replace('"epochs": 2', '"epochs": 3'))
    bad = subprocess.run([sys.executable, "-m", "trainer", *args("two", 2, 2)], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "was trained with other settings (epochs)" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("name", sorted(TINY))
def test_each_architecture_runs_in_serapp_predict_and_the_live_analyzer(name, tmp_path, capsys):
    import json

    from helpers import speechlike, write_audio

    from serapp.audio.sources import FileSource
    from serapp.cli import main as serapp_main
    from serapp.features import FrontEndConfig
    from serapp.live import LiveAnalyzer
    from serapp.predictor import load_model
    from serapp.settings import AnalysisSettings

    labels = ["neutral", "happy", "sad", "angry"]
    meta = BundleMeta(architecture=name, labels=labels, frontend=FrontEndConfig(n_mels=12, normalize=True), window_s=0.5)
    path = save_bundle(tmp_path / f"{name}.safetensors", _tiny(name).eval(), meta)
    audio = speechlike(1.5, 16000, seed=3)
    wav = write_audio(tmp_path / "speech.wav", audio, 16000)
    assert serapp_main(["predict", str(wav), "--model", str(path), "--format", "jsonl", "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert list(row["probabilities"]) == labels and abs(sum(row["probabilities"].values()) - 1) < 1e-4

    src = FileSource(samples=audio, sample_rate=16000, realtime=False)
    analyzer = LiveAnalyzer(src, load_model(path, device="cpu"), AnalysisSettings(hop_s=0.25))
    readings = []
    for i in range(0, audio.size, 800):  # 50 ms blocks, as a device delivers them
        src.ring.write(audio[i : i + 800])
        readings.append(analyzer.poll())
    spoken = [r for r in readings if r is not None and r.speech]
    assert spoken and all(r.label in labels for r in spoken)


def test_the_zoo_on_emovo_trains_each_variant_on_the_origins_split_and_leaving_each_speaker_out(tmp_path):
    """`--emovo`: TIM-Net and CkTIM-net with 1, 3 and 6 blocks and the default recipe, each on a random
    70/10/20 split and leaving one actor out, in the zoo's table beside the origin's figures."""
    import json

    from helpers import make_corpus, make_ravdess_corpus, tiny_whisper_folder

    from trainer.cli import main as train_main
    from trainer.cli_tables import zoo_markdown

    rav = make_ravdess_corpus(tmp_path / "rav", actors=range(1, 25), labels=("neutral", "angry"), reps=1, seconds=0.3)
    emovo = make_corpus(tmp_path / "emovo", "emovo", speakers=range(6), labels=("neutral", "angry"), reps=5, seconds=0.5)
    encoder = tiny_whisper_folder(tmp_path / "whisper", blocks=4)
    readme = tmp_path / "README.md"
    readme.write_text("<!-- zoo:start -->\n<!-- zoo:end -->\n")
    args = ["zoo", "--data", f"ravdess={rav}", "--data", f"emovo={emovo}", "--configs", "logreg", "--folds", "1",
            "--emovo", "--encoder-dir", str(encoder), "--out", str(tmp_path / "runs"), "--results",
            str(tmp_path / "zoo.json"), "--readme", str(readme), "--no-cache", "--set", "train.epochs=1",
            "--set", "data.window_s=0.5", "--set", "train.threads=1"]
    assert train_main(args) == 0
    emo = json.loads((tmp_path / "zoo.json").read_text())["emovo"]
    schedule = {f"timnet-{k}, origin's schedule" for k in (1, 3, 6)}
    assert set(emo["models"]) == {"timnet-1", "timnet-3", "timnet-6", "cktimnet-1", "cktimnet-3", "cktimnet-6", "default",
                                  *schedule}
    assert emo["finished"] and emo["speakers"] == 6
    for name, row in emo["models"].items():
        assert "speaker-dependent" in row["random"]["protocol"], name
        assert 0 <= row["random"]["wa"]["mean"] <= 1 and row["cpu_ms"] > 0
        if name in schedule:  # the published schedule: the random split only, its test clips watched
            assert "loso" not in row and row["random"]["test_peak"]["epochs"] == 1, name
        else:
            assert row["loso"]["folds"] == 6 and "test_peak" not in row["random"], name
    assert emo["models"]["timnet-3, origin's schedule"]["origin_accuracy"] == 0.741
    assert emo["models"]["timnet-6"]["origin_accuracy"] == 0.848 and emo["models"]["timnet-6"]["blocks"] == 6
    runs = tmp_path / "runs" / "emovo"
    for k in range(1, 7):  # each actor tested once, another validating
        record = json.loads((runs / "timnet-3" / "loso" / f"fold{k}" / "metrics.json").read_text())
        assert len(record["test_speakers"]) == 1 and "speaker-independent" in record["protocol"]
    split = json.loads((runs / "timnet-3" / "random" / "fold1" / "config.json").read_text())
    assert (split["protocol"], split["n_folds"], split["val_fraction"]) == ("random", 5, 0.125)
    published = runs / "timnet-3-origin-schedule" / "random" / "fold1"
    cfg = json.loads((published / "config.json").read_text())
    assert (cfg["batch_size"], cfg["lr_schedule"], cfg["augment"]["noise_prob"], cfg["augment"]["mixup_alpha"]) == (
        64, "constant", 0.0, 0.0)
    assert cfg["epochs"] == 1  # --set has the last word over the schedule
    history = json.loads((published / "history.json").read_text())
    metrics = json.loads((published / "metrics.json").read_text())
    peak = emo["models"]["timnet-3, origin's schedule"]["random"]["test_peak"]
    assert (peak["wa"], peak["epoch"]) == (history[0]["test_wa"], 1) and history[0]["test_wa"] == metrics["test"]["wa"]
    assert not (runs / "timnet-3-origin-schedule" / "loso").exists()
    text = readme.read_text()
    assert "2 emotions; chance 50.0%" in text and "| timnet-6 | 6 |" in text and "| 84.8 |" in text and "| 164–295 |" in text
    assert "Still running on EMOVO" in "\n".join(zoo_markdown({**json.loads((tmp_path / "zoo.json").read_text()),
                                                                "emovo": {**emo, "finished": False}}).splitlines())
    assert train_main(args) == 0  # a second run keeps every finished fold
    again = json.loads((tmp_path / "zoo.json").read_text())["emovo"]["models"]
    assert {n: (r["random"], r.get("loso"), r["cpu_ms"]) for n, r in again.items()} == {
        n: (r["random"], r.get("loso"), r["cpu_ms"]) for n, r in emo["models"].items()}  # the costs kept, too
    assert again["timnet-6"]["cpu_ms"] == again["timnet-6, origin's schedule"]["cpu_ms"]  # one network, one cost


def test_a_networks_cost_is_measured_once_and_kept_with_the_figures(tmp_path):
    """The CPU time moves by tens of percent on a shared machine: a second run of a table keeps the
    first one's figure for the same network, whatever its training settings."""
    import json

    from trainer.config import load_config
    from trainer.costs import CostBook

    small = load_config(None, ["model.architecture=\"logreg\"", "data.window_s=0.5"])
    other_schedule = load_config(None, ["model.architecture=\"logreg\"", "data.window_s=0.5", "train.epochs=500"])
    book = CostBook()
    first = book.cost(small)
    assert first["cpu_ms"] > 0 and first["parameters"] > 0 and len(book.entries) == 1
    assert book.cost(other_schedule) == first and len(book.entries) == 1
    assert book.cost(small, n_labels=4)["parameters"] < first["parameters"] and len(book.entries) == 2
    results = tmp_path / "zoo.json"
    results.write_text(json.dumps({"models": {}, "costs": book.entries}))
    assert CostBook.kept_in(results).cost(small) == first
    results.write_text("{not json")
    assert CostBook.kept_in(results).entries == {} and CostBook.kept_in(tmp_path / "none.json").entries == {}
