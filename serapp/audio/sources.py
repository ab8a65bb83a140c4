"""Live audio sources with one interface: the microphone, and a file played in real time.

A source writes mono float32 at its own `sample_rate` into a RingBuffer; consumers (the GUI
timer, the inference worker, the recorder) read from the ring at their own pace. The
microphone callback only copies into the ring and counts overflows: no allocation, no locks,
no Qt. Sources are passed in, never global, so tests feed a file where a user has a microphone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serapp.audio.io import load_audio
from serapp.audio.ringbuffer import RingBuffer
from serapp.errors import SerappError

RING_SECONDS = 30.0
PORTAUDIO_HINT = "PortAudio is not installed (Debian/Ubuntu: sudo apt-get install libportaudio2); file analysis still works"


class AudioDeviceError(SerappError):
    """A capture device that cannot be used; the message names it and the cause."""


def import_sounddevice():
    """sounddevice, or AudioDeviceError when the PortAudio library is missing."""
    try:
        import sounddevice
    except OSError:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise AudioDeviceError(PORTAUDIO_HINT) from None
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    hostapi: str
    channels: int
    default_samplerate: float
    is_default: bool

    @property
    def label(self) -> str:
        return f"{self.name} ({self.hostapi}){' [default]' if self.is_default else ''}"


def list_input_devices() -> list[InputDevice]:
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from None
    out = []
    for i, d in enumerate(devices):
        if d["max_input_channels"] > 0:
            out.append(InputDevice(i, d["name"], hostapis[d["hostapi"]]["name"], int(d["max_input_channels"]),
                                   float(d["default_samplerate"]), i == default_in))
    return out


def find_input_device(spec: str | int | None) -> InputDevice:
    """A device by index, exact name, or case-insensitive name fragment; None = the default."""
    devices = list_input_devices()
    if not devices:
        raise AudioDeviceError("no audio input device found")
    if spec is None or spec == "":
        return next((d for d in devices if d.is_default), devices[0])
    if isinstance(spec, int) or str(spec).isdigit():
        for d in devices:
            if d.index == int(spec):
                return d
        raise AudioDeviceError(f"input device {spec}: no input device with that index")
    exact = [d for d in devices if d.name == spec]
    fuzzy = [d for d in devices if str(spec).lower() in d.name.lower()]
    if exact or fuzzy:
        return (exact or fuzzy)[0]
    names = ", ".join(d.name for d in devices)
    raise AudioDeviceError(f"input device {spec!r}: not found (inputs: {names})")


class MicrophoneSource:
    """Captures one channel from a PortAudio input device into a ring buffer."""

    def __init__(self, device: InputDevice, sample_rate: int | None = None, preferred_rate: int = 16000,
                 ring_seconds: float = RING_SECONDS, blocksize: int = 0):
        self.device = device
        self.sample_rate = int(sample_rate or self._supported_rate(device, preferred_rate))
        self.ring = RingBuffer(int(ring_seconds * self.sample_rate))
        self.blocksize = blocksize
        self.overflows = 0
        self.error: str | None = None
        self._stream = None
        self._stopping = False

    @staticmethod
    def _supported_rate(device: InputDevice, preferred: int) -> int:
        """The model's rate when the device takes it (no resampling), else the device default."""
        sd = import_sounddevice()
        try:
            sd.check_input_settings(device=device.index, samplerate=preferred, channels=1, dtype="float32")
            return preferred
        except Exception:  # PortAudio says no in several ways (PortAudioError, ValueError)
            return int(device.default_samplerate)

    @property
    def name(self) -> str:
        return self.device.label

    @property
    def active(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    def _callback(self, indata, frames, time_info, status) -> None:
        # Audio thread: copy and count, nothing else.
        if status.input_overflow:
            self.overflows += 1
        self.ring.write(indata[:, 0])

    def _finished(self) -> None:
        if not self._stopping and self.error is None:
            self.error = f"input device {self.device.name!r} stopped (disconnected?)"

    def start(self) -> None:
        sd = import_sounddevice()
        self._stopping = False
        self.error = None
        try:
            self._stream = sd.InputStream(device=self.device.index, samplerate=self.sample_rate, channels=1,
                                          dtype="float32", blocksize=self.blocksize, callback=self._callback,
                                          finished_callback=self._finished)
            self._stream.start()
        except Exception as exc:  # PortAudioError, or ValueError for impossible settings
            self._stream = None
            raise AudioDeviceError(f"input device {self.device.name!r}: cannot open ({exc})") from None

    def stop(self, timeout: float = 1.0) -> None:
        """Abort and close the stream without ever blocking the caller for more than `timeout`.

        PortAudio joins its capture thread on stop; when a device delivers nothing (a stalled
        or vanished server) that join can take many seconds, so it happens on a helper thread.
        """
        self._stopping = True
        stream, self._stream = self._stream, None
        close_stream(stream, timeout)


def close_stream(stream, timeout: float = 1.0) -> None:
    """Abort and close a PortAudio stream on a helper thread, waiting at most `timeout`."""
    if stream is None:
        return

    def close():
        try:
            stream.abort()
            stream.close()
        except Exception:  # closing a vanished device may fail; it is gone either way
            pass

    closer = threading.Thread(target=close, name="StreamClose", daemon=True)
    closer.start()
    closer.join(timeout)


def open_microphone(spec: str | int | None, preferred_rate: int = 16000) -> tuple[MicrophoneSource, str | None]:
    """Start capture on the requested device; if it fails to open, fall back to the default.

    Returns (source, note): note explains a fallback and is None when the request was met.
    """
    try:
        device = find_input_device(spec)
        source = MicrophoneSource(device, preferred_rate=preferred_rate)
        source.start()
        return source, None
    except AudioDeviceError as first:
        if spec in (None, ""):
            raise
        default = find_input_device(None)
        source = MicrophoneSource(default, preferred_rate=preferred_rate)
        source.start()  # a second failure is raised as is
        return source, f"{first}; using the default input {default.name!r} instead"


class FileSource:
    """Plays a file into a ring buffer in real time (or as fast as possible): a stand-in microphone."""

    def __init__(self, path: str | Path | None = None, samples: np.ndarray | None = None, sample_rate: int = 16000,
                 realtime: bool = True, block_s: float = 0.02, loop: bool = False, ring_seconds: float = RING_SECONDS):
        if samples is None:
            samples, sample_rate = load_audio(path)
        self.path = Path(path) if path else None
        self.samples = np.asarray(samples, dtype=np.float32)
        self.sample_rate = int(sample_rate)
        self.ring = RingBuffer(int(ring_seconds * self.sample_rate))
        self.realtime, self.loop = realtime, loop
        self.block = max(1, int(block_s * self.sample_rate))
        self.overflows = 0
        self.error: str | None = None
        self.finished = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def name(self) -> str:
        return f"file {self.path.name}" if self.path else "file"

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self.finished = False
        self._thread = threading.Thread(target=self._run, name="FileSource", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._thread = None

    def _run(self) -> None:
        t0 = time.perf_counter()
        pos = sent = 0
        n = self.samples.size
        while not self._stop.is_set():
            if pos >= n:
                if not self.loop:
                    break
                pos = 0
            chunk = self.samples[pos : pos + self.block]
            self.ring.write(chunk)
            pos += chunk.size
            sent += chunk.size
            if self.realtime:
                delay = t0 + sent / self.sample_rate - time.perf_counter()
                if delay > 0:
                    self._stop.wait(delay)
        self.finished = True
