"""Decoded-audio cache: a second run over the same corpus starts in seconds.

What is cached is the front-end's input (mono audio at the front-end's rate, silence-trimmed
as configured), keyed by a hash of those parameters and of each file's bytes, in record order.
The key follows the contents, not the path or mtime: a corpus copied afresh (a new checkout,
a re-mounted share) still hits its cache, and hashing ~10k clips takes about a second.
Features themselves are computed on the fly: augmentation acts on the waveform, and the
front-end costs well under a millisecond per clip.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from serapp.audio import load_audio, trim_silence
from serapp.corpora import Record
from serapp.errors import AudioDecodeError
from serapp.files import WriteError, write_atomically

DEFAULT_CACHE_DIR = Path(os.environ.get("SER_TRAIN_CACHE", Path.home() / ".cache" / "serapp"))


def cache_key(records: list[Record], sample_rate: int, trim_top_db: float | None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"sample_rate": sample_rate, "trim_top_db": trim_top_db, "v": 2}).encode())
    for r in records:
        try:
            with open(r.path, "rb") as f:
                h.update(hashlib.file_digest(f, "blake2b").digest())
        except OSError:
            h.update(b"unreadable")  # decoding will report it; the key just has to differ
        h.update(b"\n")
    return h.hexdigest()[:20]


def load_clips(records: list[Record], sample_rate: int, trim_top_db: float | None,
               cache_dir: Path | None = DEFAULT_CACHE_DIR, log=print, desc: str = "") -> tuple[list[np.ndarray], list[str]]:
    """Audio for each record (None where decoding failed) and the list of failures.

    A first decode says what it is doing and shows a progress bar (clips, clips/s, ETA) on
    stderr; a cached corpus loads in about a second.
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"audio-{cache_key(records, sample_rate, trim_top_db)}.npz"
        if path.is_file():
            try:
                with np.load(path) as z:
                    flat, offsets, ok = z["flat"], z["offsets"], z["ok"]
                clips = [flat[offsets[i]:offsets[i + 1]] if ok[i] else None for i in range(len(records))]
                failures = [f"{records[i].path}: cached as unreadable" for i in range(len(records)) if not ok[i]]
                return clips, failures
            except (OSError, KeyError, ValueError, IndexError):
                log(f"cache {path} is damaged; rebuilding it", file=sys.stderr)
    clips, failures = [], []
    what = desc or f"{len(records)} clips"
    log(f"decoding {what}: {len(records)} files, resampled to {sample_rate} Hz"
        + (f", silence trimmed at {trim_top_db:g} dB" if trim_top_db is not None else "")
        + (f"; cached in {path.parent} for later runs" if path is not None else " (no cache)"), file=sys.stderr)
    for r in tqdm(records, desc="decoding", unit="clip", file=sys.stderr, disable=None, leave=False):
        try:
            y, _ = load_audio(r.path, sample_rate)
        except AudioDecodeError as exc:
            failures.append(str(exc))
            clips.append(None)
            continue
        if trim_top_db is not None:
            y, _ = trim_silence(y, sample_rate, trim_top_db)
        clips.append(np.ascontiguousarray(y, dtype=np.float32))
    if path is not None:
        try:
            _write_cache(path, clips)
        except WriteError as exc:  # the cache only saves time: the run goes on without it
            log(f"decoded audio not cached ({exc}); the next run decodes it again", file=sys.stderr)
    return clips, failures


def _write_cache(path: Path, clips: list) -> None:
    lengths = [0 if c is None else c.size for c in clips]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.concatenate([c for c in clips if c is not None] or [np.zeros(0, np.float32)])
    ok = np.array([c is not None for c in clips])

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, flat=flat, offsets=offsets, ok=ok)

    write_atomically(path, write)
