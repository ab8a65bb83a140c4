"""Training end to end on a tiny synthetic corpus: learning, resume, Ctrl-C, DDP, cv, evaluate, export."""

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import make_ravdess_corpus

from serapp.bundle import load_bundle, read_bundle_meta
from serapp.corpora import CorpusError, load_corpus
from serapp.predictor import load_model
from trainer.cli import main as train_main
from trainer.config import load_config
from trainer.folds import leave_speakers_out
from trainer.cli_run import load_cv_summaries
from trainer.export import run_export
from trainer.run import (
    Data,
    run_cv,
    run_evaluate,
    run_train,
    train_one,
)
from trainer.training import TrainingInterrupted

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    'model.architecture="tcn"', "model.channels=24", "model.blocks=2", "model.dropout=0.1",
    "data.window_s=0.5", "data.trim_top_db=30.0", 'data.protocol="speakers"', "data.speakers_per_fold=2",
    "train.batch_size=16", "train.lr=0.005", "train.warmup_epochs=1", "train.patience=50", "train.threads=1",
    "augment.noise_prob=0.3", "augment.reverb_prob=0.1", "augment.tilt_prob=0.2", "augment.telephone_prob=0.0",
]


def tiny_config(epochs=8, extra=()):
    return load_config(ROOT / "trainer/configs/tcn.toml", TINY + [f"train.epochs={epochs}", *extra])


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return make_ravdess_corpus(tmp_path_factory.mktemp("synth"), actors=range(1, 9), reps=3)


@pytest.fixture(scope="module")
def corpus(corpus_dir):
    return load_corpus("ravdess", corpus_dir)


def test_tiny_corpus_trains_and_clearly_beats_chance(corpus, tmp_path):
    cfg = tiny_config(epochs=10)
    record = run_train(cfg, corpus, tmp_path / "run", fold="1", cache_dir=None)
    assert record["test"]["n"] == 24 and len(record["test_speakers"]) == 2
    assert record["test"]["ua"] >= 0.6, record["test"]  # chance is 0.25
    for name in ("config.json", "split.json", "history.json", "metrics.json", "model.safetensors",
                 "checkpoint.pt", "curves.png", "confusion.png"):
        assert (tmp_path / "run" / name).is_file(), name
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, 11))
    assert {"train_loss", "train_acc", "val_loss", "val_ua", "val_wa", "lr", "seconds"} <= set(history[0])
    meta = load_bundle(tmp_path / "run" / "model.safetensors")[1]
    assert meta.training["protocol"] == "speaker-independent" and meta.training["test_metrics"]["ua"] >= 0.6
    assert meta.labels == ["neutral", "happy", "sad", "angry"] and meta.window_s == 0.5


def _weights(path):
    return load_bundle(path)[0].state_dict()


