"""Events to integer frames ``[T, P, H, W]``: exact, validated, single pass.

Rules (all windows are half-open index ranges; ``N`` events, sorted by ``t``):

* ``split_by="count"`` -- Eq. 22 of Jin et al. 2022 (SpikingJelly's
  ``split_by='number'``): slice ``j`` holds events ``[floor(N/T)*j, floor(N/T)*(j+1))``,
  the last slice ``[floor(N/T)*(T-1), N)``. With ``N < T``, ``floor(N/T) = 0``: slices
  ``0..T-2`` are empty and the last one holds all ``N`` events.
* ``split_by="time"`` -- SpikingJelly's time edges: ``dt = floor((t_{N-1} - t_0) / T)``
  (µs); window ``j`` is ``[t_0 + j*dt, t_0 + (j+1)*dt)`` and the last window runs to the
  end (it includes ``t_{N-1}``). An empty window is an all-zero frame (SpikingJelly
  raises there). With ``dt = 0`` (all events at one time, or a duration shorter than
  ``T`` µs) windows ``0..T-2`` are empty and every event lands in the last frame.
* :func:`to_frames_by_duration` -- fixed ``duration_us`` windows, their number follows
  the recording; :func:`to_frames_by_event_count` -- tonic's ``event_count`` windows.

``F[j, p, y, x]`` is the number of events of window ``j`` at ``(p, y, x)``. ``N = 0``
gives all-zero frames. Frames are integer counts (``uint16`` by default); a count that
would exceed the dtype's maximum saturates there (``uint8`` at 255, ``uint16`` at
65535): there is never a wraparound. With ``merge_polarity=True`` both polarities are
summed into one channel (``P = 1``).

Validation is fused into the counting kernel: events outside ``sensor_size`` or with a
decreasing ``t`` raise :class:`~eventkit.errors.InvalidEventsError` naming the field,
the index and the value; bad parameters raise :class:`~eventkit.errors.ParameterError`
naming the parameter.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventkit._arrays import INT64_MAX, INT64_MIN, allocate
from eventkit._frame_params import (
    SPLIT_BY,
    _cap,
    _check_bool,
    _check_dtype,
    _check_int,
    _check_sensor,
    _check_split,
    _check_T,
    argument_order,
    bad_event,
)
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import VISION_DTYPE, polarity_index, sort_events, validate_events
from eventkit.frames_batch import to_frames_batch, to_frames_many
from eventkit.kernels import events as _kv
from eventkit.kernels import frames as _k

__all__ = [
    "to_frames",
    "to_frames_by_duration",
    "to_frames_by_event_count",
    "to_frames_batch",
    "to_frames_many",
    "ToFrames",
    "SPLIT_BY",
]

_WIDE = np.dtype([("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])

# ---------------------------------------------------------------------- events


def _kernel_events(events: Any, name: str, sort: bool = False) -> np.ndarray:
    """Check the structure of vision events and return an array the record kernel reads.

    Structure only (fields, integer types, 1-D): bounds and sorting are checked by the
    counting kernel itself. ``VISION_DTYPE`` arrays are read in place (strided views are
    made contiguous); any other integer layout (narrow/signed/big-endian fields, extra
    fields, another field order, a ``bool`` or signed ``-1/+1`` polarity) is copied into
    int64 records first, the polarity mapped to ``0..P-1`` on the way
    (:func:`~eventkit.events.polarity_index`), so the kernels are compiled for two record
    layouts only. ``sort=True`` sorts stably by ``t`` first (a no-op pass when sorted).
    """
    validate_events(events, None, name=name, require_sorted=False)
    if not isinstance(sort, (bool, np.bool_)):
        raise ParameterError(f"sort must be True or False, got {sort!r}")
    if sort:
        events = sort_events(events)
    if "y" not in events.dtype.names:
        raise InvalidEventsError(
            f"{name}: frames need vision events with fields t, x, y, p; got fields {list(events.dtype.names)} "
            "(audio events: use eventkit.audio)"
        )
    if type(events) is not np.ndarray:  # recarray, memmap, ...: the kernel takes plain arrays
        events = events.view(np.ndarray)
    if events.dtype == VISION_DTYPE:
        return events if events.flags.c_contiguous else np.ascontiguousarray(events)
    wide = np.empty(events.shape[0], dtype=_WIDE)
    for f in ("t", "x", "y", "p"):
        col = polarity_index(events[f], name) if f == "p" else events[f]
        if col.dtype.kind == "u" and col.dtype.itemsize == 8 and col.size and int(col.max()) > INT64_MAX:
            i = int(np.argmax(col > INT64_MAX))
            raise InvalidEventsError(f"{name}: {f}[{i}]={int(col[i])} does not fit in int64")
        wide[f] = col
    return wide


def _raise_for(ev: np.ndarray, i: int, sensor: tuple[int, int, int], name: str) -> None:
    raise bad_event(ev["t"], ev["x"], ev["y"], ev["p"], i, 0, sensor, name)


def _count_windows(
    ev: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    sensor: tuple[int, int, int],
    dt: np.dtype,
    merge: bool,
    name: str,
) -> np.ndarray:
    """Allocate ``[n, P_out, H, W]`` (zeroed frame by frame in the kernel), count windows
    ``[lo[j], hi[j])``, validate every event."""
    W, H, P = sensor
    n = lo.shape[0]
    N = ev.shape[0]
    shape = (n, 1 if merge else P, H, W)
    if N == 0:
        return allocate(shape, dt, f"{n} frames", zeros=True)
    out = allocate(shape, dt, f"{n} frames")  # every frame is zeroed by the kernel
    covered_lo = int(lo[0]) if n else N
    covered_hi = int(hi[-1]) if n else N
    bad = _kv.first_invalid_vision(ev, 0, covered_lo, W, H, P, True) if covered_lo > 0 else -1
    if bad < 0 and n:
        bad = _k.accumulate_records(ev, lo, hi, out.reshape(-1), W, H, P, 0 if merge else H * W, _cap(dt))
    if bad < 0 and covered_hi < N:
        bad = _kv.first_invalid_vision(ev, covered_hi, N, W, H, P, True)
    if bad >= 0:
        _raise_for(ev, int(bad), sensor, name)
    return out

# ------------------------------------------------------------------------- public


def to_frames(
    events: np.ndarray,
    sensor_size: Sequence[int] | None = None,
    *legacy: Any,
    T: int | None = None,
    split_by: str = "count",
    dtype: Any = np.uint16,
    merge_polarity: bool = False,
    sort: bool = False,
) -> np.ndarray:
    """Integrate events into ``T`` frames: ``ndarray[T, P, H, W]`` of integer counts.

    ``to_frames(events, sensor_size, T=T, ...)``; the older order
    ``to_frames(events, T, sensor_size, split_by, dtype, merge_polarity)`` still works and
    raises a :class:`DeprecationWarning`.

    Parameters:
        events: vision events (structured array with integer fields ``t`` (µs), ``x``,
            ``y``, ``p``, e.g. ``eventkit.VISION_DTYPE``; any integer field types, ``p``
            also ``bool`` or signed ``-1/+1`` as in tonic), sorted by ``t``.
        sensor_size: ``(W, H, P)``; every event must have ``x < W``, ``y < H``, ``p < P``.
        T: number of frames (int > 0), keyword.
        split_by: ``"count"`` -- Eq. 22: slice ``j`` holds events
            ``[floor(N/T)*j, floor(N/T)*(j+1))``, the last slice runs to ``N`` (so with
            ``N < T`` only the last frame is non-zero); ``"time"`` -- ``dt = floor((t_{N-1}
            - t_0)/T)`` µs, window ``j`` is ``[t_0 + j*dt, t_0 + (j+1)*dt)`` and the last
            window runs to the end; empty windows give zero frames; with ``dt = 0`` every
            event is in the last frame.
        dtype: integer output dtype. Counts saturate at the dtype's maximum (``uint8``
            at 255, ``uint16`` at 65535); float dtypes are refused.
        merge_polarity: sum the polarities into one channel (``P = 1`` in the output).
        sort: sort the events stably by ``t`` first (e.g. after tonic's ``TimeJitter``);
            without it unsorted events are refused.

    Returns:
        ``[T, P, H, W]`` (``P = 1`` when ``merge_polarity``); all zeros for ``N = 0``.

    Raises:
        ParameterError: bad ``T``, ``sensor_size``, ``split_by``, ``dtype``.
        InvalidEventsError: not vision events, ``t`` not sorted, an event outside the sensor.
    """
    if legacy or T is None or sensor_size is None or isinstance(sensor_size, (int, np.integer)):
        sensor_size, T, opt = argument_order(
            "to_frames", "T", sensor_size, legacy, T,
            {"split_by": (split_by, "count"), "dtype": (dtype, np.uint16), "merge_polarity": (merge_polarity, False)},
            ("split_by", "dtype", "merge_polarity"))
        split_by, dtype, merge_polarity = opt["split_by"], opt["dtype"], opt["merge_polarity"]
    T = _check_T(T)
    sensor = _check_sensor(sensor_size)
    by_time = _check_split(split_by)
    dt = _check_dtype(dtype)
    merge = _check_bool(merge_polarity, "merge_polarity")
    ev = _kernel_events(events, "events", sort)
    N = ev.shape[0]
    bounds = allocate((T + 1,), np.int64, f"T={T}")
    if N == 0:
        bounds[:] = 0
    elif by_time:
        _k.time_bounds(ev["t"], 0, N, T, bounds)
    else:
        _k.count_bounds(0, N, T, bounds)
    return _count_windows(ev, bounds[:-1], bounds[1:], sensor, dt, merge, "events")


def to_frames_by_duration(
    events: np.ndarray,
    sensor_size: Sequence[int] | None = None,
    *legacy: Any,
    duration_us: int | None = None,
    start_us: int | None = None,
    dtype: Any = np.uint16,
    merge_polarity: bool = False,
    include_incomplete: bool = True,
    sort: bool = False,
) -> np.ndarray:
    """Frames of fixed duration: ``ndarray[n, P, H, W]``, ``n`` set by the recording's span.

    ``to_frames_by_duration(events, sensor_size, duration_us=d, ...)`` (the older
    ``(events, duration_us, sensor_size)`` order still works, with a DeprecationWarning).

    With ``t0 = start_us`` (default: the first event's ``t``) and ``d = duration_us``,
    window ``j`` is ``[t0 + j*d, t0 + (j+1)*d)`` µs. The recording spans
    ``[t0, t_{N-1}]`` inclusive, ``span = t_{N-1} - t0 + 1`` µs:

    * ``include_incomplete=True``: ``n = ceil(span / d)`` -- every event at or after
      ``t0`` is counted; the last window may extend past ``t_{N-1}``;
    * ``include_incomplete=False``: ``n = floor(span / d)`` -- only windows that end by
      ``t_{N-1}`` (inclusive); later events are not counted.

    Events before ``start_us`` are not counted. ``N = 0`` (or ``t_{N-1} < start_us``)
    gives ``n = 0``: shape ``[0, P, H, W]``. Saturation, ``merge_polarity`` and ``sort`` as
    in :func:`to_frames`; every event (counted or not) is validated.
    """
    sensor_size, duration_us, _ = argument_order("to_frames_by_duration", "duration_us", sensor_size, legacy,
                                                  duration_us, {})
    d = _check_int(duration_us, "duration_us", 1)
    sensor = _check_sensor(sensor_size)
    dt = _check_dtype(dtype)
    merge = _check_bool(merge_polarity, "merge_polarity")
    complete_only = not _check_bool(include_incomplete, "include_incomplete")
    if start_us is not None and (isinstance(start_us, (bool, np.bool_)) or not isinstance(start_us, (int, np.integer))):
        raise ParameterError(f"start_us must be an integer time in µs or None, got {start_us!r}")
    if start_us is not None and not INT64_MIN <= int(start_us) <= INT64_MAX:
        raise ParameterError(f"start_us must fit in a signed 64-bit integer (µs), got {int(start_us)}")
    ev = _kernel_events(events, "events", sort)
    N = ev.shape[0]
    if N == 0:
        n = 0
        t0 = 0
    else:
        t0 = int(ev["t"][0]) if start_us is None else int(start_us)
        span = int(ev["t"][N - 1]) - t0 + 1
        n = 0 if span <= 0 else (span // d if complete_only else -(-span // d))
    bounds = allocate((n + 1,), np.int64, f"duration_us={d} over {n} windows", zeros=True)
    if N:
        _k.edge_bounds(ev["t"], t0, d, n, bounds)
    return _count_windows(ev, bounds[:-1], bounds[1:], sensor, dt, merge, "events")


def to_frames_by_event_count(
    events: np.ndarray,
    sensor_size: Sequence[int] | None = None,
    *legacy: Any,
    event_count: int | None = None,
    overlap: int = 0,
    dtype: Any = np.uint16,
    merge_polarity: bool = False,
    include_incomplete: bool = False,
    sort: bool = False,
) -> np.ndarray:
    """Frames of ``event_count`` events each (tonic's ``ToFrame(event_count=...)``): ``[n, P, H, W]``.

    ``to_frames_by_event_count(events, sensor_size, event_count=c, ...)`` (the older
    ``(events, event_count, sensor_size)`` order still works, with a DeprecationWarning).

    ``stride = event_count - overlap``; window ``k`` holds events
    ``[k*stride, k*stride + c)`` with ``c = min(event_count, N)``, and
    ``n = floor((N - c) / stride) + 1`` (``ceil`` with ``include_incomplete=True``, the
    last window then being cut at ``N``). So ``N < event_count`` gives one frame of all
    ``N`` events, and ``N = 0`` gives shape ``[0, P, H, W]`` (tonic would return one
    empty frame). ``0 <= overlap < event_count``. ``sort`` as in :func:`to_frames`.
    """
    sensor_size, event_count, _ = argument_order("to_frames_by_event_count", "event_count", sensor_size, legacy,
                                                  event_count, {})
    c = _check_int(event_count, "event_count", 1)
    ov = _check_int(overlap, "overlap", 0)
    if ov >= c:
        raise ParameterError(f"overlap must be smaller than event_count ({c}), got {ov}")
    sensor = _check_sensor(sensor_size)
    dt = _check_dtype(dtype)
    merge = _check_bool(merge_polarity, "merge_polarity")
    incomplete = _check_bool(include_incomplete, "include_incomplete")
    ev = _kernel_events(events, "events", sort)
    N = ev.shape[0]
    stride = c - ov
    if N == 0:
        n = 0
    else:
        c = min(c, N)
        n = (-(-(N - c) // stride) if incomplete else (N - c) // stride) + 1
    lo = np.arange(n, dtype=np.int64) * stride
    hi = np.minimum(lo + c, N)
    return _count_windows(ev, lo, hi, sensor, dt, merge, "events")

@dataclass(frozen=True)
class ToFrames:
    """Transform: ``ToFrames(sensor_size, T=T)(events) -> [T, P, H, W]`` (see :func:`to_frames`).

    Parameters are checked at construction; the instance never changes. The older
    ``ToFrames(T, sensor_size)`` order still works, with a DeprecationWarning.
    """

    sensor_size: tuple[int, int, int]
    T: int
    split_by: str = "count"
    dtype: Any = np.uint16
    merge_polarity: bool = False
    sort: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.sensor_size, (int, np.integer)) and not isinstance(self.T, (int, np.integer)):
            warnings.warn("ToFrames(T, sensor_size) is deprecated; call ToFrames(sensor_size, T=T)",
                          DeprecationWarning, stacklevel=3)
            T, sensor = self.sensor_size, self.T
            object.__setattr__(self, "T", T)
            object.__setattr__(self, "sensor_size", sensor)
        object.__setattr__(self, "T", _check_T(self.T))
        object.__setattr__(self, "sensor_size", _check_sensor(self.sensor_size))
        _check_split(self.split_by)
        object.__setattr__(self, "dtype", _check_dtype(self.dtype))
        _check_bool(self.merge_polarity, "merge_polarity")
        _check_bool(self.sort, "sort")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_frames(events, self.sensor_size, T=self.T, split_by=self.split_by, dtype=self.dtype,
                         merge_polarity=self.merge_polarity, sort=self.sort)
