"""Recording what the microphone captured: a WAV at the capture rate plus the live timeline CSV.

Nothing recorded is lost: libsndfile rewrites the WAV header after every write
(SFC_SET_UPDATE_HEADER_AUTO) and each block is flushed, so the file is a valid, complete WAV up
to the last block even if the app is killed; the CSV is flushed row by row.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import soundfile

from serapp.audio.ringbuffer import RingBuffer

_SFC_SET_UPDATE_HEADER_AUTO = 0x1061  # from libsndfile's sndfile.h


class Recorder:
    def __init__(self, wav_path: str | Path, ring: RingBuffer, sample_rate: int, labels: list[str]):
        self.wav_path = Path(wav_path)
        self.csv_path = self.wav_path.with_suffix(".csv")
        self.ring, self.sample_rate, self.labels = ring, int(sample_rate), list(labels)
        self._pos = ring.written
        self.start_position = self._pos
        self.frames = 0
        self.lost = 0
        self._wav = soundfile.SoundFile(str(self.wav_path), "w", samplerate=self.sample_rate, channels=1,
                                        subtype="PCM_16", format="WAV")
        soundfile._snd.sf_command(self._wav._file, _SFC_SET_UPDATE_HEADER_AUTO, soundfile._ffi.NULL, 1)
        self._csv_file = open(self.csv_path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(["time_s", "speech", "label", *self.labels])
        self._csv_file.flush()

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    @property
    def closed(self) -> bool:
        return self._wav.closed

    def pump(self) -> int:
        """Write everything captured since the last call; returns the frames written."""
        if self.closed:
            return 0
        chunk, self._pos, lost = self.ring.since(self._pos)
        self.lost += lost
        if chunk.size:
            self._wav.write(chunk)
            self._wav.flush()
            self.frames += chunk.size
        return int(chunk.size)

    def add_reading(self, t_s: float, speech: bool, label: str | None, probabilities: dict | None) -> None:
        """One timeline row; `t_s` is seconds since the recording started."""
        if self._csv_file.closed:
            return
        probs = [f"{probabilities[k]:.4f}" for k in self.labels] if probabilities else [""] * len(self.labels)
        self._csv.writerow([f"{t_s:.3f}", int(speech), label or "", *probs])
        self._csv_file.flush()

    def close(self) -> None:
        """Write what is left and finalise both files. Safe to call twice."""
        if not self.closed:
            self.pump()
            self._wav.close()
        if not self._csv_file.closed:
            self._csv_file.flush()
            os.fsync(self._csv_file.fileno())
            self._csv_file.close()
