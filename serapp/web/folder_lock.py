"""One server to an answers folder: a server holds an exclusive lock on a file in the folder for as
long as it runs, so a second `serapp listen-web` (or the app's "Share in a browser…") on the same
folder is refused before it reads or writes anything there. Two servers would each take a rater's
answers from their own memory of that rater's file, and could write a trial twice.

The lock is the operating system's, taken without waiting: `fcntl.flock` on Linux and macOS
(whole-file, held by the open file, so a second open in the same process conflicts too), and
`msvcrt.locking` of its first byte on Windows. Either is released when the file is closed, and by
the system when the process ends in any way (SIGKILL, a crash, a power cut: nothing is left to
clean up). The lock file itself stays in the folder, empty: removing it on release would let a
server that opened the old file and one that creates a new one both hold "the" lock.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

from serapp.errors import SerappError, printable

LOCK_FILE = ".serapp-listen-web.lock"

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # OSError (EACCES or EDEADLOCK) when another holds it

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    _HELD = {errno.EACCES, errno.EDEADLOCK}
else:
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError when another holds it

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    _HELD = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES}


class FolderLockError(SerappError):
    """The answers folder cannot be locked; one line naming it and the cause."""


class FolderInUse(FolderLockError):
    """Another server holds the answers folder."""


def in_use_message(folder: str | Path) -> str:
    return (f"another server uses the answers folder {printable(folder)} (serapp listen-web, or the app's "
            f"Share in a browser…): stop it first, or choose another folder")


class FolderLock:
    """acquire() or FolderInUse; release() (or the process's end) lets the next server in.
    Also a context manager."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> FolderLock:
        if self._fd is not None:
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by child processes
        except OSError as exc:
            raise FolderLockError(f"{printable(self.path)}: cannot write: {exc.strerror or exc}") from None
        try:
            _try_lock(fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in _HELD:
                raise FolderInUse(in_use_message(self.folder)) from None
            # a file system without locks: refused, as a second server there could not be
            raise FolderLockError(f"{printable(self.path)}: cannot lock the answers folder: "
                                  f"{exc.strerror or exc}; choose a folder on a local disk") from None
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        except OSError:
            pass  # closing the file releases it anyway
        finally:
            os.close(fd)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        self.release()
