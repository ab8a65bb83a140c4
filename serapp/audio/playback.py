"""Playing one clip through PortAudio, knowing when its last sample reaches the speaker.

The listening test measures response time from the end of the first playback. The end is
taken from the DAC time PortAudio reports for the last buffer, because the stream's finished
callback can come long after (it waits for a drain: about 2 s through PulseAudio's ALSA plugin).
"""

from __future__ import annotations

import time

import numpy as np

from serapp.audio.io import resample
from serapp.audio.sources import AudioDeviceError, close_stream, import_sounddevice


class ClipPlayer:
    """One clip at a time on the default (or a named) output device."""

    def __init__(self, device: str | int | None = None):
        self.device = device
        self._stream = None
        self._samples = np.zeros(0, np.float32)
        self._pos = 0
        self._rate = 16000
        self._generation = 0  # a stopped stream's late callbacks must not end the next clip
        self._ends: dict[str, float] = {}
        self.started_at: float | None = None

    @property
    def ended_at(self) -> float | None:
        """perf_counter time at which the current clip ended (or will end), None if not known yet."""
        return min(self._ends.values()) if self._ends else None

    def ended(self) -> bool:
        end = self.ended_at
        return end is not None and time.perf_counter() >= end

    def _callback(self, generation: int, stop_exception: type):
        def callback(outdata, frames, time_info, status) -> None:
            chunk = self._samples[self._pos : self._pos + frames]
            outdata[: chunk.size, 0] = chunk
            outdata[chunk.size :, 0] = 0.0
            self._pos += chunk.size
            if chunk.size < frames:
                if generation == self._generation:
                    ahead = time_info.outputBufferDacTime - time_info.currentTime if time_info.currentTime else 0.0
                    self._ends["dac"] = time.perf_counter() + max(0.0, ahead) + chunk.size / self._rate
                raise stop_exception
        return callback

    def _finished(self, generation: int) -> None:
        if generation == self._generation:
            self._ends.setdefault("finished", time.perf_counter())

    def play(self, samples: np.ndarray, rate: int) -> None:
        """Start playing (stopping any clip still playing); AudioDeviceError if no output works."""
        sd = import_sounddevice()
        self.stop()
        try:
            out_rate = rate
            try:
                sd.check_output_settings(device=self.device, channels=1, dtype="float32", samplerate=rate)
            except Exception:  # the device cannot take the clip's rate: play at the device's own
                out_rate = int(sd.query_devices(self.device, "output")["default_samplerate"])
                samples = resample(samples, rate, out_rate)
            self._samples = np.ascontiguousarray(samples, dtype=np.float32)
            self._rate, self._pos = out_rate, 0
            self._generation += 1
            self._ends = {}
            generation = self._generation
            self.started_at = time.perf_counter()
            self._stream = sd.OutputStream(samplerate=out_rate, channels=1, dtype="float32", device=self.device,
                                           latency="low", callback=self._callback(generation, sd.CallbackStop),
                                           finished_callback=lambda: self._finished(generation))
            self._stream.start()
        except AudioDeviceError:
            raise
        except Exception as exc:  # PortAudioError, ValueError: no such device, busy device
            self._stream = None
            raise AudioDeviceError(f"cannot play audio on output {self.device or 'default'}: {exc}") from None

    def stop(self) -> None:
        """Stop now; a clip cut short ends at this moment."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._ends.setdefault("stopped", time.perf_counter())
            self._generation += 1
        close_stream(stream)
