"""Speech gates: is there a voice in this audio? Used by the live readout and `serapp predict`,
so a window without speech reads "no speech" instead of a guess.

A gate decides per frame of 32 ms (512 samples at 16 kHz); a window has speech when at least
`min_fraction` of its frames do. Two gates share that interface:
- `EnergyGate`: louder than `threshold_db` (dBFS) with most energy in the speech band; no model.
- `SileroGate`: silero-vad (Silero Team, MIT licence), a small recurrent net shipped in its wheel.
`frames(samples, reset=False)` continues the gate's stream state, so live audio is judged once
as it arrives; `reset()` (or reset=True) starts a new stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serapp.errors import SerappError

FRAME_S = 0.032


@dataclass
class EnergyGate:
    sample_rate: int = 16000
    # Defaults from RAVDESS: at -55 dBFS its median clip is 36 % voiced frames, the quietest tenth
    # still over 25 %, while low room noise scores 0.
    threshold_db: float = -55.0
    min_fraction: float = 0.10
    band_hz: tuple[float, float] = (80.0, 4000.0)  # voices' fundamentals start near 80 Hz
    min_band_ratio: float = 0.6  # white hiss puts about half its energy here; speech 90 % or more
    name: str = "energy"

    @property
    def frame(self) -> int:
        return max(16, int(FRAME_S * self.sample_rate))

    def reset(self) -> None:
        """Stateless: every frame is judged on its own."""

    threshold: float = 0.5  # on scores(): 1.0 voiced, 0.0 not

    def scores(self, samples: np.ndarray, reset: bool = False) -> np.ndarray:
        return self.frames(samples, reset).astype(np.float32)

    def frames(self, samples: np.ndarray, reset: bool = False) -> np.ndarray:
        """One decision (bool) per complete frame of `samples`."""
        n = self.frame
        samples = np.asarray(samples, dtype=np.float32)
        count = samples.size // n
        if count == 0:
            return np.zeros(0, dtype=bool)
        frames = samples[: count * n].reshape(count, n)
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
        loud = 20 * np.log10(rms) > self.threshold_db
        spec = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2
        freqs = np.fft.rfftfreq(n, 1.0 / self.sample_rate)
        band = (freqs >= self.band_hz[0]) & (freqs <= self.band_hz[1])
        ratio = spec[:, band].sum(axis=1) / (spec.sum(axis=1) + 1e-20)
        return loud & (ratio >= self.min_band_ratio)

    def speech_fraction(self, samples: np.ndarray) -> float:
        voiced = self.frames(samples, reset=True)
        return float(voiced.mean()) if voiced.size else 0.0

    def is_speech(self, samples: np.ndarray) -> bool:
        return self.speech_fraction(samples) >= self.min_fraction


class GateError(SerappError):
    """The speech gate's model cannot be loaded; the message says what to install."""


def _load_silero():
    """The silero-vad TorchScript model from the installed silero-vad wheel (never a download).

    The file is found without importing the package: its import sets torch's thread count to 1
    for the whole process."""
    import importlib.util
    import warnings

    import torch

    spec = importlib.util.find_spec("silero_vad")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.jit" if spec else None
    if path is None or not path.is_file():
        raise GateError("the speech gate needs the silero-vad package (pip install silero-vad)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load's notice
        return torch.jit.load(str(path), map_location="cpu").eval()


@dataclass
class SileroGate:
    """silero-vad at 16 kHz (other rates are resampled by the caller), speech probability per
    512-sample frame above `threshold`. The model is loaded at first use; each gate has its own
    model and stream state, so gates in different threads never share one."""

    sample_rate: int = 16000
    threshold: float = 0.5
    min_fraction: float = 0.10
    name: str = "silero-vad"
    _model: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.sample_rate != 16000:
            raise ValueError("SileroGate works at 16 kHz")

    @property
    def frame(self) -> int:
        return 512

    def reset(self) -> None:
        if self._model is not None:
            self._model.reset_states()

    def scores(self, samples: np.ndarray, reset: bool = False) -> np.ndarray:
        """Speech probability per complete 512-sample frame, continuing the stream unless `reset`."""
        import torch

        if self._model is None:
            self._model = _load_silero()
            reset = True
        if reset:
            self._model.reset_states()
        samples = np.asarray(samples, dtype=np.float32)
        count = samples.size // 512
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(samples[: count * 512])).reshape(count, 512)
            return np.array([float(self._model(x[i : i + 1], 16000)) for i in range(count)], dtype=np.float32)

    def frames(self, samples: np.ndarray, reset: bool = False) -> np.ndarray:
        return self.scores(samples, reset) >= self.threshold

    def speech_fraction(self, samples: np.ndarray) -> float:
        voiced = self.frames(samples, reset=True)
        return float(voiced.mean()) if voiced.size else 0.0

    def is_speech(self, samples: np.ndarray) -> bool:
        return self.speech_fraction(samples) >= self.min_fraction
