"""One exception type per domain; each subclasses the builtin a caller would catch.

The CLI turns every :class:`EventkitError` into one line on stderr and exit code 2.
"""
from __future__ import annotations

from os import PathLike


class EventkitError(Exception):
    """Base class of every error eventkit raises on purpose."""


class RawFileError(EventkitError, ValueError):
    """A file eventkit reads is truncated, corrupt or not of the expected format.

    Raised as is for raw event files (and the label/split files beside them); the
    subclasses below name the other kinds of file. The message names the file, what is
    wrong and, where it applies, the byte offset.
    """

    def __init__(self, path: str | PathLike | None, problem: str, offset: int | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{self.path or '<stream>'}: {problem}{where}")

    def __reduce__(self):  # keep (path, problem, offset) across a process boundary (Dask, DataLoader workers)
        return (type(self), (self.path, self.problem, self.offset))


EventFileError = RawFileError
"""The former name of :class:`RawFileError` (kept: ``except EventFileError`` catches every subclass)."""


class ManifestError(RawFileError):
    """A dataset manifest (``data_manifests/<name>.toml``) is not valid TOML or misses/misstates a key."""


class ArchiveError(RawFileError):
    """A downloaded archive is corrupt, truncated or holds a member that would land outside its folder."""


class ImageFileError(RawFileError):
    """A static image file (IDX, CIFAR-10 binary) is corrupt, truncated or holds out-of-range labels."""


class InvalidEventsError(EventkitError, ValueError):
    """An event array breaks the events contract (fields, sorting, sensor bounds, polarity)."""


class ParameterError(EventkitError, ValueError):
    """A parameter value is out of range (T <= 0, unknown mode, ...); the message names it."""


class DatasetNotFound(EventkitError, FileNotFoundError):
    """Raw data of a dataset are missing or fail their checksum; the message says what to download."""


class CacheError(EventkitError, RuntimeError):
    """A cache store is missing, incomplete, corrupt or was built with other parameters."""
