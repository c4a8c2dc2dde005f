"""Events to integer frames ``[T, P, H, W]``: exact, validated, single pass.

Rules (all windows are half-open index ranges; ``N`` events, sorted by ``t``):

* ``split_by="count"`` -- Eq. 22 of ``000_90ffbd64bbf58f12.txt`` (SpikingJelly's
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

from dataclasses import dataclass
from typing import Any, Sequence

import numba
import numpy as np

from eventkit._arrays import INT64_MAX, INT64_MIN, allocate
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import VISION_DTYPE, validate_events
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

SPLIT_BY = ("count", "time")
_WIDE = np.dtype([("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])


# ------------------------------------------------------------------ parameter checks


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    if int(value) < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {int(value)}")
    if int(value) > INT64_MAX:
        raise ParameterError(f"{name} must fit in a signed 64-bit integer, got {int(value)}")
    return int(value)


def _check_T(T: Any) -> int:
    return _check_int(T, "T (number of frames)", 1)


def _check_sensor(sensor_size: Any) -> tuple[int, int, int]:
    try:
        values = tuple(sensor_size)
    except TypeError:
        values = None
    if values is None or len(values) != 3:
        raise ParameterError(f"sensor_size must be (W, H, P), e.g. (128, 128, 2); got {sensor_size!r}")
    out = []
    for v, label in zip(values, ("W", "H", "P")):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or int(v) < 1:
            raise ParameterError(
                f"sensor_size must be (W, H, P) with positive integers, got {tuple(values)!r} ({label}={v!r})"
            )
        out.append(int(v))
    return out[0], out[1], out[2]


def _check_split(split_by: Any) -> bool:
    """True for ``"time"``, False for ``"count"``."""
    if split_by not in SPLIT_BY:
        raise ParameterError(
            f"split_by must be 'count' (Eq. 22, SpikingJelly's 'number') or 'time', got {split_by!r}"
        )
    return split_by == "time"


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ParameterError(f"dtype must be an integer NumPy dtype (e.g. np.uint16), got {dtype!r}") from exc
    if dt.kind not in "iu":
        raise ParameterError(
            f"dtype must be an integer NumPy dtype (uint8, uint16, uint32, int32, ...), got {dt}: "
            "frames are event counts and stay integer until the device"
        )
    return dt.newbyteorder("=")


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _cap(dt: np.dtype) -> int:
    """Largest count the output dtype holds (as an int64 for the kernel)."""
    return min(int(np.iinfo(dt).max), INT64_MAX)


# ---------------------------------------------------------------------- events


def _kernel_events(events: Any, name: str) -> np.ndarray:
    """Check the structure of vision events and return an array the record kernel reads.

    Structure only (fields, integer types, 1-D): bounds and sorting are checked by the
    counting kernel itself. ``VISION_DTYPE`` arrays are read in place (strided views are
    made contiguous); any other integer layout (narrow/signed/big-endian fields, extra
    fields, another field order) is copied into int64 records first, so the kernels are
    compiled for two record layouts only.
    """
    validate_events(events, None, name=name, require_sorted=False)
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
        col = events[f]
        if col.dtype.kind == "u" and col.dtype.itemsize == 8 and col.size and int(col.max()) > INT64_MAX:
            i = int(np.argmax(col > INT64_MAX))
            raise InvalidEventsError(f"{name}: {f}[{i}]={int(col[i])} does not fit in int64")
        wide[f] = col
    return wide


def _bad_event(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    i: int,
    first: int,
    sensor: tuple[int, int, int],
    name: str,
) -> InvalidEventsError:
    """Build the error for event ``i`` reported by a kernel (``first``: index of the sample's first event)."""
    W, H, P = sensor
    k = i - first
    if i > first and int(t[i]) < int(t[i - 1]):
        return InvalidEventsError(
            f"{name}: timestamps are not sorted: t[{k}]={int(t[i])} < t[{k - 1}]={int(t[i - 1])} "
            "(sort with eventkit.events.sort_events)"
        )
    for field, col, bound, label in (("x", x, W, "W"), ("y", y, H, "H"), ("p", p, P, "P")):
        v = int(col[i])
        if v < 0 or v >= bound:
            return InvalidEventsError(
                f"{name}: {field}[{k}]={v} outside the sensor ({label}={bound}, sensor_size={sensor}); "
                "pass the sensor_size of the recording"
            )
    return InvalidEventsError(f"{name}: event {k} is invalid for sensor_size={sensor}")  # pragma: no cover


def _raise_for(ev: np.ndarray, i: int, sensor: tuple[int, int, int], name: str) -> None:
    raise _bad_event(ev["t"], ev["x"], ev["y"], ev["p"], i, 0, sensor, name)


def _count_windows(
    ev: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    sensor: tuple[int, int, int],
    dt: np.dtype,
    merge: bool,
    name: str,
) -> np.ndarray:
    """Allocate ``[n, P_out, H, W]`` (zeroed frame by frame in the kernel), count windows ``[lo[j], hi[j])``, validate every event."""
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
    T: int,
    sensor_size: Sequence[int],
    split_by: str = "count",
    dtype: Any = np.uint16,
    merge_polarity: bool = False,
) -> np.ndarray:
    """Integrate events into ``T`` frames: ``ndarray[T, P, H, W]`` of integer counts.

    Parameters:
        events: vision events (structured array with integer fields ``t`` (µs), ``x``,
            ``y``, ``p``, e.g. ``eventkit.VISION_DTYPE``), sorted by ``t``.
        T: number of frames (int > 0).
        sensor_size: ``(W, H, P)``; every event must have ``x < W``, ``y < H``, ``p < P``.
        split_by: ``"count"`` -- Eq. 22: slice ``j`` holds events
            ``[floor(N/T)*j, floor(N/T)*(j+1))``, the last slice runs to ``N`` (so with
            ``N < T`` only the last frame is non-zero); ``"time"`` -- ``dt = floor((t_{N-1}
            - t_0)/T)`` µs, window ``j`` is ``[t_0 + j*dt, t_0 + (j+1)*dt)`` and the last
            window runs to the end; empty windows give zero frames; with ``dt = 0`` every
            event is in the last frame.
        dtype: integer output dtype. Counts saturate at the dtype's maximum (``uint8``
            at 255, ``uint16`` at 65535); float dtypes are refused.
        merge_polarity: sum the polarities into one channel (``P = 1`` in the output).

    Returns:
        ``[T, P, H, W]`` (``P = 1`` when ``merge_polarity``); all zeros for ``N = 0``.

    Raises:
        ParameterError: bad ``T``, ``sensor_size``, ``split_by``, ``dtype``.
        InvalidEventsError: not vision events, ``t`` not sorted, an event outside the sensor.
    """
    T = _check_T(T)
    sensor = _check_sensor(sensor_size)
    by_time = _check_split(split_by)
    dt = _check_dtype(dtype)
    merge = _check_bool(merge_polarity, "merge_polarity")
    ev = _kernel_events(events, "events")
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
    duration_us: int,
    sensor_size: Sequence[int],
    *,
    start_us: int | None = None,
    dtype: Any = np.uint16,
    merge_polarity: bool = False,
    include_incomplete: bool = True,
) -> np.ndarray:
    """Frames of fixed duration: ``ndarray[n, P, H, W]``, ``n`` set by the recording's span.

    With ``t0 = start_us`` (default: the first event's ``t``) and ``d = duration_us``,
    window ``j`` is ``[t0 + j*d, t0 + (j+1)*d)`` µs. The recording spans
    ``[t0, t_{N-1}]`` inclusive, ``span = t_{N-1} - t0 + 1`` µs:

    * ``include_incomplete=True``: ``n = ceil(span / d)`` -- every event at or after
      ``t0`` is counted; the last window may extend past ``t_{N-1}``;
    * ``include_incomplete=False``: ``n = floor(span / d)`` -- only windows that end by
      ``t_{N-1}`` (inclusive); later events are not counted.

    Events before ``start_us`` are not counted. ``N = 0`` (or ``t_{N-1} < start_us``)
    gives ``n = 0``: shape ``[0, P, H, W]``. Saturation and ``merge_polarity`` as in
    :func:`to_frames`; every event (counted or not) is validated.
    """
    d = _check_int(duration_us, "duration_us", 1)
    sensor = _check_sensor(sensor_size)
    dt = _check_dtype(dtype)
    merge = _check_bool(merge_polarity, "merge_polarity")
    complete_only = not _check_bool(include_incomplete, "include_incomplete")
    if start_us is not None and (isinstance(start_us, (bool, np.bool_)) or not isinstance(start_us, (int, np.integer))):
        raise ParameterError(f"start_us must be an integer time in µs or None, got {start_us!r}")
    if start_us is not None and not INT64_MIN <= int(start_us) <= INT64_MAX:
        raise ParameterError(f"start_us must fit in a signed 64-bit integer (µs), got {int(start_us)}")
    ev = _kernel_events(events, "events")
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
    event_count: int,
    sensor_size: Sequence[int],
    *,
    overlap: int = 0,
    dtype: Any = np.uint16,
    merge_polarity: bool = False,
    include_incomplete: bool = False,
) -> np.ndarray:
    """Frames of ``event_count`` events each (tonic's ``ToFrame(event_count=...)``): ``[n, P, H, W]``.

    ``stride = event_count - overlap``; window ``k`` holds events
    ``[k*stride, k*stride + c)`` with ``c = min(event_count, N)``, and
    ``n = floor((N - c) / stride) + 1`` (``ceil`` with ``include_incomplete=True``, the
    last window then being cut at ``N``). So ``N < event_count`` gives one frame of all
    ``N`` events, and ``N = 0`` gives shape ``[0, P, H, W]`` (tonic would return one
    empty frame). ``0 <= overlap < event_count``.
    """
    c = _check_int(event_count, "event_count", 1)
    ov = _check_int(overlap, "overlap", 0)
    if ov >= c:
        raise ParameterError(f"overlap must be smaller than event_count ({c}), got {ov}")
    sensor = _check_sensor(sensor_size)
    dt = _check_dtype(dtype)
    merge = _check_bool(merge_polarity, "merge_polarity")
    incomplete = _check_bool(include_incomplete, "include_incomplete")
    ev = _kernel_events(events, "events")
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


