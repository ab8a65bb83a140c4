"""Playing audio through PortAudio: a clip from memory or a file streamed from disk, knowing
which sample the listener hears now and when the last one reaches the speaker.

Each `play` makes its own `_Clip` (samples, position, end time) and its stream's callback
knows only that clip, so a stream still closing cannot consume the next clip. The callback
only copies: a file is decoded by a feeder thread into a ring buffer ahead of it.

One output stream for many clips: the app opens it when its views are built (`warm()`) and
keeps it running, silent between clips, until `close()`. Through PulseAudio a newly connected
stream is heard only when the sink next wakes: up to 2 s on its null sink (1.6 to 1.9 s measured,
every clip, when each play opened one; a stream silent for a minute used to close and cost that
again at the next click). A running one is heard within the output latency (benchmarks/bench_playback.py).
That latency is 0.1 s, not PortAudio's "low" (8.6 ms here): a callback starved for longer than
the buffer (the GIL, or a busy CPU) underruns, and ALSA's pulse plugin recovers by connecting a
new stream, which waited for the sink again (the first Play after a listening test: 1.5 s).
The stream runs at the device's own rate; a clip at another is resampled (a file as it is decoded).

Time of the sound: PortAudio tells each callback when its buffer reaches the DAC; the player
keeps those marks, so `position_s()` follows the samples actually played (a stalled output
stops the cursor) and `ended_at` is when the last sample is heard. The stream's finished
callback can come long after (it waits for a drain: about 2 s through PulseAudio's ALSA plugin).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from pathlib import Path

import numpy as np

from serapp.audio.io import AudioStream, resample
from serapp.audio.ringbuffer import RingBuffer
from serapp.audio.sources import AudioDeviceError, close_stream, import_sounddevice

NO_OUTPUT = ("no audio output device found (connect speakers or headphones, or check the system's sound "
             "settings); playback is not possible")


def output_problem(device: str | int | None = None) -> str | None:
    """Why nothing can be played here, in plain words; None when an output device is there."""
    try:
        sd = import_sounddevice()
    except AudioDeviceError as exc:
        return str(exc)
    try:
        outputs = [d for d in sd.query_devices() if d["max_output_channels"] > 0]
        if not outputs:
            return NO_OUTPUT
        sd.query_devices(device, "output")
    except (sd.PortAudioError, ValueError):
        return NO_OUTPUT if device is None else f"output device {device!r} is not available"
    return None


class _Clip:
    """One playback's own state. `read` runs in the audio callback: slicing and copying only."""

    def __init__(self, rate: int):
        self.rate = rate
        self.pos = 0  # samples handed to PortAudio
        self.marks: deque[tuple[float, int, int]] = deque(maxlen=2048)  # (heard at, first sample, count)
        self.end: float | None = None  # perf_counter time the last sample is heard
        self.underruns = 0

    def read(self, frames: int) -> tuple[np.ndarray, bool]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop feeding (nothing to do for a clip in memory)."""


class _MemoryClip(_Clip):
    def __init__(self, samples: np.ndarray, rate: int):
        super().__init__(rate)
        self.samples = samples

    def read(self, frames: int) -> tuple[np.ndarray, bool]:
        chunk = self.samples[self.pos : self.pos + frames]
        return chunk, self.pos + chunk.size >= self.samples.size


class _FileClip(_Clip):
    """A file decoded ahead of the callback by a feeder thread, 2 s at most."""

    def __init__(self, path: Path, rate: int, ahead_s: float = 2.0):
        super().__init__(rate)
        self.stream = AudioStream(path, rate, block_s=0.1)
        self.ring = RingBuffer(int(ahead_s * rate))
        self.fed_all = False
        self.error: str | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._feed, name="PlaybackFeeder", daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        try:
            for block in self.stream:
                while self.ring.written + block.size - self.pos > self.ring.capacity:
                    if self._stop.wait(0.02):
                        return
                self.ring.write(block)
        except Exception as exc:  # decoding failed mid-file: play what there is, say why
            self.error = str(exc)
        self.fed_all = True

    def read(self, frames: int) -> tuple[np.ndarray, bool]:
        chunk, _, _ = self.ring.since(self.pos, limit=frames)
        done = self.fed_all and self.pos + chunk.size >= self.ring.written
        if chunk.size < frames and not done:
            self.underruns += 1
        return chunk, done

    def close(self) -> None:
        self._stop.set()


OUTPUT_LATENCY_S = 0.1  # the output's buffer: room for a starved callback (see above)
_OPEN: "weakref.WeakSet[ClipPlayer]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """A stream still running while the interpreter exits crashed it: close them first."""
    for player in list(_OPEN):
        player.close()


class ClipPlayer:
    """One clip at a time on the default (or a named) output device."""

    def __init__(self, device: str | int | None = None):
        self.device = device
        self._stream = None
        self._rate: int | None = None  # the running stream's
        self._clip: _Clip | None = None
        self.started_at: float | None = None

    @property
    def ended_at(self) -> float | None:
        """perf_counter time at which the current clip ended (or will end), None if not known yet."""
        return None if self._clip is None else self._clip.end

    def ended(self) -> bool:
        end = self.ended_at
        return end is not None and time.perf_counter() >= end

    @property
    def playing(self) -> bool:
        return self._clip is not None and not self.ended()

    def position_s(self, now: float | None = None) -> float | None:
        """Seconds into the clip of the sample heard at `now` (default: now), from the samples
        PortAudio has played; None before the first buffer is heard."""
        clip = self._clip
        if clip is None:
            return None
        now = time.perf_counter() if now is None else now
        heard = [m for m in list(clip.marks) if m[0] <= now]
        if not heard:
            return None
        t, first, count = heard[-1]
        return (first + min(count, (now - t) * clip.rate)) / clip.rate

    def _callback(self):
        """The stream's one callback: the current clip's samples, silence when there is none."""
        def callback(outdata, frames, time_info, status) -> None:
            clip = self._clip  # one read: a clip swapped in meanwhile starts at the next buffer
            ahead = time_info.outputBufferDacTime - time_info.currentTime if time_info.currentTime else 0.0
            heard_at = time.perf_counter() + max(0.0, ahead)
            if clip is None or clip.end is not None:
                outdata.fill(0.0)
                return
            chunk, done = clip.read(frames)
            outdata[: chunk.size, 0] = chunk
            outdata[chunk.size :, 0] = 0.0
            clip.marks.append((heard_at, clip.pos, chunk.size))
            clip.pos += chunk.size
            if done:
                clip.end = heard_at + chunk.size / clip.rate
        return callback

    def warm(self) -> None:
        """Open the output stream now (silent), so that the next clip is heard at once; quietly
        nothing where no output works (playing says why)."""
        try:
            self._open()
        except AudioDeviceError:
            pass

    def _open(self):
        """The running stream (opened at the device's own rate if none runs); the sounddevice module."""
        sd = import_sounddevice()
        if self._stream is not None and self._stream.active:
            return sd
        close_stream(self._stream)  # one whose device failed or vanished
        self._stream = None
        problem = output_problem(self.device)
        if problem:
            raise AudioDeviceError(problem)
        try:
            rate = int(sd.query_devices(self.device, "output")["default_samplerate"])
            stream = sd.OutputStream(samplerate=rate, channels=1, dtype="float32", device=self.device,
                                     latency=OUTPUT_LATENCY_S, callback=self._callback())
            stream.start()
        except Exception as exc:  # PortAudioError, ValueError: a busy or vanished device
            reason = str(exc).split(" [PaErrorCode")[0]
            raise AudioDeviceError(f"cannot play on output {self.device or 'default'}: {reason}") from None
        self._stream, self._rate = stream, rate
        _OPEN.add(self)
        return sd

    def _start(self, make_clip) -> None:
        self.stop()
        self._open()
        self.started_at = time.perf_counter()
        self._clip = make_clip(self._rate)  # the callback takes it from its next buffer

    def play(self, samples: np.ndarray, rate: int) -> None:
        """Start playing samples (stopping any clip still playing); AudioDeviceError if no output works."""
        def make(out_rate):
            data = samples if out_rate == rate else resample(samples, rate, out_rate)
            return _MemoryClip(np.ascontiguousarray(data, dtype=np.float32), out_rate)
        self._start(make)

    def play_file(self, path: str | Path) -> None:
        """Start playing a file, decoded while it plays (memory does not grow with its length)."""
        AudioStream(path)  # a file that cannot be read is refused here, before anything plays
        self._start(lambda out_rate: _FileClip(Path(path), out_rate))

    def stop(self) -> None:
        """Stop now; a clip cut short ends at this moment (the stream runs on, silent)."""
        clip = self._clip
        if clip is not None:
            if clip.end is None or clip.end > time.perf_counter():
                clip.end = time.perf_counter()
            clip.close()

    def close(self) -> None:
        """Stop, and close the output stream."""
        self.stop()
        stream, self._stream = self._stream, None
        close_stream(stream)
