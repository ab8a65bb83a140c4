"""Several processes running one resumable command share its pieces out between them: each
piece's output file is claimed before it is made, by creating `<output>.claim` holding the
claiming process's id; a claim whose process is gone is taken over. (For one machine's
processes; a shared folder across machines would need a lock service.)"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

EMPTY_CLAIM_S = 60.0  # an empty claim older than this was left by a process that died making it


@contextlib.contextmanager
def claimed(path: Path):
    """Yields whether this process may make `path` now; the claim is dropped on leaving."""
    claim = path.with_suffix(".claim")
    claim.parent.mkdir(parents=True, exist_ok=True)
    if claim_is_stale(path):
        claim.unlink(missing_ok=True)
    try:
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        yield False
        return
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield True
    finally:
        claim.unlink(missing_ok=True)


def claim_is_stale(path: Path) -> bool:
    """A claim on `path` whose process no longer runs (an empty one counts as live for a
    minute: its writer may be between creating and filling it)."""
    claim = path.with_suffix(".claim")
    try:
        pid = int(claim.read_text() or 0)
        if pid <= 0:
            return time.time() - claim.stat().st_mtime > EMPTY_CLAIM_S
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
