"""Reading audio files: decode, downmix to mono, resample, trim silence.

Every decode failure becomes one AudioDecodeError naming the file and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile
import soxr

from serapp.errors import AudioDecodeError

# Extensions picked up when a directory is walked. Files named explicitly are always tried.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"})


def load_audio(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 in [-1, 1].

    Returns (samples, rate). With `sample_rate` given the audio is resampled to it.
    """
    path = Path(path)
    if not path.exists():
        raise AudioDecodeError(path, "no such file")
    if path.is_dir():
        raise AudioDecodeError(path, "is a directory")
    if path.stat().st_size == 0:
        raise AudioDecodeError(path, "empty file (0 bytes)")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as exc:
        reason = (exc.error_string or "").strip().rstrip(".") or "unknown libsndfile error"
        raise AudioDecodeError(path, f"unrecognised or damaged audio ({reason})") from None
    except (soundfile.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioDecodeError(path, str(exc) or type(exc).__name__) from None
    if data.shape[0] == 0:
        raise AudioDecodeError(path, "contains no audio samples")
    if not np.isfinite(data).all():
        raise AudioDecodeError(path, "contains NaN or infinite samples")
    samples = to_mono(data)
    if sample_rate is not None and sample_rate != rate:
        samples = resample(samples, rate, sample_rate)
        rate = sample_rate
    return samples, int(rate)


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) -> (frames,) float32, averaging the channels."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        return data
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0])
    return data.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality); mono float32 in and out."""
    if rate_in == rate_out:
        return np.asarray(samples, dtype=np.float32)
    out = soxr.resample(np.asarray(samples, dtype=np.float32), rate_in, rate_out, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def trim_silence(
    samples: np.ndarray,
    sample_rate: int,
    top_db: float = 40.0,
    frame_s: float = 0.025,
    hop_s: float = 0.010,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Cut leading and trailing audio quieter than `top_db` below the loudest frame.

    Returns (trimmed, (start, end)) with sample indices into the input. All-silent input is
    returned unchanged, so a caller never receives an empty array from a non-empty one.
    """
    samples = np.asarray(samples, dtype=np.float32)
    frame = max(1, int(round(frame_s * sample_rate)))
    hop = max(1, int(round(hop_s * sample_rate)))
    if samples.size <= frame:
        return samples, (0, samples.size)
    n_frames = 1 + (samples.size - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n_frames)[:, None]
    rms = np.sqrt(np.mean(samples[idx] ** 2, axis=1) + 1e-20)
    db = 20.0 * np.log10(rms / rms.max())
    loud = np.flatnonzero(db > -top_db)
    if loud.size == 0 or rms.max() <= 1e-9:
        return samples, (0, samples.size)
    start = int(loud[0] * hop)
    end = int(min(samples.size, loud[-1] * hop + frame))
    return samples[start:end], (start, end)


def iter_audio_files(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Expand the given paths: files as given, directories walked (sorted) for audio files."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for sub in sorted(path.rglob("*")):
                if sub.is_file() and sub.suffix.lower() in AUDIO_EXTENSIONS:
                    yield sub
        else:
            yield path
