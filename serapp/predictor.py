"""Running a bundled model on audio: one clip, or a sliding-window timeline over long audio.

CPU threads: `load_model` limits torch to `default_threads()` = half the cores, between 1 and
4, unless told otherwise (argument `threads` or env SERAPP_THREADS). A 3 s window needs a few
milliseconds, more threads buy little, and the live app must leave a core free for audio
capture and drawing. Note that torch's thread count is per process.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from pathlib import Path

import numpy as np
import torch

from serapp.adaptation import PRIOR_WINDOWS, WINDOW_HOP_S, VoiceState, voice_windows
from serapp.audio.io import resample, trim_silence
from serapp.bundle import (  # noqa: F401
    DEFAULT_BUNDLE_NAME,
    BundleMeta,
    default_bundle_path,
    load_bundle,
    resolve_bundle,
)
from serapp.errors import BundleError, DeviceError
from serapp.features import FrontEnd
from serapp.readout import BASIC, Readout

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
# Windows per forward pass over long audio: bounds memory. A large network's activations (the
# Whisper encoder's: about 7 MB a 3 s window) made 32 at once cost 200 MB more peak memory than
# 4 (benchmarks/bench_memory.py), for no speed on a CPU.
_BATCH_WINDOWS = 32
_LARGE_MODEL_BATCH_WINDOWS = 4
_LARGE_MODEL = 1_000_000  # parameters


def available_devices() -> list[str]:
    """Compute devices present on this machine, CPU always included."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(requested: str = "auto", available: list[str] | None = None) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU. An explicit device that is absent is an error."""
    available = available_devices() if available is None else available
    name = (requested or "auto").lower()
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {requested!r} (choose from {', '.join(DEVICE_CHOICES)})")
    if base == "auto":
        for candidate in ("cuda", "mps", "cpu"):
            if candidate in available:
                return torch.device(candidate)
    if base not in available:
        raise DeviceError(f"device {requested!r} is not available here (available: {', '.join(available)})")
    return torch.device(name)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def default_threads() -> int:
    env = os.environ.get("SERAPP_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Starts of equal-length windows covering the signal; the last one ends at the end.

    A signal no longer than one window is a single window of its own length (start 0).
    """
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def model_pieces(start: int, end: int, model_window: int) -> list[tuple[int, int]]:
    """How a window [start, end) is read: model-length pieces at half a piece's hop, the last
    ending at the end; a window no longer than the model's is one piece (looped when read)."""
    length = end - start
    if length <= model_window:
        return [(start, end)]
    return [(start + s, start + s + model_window) for s in window_starts(length, model_window, model_window // 2)]


def loop_to_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Repeat a signal shorter than `length` until it fills it (training crops do the same)."""
    if samples.size >= length or samples.size == 0:
        return samples
    return np.tile(samples, -(-length // samples.size))[:length]


class Predictor:
    """A loaded model with its front-end. Safe to share between threads: one forward pass at a
    time (a lock), and each thread sees the stage times of its own last call. Built directly it
    reads every label the model has (the trainer's view); `load_model` gives the app's readout."""

    def __init__(self, model: torch.nn.Module, meta: BundleMeta, device: torch.device, path: Path | None = None,
                 emotions: str = "all"):
        self.model = model
        self.meta = meta
        self.readout = self.readout_for(emotions)
        self.device = device
        self.path = path
        self.frontend = FrontEnd(meta.frontend).to(device)
        large = sum(p.numel() for p in model.parameters()) >= _LARGE_MODEL
        self.batch_windows = _LARGE_MODEL_BATCH_WINDOWS if large else _BATCH_WINDOWS  # per forward pass
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def last_timing(self) -> dict[str, float]:
        """This thread's last call: {"features_ms", "model_ms"}."""
        return getattr(self._local, "timing", {"features_ms": 0.0, "model_ms": 0.0})

    @property
    def labels(self) -> list[str]:
        """The labels readings show (the readout's: the basic four by default)."""
        return self.readout.labels

    @property
    def emotions(self) -> str:
        return self.readout.emotions

    def readout_for(self, emotions: str) -> Readout:
        """The readout showing `emotions` ("basic" or "all") with the bundle's calibration; the
        basic four from the model's head for them where it has one (serapp.readout)."""
        return Readout.for_bundle(self.meta.labels, self.meta.readout, emotions,
                                  basic_head=bool(getattr(self.model, "has_basic_head", False)))

    def set_emotions(self, emotions: str) -> None:
        """Show "basic" or "all" from the next reading on (one reference store: any thread)."""
        self.readout = self.readout_for(emotions)

    def with_emotions(self, emotions: str) -> "Predictor":
        """The same loaded model (shared, with its lock) showing `emotions`: a view that must score
        over the model's own labels never changes what the app shows."""
        view = copy.copy(self)
        view.readout = view.readout_for(emotions)
        return view

    def is_sure(self, probabilities) -> bool:
        return self.readout.is_sure(probabilities)

    @property
    def sample_rate(self) -> int:
        return self.meta.sample_rate

    @property
    def window_s(self) -> float:
        return float(self.meta.window_s)

    @property
    def adapts(self) -> bool:
        """Whether the model normalises by a voice's statistics (and so can adapt to one)."""
        return bool(getattr(self.model, "speaker_norm", False))

    def new_voice(self, hop_s: float = WINDOW_HOP_S) -> VoiceState | None:
        """A fresh adaptation state at the cold start (None for a model that does not adapt)."""
        if not self.adapts:
            return None
        return VoiceState(self.model.norm_mean.cpu().numpy(), self.model.norm_std.cpu().numpy(),
                          float(getattr(self.model, "prior_windows", PRIOR_WINDOWS)), hop_s,
                          getattr(self.model, "adapt", "full"))

    @torch.no_grad()
    def learn(self, voice: VoiceState, pooled: np.ndarray) -> None:
        """Add speech windows' pooled features (n, layers, size) to `voice`, each counted as the
        model says (`adapt_weighting`: alike, by how neutral the cold head reads it, or with the
        emotion it reads taken off: the head for the basic four where the model has one, as the
        encoder table measured it; serapp.adaptation.voice_windows)."""
        pooled = np.asarray(pooled, np.float32).reshape(-1, *voice.prior_mean.shape)
        weighting = getattr(self.model, "adapt_weighting", "")
        probs, labels, offsets = None, None, getattr(self.model, "emotion_offsets", None)
        if weighting and len(pooled):
            basic = bool(getattr(self.model, "has_basic_head", False))
            logits = self.model.classify(torch.from_numpy(pooled).to(self.device), basic=basic)  # the population's
            probs, labels = torch.softmax(logits.float(), dim=-1).cpu().numpy(), BASIC if basic else self.meta.labels
        features, weights = voice_windows(weighting if len(pooled) else "", pooled, probs, labels,
                                          None if offsets is None else offsets.float().cpu().numpy())
        voice.update(features, weights)

    @torch.no_grad()
    def probabilities(self, windows: np.ndarray, voice: VoiceState | None = None,
                      pooled_out: list | None = None, readout: Readout | None = None) -> np.ndarray:
        """(n, samples) at the model's rate -> (n, shown labels) probabilities through the readout
        (serapp.readout: calibrated, and summed onto the basic four unless all emotions are asked
        for or the model has a head for the four, which the basic readout then reads),
        normalised by `voice`'s statistics where the model adapts (None: the population's).
        `readout`: the one to use (a caller reading several calls as one takes it once). Records
        stage times. A model
        that adapts appends the windows' pooled features to `pooled_out` (the live view learns
        the voice from the very computation it reads with)."""
        windows = np.atleast_2d(np.asarray(windows, dtype=np.float32))
        readout = readout or self.readout
        basic = readout.reads_basic_head  # which head: the one rule is the readout's (`inputs`)
        with self._lock:
            t0 = time.perf_counter()
            feats = self.frontend(torch.from_numpy(windows).to(self.device))
            _synchronize(self.device)  # so the stage times are real on asynchronous devices
            t1 = time.perf_counter()
            if basic or (self.adapts and (voice is not None or pooled_out is not None)):
                pooled = self.model.pooled(feats)
                if pooled_out is not None and self.adapts:
                    pooled_out.extend(pooled.float().cpu().numpy())
                # the head for the four starts a voice from its own population's statistics, as it was trained
                prior = (self.model.basic_norm_mean.cpu().numpy(), self.model.basic_norm_std.cpu().numpy()) if basic \
                    and voice is not None and self.adapts else None
                mean, std = ((torch.as_tensor(a, dtype=torch.float32, device=self.device)
                              for a in voice.statistics(prior))
                             if voice is not None and self.adapts else (None, None))
                logits = (self.model.classify(pooled, mean, std, basic=True) if basic
                          else self.model.classify(pooled, mean, std))
            else:
                logits = self.model(feats)
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            t2 = time.perf_counter()
        if np.isfinite(probs).all():
            probs = readout.apply(probs)
        if not np.isfinite(probs).all():  # a damaged model: never a "nan%" reading
            raise BundleError(self.path or "the model", "its output is not finite (NaN or infinite): the model is damaged")
        self._local.timing = {"features_ms": (t1 - t0) * 1e3, "model_ms": (t2 - t1) * 1e3}
        return probs

    @torch.no_grad()
    def pooled(self, windows: np.ndarray) -> np.ndarray:
        """(n, samples) -> the encoder's pooled features (n, layers, size): what a voice's
        statistics are taken over."""
        windows = np.atleast_2d(np.asarray(windows, dtype=np.float32))
        with self._lock:
            return self.model.pooled(self.frontend(torch.from_numpy(windows).to(self.device))).float().cpu().numpy()

    def _prepare(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        samples = np.asarray(waveform, dtype=np.float32)
        if samples.ndim == 2:  # (frames, channels)
            samples = samples.mean(axis=1)
        return resample(samples.reshape(-1), int(sample_rate), self.sample_rate)

    @property
    def model_window(self) -> int:
        return max(1, int(round(self.window_s * self.sample_rate)))

    def predict(self, waveform: np.ndarray, sample_rate: int) -> dict[str, float]:
        """Whole-clip prediction {label: probability}, trimmed as the bundle says, as the trainer
        scores corpus clips (no speech gate: files are read by serapp.analysis, whose overall
        reading is the mean of the speech windows)."""
        samples = self._prepare(waveform, sample_rate)
        if samples.size == 0:
            raise ValueError("empty waveform")
        if self.meta.trim_top_db is not None:
            samples, _ = trim_silence(samples, self.sample_rate, self.meta.trim_top_db)
        return self._as_dict(self.predict_prepared(samples))

    def predict_prepared(self, samples: np.ndarray, voice: VoiceState | None = None,
                         pooled_out: list | None = None, readout: Readout | None = None) -> np.ndarray:
        """Probabilities (n_labels,) for one window of mono samples at the model's rate: the mean
        over its model-length pieces (`model_pieces`). The one reading rule of the trainer, the
        live view, the file view and `serapp predict`."""
        samples = np.asarray(samples, dtype=np.float32)
        window = self.model_window
        spans = model_pieces(0, samples.size, window)
        readout = readout or self.readout  # one readout for every piece, whatever a view sets meanwhile
        out = []
        for i in range(0, len(spans), self.batch_windows):
            out.append(self.probabilities(np.stack([loop_to_length(samples[s:e], window)
                                                    for s, e in spans[i : i + self.batch_windows]]), voice,
                                                   pooled_out, readout))
        return np.concatenate(out).mean(axis=0)

    def window_cost_ms(self, runs: int = 3) -> float:
        """Median milliseconds to read one model window (after a warm-up call)."""
        silence = np.zeros(self.model_window, np.float32)
        self.predict_prepared(silence)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.predict_prepared(silence)
            times.append((time.perf_counter() - t0) * 1e3)
        return float(np.median(times))

    def _as_dict(self, probs: np.ndarray) -> dict[str, float]:
        return {label: float(p) for label, p in zip(self.labels, probs)}


def load_model(path: str | os.PathLike | None = None, device: str = "auto", threads: int | None = None,
               set_threads: bool = True, emotions: str = "basic") -> Predictor:
    """Load a bundle (a path or a bundled model's name; the bundled default when `path` is None)
    onto a device.

    On a CPU it also sets torch's thread count for the process (`threads`, default
    `default_threads()`), unless `set_threads` is False: torch's count is process-wide and must
    not change while another thread runs a model (the app sets it once, at its first load).
    `emotions`: the readout, "basic" (the four) or "all" (serapp.readout)."""
    if path is None:
        path = default_bundle_path()
        if path is None:
            raise BundleError(
                f"serapp/assets/{DEFAULT_BUNDLE_NAME}",
                "no bundled model in this installation; pass a bundle with --model PATH (train one with ser-train)",
            )
    path = resolve_bundle(path)
    dev = resolve_device(device)
    if dev.type == "cpu" and set_threads:
        torch.set_num_threads(threads or default_threads())
    model, meta = load_bundle(path, dev)
    return Predictor(model, meta, dev, Path(path), emotions)
