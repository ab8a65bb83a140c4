"""A mirrored ring buffer: one writer (the audio callback), readers on other threads.

Every sample is stored twice, at i and i + capacity, so the latest `n <= capacity` samples are
always one contiguous slice: no wrap-around copy on the read side, and the writer does two
slice assignments with no allocation, no lock and no Python-level loop.

Positions are absolute sample counts since the start (`written`), so a reader that needs every
sample (a recorder, the streaming spectrogram) remembers where it stopped and asks for what came
since; if it fell more than a buffer behind, it is told how many samples it lost.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    def __init__(self, capacity: int, dtype=np.float32):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._data = np.zeros(2 * self.capacity, dtype=dtype)
        self._written = 0  # total samples ever written; a plain int store is atomic under the GIL

    @property
    def written(self) -> int:
        return self._written

    def reset(self) -> None:
        self._data[:] = 0
        self._written = 0

    def write(self, samples: np.ndarray) -> None:
        """Append samples (1-D). Called from the audio callback: no allocation for n <= capacity."""
        n = samples.shape[0]
        if n == 0:
            return
        cap = self.capacity
        if n > cap:  # only the newest `capacity` samples can be kept
            self._written += n - cap
            samples = samples[n - cap :]
            n = cap
        start = self._written % cap
        first = min(n, cap - start)
        d = self._data
        d[start : start + first] = samples[:first]
        d[start + cap : start + cap + first] = samples[:first]
        if first < n:
            rest = n - first
            d[:rest] = samples[first:]
            d[cap : cap + rest] = samples[first:]
        self._written += n

    def latest(self, n: int) -> np.ndarray:
        """A view of the newest n samples (zeros before anything was written). Copy it if kept."""
        n = min(int(n), self.capacity)
        end = self._written % self.capacity + self.capacity
        return self._data[end - n : end]

    def since(self, position: int, limit: int | None = None) -> tuple[np.ndarray, int, int]:
        """Samples written since absolute `position` (a copy).

        Returns (samples, new_position, lost): `lost` counts samples that were overwritten
        before this reader got to them. `limit` caps how many are returned (oldest first).
        """
        written = self._written
        lost = 0
        oldest = written - self.capacity
        if position < oldest:
            lost = oldest - position
            position = oldest
        n = written - position
        if limit is not None:
            n = min(n, limit)
        if n <= 0:
            return np.zeros(0, dtype=self._data.dtype), position, lost
        start = position % self.capacity
        out = self._data[start : start + n].copy()
        return out, position + n, lost
