"""Frames of many samples at once, samples in parallel over Numba's threads: ``[B, T, P, H, W]``.

:func:`to_frames_batch` takes the concatenated columns of a ragged batch plus ``offsets``;
:func:`to_frames_many` takes a list of event arrays. Each sample gets exactly
:func:`eventkit.frames.to_frames` (same rules, saturation, validation). Re-exported by
:mod:`eventkit.frames`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

from eventkit._arrays import INT64_MAX
from eventkit._frame_params import (
    _cap,
    _check_bool,
    _check_dtype,
    _check_sensor,
    _check_split,
    _check_T,
    _check_threads,
    argument_order,
    bad_event,
)
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import polarity_index, sort_events, validate_events
from eventkit.kernels import frames as _k

__all__ = ["to_frames_batch", "to_frames_many"]


def _column(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if name == "p" and arr.ndim == 1:
        arr = polarity_index(arr, "p")  # bool or signed -1/+1 polarity -> 0/1
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise InvalidEventsError(f"{name} must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr)


def _int64_column(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype.kind == "u" and a.dtype.itemsize == 8 and a.size and int(a.max()) > INT64_MAX:
        i = int(np.argmax(a > INT64_MAX))
        raise InvalidEventsError(f"{name}[{i}]={int(a[i])} does not fit in int64 (outside any sensor)")
    return a.astype(np.int64)


def to_frames_batch(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    offsets: np.ndarray,
    T: int,
    sensor_size: Sequence[int],
    split_by: str = "count",
    dtype: Any = np.uint16,
    merge_polarity: bool = False,
    n_threads: int | None = None,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Frames of a ragged batch, samples in parallel: ``ndarray[B, T, P, H, W]``.

    ``t, x, y, p`` are the concatenated columns of ``B`` samples (integer, ``t`` in µs)
    (``p`` may be ``bool`` or signed ``-1/+1``) and sample ``b`` is ``[offsets[b], offsets[b+1])``
    (``offsets``: length ``B + 1``, non-decreasing, within ``[0, len(t)]``; each sample sorted by ``t``). Each sample
    gets exactly :func:`to_frames` (same ``split_by`` rules, saturation, merge). Samples
    are spread over Numba's threads; ``n_threads`` sets how many for this call (the
    previous setting is restored). ``out``: an optional C-contiguous ``[B, T, P, H, W]``
    array of ``dtype`` to fill and return (reusing one buffer across batches avoids the
    page faults of a fresh allocation); its previous content is overwritten.
    """
    T = _check_T(T)
    sensor = _check_sensor(sensor_size)
    by_time = _check_split(split_by)
    dt = _check_dtype(dtype)
    merge = _check_bool(merge_polarity, "merge_polarity")
    threads = _check_threads(n_threads)
    t, x, y, p = (_column(a, name) for a, name in ((t, "t"), (x, "x"), (y, "y"), (p, "p")))
    N = t.shape[0]
    if not (x.shape[0] == y.shape[0] == p.shape[0] == N):
        raise InvalidEventsError(
            f"columns t, x, y, p must have one length, got {N}, {x.shape[0]}, {y.shape[0]}, {p.shape[0]}"
        )
    # Two column layouts reach the parallel kernel (one compile each per output dtype):
    # the contract's (t int64, x/y uint16, p uint8) and all-int64 for anything else.
    if t.dtype != np.int64:
        if t.dtype.kind == "u" and t.dtype.itemsize == 8 and N and int(t.max()) > INT64_MAX:
            raise InvalidEventsError("t: timestamps do not fit in int64")
        t = t.astype(np.int64)
    if (x.dtype, y.dtype, p.dtype) != (np.dtype(np.uint16), np.dtype(np.uint16), np.dtype(np.uint8)):
        x, y, p = (_int64_column(a, name) for a, name in ((x, "x"), (y, "y"), (p, "p")))
    off = np.asarray(offsets)
    if off.ndim != 1 or off.shape[0] < 1 or off.dtype.kind not in "iu":
        raise ParameterError(
            f"offsets must be a 1-D integer array of length B + 1, got shape {off.shape} dtype {off.dtype}")
    off = off.astype(np.int64)
    if off[0] < 0 or off[-1] > N or np.any(off[1:] < off[:-1]):
        raise ParameterError(
            f"offsets must be non-decreasing within [0, {N}] (number of events), got first={int(off[0])}, "
            f"last={int(off[-1])}"
        )
    W, H, P = sensor
    B = off.shape[0] - 1
    shape = (B, T, 1 if merge else P, H, W)
    if out is None:
        out = np.empty(shape, dtype=dt)  # every frame is zeroed by the kernel
    elif (not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dt
          or not out.flags.c_contiguous or not out.flags.writeable):
        raise ParameterError(
            f"out must be a writeable C-contiguous array of shape {shape} and dtype {dt}, got "
            + (f"shape {out.shape} dtype {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__)
        )
    err = np.full(B, -1, dtype=np.int64)
    if B:
        previous = numba.get_num_threads()
        # chunks of one sample: threads take samples as they finish (ragged sizes, busy cores)
        previous_chunk = numba.set_parallel_chunksize(1)
        try:
            if threads is not None:
                numba.set_num_threads(threads)
            _k.frames_batch(t, x, y, p, off, T, by_time, out.reshape(-1), W, H, P, 0 if merge else H * W, _cap(dt), err)
        finally:
            numba.set_num_threads(previous)
            numba.set_parallel_chunksize(previous_chunk)
    bad = np.flatnonzero(err >= 0)
    if bad.size:
        b = int(bad[0])
        raise bad_event(t, x, y, p, int(err[b]), int(off[b]), sensor, f"sample {b}")
    return out


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate integer columns without NumPy's int64 + uint64 -> float64 promotion."""
    dt = np.result_type(*[a.dtype for a in parts])
    if dt.kind not in "iu":
        parts = [_int64_column(a, "column") for a in parts]
        dt = np.dtype(np.int64)
    return np.concatenate(parts).astype(dt.newbyteorder("="), copy=False)


def to_frames_many(
    events_list: Sequence[np.ndarray],
    sensor_size: Sequence[int] | None = None,
    *legacy: Any,
    T: int | None = None,
    split_by: str = "count",
    dtype: Any = np.uint16,
    merge_polarity: bool = False,
    n_threads: int | None = None,
    sort: bool = False,
) -> np.ndarray:
    """:func:`to_frames_batch` over a list of event arrays: ``ndarray[B, T, P, H, W]``.

    ``to_frames_many(events_list, sensor_size, T=T, ...)`` (the older
    ``(events_list, T, sensor_size, ...)`` order still works, with a DeprecationWarning);
    each sample as in :func:`to_frames` (``sort=True`` sorts each one stably by ``t``).
    """
    sensor_size, T, opt = argument_order(
        "to_frames_many", "T", sensor_size, legacy, T,
        {"split_by": (split_by, "count"), "dtype": (dtype, np.uint16), "merge_polarity": (merge_polarity, False),
         "n_threads": (n_threads, None)}, ("split_by", "dtype", "merge_polarity", "n_threads"))
    split_by, dtype, merge_polarity, n_threads = (opt[k] for k in ("split_by", "dtype", "merge_polarity", "n_threads"))
    T = _check_T(T)
    sensor = _check_sensor(sensor_size)
    W, H, P = sensor
    items = list(events_list)
    if not isinstance(sort, (bool, np.bool_)):
        raise ParameterError(f"sort must be True or False, got {sort!r}")
    for b, ev in enumerate(items):
        validate_events(ev, None, name=f"sample {b}", require_sorted=False)
        if "y" not in (ev.dtype.names or ()):
            raise InvalidEventsError(f"sample {b}: expected vision events with fields t, x, y, p")
        if sort:
            items[b] = sort_events(ev)
    if not items:
        _check_split(split_by)
        dt = _check_dtype(dtype)
        return np.zeros((0, T, 1 if _check_bool(merge_polarity, "merge_polarity") else P, H, W), dtype=dt)
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum([ev.shape[0] for ev in items], out=offsets[1:])
    t, x, y, p = (_concat([ev[f] if f != "p" else polarity_index(ev["p"], f"sample {b}") for b, ev in enumerate(items)])
                  for f in ("t", "x", "y", "p"))
    return to_frames_batch(t, x, y, p, offsets, T, sensor, split_by, dtype, merge_polarity, n_threads)


