"""`ser-train export`: a bundle (and optionally ONNX) from a run's checkpoint."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import torch

from serapp.bundle import read_bundle_meta, save_bundle
from serapp.corpora import CorpusError
from serapp.files import write_atomically
from serapp.models import build_model
from trainer.config import config_from_dict, window_frames
from trainer.distributed import log
from trainer.end_to_end import CHECKPOINT, read_checkpoint
from trainer.quantise import attach_int8
from trainer.summaries import bundle_readout, cv_record
from trainer.training import bundle_meta


def run_export(run_dir: Path, out: Path, onnx: Path | None = None, use_last: bool = False,
               cv_summaries: list[dict] | None = None) -> Path:
    """A bundle from a run's checkpoint (best epoch by default), optionally also ONNX."""
    if onnx is not None and importlib.util.find_spec("onnx") is None:
        raise CorpusError("ONNX export needs the onnx package: pip install 'serapp[train]'")
    ckpt_path = run_dir / CHECKPOINT if run_dir.is_dir() else run_dir
    run_dir = ckpt_path.parent
    if not ckpt_path.is_file():
        raise CorpusError(f"{ckpt_path}: no checkpoint here")
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise CorpusError(f"{cfg_path}: the run's config.json is missing")
    cfg = config_from_dict(json.loads(cfg_path.read_text()))
    ckpt = read_checkpoint(ckpt_path)
    model = build_model(cfg.architecture, cfg.frontend.n_features, len(cfg.labels), cfg.hparams)
    if use_last or ckpt.get("best_state") is None:
        # The last epoch's weights: the average where the run kept one, which is what it scored.
        state = ckpt["ema"]["model"] if "ema" in ckpt else ckpt["model"]
    else:
        state = ckpt["best_state"]
    model.load_state_dict(state)
    model.eval()
    training = {"data": "see the run directory"}
    bundle_path = run_dir / "model.safetensors"
    own = None
    if bundle_path.is_file():  # the run's own record (data, licence, protocol, metrics, calibration) carries over
        run_meta = read_bundle_meta(bundle_path)
        training.update(run_meta.training)
        own = run_meta.readout
    training.update(run=str(run_dir), epoch=ckpt["epoch"] if use_last else ckpt["best_epoch"])
    training.update(cv_record(cv_summaries))
    readout = bundle_readout(own, "the run's bundle", cv_summaries, training)
    attach_int8(model, window_frames(cfg), log=log)
    save_bundle(out, model, dataclasses.replace(bundle_meta(cfg, cfg.labels, dict(model.hparams), training),
                                                readout=readout))
    if onnx is not None:
        export_onnx(model, cfg.frontend.n_features, window_frames(cfg), onnx)
    return out


def export_onnx(model: torch.nn.Module, n_features: int, frames: int, path: Path) -> Path:
    """The network alone (features in, logits out) as ONNX, for windows of `frames` frames (the
    model's own: every reading is made of such pieces) and any batch. The frames are fixed
    because adaptive pooling and continuous kernels size themselves by the input."""
    import warnings

    dummy = torch.randn(1, n_features, frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notices (its future; fixed window sizes)
        return write_atomically(path, lambda tmp: torch.onnx.export(
            model.eval(), (dummy,), tmp, input_names=["features"], output_names=["logits"],
            dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False))
