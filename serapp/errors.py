"""Errors a user can cause. Each one prints as a single line naming the thing and the cause."""


class SerappError(Exception):
    """Base class: the CLI and the GUI show str(error) and no traceback."""


class AudioDecodeError(SerappError):
    """An audio file could not be read."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: cannot read audio: {reason}")


class BundleError(SerappError):
    """A model bundle could not be loaded or saved."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DeviceError(SerappError):
    """A compute device was asked for that is not there."""