def _column(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
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


def _check_threads(n_threads: Any) -> int | None:
    if n_threads is None:
        return None
    limit = int(numba.config.NUMBA_NUM_THREADS)
    n = _check_int(n_threads, "n_threads", 1)
    if n > limit:
        raise ParameterError(f"n_threads must be between 1 and {limit} (NUMBA_NUM_THREADS), got {n}")
    return n


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
    and sample ``b`` is ``[offsets[b], offsets[b+1])`` (``offsets``: length ``B + 1``,
    non-decreasing, within ``[0, len(t)]``; each sample sorted by ``t``). Each sample
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
        raise ParameterError(f"offsets must be a 1-D integer array of length B + 1, got shape {off.shape} dtype {off.dtype}")
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
        raise _bad_event(t, x, y, p, int(err[b]), int(off[b]), sensor, f"sample {b}")
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
    T: int,
    sensor_size: Sequence[int],
    split_by: str = "count",
    dtype: Any = np.uint16,
    merge_polarity: bool = False,
    n_threads: int | None = None,
) -> np.ndarray:
    """:func:`to_frames_batch` over a list of event arrays: ``ndarray[B, T, P, H, W]``."""
    T = _check_T(T)
    sensor = _check_sensor(sensor_size)
    W, H, P = sensor
    items = list(events_list)
    for b, ev in enumerate(items):
        validate_events(ev, None, name=f"sample {b}", require_sorted=False)
        if "y" not in ev.dtype.names:
            raise InvalidEventsError(f"sample {b}: expected vision events with fields t, x, y, p")
    if not items:
        _check_split(split_by)
        dt = _check_dtype(dtype)
        return np.zeros((0, T, 1 if _check_bool(merge_polarity, "merge_polarity") else P, H, W), dtype=dt)
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum([ev.shape[0] for ev in items], out=offsets[1:])
    cols = [_concat([ev[f] for ev in items]) for f in ("t", "x", "y", "p")]
    return to_frames_batch(*cols, offsets, T, sensor, split_by, dtype, merge_polarity, n_threads)


@dataclass(frozen=True)
class ToFrames:
    """Transform: ``ToFrames(T, sensor_size)(events) -> [T, P, H, W]`` (see :func:`to_frames`).

    Parameters are checked at construction; the instance never changes.
    """

    T: int
    sensor_size: tuple[int, int, int]
    split_by: str = "count"
    dtype: Any = np.uint16
    merge_polarity: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", _check_T(self.T))
        object.__setattr__(self, "sensor_size", _check_sensor(self.sensor_size))
        _check_split(self.split_by)
        object.__setattr__(self, "dtype", _check_dtype(self.dtype))
        _check_bool(self.merge_polarity, "merge_polarity")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_frames(events, self.T, self.sensor_size, self.split_by, self.dtype, self.merge_polarity)
