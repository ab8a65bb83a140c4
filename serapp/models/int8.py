"""The frozen Whisper encoder in int8 through onnxruntime: the CPU path of the default model.

One 3 s window through four blocks costs about 63 ms in torch float32 on one thread and about
21 ms in onnxruntime with int8 weights (benchmarks/bench_inference.py). The bundle carries the
quantised graph as bytes (`encoder_int8`, made by trainer/quantise.py from the same float
weights it also carries); the float path stays for GPUs and for training, and is the
reference the int8 one is held to (tests/test_int8.py: every class probability within
`PROBABILITY_TOLERANCE`).

The graph reads windows of one length (the model's: every reading is made of such windows);
anything else, or onnxruntime missing, runs in float32 through torch.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

# The most any class probability of a window may move from float32 (measured on 210 speech
# windows of the seven corpora: median 0.018, 95th percentile 0.060, largest 0.095).
PROBABILITY_TOLERANCE = 0.15


class Int8Encoder:
    """An onnxruntime session over the quantised graph (log-mel (batch, 80, frames) in, pooled
    layer outputs out), made on first use; thread-safe as onnxruntime's `run` is."""

    def __init__(self, graph: bytes):
        self._graph = graph
        self._session = None
        self._frames = None
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return False
        return True

    def _open(self):
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                options = ort.SessionOptions()
                # torch's thread count is the process's budget (serapp.predictor.default_threads)
                options.intra_op_num_threads = max(1, torch.get_num_threads())
                options.inter_op_num_threads = 1
                session = ort.InferenceSession(self._graph, options, providers=["CPUExecutionProvider"])
                self._frames = session.get_inputs()[0].shape[-1]
                self._session = session
        return self._session

    def reads(self, features: torch.Tensor) -> bool:
        """Whether this graph can read `features` (CPU, no gradient, its own window length)."""
        if features.device.type != "cpu" or torch.is_grad_enabled() or features.dim() != 3:
            return False
        self._open()
        return features.shape[-1] == self._frames

    def pooled(self, features: torch.Tensor) -> torch.Tensor:
        session = self._open()
        x = np.ascontiguousarray(features.detach().numpy(), dtype=np.float32)
        return torch.from_numpy(session.run(None, {"features": x})[0])
