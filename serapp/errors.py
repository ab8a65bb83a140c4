"""Errors a user can cause. Each one prints as a single line naming the thing and the cause."""

import os


class SerappError(Exception):
    """Base class: the CLI and the GUI show str(error) and no traceback."""


def printable(text) -> str:
    """A name as it can be shown on one line of any terminal: bytes that are not UTF-8 (kept by
    Python as surrogates) as \\xNN, control characters (a newline in a file name) escaped."""
    text = os.fsencode(str(text)).decode("utf-8", "backslashreplace")  # the name's own bytes
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


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


class DeviceError(SerappError):
    """A compute device was asked for that is not there."""
