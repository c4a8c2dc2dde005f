"""N-MNIST / N-Caltech101 ATIS 40-bit ``.bin`` files and SLAYER's ``.bs2`` files (same layout).

Byte layout (one event = 5 bytes, no header; Orchard et al. 2015, "Converting static image
datasets to spiking neuromorphic datasets using saccades", Front. Neurosci. 9:437, and the
release notes at https://www.garrickorchard.com/datasets/n-mnist)::

    byte 0      x address (uint8, pixels)
    byte 1      y address (uint8, pixels)
    byte 2      bit 7: polarity (0 = OFF, 1 = ON); bits 6..0: t[22:16]
    bytes 3-4   t[15:0], big-endian
                -> t is a 23-bit µs counter

Timestamp overflow: the ATIS writer marks each wrap of the 23-bit counter with a record whose
``y == 240`` (a row outside the 240-row ATIS array). Every marker adds 2**23 µs to all later
events and is itself dropped. Orchard's ``eventvision.py`` (and tonic's ``read_mnist_file``)
add ``2**13`` per marker instead; no real N-MNIST sample is long enough (≈ 300 ms ≪ 2**23 µs
≈ 8.4 s) to carry a marker, so the two agree on the released data. The wrap of a 23-bit
counter is 2**23, which is what eventkit adds.

SLAYER's ``.bs2`` files (slayerPytorch ``spikeFileIO.read2Dspikes`` / ``encode2Dspikes``) use
the same 40 bits without overflow markers: :func:`read_bs2` does not interpret ``y == 240``.

Decoding is one vectorised pass over a 5-byte record view (no per-event Python loop).
"""
from __future__ import annotations

import numpy as np

from eventkit.errors import EventFileError, InvalidEventsError
from eventkit.events import VISION_DTYPE
from eventkit.io._common import (
    PathType,
    as_path,
    check_range,
    check_record_size,
    read_all_bytes,
    require_fields,
    sort_by,
    sorted_by_t,
)

RECORD_BYTES = 5
T_BITS = 23
T_WRAP = 1 << T_BITS  # µs added per overflow marker
OVERFLOW_Y = 240
SMALL = 1 << 14  # events; up to here a contiguous int64 temporary (<= 128 KiB) is cheapest

# one 40-bit record viewed as fields (big-endian low 16 bits of t)
_RECORD = np.dtype([("x", "u1"), ("y", "u1"), ("pt", "u1"), ("t16", ">u2")])


def _decode(path: PathType, data: bytes, *, overflow_markers: bool, what: str) -> np.ndarray:
    if data[:9] == b"#!AER-DAT":
        raise _aedat_passed(path, what)
    n = check_record_size(path, len(data), 0, RECORD_BYTES, what)
    rec = np.frombuffer(data, dtype=_RECORD, count=n)
    out = np.empty(n, dtype=VISION_DTYPE)
    if n <= SMALL:  # small file: a contiguous t column is cheapest (and cheap to check for order)
        t = np.bitwise_and(rec["pt"], 0x7F).astype(np.int64)
        np.left_shift(t, 16, out=t)
        np.bitwise_or(t, rec["t16"], out=t)
    else:  # large file: ufuncs write straight into the output field, no large temporaries
        t = out["t"]
        np.bitwise_and(rec["pt"], 0x7F, out=t)
        np.left_shift(t, 16, out=t)
        np.bitwise_or(t, rec["t16"], out=t)
    out["x"] = rec["x"]
    out["y"] = rec["y"]
    np.right_shift(rec["pt"], 7, out=out["p"])
    if overflow_markers:
        marker = rec["y"] == OVERFLOW_Y
        if marker.any():
            t += np.cumsum(marker, dtype=np.int64) << T_BITS
            keep = ~marker
            out, t = out[keep], t[keep]
    if n <= SMALL:
        out["t"] = t
        return sort_by(out, t)
    return sorted_by_t(out)


def _aedat_passed(path: PathType, what: str) -> EventFileError:
    """An AEDAT file handed to an ATIS reader: say which reader to use instead."""
    return EventFileError(
        as_path(path),
        f"starts with an AEDAT version line ('#!AER-DAT'), not {what}; read it with "
        f"eventkit.io.read_events(path) or format='aedat2'/'aedat31'",
        offset=0,
    )