@pytest.mark.parametrize("ema", [0.0, 0.9], ids=["live-weights", "weight-average"])
def test_resume_after_interruption_gives_the_same_weights(corpus, tmp_path, ema):
    cfg = tiny_config(epochs=4, extra=[f"train.ema_decay={ema}"])
    data = Data(corpus, cfg, None)
    split = leave_speakers_out(corpus, k=2, n_val=2)[0]
    train_one(cfg, data, split, tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        train_one(cfg, data, split, tmp_path / "broken", stop_after_epochs=2)
    assert not (tmp_path / "broken" / "model.safetensors").exists()
    train_one(cfg, data, split, tmp_path / "broken", resume=True)
    a, b = _weights(tmp_path / "straight" / "model.safetensors"), _weights(tmp_path / "broken" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ha = json.loads((tmp_path / "straight" / "history.json").read_text())
    hb = json.loads((tmp_path / "broken" / "history.json").read_text())
    assert [h["train_loss"] for h in ha] == [h["train_loss"] for h in hb]


def _cli(*args, timeout=300, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "trainer", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _tiny_args(corpus_dir, out, epochs):
    args = ["train", "--config", ROOT / "trainer/configs/tcn.toml", "--data", f"ravdess={corpus_dir}",
            "--fold", "1", "--out", out, "--no-cache", "--epochs", epochs]
    for s in TINY:
        args += ["--set", s]
    return args


def test_ctrl_c_saves_and_exits_cleanly_then_resume_finishes(corpus_dir, tmp_path):
    out = tmp_path / "run"
    proc = _cli(*_tiny_args(corpus_dir, out, 200))
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert (out / "checkpoint.pt").exists(), proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] >= 1
    done = _cli(*_tiny_args(corpus_dir, out, ckpt["epoch"] + 1), "--resume")
    stdout, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    assert f"resumed {out} after epoch {ckpt['epoch']}" in stderr
    assert (out / "model.safetensors").is_file()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_on_cpu(corpus_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "trainer", *map(str, _tiny_args(corpus_dir, out, 2))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2 and (out / "model.safetensors").is_file()
    # 8 actors - 2 test - 2 validation = 4 actors x 4 labels x 3 clips = 48; each process gets half.
    assert history[0]["world_size"] == 2 and history[0]["train_clips"] == 24


def test_cv_writes_summary_and_robustness(corpus, tmp_path):
    cfg = tiny_config(epochs=3)
    summary = run_cv(cfg, corpus, tmp_path / "cv", "tiny", cache_dir=None, folds=["1", "2"])
    assert [f["fold"] for f in summary["folds"]] == ["fold1", "fold2"]
    assert 0 <= summary["ua"]["mean"] <= 1 and summary["ua"]["sd"] >= 0
    rob = summary["robustness"]
    assert list(rob)[0] == "clean" and "babble 10 dB" in rob and "telephone 300-3400 Hz" in rob
    assert rob["clean"]["drop"] == 0
    md = (tmp_path / "cv" / "summary.md").read_text()
    assert "speaker-independent" in md and "mean ± sd" in md and "reverb" in md
    assert (tmp_path / "cv" / "fold2" / "confusion.png").is_file()
    # The shipped model's bundle carries the cross-validation figures.
    out = run_export(tmp_path / "cv" / "fold1", tmp_path / "x.safetensors",
                     cv_summaries=load_cv_summaries(tmp_path / "cv" / "summary.json"))
    cv = read_bundle_meta(out).training["cross_validation"]
    assert [f["fold"] for f in cv["folds"]] == ["fold1", "fold2"] and cv["ua"]["mean"] == summary["ua"]["mean"]
    assert "babble 10 dB" in cv["robustness_ua"] and read_bundle_meta(out).training["licence"].startswith("CC BY-NC-SA")
    with pytest.raises(CorpusError, match="not a ser-train cv summary"):
        load_cv_summaries([tmp_path / "cv" / "fold1" / "history.json"])


def test_evaluate_restricts_to_shared_labels(corpus, corpus_dir, tmp_path):
    cfg = tiny_config(epochs=2, extra=['data.labels=["neutral", "happy", "sad"]'])
    run_train(cfg, corpus, tmp_path / "r", fold="1", cache_dir=None)
    other = make_ravdess_corpus(tmp_path / "other", actors=[9, 10], labels=("happy", "sad", "angry"), reps=1)
    m = run_evaluate(tmp_path / "r" / "model.safetensors", load_corpus("ravdess", other), "cpu", None)
    assert m["shared_labels"] == ["happy", "sad"] and m["n"] == 4
    assert m["model_only_labels"] == ["neutral"] and m["corpus_only_labels"] == ["angry"]
    assert len(m["confusion"]) == 2


def test_export_from_checkpoint(corpus, tmp_path):
    run_train(tiny_config(epochs=2), corpus, tmp_path / "r", fold="1", cache_dir=None)
    out = run_export(tmp_path / "r", tmp_path / "exported.safetensors", onnx=tmp_path / "net.onnx")
    import onnx

    graph = onnx.load(str(tmp_path / "net.onnx"))
    onnx.checker.check_model(graph)
    assert [i.name for i in graph.graph.input] == ["features"] and [o.name for o in graph.graph.output] == ["logits"]
    a = load_model(out, device="cpu")
    b = load_model(tmp_path / "r" / "model.safetensors", device="cpu")
    x = torch.randn(1, 8000).numpy()
    assert a.predict(x, 16000) == b.predict(x, 16000)  # best epoch, same as the run's bundle


def _file_size_limit(limit):
    """A real failing write: past `limit` bytes the kernel refuses it, as a full disk would."""
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return apply


def test_a_full_disk_stops_training_with_one_line_and_leaves_nothing_torn(corpus_dir, tmp_path):
    out = tmp_path / "run"
    proc = _cli(*_tiny_args(corpus_dir, out, 2), preexec_fn=_file_size_limit(8000))
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"ser-train: {out / 'checkpoint.pt'}: cannot write: File too large (an earlier checkpoint, if any, "
        f"is kept: make room, then run again with --resume --out {out})")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "split.json"]  # no partial checkpoint
    done = _cli(*_tiny_args(corpus_dir, out, 2), "--resume")  # room again: the same command finishes
    _, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    assert (out / "model.safetensors").is_file()


def test_an_export_the_disk_refuses_keeps_the_bundle_it_would_replace(corpus, tmp_path):
    run_train(tiny_config(epochs=1), corpus, tmp_path / "r", fold="1", cache_dir=None)
    target = tmp_path / "models" / "mine.safetensors"
    target.parent.mkdir()
    target.write_bytes((tmp_path / "r" / "model.safetensors").read_bytes())
    before = target.read_bytes()
    proc = _cli("export", tmp_path / "r", "--out", target, preexec_fn=_file_size_limit(4000))
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1 and stderr == f"ser-train: {target}: cannot write: File too large\n"
    assert target.read_bytes() == before and [p.name for p in target.parent.iterdir()] == ["mine.safetensors"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--data", "ravdess=/no/such/dir"], "no such folder"),
        (["train", "--data", "iemocap=/tmp"], "unknown corpus 'iemocap'"),
        (["train", "--data", "ravdess"], "CORPUS=DIR"),
        (["train", "--config", "/no/such.toml", "--data", "ravdess=/tmp"], "no such config file"),
        (["cv", "--data", "ravdess=/tmp", "--set", "train.epochz=3"], "unknown setting(s) epochz"),
        (["cv", "--data", "ravdess=/tmp", "--set", "optim.lr=3"], "unknown section(s) optim"),
        (["cv", "--data", "ravdess=/tmp", "--set", "features.kind=\"cqt\""], "feature kind 'cqt'"),
        (["train", "--data", "ravdess=/tmp", "--resume"], "--resume needs --out"),
        (["cv", "--data", "ravdess=/tmp", "--set", "model.heads=4"], "architecture 'tcn' has no hyper-parameter heads"),
        (["cv", "--data", "ravdess=/tmp", "--set", "model.architecture=\"wavlm\""], "unknown architecture 'wavlm'"),
    ],
)
def test_cli_errors_are_one_line(capsys, argv, fragment):
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_invalid_toml(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3")
    assert train_main(["train", "--config", str(bad), "--data", "ravdess=/tmp"]) == 2
    assert f"{bad}: not valid TOML" in capsys.readouterr().err


def test_a_run_with_a_small_validation_set_says_so_when_it_starts(corpus, capsys):
    from trainer.folds import Split
    from trainer.run import _warn_small_validation

    by_actor = {}
    for r in corpus.records:
        by_actor.setdefault(r.speaker, []).append(r)
    actors = sorted(by_actor)
    one_speaker = by_actor[actors[0]]
    _warn_small_validation(Split("fold1", corpus.records, one_speaker, []))
    err = capsys.readouterr().err
    assert "warning: fold1: the validation set has" in err and "from 1 speaker(s)" in err and err.count("\n") == 1
    enough = by_actor[actors[0]] + by_actor[actors[1]]
    assert len(enough) >= 20
    _warn_small_validation(Split("fold1", corpus.records, enough, []))
    assert capsys.readouterr().err == ""


def _run(*args):
    """`ser-train ARGS` to its end: (exit status, stderr)."""
    proc = _cli(*args)
    _, stderr = proc.communicate(timeout=300)
    return proc.returncode, stderr


def test_a_finished_run_is_never_written_over_and_resume_needs_a_run_with_the_same_config(corpus_dir, tmp_path):
    out = tmp_path / "run"
    assert _run(*_tiny_args(corpus_dir, out, 1))[0] == 0
    metrics = (out / "metrics.json").read_bytes()
    code, err = _run(*_tiny_args(corpus_dir, out, 1))  # the same command again, without --resume
    assert code == 2 and f"{out} already holds a run" in err and "--overwrite" in err and "decoding" not in err
    assert (out / "metrics.json").read_bytes() == metrics
    code, err = _run(*_tiny_args(corpus_dir, out, 1), "--resume", "--set", "model.channels=12")
    assert code == 2 and "was trained with other settings (hparams)" in err and "decoding" not in err  # before the data
    code, err = _run(*_tiny_args(corpus_dir, tmp_path / "nothing-here", 1), "--resume")
    assert code == 2 and "holds no run to continue" in err
    assert _run(*_tiny_args(corpus_dir, out, 1), "--overwrite")[0] == 0


def test_a_damaged_or_foreign_checkpoint_is_one_line_for_resume_and_export(corpus_dir, tmp_path):
    import pickle

    out = tmp_path / "run"
    assert _run(*_tiny_args(corpus_dir, out, 1))[0] == 0
    ckpt = out / "checkpoint.pt"
    for content in (ckpt.read_bytes()[:200], pickle.dumps({"model": print})):  # cut short; a pickle
        ckpt.write_bytes(content)
        for args in ([*_tiny_args(corpus_dir, out, 2), "--resume"], ["export", out, "--out", tmp_path / "m.safetensors"]):
            code, err = _run(*args)
            assert code == 1 and f"{ckpt}: not a readable ser-train checkpoint" in err and "Traceback" not in err


def test_a_corpus_whose_clips_all_fail_to_decode_stops_before_training(tmp_path):
    broken = make_ravdess_corpus(tmp_path / "broken", actors=range(1, 9), reps=1)
    for clip in broken.rglob("*.wav"):
        clip.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    code, err = _run(*_tiny_args(broken, tmp_path / "run", 1))
    assert code == 2 and "none of its" in err and "clips could be decoded" in err
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("setting, fragment", [
    ("data.val_speakers=99", "data.val_speakers=99 would leave"),
    ("model.dropout=-1", "hyper-parameter dropout must be a number in [0, 0.99]"),
])
def test_settings_that_would_train_on_almost_nothing_are_refused(corpus_dir, tmp_path, setting, fragment):
    args = [str(a) for a in _tiny_args(corpus_dir, tmp_path / "run", 1)]
    args[args.index("--fold") + 1] = "all"  # every speaker trains or validates: 99 would leave one to train on
    code, err = _run(*args, "--set", setting)
    assert code == 2 and fragment in err and "Traceback" not in err


def test_a_logistic_regressions_negative_range_is_refused():
    from trainer.config import ConfigError

    with pytest.raises(ConfigError, match=r"hyper-parameter range_db must be a number in \[1, 200\], not -1"):
        load_config(ROOT / "trainer/configs/logreg.toml", ["model.range_db=-1"])
