"""Parameter checks, argument order and error messages shared by the frame functions (private).

Every check raises :class:`~eventkit.errors.ParameterError` naming the parameter;
:func:`bad_event` builds the :class:`~eventkit.errors.InvalidEventsError` for the event a
kernel reported.
"""
from __future__ import annotations

import warnings
from typing import Any

import numba
import numpy as np

from eventkit._arrays import INT64_MAX
from eventkit.errors import InvalidEventsError, ParameterError

SPLIT_BY = ("count", "time")



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
    for v, label in zip(values, ("W", "H", "P"), strict=True):
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



def _check_threads(n_threads: Any) -> int | None:
    if n_threads is None:
        return None
    limit = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # set from the environment at import
    n = _check_int(n_threads, "n_threads", 1)
    if n > limit:
        raise ParameterError(f"n_threads must be between 1 and {limit} (NUMBA_NUM_THREADS), got {n}")
    return n

def bad_event(
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
    raise bad_event(ev["t"], ev["x"], ev["y"], ev["p"], i, 0, sensor, name)


# ---------------------------------------------------------------- argument order


def argument_order(
    fn: str,
    window: str,
    sensor_size: Any,
    legacy: tuple,
    window_value: Any,
    options: dict[str, tuple[Any, Any]],
    legacy_names: tuple[str, ...] = (),
) -> tuple[Any, Any, dict[str, Any]]:
    """Resolve ``fn(events, sensor_size, *, <window>=...)`` and the deprecated positional
    order ``fn(events, <window>, sensor_size, <legacy_names>...)``.

    The two are told apart by the second argument: an integer is the old order's window
    (``T``, ``duration_us``, ``event_count``), a sequence is ``sensor_size``. The old order
    still works and raises a :class:`DeprecationWarning`. ``options``: name -> (value
    passed by keyword, its default). Returns ``(sensor_size, window_value, options)``.
    """
    values = {k: v for k, (v, _) in options.items()}
    if isinstance(sensor_size, (int, np.integer)) and not isinstance(sensor_size, (bool, np.bool_)):
        if window_value is not None:
            raise ParameterError(f"{fn}: {window} given twice (as the second argument and as {window}=)")
        if not legacy:
            raise ParameterError(f"{fn}: the second argument is sensor_size (W, H, P), got {sensor_size!r}; "
                                 f"call {fn}(events, sensor_size, {window}=...)")
        if len(legacy) > 1 + len(legacy_names):
            raise ParameterError(f"{fn}: too many positional arguments ({2 + len(legacy)})")
        warnings.warn(f"{fn}(events, {window}, sensor_size, ...) is deprecated; call "
                      f"{fn}(events, sensor_size, {window}={sensor_size!r}, ...) instead", DeprecationWarning,
                      stacklevel=3)
        window_value, sensor_size = sensor_size, legacy[0]
        for name, value in zip(legacy_names, legacy[1:], strict=False):  # fewer positional values than names
            if values[name] is not options[name][1]:
                raise ParameterError(f"{fn}: {name} given twice (positionally and as {name}=)")
            values[name] = value
    elif legacy:
        raise ParameterError(f"{fn}(events, sensor_size, *, {window}=..., ...): pass the arguments after "
                             f"sensor_size by keyword, got {len(legacy)} more positional argument(s)")
    if sensor_size is None:
        raise ParameterError(f"{fn}: sensor_size (W, H, P) is required")
    if window_value is None:
        raise ParameterError(f"{fn}: {window}= is required")
    return sensor_size, window_value, values

