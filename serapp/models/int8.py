"""The frozen Whisper encoder in int8 through onnxruntime: the CPU path of the default model.

One 3 s window through four blocks costs about 63 ms in torch float32 on one thread and about
21 ms in onnxruntime with int8 weights (benchmarks/bench_inference.py). The bundle carries the
quantised graph as bytes (`encoder_int8`, made by trainer/quantise.py from the same float
weights it also carries); the float path stays for GPUs and for training, and is the
reference the int8 one is held to (tests/test_int8.py: every class probability within
`PROBABILITY_TOLERANCE`).

The graph reads windows of one length (the model's: every reading is made of such windows);
anything else, or onnxruntime missing, runs in float32 through torch. A graph runs only once
serapp/models/int8_check.py has held it to the exporter's, when the bundle is loaded, and at
most `MAX_BATCH` windows at a time, the batches that check covers.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from serapp.models.int8_check import MAX_BATCH, onnx_parts

# The most any class probability may move from float32. Measured with the bundled default on its
# 1,773 validation clips (the largest move per clip): median 0.023, 95th percentile 0.068,
# largest 0.158; the top emotion is the same for 94.9% of them.
PROBABILITY_TOLERANCE = 0.2


class Int8Encoder:
    """An onnxruntime session over the quantised graph (log-mel (batch, 80, frames) in, pooled
    layer outputs out), made on first use; thread-safe as onnxruntime's `run` is. `graph`: a
    checked one (int8_check.check_graph) for windows of `frames`."""

    def __init__(self, graph: torch.Tensor, frames: int):
        self._graph = graph  # the bundle's uint8 buffer: bytes are made from it only to open a session
        self._session = None
        self._frames = frames
        self._threads = 0
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        try:  # onnx checks the graph; without it no graph runs
            import onnxruntime  # noqa: F401

            onnx_parts()  # what the check imports: not `import onnx`, a second more
        except ImportError:
            return False
        return True

    def _open(self):
        # torch's thread count is the process's budget (serapp.predictor.default_threads); a
        # session's is fixed when it is made, so a new count makes a new session.
        threads = max(1, torch.get_num_threads())
        with self._lock:
            if self._session is None or self._threads != threads:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                # no memory plan kept per batch shape (predict on 30 min of audio peaked at 720 MB
                # with them, 631 MB without; one run each)
                options.enable_mem_pattern = False
                session = ort.InferenceSession(self._graph.cpu().numpy().tobytes(), options,
                                               providers=["CPUExecutionProvider"])
                self._session, self._threads = session, threads
            return self._session

    def reads(self, features: torch.Tensor) -> bool:
        """Whether this graph can read `features` (CPU, no gradient, its own window length)."""
        if features.device.type != "cpu" or torch.is_grad_enabled() or features.dim() != 3:
            return False
        return features.shape[-1] == self._frames

    def pooled(self, features: torch.Tensor) -> torch.Tensor:
        session = self._open()
        x = np.ascontiguousarray(features.detach().numpy(), dtype=np.float32)
        return torch.from_numpy(np.concatenate([session.run(None, {"features": x[i : i + MAX_BATCH]})[0]
                                                for i in range(0, max(len(x), 1), MAX_BATCH)]))
