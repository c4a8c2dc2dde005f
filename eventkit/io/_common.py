"""Helpers shared by the format readers: file access, error wording, sorting, unit conversion.

Private: nothing here is part of the public API.
"""
from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Union

import numpy as np

from eventkit.errors import EventFileError, EventkitError, InvalidEventsError
from eventkit.events import sort_events

PathType = Union[str, "os.PathLike[str]"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def as_path(path: PathType) -> Path:
    """``path`` as a :class:`Path` (``~`` expanded)."""
    return Path(os.fspath(path)).expanduser()


def _fs(path: PathType) -> str:
    """``path`` as a str for ``open`` (``~`` expanded), without pathlib overhead on the hot path."""
    s = os.fspath(path)
    if isinstance(s, bytes):
        s = os.fsdecode(s)
    return os.path.expanduser(s) if s.startswith("~") else s


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: PathType, what: str, error: type[EventFileError] = EventFileError):
    """Open ``path`` for binary reading, refusing anything but a regular file (after symlinks).

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a
    FIFO, socket or device is refused at once (never waits for a writer) and cannot be
    swapped in between the check and the read. Missing, unreadable or non-regular files ->
    ``error`` (:class:`EventFileError` or a subclass) naming ``what`` the file should be.
    """
    p = _fs(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(p, f"file not found (expected {what})") from None
    except IsADirectoryError:
        raise error(p, f"is a directory, not {what}") from None
    except OSError as exc:
        raise error(p, f"cannot be read ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(p, f"is {_kind(mode)}, not a regular file: refusing to read it as {what}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_all_bytes(path: PathType, *, what: str) -> bytes:
    """The whole file as bytes; missing, empty or non-regular file -> :class:`EventFileError` naming ``what``."""
    p = _fs(path)
    with open_regular(p, what) as fh:
        try:
            data = fh.read()
        except OSError as exc:
            raise EventFileError(p, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) == 0:
        raise EventFileError(p, f"empty file (0 bytes), expected {what}", offset=0)
    return data


def read_head(path: PathType, n: int) -> bytes:
    """The first ``n`` bytes of a file (fewer if it is shorter); missing or non-regular file -> EventFileError."""
    p = as_path(path)
    with open_regular(p, "an event file") as fh:
        try:
            return fh.read(n)
        except OSError as exc:
            raise EventFileError(p, f"cannot be read ({exc.strerror or exc})") from None


_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)


@contextmanager
def decoder_errors(path: PathType, what: str, offset: int | None = None):
    """Turn *any* failure of a third-party decoder into :class:`EventFileError` naming the file.

    Covers ordinary exceptions, ``MemoryError`` (a header claiming more data than memory
    holds) and foreign panics that derive from ``BaseException`` only (a Rust ``pyo3``
    ``PanicException``), which would otherwise pass every ``except Exception``.
    ``KeyboardInterrupt``/``SystemExit`` and eventkit's own errors pass unchanged.
    """
    try:
        yield
    except (EventkitError, *_PASS_THROUGH):
        raise
    except MemoryError:
        raise EventFileError(as_path(path), f"{what}: the file declares more data than fits in memory "
                                            f"(corrupt header or sizes)", offset=offset) from None
    except BaseException as exc:  # noqa: BLE001 - foreign panics are BaseException subclasses
        raise EventFileError(as_path(path), f"{what} ({type(exc).__name__}: {exc})", offset=offset) from None


def check_record_size(path: PathType, n_bytes: int, start: int, record: int, what: str) -> int:
    """Number of whole ``record``-byte records after ``start``; a partial trailing record is an error.

    The error names the byte offset where the partial record begins.
    """
    body = n_bytes - start
    if body % record:
        partial_at = start + (body // record) * record
        raise EventFileError(
            path,
            f"truncated or not {what}: {body} data bytes after byte {start} is not a multiple of the "
            f"{record}-byte record; {body % record} trailing byte(s) form a partial record",
            offset=partial_at,
        )
    return body // record


def sorted_by_t(events: np.ndarray) -> np.ndarray:
    """Events sorted by ``t``: the input itself when already sorted (cheap check), else a stable sort."""
    return sort_events(events)


MAX_SECONDS = 9.0e12  # below 2**63 µs (about 9.22e12 s): the largest float time that converts to int64 µs


def seconds_in_range(times: np.ndarray) -> bool:
    """True when every float time (seconds) is finite, ``>= 0`` and below :data:`MAX_SECONDS`."""
    return times.size == 0 or bool(np.isfinite(times).all() and times.min() >= 0 and times.max() < MAX_SECONDS)


def seconds_to_us(times: np.ndarray) -> np.ndarray:
    """Float seconds (float16/32/64, as stored in SHD / N-TIDIGITS18 HDF5) -> int64 µs, rounded to nearest.

    The multiplication runs in double precision, which is exact for float16/float32 inputs
    (a 24-bit mantissa times 10**6 fits in 53 bits), so rounding recovers the integer µs a
    writer stored as long as it was representable. The result is integer; no float array
    outlives this function.
    """
    times = np.asarray(times)
    if times.dtype.kind != "f":
        raise TypeError(f"expected float seconds, got dtype {times.dtype}")
    return np.rint(times.astype("f8") * 1e6).astype(np.int64)


def us_to_seconds(t_us: np.ndarray, dtype) -> np.ndarray:
    """int µs -> float seconds of ``dtype`` (for writers of the HDF5 releases)."""
    t_us = np.asarray(t_us, dtype=np.int64)
    return (t_us / 1e6).astype(dtype)


def require_fields(events: np.ndarray, fields: tuple[str, ...], name: str) -> None:
    """Raise :class:`InvalidEventsError` unless ``events`` is a structured array with ``fields``."""
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise InvalidEventsError(
            f"{name}: expected a structured event array with fields {fields}, got "
            f"{type(events).__name__}" + (f" of dtype {events.dtype}" if isinstance(events, np.ndarray) else "")
        )
    missing = [f for f in fields if f not in events.dtype.names]
    if missing:
        raise InvalidEventsError(f"{name}: missing field(s) {missing}; fields present: {list(events.dtype.names)}")


def check_range(events: np.ndarray, field: str, lo: int, hi: int, name: str, why: str) -> None:
    """Raise :class:`InvalidEventsError` if any ``events[field]`` is outside ``[lo, hi]`` (inclusive)."""
    col = events[field]
    if col.size == 0:
        return
    bad = np.flatnonzero((col < lo) | (col > hi))
    if bad.size:
        i = int(bad[0])
        raise InvalidEventsError(
            f"{name}: {field}[{i}]={int(col[i])} cannot be written: {why} (allowed {lo}..{hi}); "
            f"{bad.size} event(s) out of range"
        )


def open_h5(path: PathType, what: str):
    """Open an HDF5 file read-only -> ``(h5py.File, H5Verdict)``.

    The file is read once in full by an isolated child process first (see
    :mod:`eventkit.io._h5check`): a file on which libhdf5 crashes, hangs or runs out of
    memory is refused here with :class:`EventFileError` and never opened in this process.
    Missing, empty, non-regular or non-HDF5 files -> :class:`EventFileError`.
    """
    import h5py  # imported where used

    from eventkit.io._h5check import h5_verdict

    p = as_path(path)
    head = read_head(p, 8)
    if len(head) == 0:
        raise EventFileError(p, f"empty file (0 bytes), expected {what}", offset=0)
    verdict = h5_verdict(p)  # first: even the signature search below is libhdf5 code
    if head != HDF5_MAGIC and not h5py.is_hdf5(p):  # (is_hdf5 also finds a signature after a user block)
        raise EventFileError(p, f"not an HDF5 file (no HDF5 signature), expected {what}", offset=0)
    try:
        return h5py.File(p, "r"), verdict
    except OSError as exc:
        raise EventFileError(p, f"corrupt or truncated HDF5 file, expected {what} (h5py: {exc})") from None


def h5_errors(path: PathType, what: str):
    """:func:`decoder_errors` for h5py once a file is open: ``OSError`` (a damaged chunk or
    heap), ``RuntimeError`` (damaged group metadata), ``KeyError`` (an object header it
    cannot open), ``TypeError`` (a damaged link), ``ValueError``/``UnicodeDecodeError``
    (undecodable contents), ``MemoryError`` and anything else -> :class:`EventFileError`."""
    return decoder_errors(path, f"corrupt HDF5 file, expected {what}")


def check_rows(ds, rows_limit: int | None, path: PathType, name: str, *, flat: bool = False) -> int:
    """Rows of the 1-D HDF5 dataset ``ds`` (``flat=True``: elements of any shape), checked
    before anything is allocated for them.

    The declared row count must fit the storage the file gives the dataset (each row takes
    ``itemsize`` bytes on disk: 16 for a variable-length row's heap reference; up to
    :data:`MAX_FILTER_RATIO` times less when a compression filter is set), that storage must
    fit in the file, and the count must not exceed ``rows_limit`` (from the manifest).
    """
    p = as_path(path)
    if ds.shape is None:  # a null dataspace holds nothing
        return 0
    if len(ds.shape) != 1 and not flat:
        raise EventFileError(p, f"/{name} has shape {ds.shape}, expected one dimension (one entry per sample)")
    rows = 1
    for d in ds.shape:
        rows *= int(d)
    if rows_limit is not None and rows > rows_limit:
        raise EventFileError(p, f"/{name} declares {rows} rows, more than the {rows_limit} this dataset can have")
    if rows == 0:
        return 0
    per_row = 16 if ds.dtype.kind == "O" else max(1, ds.dtype.itemsize)
    storage = int(ds.id.get_storage_size())
    filtered = ds.id.get_create_plist().get_nfilters() > 0
    file_size = os.path.getsize(p)
    if storage > file_size or rows * per_row > storage * (MAX_FILTER_RATIO if filtered else 1):
        raise EventFileError(
            p, f"/{name} declares {rows} rows ({rows * per_row} bytes) but the file stores {storage} bytes for it "
               f"(file size {file_size}): corrupt or truncated")
    return rows


MAX_FILTER_RATIO = 1100  # deflate cannot expand more than ~1032x


def h5_dataset(f, name: str, path: PathType, what: str):
    """``f[name]`` as a dataset, or :class:`EventFileError` naming the missing path and the expected layout."""
    import h5py

    obj = f.get(name)
    if obj is None or not isinstance(obj, h5py.Dataset):
        have = sorted(f.keys())
        raise EventFileError(as_path(path), f"no dataset '/{name}' (expected {what}; top-level entries: {have})")
    return obj


def _is_sorted(t: np.ndarray) -> bool:
    return t.shape[0] < 2 or bool(np.all(t[1:] >= t[:-1]))


def sort_by(out: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``out`` (events whose ``t`` column equals the contiguous ``t``) sorted by t: ``out`` itself
    when ``t`` is already non-decreasing (cheap contiguous check), else a stable argsort."""
    if _is_sorted(t):
        return out
    return out[np.argsort(t, kind="stable")]


class H5Reader:
    """Base of the open-HDF5-file readers (``ShdFile``, ``NTidigitsFile``): context manager
    whose ``close()`` is idempotent; subclasses set ``self.path`` and ``self._file``."""

    _file: Any

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the HDF5 file (idempotent)."""
        if self._file:
            self._file.close()
