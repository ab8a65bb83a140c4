"""Reading audio files: decode, downmix to mono, resample, trim silence; whole or block by block.

Every decode failure becomes one AudioDecodeError naming the file and the reason. A file whose
header promises more audio than it holds (cut short in a copy, say) decodes what is there and
says so in `AudioStream.shortfall`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile
import soxr

from serapp.errors import AudioDecodeError
from serapp.files import special_kind

# Extensions picked up when a directory is walked. Files named explicitly are always tried.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"})
_TEXTLIKE = set(range(32, 127)) | {9, 10, 13}
_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)  # libsndfile's WAV log
_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*$", re.MULTILINE)
_FILE_LENGTH = re.compile(r"^Length\s*:\s*(\d+)", re.MULTILINE)
RATE_RANGE = (1000, 768_000)  # Hz: a header outside this is damaged (1 Hz made a minute of audio from 3 s)
READ_FRAMES = 16384  # frames per read: a damaged stretch loses at most this much of what precedes it


def _sniff(path: Path) -> None:
    """Causes libsndfile would misname: no file, a folder, no permission, no bytes, plain text;
    and what opening would hang on (a FIFO waits for a writer), judged before it is opened."""
    try:
        os.stat(path)
    except FileNotFoundError:
        raise AudioDecodeError(path, "no such file") from None
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot open: {exc.strerror or exc}") from None
    kind = special_kind(path)
    if kind is not None:
        raise AudioDecodeError(path, f"{kind}, not a regular file (not opened: reading it could wait forever)")
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except FileNotFoundError:
        raise AudioDecodeError(path, "no such file") from None
    except IsADirectoryError:
        raise AudioDecodeError(path, "is a directory") from None
    except PermissionError:
        raise AudioDecodeError(path, "permission denied (cannot open it for reading)") from None
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot open: {exc.strerror or exc}") from None
    if not head:
        raise AudioDecodeError(path, "empty file (0 bytes)")
    if all(b in _TEXTLIKE for b in head):
        raise AudioDecodeError(path, "not an audio file: it holds text")


def _open(path: Path) -> soundfile.SoundFile:
    _sniff(path)
    try:  # as bytes: a name that is not UTF-8 opens as it is (soundfile would encode a str)
        return soundfile.SoundFile(str(path) if os.name == "nt" else os.fsencode(path))
    except soundfile.LibsndfileError as exc:
        reason = (exc.error_string or "").strip().rstrip(".") or "unknown libsndfile error"
        raise AudioDecodeError(path, f"unrecognised or damaged audio ({reason})") from None
    except (soundfile.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioDecodeError(path, str(exc) or type(exc).__name__) from None


def _declared_frames(f: soundfile.SoundFile) -> int:
    """Frames the file's header promises (libsndfile quietly corrects a WAV's to what is there)."""
    m = _DATA_SIZE.search(f.extra_info or "")
    if m:
        block = max(1, int(m.group(2)) // max(1, f.frames)) if f.frames else 2 * f.channels
        return int(m.group(1)) // block
    return f.frames


class AudioStream:
    """A file decoded block by block to mono float32 at `rate` (None: the file's own).

    Iterating gives the blocks; afterwards `frames_out` is the number of samples given,
    `declared_s` and `decoded_s` the header's and the decoded durations, and `shortfall` a
    sentence when the file held less than its header says (None otherwise).
    """

    def __init__(self, path: str | os.PathLike, rate: int | None = None, block_s: float = 20.0):
        self.path = Path(path)
        self._file = _open(self.path)
        self.file_rate = int(self._file.samplerate)
        lo, hi = RATE_RANGE
        if not lo <= self.file_rate <= hi:
            self._file.close()
            raise AudioDecodeError(self.path, f"its header gives a sample rate of {self.file_rate} Hz, outside "
                                              f"{lo}-{hi} Hz: the header is damaged")
        self.rate = int(rate or self.file_rate)
        self.declared_s = _declared_frames(self._file) / self.file_rate
        self.block = max(1024, int(block_s * self.file_rate))
        self.frames_in = self.frames_out = 0
        self.shortfall: str | None = _unread_tail(self._file)
        self.peak = 0.0  # the largest sample magnitude before clipping

    @property
    def decoded_s(self) -> float:
        return self.frames_in / self.file_rate

    def __iter__(self) -> Iterator[np.ndarray]:
        resampler = None if self.rate == self.file_rate else soxr.ResampleStream(
            self.file_rate, self.rate, 1, dtype="float32", quality="HQ")
        stopped = None
        with self._file as f:
            while stopped is None:
                data, stopped = self._read(f)
                if data.shape[0] == 0:
                    break
                if not np.isfinite(data).all():
                    raise AudioDecodeError(self.path, "contains NaN or infinite samples")
                peak = float(np.abs(data).max())
                if peak > 1.0:  # beyond full scale (a float file): clipped, and said once
                    self.peak = max(self.peak, peak)
                    np.clip(data, -1.0, 1.0, out=data)
                self.frames_in += data.shape[0]
                out = to_mono(data) if resampler is None else resampler.resample_chunk(to_mono(data))
                if out.size:
                    self.frames_out += out.size
                    yield np.ascontiguousarray(out, dtype=np.float32)
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if tail.size:
                    self.frames_out += tail.size
                    yield np.ascontiguousarray(tail, dtype=np.float32)
        if self.frames_in == 0:
            if stopped is not None:
                raise AudioDecodeError(self.path, f"unrecognised or damaged audio ({stopped})")
            raise AudioDecodeError(self.path, "contains no audio samples")
        notes = [self.shortfall] if self.shortfall else []
        if stopped is not None:
            notes.append(f"decoding stopped after {self.decoded_s:.2f} s of the {self.declared_s:.2f} s "
                         f"its header gives ({stopped})")
        elif self.declared_s - self.decoded_s > 0.001:
            notes.append(f"cut short: its header gives {self.declared_s:.2f} s, only {self.decoded_s:.2f} s are there")
        if self.peak > 1.0:
            notes.append(f"samples beyond full scale (peak {self.peak:.3g}) were clipped to ±1")
        self.shortfall = "; ".join(notes) or None

    def _read(self, f) -> tuple[np.ndarray, str | None]:
        """Up to a block, in reads of READ_FRAMES: (frames, why decoding stopped or None). What was
        read before a damaged stretch is kept (a FLAC cut in half reads its first half)."""
        parts, n = [], 0
        while n < self.block:
            try:
                data = f.read(min(READ_FRAMES, self.block - n), dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as exc:
                why = str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
                return (np.concatenate(parts) if parts else np.zeros((0, f.channels), np.float32)), why
            if data.shape[0] == 0:
                break
            parts.append(data)
            n += data.shape[0]
        return (np.concatenate(parts) if parts else np.zeros((0, f.channels), np.float32)), None


def _unread_tail(f: soundfile.SoundFile) -> str | None:
    """A WAV whose data chunk says less than the file holds after it (a header written before the
    recording ended, then damaged): libsndfile reads what the header says; say it disagrees."""
    m, length = _DATA_CHUNK.search(f.extra_info or ""), _FILE_LENGTH.search(f.extra_info or "")
    if not m or not length or f.format != "WAV":
        return None
    frame_bytes = max(1, int(m.group(1)) // max(1, f.frames)) if f.frames else 2 * f.channels
    extra_s = (int(length.group(1)) - int(m.group(1)) - 44) / frame_bytes / f.samplerate
    if extra_s < 1.0:  # metadata chunks after the audio are small
        return None
    return (f"its header gives {f.frames / f.samplerate:.2f} s of audio, but the file holds about {extra_s:.1f} s "
            "more after it: the header disagrees with the file, only the header's part was read")


def load_audio(path: str | os.PathLike, sample_rate: int | None = None,
               warn: list[str] | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file to mono float32 in [-1, 1]; returns (samples, rate).

    With `sample_rate` given the audio is resampled to it. A file cut short is decoded as far
    as it goes; the sentence saying so is appended to `warn` when a list is given.
    """
    stream = AudioStream(path)  # at the file's rate: one-shot resampling below, as always
    samples = np.concatenate(list(stream))
    if warn is not None and stream.shortfall:
        warn.append(stream.shortfall)
    rate = stream.file_rate
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


class FrameLevels:
    """Frame RMS (frames of `frame` samples every `hop`) over audio given in blocks, with memory
    bounded by the block: what trimming needs to know of a whole file."""

    def __init__(self, frame: int, hop: int):
        self.frame, self.hop = frame, hop
        self._carry = np.zeros(0, np.float32)
        self.n_samples = 0
        self._rms: list[np.ndarray] = []

    def feed(self, block: np.ndarray, chunk_frames: int = 4096) -> None:
        data = np.concatenate([self._carry, np.asarray(block, dtype=np.float32)])
        self.n_samples += block.size
        n = 0 if data.size < self.frame else 1 + (data.size - self.frame) // self.hop
        for i in range(0, n, chunk_frames):
            k = min(chunk_frames, n - i)
            idx = np.arange(self.frame)[None, :] + self.hop * (i + np.arange(k))[:, None]
            self._rms.append(np.sqrt(np.mean(data[idx] ** 2, axis=1) + 1e-20))
        self._carry = data[n * self.hop :]

    @property
    def rms(self) -> np.ndarray:
        return np.concatenate(self._rms) if self._rms else np.zeros(0, np.float32)

    def loud_span(self, top_db: float) -> tuple[int, int]:
        """(start, end) in samples from the first to the last frame within `top_db` of the
        loudest; the whole signal when nothing stands out (all silent, or too short)."""
        rms = self.rms
        if rms.size == 0 or rms.max() <= 1e-9:
            return 0, self.n_samples
        loud = np.flatnonzero(20.0 * np.log10(rms / rms.max()) > -top_db)
        if loud.size == 0:
            return 0, self.n_samples
        return int(loud[0] * self.hop), int(min(self.n_samples, loud[-1] * self.hop + self.frame))


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
    levels = FrameLevels(frame, hop)
    levels.feed(samples)
    start, end = levels.loud_span(top_db)
    return samples[start:end], (start, end)


def iter_audio_files(paths: Iterable[str | os.PathLike], on_error=None) -> Iterator[Path]:
    """Expand the given paths: files as given, directories walked (sorted) for audio files.

    A subfolder that cannot be read is reported to `on_error(path, reason)` (when given) and
    passed over; the walk goes on.
    """
    for raw in paths:
        path = Path(raw)
        try:
            folder = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:  # no such file, a name too long...: the decoder names the cause, one line
            folder = False
        if not folder:
            yield path
            continue

        def report(exc: OSError) -> None:
            if on_error is not None:
                reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
                on_error(Path(exc.filename or path), reason)

        found = []
        for folder, dirs, files in os.walk(path, onerror=report):
            dirs.sort()
            found += [Path(folder) / f for f in files if Path(f).suffix.lower() in AUDIO_EXTENSIONS]
        yield from sorted(found)
