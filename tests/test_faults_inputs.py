"""Faults, round three: bundles, names, configs and corpora that gave a traceback or a wrong
answer, through the real `serapp` and `ser-train` entry points."""

import json
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from helpers import make_ravdess_corpus, speechlike, write_audio

from serapp.cli import main
from trainer.cli import main as train_main

ROOT = Path(__file__).resolve().parents[1]


def _with_meta(bundle, out, edit):
    """The bundle with its metadata JSON changed (the weights and their checksum kept)."""
    data = bundle.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["meta"])
    edit(meta)
    header["__metadata__"]["meta"] = json.dumps(meta)
    new = json.dumps(header).encode()
    out.write_bytes(struct.pack("<Q", len(new)) + new + data[8 + n :])
    return out


def test_a_header_nested_fifty_thousand_deep_is_one_line(tmp_path, capsys):
    deep = ("[" * 50_000 + "]" * 50_000).encode()
    header = b'{"a":' + deep + b"}"
    bad = tmp_path / "deep.safetensors"
    bad.write_bytes(struct.pack("<Q", len(header)) + header)
    clip = write_audio(tmp_path / "c.wav", speechlike(1.0))
    for argv in (["model-info", str(bad)], ["predict", str(clip), "--model", str(bad)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "nested too deep" in err and err.count("\n") == 1


@pytest.mark.parametrize("edit", [
    lambda t: t.update(corpora=[{"name": "x"}]),
    lambda t: t.update(cross_validation={"protocol": "cv", "ua": {"mean": "high"}, "wa": {"mean": 0.5}}),
    lambda t: t.update(corpora=5),
])
def test_model_info_on_a_malformed_training_record_shows_the_rest(tiny_bundle, tmp_path, capsys, edit):
    bad = _with_meta(tiny_bundle, tmp_path / "bad.safetensors", lambda m: edit(m["training"]))
    assert main(["model-info", str(bad)]) == 0
    out = capsys.readouterr().out
    assert "the bundle's record of it is malformed" in out and "labels: neutral, calm, happy" in out


def test_model_info_bounds_what_it_shows_and_refuses_what_predict_refuses(tiny_bundle, tmp_path, capsys):
    long = _with_meta(tiny_bundle, tmp_path / "long.safetensors",
                      lambda m: m["training"].update(corpora=[{"name": "x", "title": "T" * 4_000_000, "clips": 1,
                                                               "speakers": 1}]))
    assert main(["model-info", str(long)]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 300 and "TTT…" in out
    huge = _with_meta(tiny_bundle, tmp_path / "huge.safetensors", lambda m: m["hparams"].update(blocks=10**6))
    assert main(["model-info", str(huge)]) == 1
    err = capsys.readouterr().err
    assert "blocks must be a whole number" in err and err.count("\n") == 1


def test_a_file_name_too_long_for_the_system_is_one_line(tmp_path, tiny_bundle, capsys):
    assert main(["predict", str(tmp_path / ("x" * 5000 + ".wav")), "--model", str(tiny_bundle)]) == 1
    err = capsys.readouterr().err
    assert "cannot open: File name too long" in err and err.count("\n") == 1


@pytest.mark.parametrize("suffix, keep", [(".flac", 60), (".ogg", 200)])
def test_a_compressed_file_cut_to_its_first_bytes_is_an_error_not_silence(tmp_path, tiny_bundle, capsys, suffix, keep):
    full = tmp_path / f"full{suffix}"
    sf.write(str(full), speechlike(5.0), 16000)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[:keep])
    assert main(["predict", str(cut), "--model", str(tiny_bundle), "--format", "jsonl"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"{cut}: cannot read audio" in err and err.count("\n") == 1


def test_a_config_that_is_not_utf8_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[train]\nepochs = 3 # \xff\n")
    assert train_main(["train", "--config", str(bad), "--data", "ravdess=/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: line 2: not UTF-8 text (byte 0xff" in err and err.count("\n") == 1


def test_an_out_folder_that_takes_no_file_is_refused_before_the_corpus_is_read(tmp_path):
    def no_space():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "trainer", "train", "--data", f"ravdess={tmp_path / 'absent'}",
                           "--out", str(out)], capture_output=True, text=True, timeout=120, preexec_fn=no_space)
    assert proc.returncode == 2 and f"--out {out}: cannot write there" in proc.stderr, proc.stderr
    assert "absent" not in proc.stderr and not out.exists()


@pytest.mark.parametrize("clips, batch", [(40, 39), (33, 32)])
def test_a_last_batch_of_one_clip_does_not_stop_training(tmp_path, clips, batch):
    from trainer.config import load_config
    from trainer.run import run_train

    from serapp.corpora import load_corpus

    corpus = load_corpus("ravdess", make_ravdess_corpus(tmp_path / "c", actors=range(1, 5), reps=1, seconds=0.5))
    cfg = load_config(ROOT / "trainer/configs/tcn.toml", [
        'model.architecture="tcn"', "model.channels=8", "model.blocks=1", "data.window_s=0.5", "train.epochs=1",
        'data.sampling="balanced"', f"data.epoch_clips={clips}", f"train.batch_size={batch}", "train.threads=1",
        'data.protocol="speakers"', "data.speakers_per_fold=1"])
    run_train(cfg, corpus, tmp_path / "run", fold="1", cache_dir=None)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[0]["train_clips"] == clips - 1  # the last batch of one is left out (back in the next epoch)
