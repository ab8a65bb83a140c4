import json
import stat

import numpy as np
import pytest
import safetensors.torch
import torch
from helpers import make_bundle, rewrite_bundle

from serapp.bundle import (
    FORMAT_VERSION,
    BundleMeta,
    load_bundle,
    read_bundle_meta,
    save_bundle,
)
from serapp.errors import BundleError
from serapp.features import FrontEnd, FrontEndConfig
from serapp.models import build_model


def _expect(path, fragment):
    with pytest.raises(BundleError) as e:
        load_bundle(path)
    msg = str(e.value)
    assert str(path) in msg and fragment in msg and "\n" not in msg, msg
    return msg


def test_round_trip_gives_bit_identical_outputs(tmp_path):
    path, model = make_bundle(tmp_path / "m.safetensors", channels=24, blocks=3)
    loaded, meta = load_bundle(path)
    x = FrontEnd(meta.frontend)(torch.randn(4, 16000))
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta.hparams == {"channels": 24, "blocks": 3, "kernel_size": 3, "dropout": 0.2}
    assert meta.labels[0] == "neutral" and meta.sample_rate == 16000 and meta.window_s == 1.0
    assert meta.format_version == FORMAT_VERSION and meta.created_utc.endswith("Z")
    assert read_bundle_meta(path).to_json() == meta.to_json()


def test_meta_carries_training_record_and_front_end(tmp_path):
    fe = FrontEndConfig(n_mels=40, kind="mfcc", n_mfcc=20, normalize=True)
    model = build_model("tcn", fe.n_features, 3, {"channels": 8, "blocks": 1})
    training = {"data": "RAVDESS", "protocol": "EmoBox 6-fold", "metrics": {"ua": 0.7, "wa": 0.71}}
    meta = BundleMeta("tcn", ["a", "b", "c"], fe, 2.5, training=training, trim_top_db=35.0)
    path = save_bundle(tmp_path / "x.safetensors", model, meta)
    got = read_bundle_meta(path)
    assert got.frontend == fe and got.training == training and got.trim_top_db == 35.0 and got.window_s == 2.5
    assert not list(tmp_path.glob("*.tmp")), "the atomic write left its temp file"
    assert path.stat().st_mode & stat.S_IRGRP  # shareable, not mkstemp's 0600


def test_missing_file_and_directory(tmp_path):
    _expect(tmp_path / "none.safetensors", "no such file")
    _expect(tmp_path, "is a directory")


@pytest.mark.parametrize("keep", [5, 40, 0.5, -8])
def test_truncated_file(tiny_bundle, tmp_path, keep):
    data = tiny_bundle.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (keep if keep > 0 else len(data) + keep)
    bad = tmp_path / "trunc.safetensors"
    bad.write_bytes(data[:n])
    _expect(bad, "truncated")


def test_flipped_weight_byte_is_caught_by_the_checksum(tiny_bundle, tmp_path):
    data = bytearray(tiny_bundle.read_bytes())
    data[-100] ^= 0x40
    bad = tmp_path / "flip.safetensors"
    bad.write_bytes(bytes(data))
    _expect(bad, "checksum")


def test_random_bytes_and_other_formats(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    _expect(junk, "not a serapp model bundle")
    wav = tmp_path / "audio.wav"
    wav.write_bytes(b"RIFF" + bytes(100))
    _expect(wav, "not a serapp model bundle")
    pt = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(3)}, pt)
    _expect(pt, "PyTorch checkpoint")
    plain = tmp_path / "plain.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(3)}, str(plain))
    _expect(plain, "without serapp metadata")


def test_corrupt_header_json(tiny_bundle, tmp_path):
    data = bytearray(tiny_bundle.read_bytes())
    data[9] = ord("#")  # inside the JSON header
    bad = tmp_path / "hdr.safetensors"
    bad.write_bytes(bytes(data))
    _expect(bad, "not valid JSON")


