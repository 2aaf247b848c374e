"""User-facing errors.

Every error a user can cause (bad input, missing file, mismatched checkpoint) is a
``GantlError`` carrying a one-line message that says what was wrong and what to do.
The CLI prints that line without a traceback (``--debug`` shows it) and exits with
the error's ``exit_code``. Library callers can catch the precise subclass.
"""

from __future__ import annotations


class GantlError(Exception):
    """Base class: a one-line, actionable message and a process exit code."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(GantlError):
    """A config key is unknown, or its value has the wrong type or is not allowed."""

    exit_code = 2


class DatasetError(GantlError):
    """A dataset cannot be opened, is empty, or violates a requirement (e.g. resolution)."""

    exit_code = 3


class CheckpointError(GantlError):
    """A checkpoint is unreadable, incomplete, or does not fit the network it is loaded into."""

    exit_code = 4


class UnsafePickleError(CheckpointError):
    """A pickle asked to construct something other than tensors and plain containers."""


class SourceMismatchError(CheckpointError):
    """A transfer source does not fit the target (resolution, channels, conditioning)."""


class MissingDependencyError(GantlError):
    """An optional extra is needed for this feature; the message names the pip command."""

    exit_code = 5


class NotImplementedFeatureError(GantlError):
    """A command or option that is planned but not built yet. Never fake a result."""

    exit_code = 6


class MetricError(GantlError):
    """A metric cannot be computed from what it was given."""

    exit_code = 7


class StorageError(GantlError):
    """The disk is full or a file cannot be written (permissions, read-only); says what to free or fix."""

    exit_code = 8


class RunDirLockedError(GantlError):
    """Another process is writing to the same run directory."""

    exit_code = 9


def require(module: str, extra: str):
    """Import an optional dependency or raise a one-line error naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"'{module}' is not installed; install it with: pip install 'gantl[{extra}]'"
        ) from exc
