"""The events contract: structured NumPy arrays with tonic's field names.

* vision events: ``t:int64 (µs)``, ``x:uint16``, ``y:uint16``, ``p:uint8 (0/1)``
* audio events:  ``t:int64 (µs)``, ``x:uint16 (cochlea channel)``, ``p:uint8`` (no ``y``)

``sensor_size`` is ``(W, H, P)`` for vision and ``(C, 1, P)`` for audio (tonic's order).
Events handed to kernels are sorted by ``t``.

Other layouts are accepted wherever events go in (:func:`validate_events`, ``to_frames``,
``to_audio_frames``): any integer ``t``/``x``/``y`` dtype, any field order, and a polarity
that is ``bool`` (tonic's DVSGesture, CIFAR10DVS, DVSLip samples), signed ``-1/+1``
(tonic's signed convention) or any non-negative integer: :func:`polarity_index` turns it
into the index ``0..P-1`` once (``False``/``-1`` → 0, ``True``/``+1`` → 1).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eventkit.errors import InvalidEventsError
from eventkit.kernels import events as _kv

VISION_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
AUDIO_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("p", "u1")])

SensorSize = tuple[int, int, int]


def make_events(t, x, y, p) -> np.ndarray:
    """Pack columns into a vision event array (``VISION_DTYPE``); no validation, no sorting."""
    t = np.asarray(t)
    out = np.empty(t.shape[0], dtype=VISION_DTYPE)
    out["t"] = t
    out["x"] = x
    out["y"] = y
    out["p"] = p
    return out


def make_audio_events(t, x, p) -> np.ndarray:
    """Pack columns into an audio event array (``AUDIO_DTYPE``); no validation, no sorting."""
    t = np.asarray(t)
    out = np.empty(t.shape[0], dtype=AUDIO_DTYPE)
    out["t"] = t
    out["x"] = x
    out["p"] = p
    return out


def polarity_index(p: np.ndarray, name: str = "events") -> np.ndarray:
    """The polarity column ``p [N]`` as indices ``0..P-1``, converted once and cheaply.

    * ``bool``: a zero-copy ``uint8`` view (``False`` → 0, ``True`` → 1);
    * a signed integer column holding a negative value: tonic's ``-1/+1`` convention, every
      value must be ``-1`` or ``+1`` (→ 0 / 1, a ``uint8`` copy); anything else is an
      :class:`InvalidEventsError` naming the first offending event;
    * any other integer column: returned as it is (its range is checked against ``P`` by
      the caller).
    """
    kind = p.dtype.kind
    if kind == "b":
        return p.view(np.uint8)
    if kind == "i" and p.shape[0] and int(p.min()) < 0:
        bad = np.flatnonzero((p != 1) & (p != -1))
        if bad.size:
            i = int(bad[0])
            raise InvalidEventsError(
                f"{name}: p[{i}]={int(p[i])} but the polarity column also holds negative values: a polarity is "
                "0..P-1 (eventkit), bool, or -1/+1 (tonic's signed convention), never a mix"
            )
        return (p > 0).view(np.uint8)
    return p


def is_audio(events: np.ndarray) -> bool:
    """True for audio events (no ``y`` field)."""
    names = events.dtype.names or ()
    return "y" not in names


def sort_events(events: np.ndarray) -> np.ndarray:
    """Return events stably sorted by ``t`` (the input itself when already sorted)."""
    t = events["t"]
    if t.shape[0] < 2:
        return events
    if t.dtype == np.int64:  # the contract's t: one Numba pass over the field, no temporaries
        if _kv.is_sorted(t):
            return events
    elif bool(np.all(t[1:] >= t[:-1])):
        return events
    return events[np.argsort(t, kind="stable")]


def _first_invalid(events: np.ndarray, bounds: tuple[int, int, int] | None, check_sorted: bool) -> int | None:
    """Fast path of :func:`validate_events` for the contract dtypes: the first invalid event's
    index, ``-1`` when all are valid, ``None`` for other dtypes (checked with NumPy instead)."""
    W, H, P = bounds if bounds is not None else (_kv.NO_BOUND,) * 3
    if events.dtype == VISION_DTYPE:
        return int(_kv.first_invalid_vision(events.view(np.ndarray), 0, events.shape[0], W, H, P, check_sorted))
    if events.dtype == AUDIO_DTYPE:
        return int(_kv.first_invalid_audio(events.view(np.ndarray), 0, events.shape[0], W, P, check_sorted))
    return None


def validate_events(
    events: np.ndarray,
    sensor_size: Sequence[int] | None = None,
    *,
    name: str = "events",
    require_sorted: bool = True,
) -> np.ndarray:
    """Check ``events`` against the contract and return it unchanged.

    Checks: a structured array with integer fields ``t``, ``x``, ``p`` (and ``y`` for
    vision; ``p`` may also be ``bool`` or signed ``-1/+1``, see :func:`polarity_index`),
    ``t`` non-decreasing (when ``require_sorted``), ``x < W``, ``y < H`` and ``p < P``
    when ``sensor_size=(W, H, P)`` is given. Raises :class:`InvalidEventsError` naming
    ``name``, the field, the first offending index and the value.
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise InvalidEventsError(
            f"{name}: expected a structured NumPy array with fields t, x, y, p "
            f"(eventkit.events.VISION_DTYPE), got {type(events).__name__}"
            + (f" of dtype {events.dtype}" if isinstance(events, np.ndarray) else "")
        )
    names = events.dtype.names
    required = ("t", "x", "p") if "y" not in names else ("t", "x", "y", "p")
    missing = [f for f in required if f not in names]
    if missing:
        raise InvalidEventsError(f"{name}: missing field(s) {missing}; fields present: {list(names)}")
    for f in required:
        if events.dtype[f].kind not in ("iub" if f == "p" else "iu"):
            raise InvalidEventsError(
                f"{name}: field {f!r} must be an integer{' or bool' if f == 'p' else ''}, got {events.dtype[f]}"
                + (" (float events from a tonic transform: convert them with eventkit.augment.from_tonic)"
                   if events.dtype[f].kind == "f" else "")
            )
    if events.ndim != 1:
        raise InvalidEventsError(f"{name}: expected a 1-D event array, got shape {events.shape}")
    if events.shape[0] == 0:
        return events
    bounds = None
    if sensor_size is not None:
        if len(sensor_size) != 3:
            raise InvalidEventsError(f"{name}: sensor_size must be (W, H, P), got {tuple(sensor_size)}")
        W, H, P = (min(max(int(v), 0), _kv.NO_BOUND) for v in sensor_size)
        bounds = (W, H, P)
    if (bounds is not None or require_sorted) and _first_invalid(events, bounds, require_sorted) == -1:
        return events  # all valid; otherwise the NumPy checks below name the first problem
    t = events["t"]
    if require_sorted:
        bad = np.flatnonzero(t[1:] < t[:-1])
        if bad.size:
            i = int(bad[0]) + 1
            raise InvalidEventsError(
                f"{name}: timestamps are not sorted: t[{i}]={int(t[i])} < t[{i - 1}]={int(t[i - 1])} "
                f"(sort with eventkit.events.sort_events)"
            )
    if sensor_size is not None:
        W, H, P = (int(v) for v in sensor_size)
        checks = [("x", W, "W")] + ([("y", H, "H")] if "y" in names else []) + [("p", P, "P")]
        for field, bound, label in checks:
            col = polarity_index(events[field], name) if field == "p" else events[field]
            bad = np.flatnonzero((col >= bound) | (col < 0))
            if bad.size:
                i = int(bad[0])
                raise InvalidEventsError(
                    f"{name}: {field}[{i}]={int(col[i])} outside the sensor "
                    f"({label}={bound}, sensor_size={(W, H, P)}); {bad.size} event(s) out of range"
                )
    return events