def test_unknown_architecture(tiny_bundle, tmp_path):
    bad = rewrite_bundle(tiny_bundle, tmp_path / "arch.safetensors", meta_edit=lambda m: m.update(architecture="wavlm-xxl"))
    msg = _expect(bad, "unknown architecture 'wavlm-xxl'")
    assert "tcn" in msg


def test_unknown_hyper_parameter(tiny_bundle, tmp_path):
    bad = rewrite_bundle(tiny_bundle, tmp_path / "hp.safetensors", meta_edit=lambda m: m["hparams"].update(heads=4))
    _expect(bad, "no hyper-parameter heads")


def test_labels_do_not_match_weights(tiny_bundle, tmp_path):
    bad = rewrite_bundle(tiny_bundle, tmp_path / "labels.safetensors", meta_edit=lambda m: m.update(labels=["a", "b", "c"]))
    msg = _expect(bad, "weights do not match the metadata")
    assert "3 labels" in msg and "head.1.weight" in msg


def test_missing_tensor(tiny_bundle, tmp_path):
    bad = rewrite_bundle(tiny_bundle, tmp_path / "miss.safetensors", tensor_edit=lambda t: t.pop("head.1.bias"))
    _expect(bad, "missing head.1.bias")


def test_newer_format_version(tiny_bundle, tmp_path):
    newer = lambda md: {**md, "format_version": str(FORMAT_VERSION + 1)}  # noqa: E731
    bad = rewrite_bundle(tiny_bundle, tmp_path / "new.safetensors", raw_metadata=newer)
    _expect(bad, f"format version {FORMAT_VERSION + 1} is newer")


def test_damaged_metadata(tiny_bundle, tmp_path):
    bad = rewrite_bundle(tiny_bundle, tmp_path / "meta.safetensors", meta_edit=lambda m: m.pop("labels"))
    _expect(bad, "damaged metadata: metadata lacks labels")
    bad = rewrite_bundle(tiny_bundle, tmp_path / "fe.safetensors", meta_edit=lambda m: m["frontend"].update(kind="cqt"))
    _expect(bad, "damaged metadata")
    bad = rewrite_bundle(tiny_bundle, tmp_path / "raw.safetensors", raw_metadata=lambda md: {**md, "meta": "{not json"})
    _expect(bad, "damaged metadata")


def test_loading_never_unpickles(tiny_bundle, monkeypatch):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("a bundle load must not unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model, meta = load_bundle(tiny_bundle)
    assert meta.architecture == "tcn"


def _rewrite_header(path, out, edit):
    """Change the raw safetensors header JSON (what a hand-edited or foreign file might hold)."""
    import struct

    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header)
    new = json.dumps(header).encode()
    out.write_bytes(struct.pack("<Q", len(new)) + new + data[8 + n :])
    return out


def test_header_of_the_wrong_shape_is_named_not_a_traceback(tiny_bundle, tmp_path):
    as_list = _rewrite_header(tiny_bundle, tmp_path / "l.safetensors",
                              lambda h: h.update(__metadata__=list(h["__metadata__"].items())))
    _expect(as_list, "corrupt: __metadata__ must be a JSON object of strings")
    name = "head.1.bias"
    text_offsets = _rewrite_header(tiny_bundle, tmp_path / "o.safetensors",
                                   lambda h: h[name].update(data_offsets="0,8"))
    _expect(text_offsets, f"corrupt: tensor {name!r} has no valid dtype, shape and data_offsets")
    meta_number = _rewrite_header(tiny_bundle, tmp_path / "n.safetensors", lambda h: h["__metadata__"].update(meta=5))
    _expect(meta_number, "corrupt: __metadata__ must be a JSON object of strings")


