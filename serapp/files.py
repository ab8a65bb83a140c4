"""Whole-or-nothing file writes, for bundles, checkpoints, run records and caches.

The file is written beside its destination and renamed over it, so a crash, a Ctrl-C or a
full disk leaves the previous file intact and no partial one behind. A failed write is one
`WriteError` naming the file and the cause, whatever library was writing.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from serapp.errors import SerappError

_NEARLY_FULL = 1 << 20  # bytes free under which a failed write is put down to a full disk


class WriteError(SerappError, OSError):
    """A file could not be written; the previous version, if any, is unchanged."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: cannot write: {reason}")

    def __str__(self) -> str:  # OSError's own would print the arguments as a tuple
        return f"{self.path}: cannot write: {self.reason}"


def write_atomically(path: Path | str, write: Callable[[str], None]) -> Path:
    """Call `write(temporary_path)`, then move the result to `path` in one step."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except FileExistsError as exc:  # the folder's name is taken by a file
        raise WriteError(path, os.strerror(errno.ENOTDIR)) from exc
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc)) from exc
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as a RuntimeError
        Path(tmp).unlink(missing_ok=True)
        raise WriteError(path, _reason(exc, path.parent)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path | str, text: str) -> Path:
    """`write_atomically` for UTF-8 text."""
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _reason(exc: BaseException, directory: Path) -> str:
    """The operating system's word for it where the chain of errors has one (torch wraps a
    failed write to a file object in a RuntimeError of its own), else a full disk, else the
    error's first line."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    try:
        if shutil.disk_usage(directory).free < _NEARLY_FULL:
            return "no space left on device"
    except OSError:
        pass
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def special_kind(path) -> str | None:
    """What `path` is when opening it could wait forever ("a FIFO", "a device", "a socket"); None
    for a regular file, a folder, or no file at all (the opener names those)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def decode_utf8(data: bytes) -> tuple[str | None, tuple[int, str] | None]:
    """(text, None), or (None, (line, why)) for bytes that are not UTF-8 (a BOM is dropped):
    where the first bad byte is, for a one-line message."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        return None, (data.count(b"\n", 0, exc.start) + 1,
                      f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {exc.start - line_start + 1})")
