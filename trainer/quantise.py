"""The frozen Whisper encoder quantised to int8 for onnxruntime (serapp/models/int8.py runs it).

Dynamic quantisation (weights int8 per output channel, activations quantised on the fly) of
the matrix products only: the two convolutions of the stem and the layer norms stay float.
onnxruntime's quantiser is the maintained path; torch's own dynamic quantisation API is
deprecated.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn


class _Pooled(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.pooled(features)


def int8_graph(model: nn.Module, frames: int) -> bytes:
    """The model's encoder up to its pooled layer outputs, for windows of `frames` log-mel
    frames and any batch, as a quantised ONNX graph (bytes)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    use_int8, model.use_int8 = model.use_int8, False  # export the float path
    try:
        with tempfile.TemporaryDirectory() as tmp:
            float_path, int8_path = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the exporter's notices about its future
                torch.onnx.export(_Pooled(model).eval(), (torch.zeros(1, 80, frames),), str(float_path),
                                  input_names=["features"], output_names=["pooled"],
                                  dynamic_axes={"features": {0: "batch"}, "pooled": {0: "batch"}}, dynamo=False)
            graph = onnx.load(str(float_path))
            _constants_to_initializers(graph)
            onnx.save(graph, str(float_path))
            logging.disable(logging.WARNING)  # its advice to pre-process, printed on every call
            try:
                # 7-bit weights (reduce_range): on CPUs without VNNI (AVX2 alone, as this project's AMD EPYC
                # machines) 8-bit products saturate, and the shipped graph's probabilities moved 0.24 from
                # float32 there; with 7 bits, 0.016 (and the same on VNNI CPUs, which never saturate).
                quantize_dynamic(str(float_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True,
                                 reduce_range=True, op_types_to_quantize=["MatMul", "Gemm"])
            finally:
                logging.disable(logging.NOTSET)
            return int8_path.read_bytes()
    finally:
        model.use_int8 = use_int8


def _constants_to_initializers(graph) -> None:
    """The exporter folds the frozen weights into Constant nodes; the quantiser only quantises
    weights it finds among the initializers."""
    import onnx

    kept = []
    for node in graph.graph.node:
        value = node.attribute[0].t if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value" else None
        if value is not None and len(value.dims) >= 2:
            value.name = node.output[0]
            graph.graph.initializer.append(value)
        else:
            kept.append(node)
    del graph.graph.node[:]
    graph.graph.node.extend(kept)
    onnx.checker.check_model(graph)


def attach_int8(model: nn.Module, frames: int, log=print) -> None:
    """Give a frozen-Whisper model its int8 graph, where the packages that make one are here."""
    if getattr(model, "backbone", "") != "whisper" or not getattr(model, "frozen_encoder", False):
        return
    try:
        graph = int8_graph(model, frames)
    except ImportError as exc:
        log(f"no int8 encoder in this bundle ({exc.name} is missing: pip install 'serapp[train]'); "
            "it will run in float32")
        return
    model.attach_int8(graph, frames)  # checked as a bundle's is (serapp/models/int8_check.py)