@pytest.mark.parametrize("edit, fragment", [
    (lambda m: m["hparams"].update(channels=1e6), "cannot build 'tcn' from the metadata"),
    (lambda m: m["hparams"].update(channels=1_000_000), "channels must be a whole number in [1, 16384]"),
    (lambda m: m["hparams"].update(blocks=1_000_000), "blocks must be a whole number in [1, 64]"),  # a minute to build
    (lambda m: m.update(window_s=1e-9), "window_s must be at least one front-end frame"),
    (lambda m: m.update(window_s=1e9), "window_s must be a number of seconds in (0, 60]"),
    (lambda m: m.update(window_s="3"), "window_s must be a number of seconds"),
    (lambda m: m["frontend"].update(n_fft=10**9), "n_fft must be in [16, 16384]"),
    (lambda m: m["frontend"].update(sample_rate=16000.5), "sample_rate must be a whole number"),
    (lambda m: m.update(labels=["a", "a"] + m["labels"][2:]), "labels must be a list of 1 to 64 different names"),
    (lambda m: m.update(hparams=[1, 2]), "hparams must be a JSON object"),
    (lambda m: m.update(training="all of it"), "training must be a JSON object"),
])
def test_metadata_types_and_ranges_are_checked_before_anything_is_built(tiny_bundle, tmp_path, edit, fragment):
    bad = rewrite_bundle(tiny_bundle, tmp_path / "bad.safetensors", meta_edit=edit)
    _expect(bad, fragment)
    from serapp.bundle import read_bundle_meta as meta_only

    if "weights do not match" not in fragment and "cannot build" not in fragment and "hyper-parameter" not in fragment \
            and "must be a whole number in" not in fragment:
        with pytest.raises(BundleError, match="damaged metadata"):
            meta_only(bad)


def test_a_nan_weight_without_a_checksum_is_refused_and_a_nan_output_never_reads_as_a_figure(tiny_bundle, tmp_path,
                                                                                              capsys):
    from helpers import speechlike, write_audio

    from serapp.cli import main
    from serapp.predictor import load_model

    def poison(tensors):
        name = next(k for k, t in tensors.items() if t.is_floating_point() and t.numel() > 1)
        tensors[name][0] = float("nan")

    bad = rewrite_bundle(tiny_bundle, tmp_path / "nan.safetensors", tensor_edit=poison,
                   raw_metadata=lambda m: {k: v for k, v in m.items() if k != "weights_sha256"})
    _expect(bad, "holds NaN or infinite values")
    clip = write_audio(tmp_path / "a.wav", speechlike(2.0), 16000)
    assert main(["predict", str(clip), "--model", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert "nan" not in out.lower() and "holds NaN" in err and err.count("\n") == 1
    predictor = load_model(tiny_bundle, device="cpu")  # weights that overflow on the way: the output says so
    with torch.no_grad():
        next(p for p in predictor.model.parameters() if p.numel() > 1).fill_(float("inf"))
    with pytest.raises(BundleError, match="output is not finite"):
        predictor.probabilities(np.zeros((1, predictor.model_window), np.float32))


@pytest.mark.parametrize("edit, fragment", [
    (lambda m: m.update(window_s=1e-9), "window_s must be at least one front-end frame"),
    (lambda m: m["hparams"].update(blocks=1_000_000), "blocks must be a whole number in [1, 64]"),
])
def test_a_bundle_asking_for_the_impossible_is_one_line_in_predict_and_evaluate(tiny_bundle, tmp_path, capsys,
                                                                                 edit, fragment):
    from helpers import make_ravdess_corpus, speechlike, write_audio

    from serapp.cli import main
    from trainer.cli import main as train_main

    bad = rewrite_bundle(tiny_bundle, tmp_path / "bad.safetensors", meta_edit=edit)
    clip = write_audio(tmp_path / "a.wav", speechlike(1.0), 16000)
    assert main(["predict", str(clip), "--model", str(bad)]) == 1
    err = capsys.readouterr().err
    assert fragment in err and str(bad) in err and err.count("\n") == 1
    corpus = make_ravdess_corpus(tmp_path / "rav", actors=(1, 2), labels=("happy", "sad"), reps=1)
    assert train_main(["evaluate", "--model", str(bad), "--data", f"ravdess={corpus}", "--cache-dir", str(tmp_path / "cache")]) == 1
    assert fragment in capsys.readouterr().err
