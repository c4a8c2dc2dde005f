"""The dtype hand-off between eventkit's events and tonic's transforms.

eventkit events are ``t:int64 µs, x,y:uint16, p:uint8 (0/1)``, sorted by ``t``
(``eventkit.events``). tonic's datasets and transforms use other conventions:

* polarity as ``bool`` (DVSGesture, CIFAR10DVS, DVSLip samples) or signed ``-1/+1``
  (what ``ToVoxelGrid`` and other weightings assume), where eventkit has ``0/1``;
* coordinates that go negative mid-transform (``SpatialJitter`` adds Gaussian shifts
  to ``x``/``y`` in place; on ``uint16`` fields a negative value wraps around);
* events left unsorted (``TimeJitter`` without ``sort_timestamps``) or sorted with an
  unstable sort.

:func:`to_tonic` gives tonic a copy with signed, wide fields (``t:int64, x,y:int32,
p:int8``) and the polarity convention it wants; :func:`from_tonic` takes any integer,
bool or float event array back to eventkit's dtype: polarity mapped to 0/1, float
coordinates floored to their pixel, float times rounded to the nearest µs, events
outside the sensor dropped (or refused), then stably sorted by ``t``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eventkit._arrays import INT64_MAX, INT64_MIN
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import AUDIO_DTYPE, VISION_DTYPE, sort_events

__all__ = ["to_tonic", "from_tonic", "POLARITIES", "TONIC_VISION_DTYPE", "TONIC_AUDIO_DTYPE"]

#: polarity conventions of :func:`to_tonic`: eventkit's 0/1 (as int8), signed -1/+1, bool
POLARITIES = ("01", "signed", "bool")
#: what :func:`to_tonic` hands to tonic (signed fields: room for negative shifts)
TONIC_VISION_DTYPE = np.dtype([("t", "<i8"), ("x", "<i4"), ("y", "<i4"), ("p", "i1")])
TONIC_AUDIO_DTYPE = np.dtype([("t", "<i8"), ("x", "<i4"), ("p", "i1")])
_UINT16_MAX = 65535


def _fields(events: np.ndarray, name: str) -> tuple[str, ...]:
    if not isinstance(events, np.ndarray) or events.dtype.names is None or events.ndim != 1:
        raise InvalidEventsError(f"{name}: expected a 1-D structured event array with fields t, x, (y,) p; got "
                                 f"{type(events).__name__}" + (f" {events.dtype} of shape {events.shape}"
                                                               if isinstance(events, np.ndarray) else ""))
    names = events.dtype.names
    fields = ("t", "x", "y", "p") if "y" in names else ("t", "x", "p")
    missing = [f for f in fields if f not in names]
    if missing:
        raise InvalidEventsError(f"{name}: missing field(s) {missing}; fields present: {list(names)}")
    for f in fields:
        kind = events.dtype[f].kind
        if kind not in ("iuf" if f != "p" else "iub") and not (f == "p" and kind == "f"):
            raise InvalidEventsError(f"{name}: field {f!r} must be integer, bool (p) or float, got {events.dtype[f]}")
    return fields


def to_tonic(events: np.ndarray, *, polarity: str = "01") -> np.ndarray:
    """A copy of eventkit events for tonic: ``t:int64, x,y:int32, p:int8`` (audio: no ``y``).

    ``polarity``: ``"01"`` keeps 0/1 (what tonic's flips, drops and crops expect),
    ``"signed"`` maps 0/1 to -1/+1 (``ToVoxelGrid`` and other signed weightings),
    ``"bool"`` gives a ``bool`` field (tonic's DVSGesture/CIFAR10DVS samples).
    """
    if polarity not in POLARITIES:
        raise ParameterError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    fields = _fields(events, "events")
    base = TONIC_VISION_DTYPE if "y" in fields else TONIC_AUDIO_DTYPE
    if polarity == "bool":
        base = np.dtype([(f, base[f] if f != "p" else np.bool_) for f in base.names or ()])
    out = np.empty(events.shape[0], dtype=base)
    for f in fields:
        if f == "p":
            p = events["p"]
            if polarity == "signed":
                out["p"] = np.where(p.astype(bool), 1, -1)
            else:
                out["p"] = p.astype(bool) if polarity == "bool" else p
        else:
            out[f] = events[f]
    return out


def _polarity01(p: np.ndarray, name: str) -> np.ndarray:
    """0/1 (or 0..P-1) polarity from bool, signed -1/+1, or non-negative integers."""
    if p.dtype.kind == "b":
        return p.astype(np.int64)
    if p.dtype.kind == "f":
        if p.size and not np.all(np.isfinite(p) & (p == np.rint(p))):
            i = int(np.flatnonzero(~(np.isfinite(p) & (p == np.rint(p))))[0])
            raise InvalidEventsError(f"{name}: p[{i}]={float(p[i])} is not an integer polarity")
        p = p.astype(np.int64)
    p = p.astype(np.int64)
    if p.size and int(p.min()) < 0:
        bad = np.flatnonzero((p != -1) & (p != 1))
        if bad.size:
            i = int(bad[0])
            raise InvalidEventsError(f"{name}: signed polarity must be -1 or +1, got p[{i}]={int(p[i])}")
        return (p > 0).astype(np.int64)
    return p


def _int_column(col: np.ndarray, field: str, name: str) -> np.ndarray:
    """int64 values of a column: floats floored (coordinates) or rounded (t), non-finite refused."""
    if col.dtype.kind == "f":
        finite = np.isfinite(col)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise InvalidEventsError(f"{name}: {field}[{i}]={float(col[i])} is not a finite number")
        col = np.rint(col) if field == "t" else np.floor(col)
        if col.size and (col.min() < INT64_MIN or col.max() >= 2.0**63):
            i = int(np.flatnonzero((col < INT64_MIN) | (col >= 2.0**63))[0])
            raise InvalidEventsError(f"{name}: {field}[{i}]={float(col[i])} does not fit in int64")
        return col.astype(np.int64)
    if col.dtype.kind == "u" and col.dtype.itemsize == 8 and col.size and int(col.max()) > INT64_MAX:
        i = int(np.argmax(col > INT64_MAX))
        raise InvalidEventsError(f"{name}: {field}[{i}]={int(col[i])} does not fit in int64")
    return col.astype(np.int64)


def from_tonic(events: np.ndarray, sensor_size: Sequence[int] | None = None, *, drop_outside: bool = True,
               t_offset: int = 0, name: str = "events") -> np.ndarray:
    """Any event array (tonic's or eventkit's) as eventkit events, stably sorted by ``t``.

    Fields ``t``, ``x``, (``y``,) ``p`` of any integer type, ``p`` also ``bool`` or signed
    -1/+1 (mapped to 0/1), float ``t`` rounded to the nearest µs and float ``x``/``y``
    floored (the pixel holding the point). ``t_offset`` (µs) is added to ``t``.
    Events with a coordinate or polarity outside ``sensor_size = (W, H, P)`` (or
    outside ``0..65535`` without a sensor) are dropped with ``drop_outside=True``
    (what a shift, jitter or rotation that leaves the sensor means), refused with
    :class:`InvalidEventsError` naming the first one otherwise. Returns
    ``VISION_DTYPE`` (``AUDIO_DTYPE`` when there is no ``y``); never the input itself.
    """
    fields = _fields(events, name)
    vision = "y" in fields
    n = events.shape[0]
    if sensor_size is not None and len(sensor_size) != 3:
        raise ParameterError(f"sensor_size must be (W, H, P), got {tuple(sensor_size)!r}")
    if vision and drop_outside and all(events.dtype[f].kind in ("iu" if f != "p" else "iub") for f in fields):
        fast = _pack_fast(events, sensor_size, int(t_offset))
        if fast is not None:
            return fast
    cols = {f: _int_column(events[f], f, name) if f != "p" else _polarity01(events["p"], name) for f in fields}
    if t_offset:
        cols["t"] = cols["t"] + np.int64(t_offset)
    if sensor_size is not None:
        W, H, P = (int(v) for v in sensor_size)
    else:
        W = H = _UINT16_MAX + 1
        P = 256
    limits = [("x", W, "W")] + ([("y", H, "H")] if vision else []) + [("p", P, "P")]
    outside = np.zeros(n, dtype=bool)
    for field, bound, label in limits:
        bad = (cols[field] < 0) | (cols[field] >= bound)
        if not drop_outside and bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidEventsError(f"{name}: {field}[{i}]={int(cols[field][i])} outside the sensor "
                                     f"({label}={bound}, sensor_size={tuple(sensor_size) if sensor_size else None})")
        outside |= bad
    keep = None if not outside.any() else ~outside
    out = np.empty(n if keep is None else int(keep.sum()), dtype=VISION_DTYPE if vision else AUDIO_DTYPE)
    for f in fields:
        out[f] = cols[f] if keep is None else cols[f][keep]
    return sort_events(out)


def _pack_fast(events: np.ndarray, sensor_size: Sequence[int] | None, t_offset: int) -> np.ndarray | None:
    """Integer vision events in one compiled pass (drop outside, shift t, check order); None when a
    polarity is negative (signed: the NumPy path maps it) or ``t`` is unsigned 64-bit."""
    from eventkit.augment import _kernels

    if events.dtype["t"] == np.dtype("<u8") or events.dtype["t"] == np.dtype(">u8"):
        return None
    W, H, P = (int(v) for v in sensor_size) if sensor_size is not None else (_UINT16_MAX + 1, _UINT16_MAX + 1, 256)
    W, H, P = min(W, _UINT16_MAX + 1), min(H, _UINT16_MAX + 1), min(P, 256)
    t, x, y, p = (events[f] if events.dtype[f].isnative else events[f].astype(events.dtype[f].newbyteorder("="))
                  for f in ("t", "x", "y", "p"))
    out = np.empty(events.shape[0], dtype=VISION_DTYPE)
    n, ordered = _kernels.pack_inside(t, x, y, p, W, H, P, t_offset, out["t"], out["x"], out["y"], out["p"])
    if n < 0:
        return None
    out = out[:n] if n == events.shape[0] else out[:n].copy()
    return out if ordered else out[np.argsort(out["t"], kind="stable")]