def read_nmnist(path: PathType, *, overflow_markers: bool = True) -> np.ndarray:
    """Read an N-MNIST / N-Caltech101 ATIS 40-bit ``.bin`` file.

    Returns vision events (``VISION_DTYPE``: t µs int64, x, y, p in {0, 1}) sorted by ``t``
    (stable sort only when the file is not already sorted). ``y == 240`` records are
    timestamp-overflow markers (+2**23 µs each) and are dropped unless
    ``overflow_markers=False``. A size that is not a multiple of 5 bytes raises
    :class:`~eventkit.errors.EventFileError` with the offset of the partial record.
    """
    what = "an ATIS 40-bit event file (N-MNIST .bin: 5 bytes per event)"
    data = read_all_bytes(path, what=what)
    return _decode(path, data, overflow_markers=overflow_markers, what=what)


def read_bs2(path: PathType) -> np.ndarray:
    """Read a SLAYER ``.bs2`` file (N-MNIST 40-bit layout, no overflow markers) -> vision events sorted by t."""
    what = "a SLAYER .bs2 file (40-bit events: 5 bytes per event)"
    data = read_all_bytes(path, what=what)
    return _decode(path, data, overflow_markers=False, what=what)


def _encode(events: np.ndarray, *, overflow_markers: bool, name: str) -> bytes:
    require_fields(events, ("t", "x", "y", "p"), name)
    check_range(events, "x", 0, 255, name, "x is one byte in the 40-bit layout")
    check_range(events, "y", 0, 255, name, "y is one byte in the 40-bit layout")
    check_range(events, "p", 0, 1, name, "polarity is one bit")
    t = events["t"].astype(np.int64)
    if t.size == 0:
        raise InvalidEventsError(f"{name}: no events; a 40-bit event file cannot be empty (readers reject it)")
    if int(t.min()) < 0:
        i = int(np.argmin(t))
        raise InvalidEventsError(f"{name}: t[{i}]={int(t[i])} is negative; the format stores unsigned µs")
    n = t.shape[0]
    if overflow_markers:
        y = events["y"]
        hits = np.flatnonzero(y == OVERFLOW_Y)
        if hits.size:
            i = int(hits[0])
            raise InvalidEventsError(
                f"{name}: y[{i}]=240 is the N-MNIST overflow marker row and cannot hold an event "
                f"(write with overflow_markers=False, as .bs2 does, if your sensor has that row)"
            )
        wraps = t >> T_BITS
        if n and int(wraps.max()) > 0 and bool(np.any(t[1:] < t[:-1])):
            raise InvalidEventsError(
                f"{name}: timestamps reach 2**23 µs, which needs overflow markers, but events are "
                f"not sorted by t (sort with eventkit.events.sort_events first)"
            )
        before = np.diff(wraps, prepend=np.int64(0))  # markers to insert before each event
    else:
        if n and int(t.max()) >= T_WRAP:
            i = int(np.argmax(t))
            raise InvalidEventsError(
                f"{name}: t[{i}]={int(t[i])} µs does not fit the 23-bit timestamp (max {T_WRAP - 1}); "
                f"this layout has no overflow markers"
            )
        before = np.zeros(n, dtype=np.int64)
    total = n + int(before.sum())
    rec = np.zeros(total, dtype=_RECORD)
    pos = np.arange(n, dtype=np.int64) + np.cumsum(before)
    is_event = np.zeros(total, dtype=bool)
    is_event[pos] = True
    rec["y"][~is_event] = OVERFLOW_Y
    low = t & (T_WRAP - 1)
    ev = np.zeros(n, dtype=_RECORD)
    ev["x"] = events["x"]
    ev["y"] = events["y"]
    ev["pt"] = (events["p"].astype(np.uint8) << 7) | (low >> 16).astype(np.uint8)
    ev["t16"] = (low & 0xFFFF).astype(np.uint16)
    rec[pos] = ev
    return rec.tobytes()


def write_nmnist(path: PathType, events: np.ndarray, *, overflow_markers: bool = True) -> None:
    """Write vision events in the N-MNIST ATIS 40-bit ``.bin`` layout (see the module docstring).

    ``x, y`` must fit a byte, ``p`` in {0, 1}, ``t >= 0`` µs. Timestamps of 2**23 µs and more are
    written with ``y == 240`` overflow markers (events must then be sorted by t); with
    ``overflow_markers=False`` they raise :class:`~eventkit.errors.InvalidEventsError`.
    Events are written in the order given.
    """
    data = _encode(events, overflow_markers=overflow_markers, name=f"events for {as_path(path)}")
    with open(as_path(path), "wb") as fh:
        fh.write(data)


def write_bs2(path: PathType, events: np.ndarray) -> None:
    """Write vision events as a SLAYER ``.bs2`` file (40-bit layout, t < 2**23 µs, no overflow markers)."""
    data = _encode(events, overflow_markers=False, name=f"events for {as_path(path)}")
    with open(as_path(path), "wb") as fh:
        fh.write(data)
