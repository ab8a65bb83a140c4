"""Errors a user can cause. Each one prints as a single line naming the thing and the cause."""

import os


class SerappError(Exception):
    """Base class: the CLI and the GUI show str(error) and no traceback."""


class UsageError(SerappError):
    """A mistake in what was asked (a name that is not there, options that do not go together):
    the command line exits 2 for it, as for its own usage errors, and 1 for files that fail."""


def printable(text) -> str:
    """A name as it can be shown on one line of any terminal: bytes that are not UTF-8 (kept by
    Python as surrogates) as \\xNN, control characters (a newline in a file name) escaped."""
    text = os.fsencode(str(text)).decode("utf-8", "backslashreplace")  # the name's own bytes
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def counted(n: int, noun: str) -> str:
    """`n` and the noun, plural unless n is 1 ("1 window", "3 windows")."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


class AudioDecodeError(SerappError):
    """An audio file could not be read."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{printable(self.path)}: cannot read audio: {reason}")


class BundleError(SerappError):
    """A model bundle could not be loaded or saved."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{printable(self.path)}: {reason}")


class UnknownModelError(BundleError, UsageError):
    """A model named that is neither a file nor a bundled model's name."""


class DeviceError(SerappError):
    """A compute device was asked for that is not there."""
