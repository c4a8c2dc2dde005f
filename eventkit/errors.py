"""One exception type per domain; each subclasses the builtin a caller would catch.

The CLI turns every :class:`EventkitError` into one line on stderr and exit code 2.
"""
from __future__ import annotations

from os import PathLike


class EventkitError(Exception):
    """Base class of every error eventkit raises on purpose."""


class EventFileError(EventkitError, ValueError):
    """A raw event file is truncated, corrupt or not of the expected format.

    The message names the file, what is wrong and, where it applies, the byte offset.
    """

    def __init__(self, path: str | PathLike | None, problem: str, offset: int | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{self.path or '<stream>'}: {problem}{where}")

    def __reduce__(self):  # keep the attributes when the error crosses a process boundary
        return type(self), (self.path, self.problem, self.offset)


class InvalidEventsError(EventkitError, ValueError):
    """An event array breaks the events contract (fields, sorting, sensor bounds, polarity)."""


class ParameterError(EventkitError, ValueError):
    """A parameter value is out of range (T <= 0, unknown mode, ...); the message names it."""


class DatasetNotFound(EventkitError, FileNotFoundError):
    """Raw data of a dataset are missing or fail their checksum; the message says what to download."""


class CacheError(EventkitError, RuntimeError):
    """A cache store is missing, incomplete, corrupt or was built with other parameters."""
