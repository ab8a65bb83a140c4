"""Recording what the microphone captured: a WAV at the capture rate plus the live timeline CSV
(serapp.timeline's format, as `serapp predict --window W --format csv` writes for a file; times
count from the WAV's first sample).

A writer thread does the disk work (never the GUI thread): every 50 ms it takes what arrived
in the ring buffer and appends it. Nothing recorded is lost to a crash: the standard library's
`wave` writer patches the header's lengths on every `writeframes`, and each block and CSV row
is flushed to the OS, so a killed app leaves a valid WAV up to the last block. If the writer
ever falls more than a ring behind, the samples it missed are written as silence, so the WAV
stays aligned with the timeline; each row's `warning` says how much silence was written so far.
"""

from __future__ import annotations

import os
import queue
import threading
import wave
from pathlib import Path

import numpy as np

from serapp.audio.ringbuffer import RingBuffer
from serapp.csv_cells import CsvWriter
from serapp.timeline import WindowReading, timeline_header, timeline_rows

_INTERVAL_S = 0.05


class Recorder:
    def __init__(self, wav_path: str | Path, ring: RingBuffer, sample_rate: int, labels: list[str]):
        self.wav_path = Path(wav_path)
        self.csv_path = self.wav_path.with_suffix(".csv")
        self.ring, self.sample_rate, self.labels = ring, int(sample_rate), list(labels)
        self._pos = ring.written
        self.start_position = self._pos
        self.frames = 0
        self.lost = 0  # samples written as silence because the writer fell a ring behind
        self.error: str | None = None
        self._file = open(self.wav_path, "wb")
        try:
            self._wav = wave.open(self._file, "wb")
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.sample_rate)
            self._wav.writeframes(b"")  # the header, at once: a valid empty WAV from the first moment
            self._file.flush()
            self._csv_file = open(self.csv_path, "w", newline="", encoding="utf-8")
        except BaseException:
            self._file.close()
            raise
        self._csv = CsvWriter(self._csv_file)
        self._csv.writerow(timeline_header(self.labels))
        self._csv_file.flush()
        self._rows: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="Recorder", daemon=True)
        self._thread.start()

    @property
    def start_s(self) -> float:
        """Source time (seconds of the ring's audio) at the WAV's first sample."""
        return self.start_position / self.sample_rate

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    @property
    def closed(self) -> bool:
        return self._closed

    def _write_audio(self) -> None:
        chunk, self._pos, lost = self.ring.since(self._pos)
        if lost:
            self.lost += lost
            chunk = np.concatenate([np.zeros(lost, np.float32), chunk])
        if chunk.size:
            pcm = (np.clip(chunk, -1.0, 1.0) * 32767.0).astype("<i2")
            self._wav.writeframes(pcm.tobytes())  # also rewrites the header's lengths
            self._file.flush()
            self.frames += chunk.size

    def _write_rows(self) -> None:
        while True:
            try:
                reading = self._rows.get_nowait()
            except queue.Empty:
                break
            warning = f"{self.lost / self.sample_rate:.3f} s missed so far and written as silence" if self.lost else ""
            self._csv.writerows(timeline_rows(self.wav_path, [reading], self.labels, warning))
        self._csv_file.flush()

    def _run(self) -> None:
        try:
            while not self._stop.wait(_INTERVAL_S):
                self._write_audio()
                self._write_rows()
            self._write_audio()
            self._write_rows()
        except OSError as exc:  # a full disk, a vanished folder: say so; what was written stays valid
            self.error = f"{self.wav_path}: recording stopped: {exc.strerror or exc}"

    def add_reading(self, reading: WindowReading) -> None:
        """One timeline row (written by the writer thread); its times are seconds since the
        recording started (a window that began before it starts below 0)."""
        if not self._closed:
            self._rows.put(reading)

    def close(self) -> None:
        """Write what is left and finalise both files. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        try:
            self._wav.close()  # patches the header once more and flushes; the file stays ours to close
            for f in (self._file, self._csv_file):
                f.flush()
                os.fsync(f.fileno())
        except (OSError, ValueError) as exc:
            self.error = self.error or f"{self.wav_path}: cannot finish the recording: {exc}"
        finally:
            self._file.close()
            self._csv_file.close()
