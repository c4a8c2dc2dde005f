"""AEDAT 3.1 files (cAER / DVS128 Gesture) and the DVS128 Gesture label CSVs.

Byte layout (iniVation, "AEDAT 3.1",
https://docs.inivation.com/software/software-advanced-usage/file-formats/aedat-3.1.html;
libcaer ``include/libcaer/events/common.h`` and ``polarity.h``). All integers little-endian::

    header   '#'-lines ended by CRLF: '#!AER-DAT3.1', '#Format: RAW', '#Source <id>: <device>',
             '#Start-Time: ...', ..., and last '#!END-HEADER\\r\\n'
    packets  repeated until the end of the file:
      28-byte packet header
        int16 eventType        (1 = polarity; other types are skipped)
        int16 eventSource
        int32 eventSize        (bytes per event; 8 for polarity)
        int32 eventTSOffset    (byte offset of the timestamp inside an event; 4 for polarity)
        int32 eventTSOverflow  (high bits of every timestamp in the packet)
        int32 eventCapacity    (packets are stored full: capacity == number)
        int32 eventNumber      (events in this packet, valid + invalid)
        int32 eventValid       (valid events in this packet)
      eventNumber * eventSize bytes of events; a polarity event is
        uint32 data   bit 0 valid, bit 1 polarity (1 = ON), bits 2-16 y, bits 17-31 x
        int32  timestamp (µs, 31 bits used)

The full timestamp is ``(eventTSOverflow << 31) | timestamp`` (µs). Packets are sized by
``eventNumber * eventSize`` as the spec says; events whose valid bit is 0 are dropped.
The python loop runs once per *packet* (thousands of events each), never per event.

DVS128 Gesture labels (Amir et al. 2017, "A Low Power, Fully Event-Based Gesture Recognition
System", CVPR): ``userXX_<lighting>_labels.csv`` with a ``class,startTime_usec,endTime_usec``
header; classes 1..11; times absolute in the recording's clock. A sample is the events with
``start <= t < end``. :func:`read_gesture_samples` keeps the **absolute** µs timestamps in each
sample (frame binning only uses differences; subtract ``start_us`` if you need relative times).
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eventkit._arrays import INT64_MAX
from eventkit.errors import EventFileError, InvalidEventsError, ParameterError
from eventkit.events import VISION_DTYPE
from eventkit.io._common import (
    PathType,
    as_path,
    read_all_bytes,
    require_fields,
    sorted_by_t,
)

PACKET_HEADER_BYTES = 28
POLARITY_EVENT = 1
SPECIAL_EVENT = 0
POLARITY_EVENT_BYTES = 8
_PACKET_HEADER = struct.Struct("<hhiiiiii")
_POLARITY = np.dtype([("data", "<u4"), ("ts", "<i4")])
END_HEADER = b"#!END-HEADER"

LABEL_DTYPE = np.dtype([("label", "<i8"), ("start_us", "<i8"), ("end_us", "<i8")])


def _parse_header(path: PathType, data: bytes) -> int:
    """Byte offset of the first packet (just after '#!END-HEADER\\r\\n'); validates the version line."""
    if not data.startswith(b"#!AER-DAT"):
        raise EventFileError(as_path(path), "no '#!AER-DAT3.1' version line: not an AEDAT 3.1 file", offset=0)
    nl0 = data.find(b"\n", 0, 64)
    first = data[:nl0].rstrip(b"\r") if nl0 >= 0 else data[:20]
    if first != b"#!AER-DAT3.1":
        raise EventFileError(
            as_path(path),
            f"version line {first.decode('ascii', 'replace')!r} is not '#!AER-DAT3.1' "
            f"(use format='aedat2' for 2.x, 'aedat4' for 4.x)",
            offset=0,
        )
    pos, n = 0, len(data)
    while pos < n:
        if data[pos] != 0x23:  # '#'
            raise EventFileError(
                as_path(path),
                "header ended without the required '#!END-HEADER' line (line does not start with '#')",
                offset=pos,
            )
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise EventFileError(as_path(path), "truncated header: header line without line end", offset=pos)
        line = data[pos:nl].rstrip(b"\r")
        pos = nl + 1
        if line == END_HEADER:
            return pos
    raise EventFileError(as_path(path), "truncated header: no '#!END-HEADER' line before the end of file", offset=n)


def _decode_polarity(rec: np.ndarray, tsovf: int, out: np.ndarray, valid: np.ndarray) -> None:
    """Decode one packet's polarity events into ``out`` (VISION_DTYPE) and ``valid`` (uint8 0/1).

    ufuncs write straight into the output fields, casting to the field's width.
    """
    d = rec["data"]
    t = out["t"]
    t[:] = rec["ts"]
    if tsovf:
        t += tsovf << 31
    np.right_shift(d, 17, out=out["x"], casting="unsafe")  # bits 17-31: 15 bits, fits uint16
    y = out["y"]
    np.right_shift(d, 2, out=y, casting="unsafe")  # low 16 bits of d >> 2
    np.bitwise_and(y, 0x7FFF, out=y)
    pcol = out["p"]
    np.right_shift(d, 1, out=pcol, casting="unsafe")
    np.bitwise_and(pcol, 1, out=pcol)
    np.bitwise_and(d, 1, out=valid, casting="unsafe")


def read_aedat31(path: PathType) -> np.ndarray:
    """Read the polarity events of an AEDAT 3.1 file -> vision events (absolute µs) sorted by ``t``.

    Non-polarity packets are skipped, invalid events (valid bit 0) dropped. A truncated packet
    header or body, or an impossible packet header (negative sizes, ``eventValid >
    eventNumber``, polarity ``eventSize != 8``) raises :class:`~eventkit.errors.EventFileError`
    with the byte offset of the packet.
    """
    p = as_path(path)
    data = read_all_bytes(p, what="an AEDAT 3.1 file")
    pos = _parse_header(p, data)
    n = len(data)
    packets: list[tuple[int, int, int]] = []  # (body offset, eventNumber, eventTSOverflow) of polarity packets
    while pos < n:
        if n - pos < PACKET_HEADER_BYTES:
            raise EventFileError(
                p, f"truncated packet header: {n - pos} byte(s) left, a packet header has 28", offset=pos
            )
        etype, _src, esize, tsoff, tsovf, cap, number, valid = _PACKET_HEADER.unpack_from(data, pos)
        if esize <= 0 or number < 0 or valid < 0 or valid > number or tsovf < 0 or cap < number or etype < 0:
            raise EventFileError(
                p,
                f"corrupt packet header (eventType={etype}, eventSize={esize}, eventTSOverflow={tsovf}, "
                f"eventCapacity={cap}, eventNumber={number}, eventValid={valid})",
                offset=pos,
            )
        body = pos + PACKET_HEADER_BYTES
        end = body + number * esize
        if end > n:
            raise EventFileError(
                p,
                f"truncated packet: header says {number} events x {esize} bytes = {number * esize} bytes, "
                f"only {n - body} left",
                offset=pos,
            )
        if etype == POLARITY_EVENT:
            if esize != POLARITY_EVENT_BYTES or tsoff != 4:
                raise EventFileError(
                    p, f"polarity packet with eventSize={esize}, eventTSOffset={tsoff} (expected 8 and 4)", offset=pos
                )
            if number:
                packets.append((body, number, tsovf))
        pos = end
    total = sum(k for _, k, _ in packets)
    out = np.empty(total, dtype=VISION_DTYPE)
    valid = np.empty(total, dtype=np.uint8)
    i = 0
    for body, number, tsovf in packets:  # one pass per packet (thousands of events), not per event
        rec = np.frombuffer(data, dtype=_POLARITY, count=number, offset=body)
        if int(rec["ts"].min()) < 0:  # the timestamp uses 31 bits: a negative one is corrupt
            k = int(np.argmax(rec["ts"] < 0))
            raise EventFileError(p, f"polarity event {k} of the packet has a negative timestamp "
                                    f"{int(rec['ts'][k])}", offset=body + k * POLARITY_EVENT_BYTES)
        _decode_polarity(rec, tsovf, out[i:i + number], valid[i:i + number])
        i += number
    if not valid.all():
        out = out[valid.view(bool)]
    return sorted_by_t(out)


def write_aedat31(
    path: PathType,
    events: np.ndarray,
    *,
    packet_size: int = 4096,
    source_id: int = 1,
    device: str = "DVS128",
    invalid_events: np.ndarray | None = None,
    special_packet: bool = False,
) -> None:
    """Write vision events as an AEDAT 3.1 file (header + polarity packets, see the module docstring).

    ``x, y`` in 0..32767, ``p`` in {0, 1}, ``t >= 0`` µs (t >= 2**31 goes to
    ``eventTSOverflow``). Events are written in the order given, at most ``packet_size`` per
    packet; a packet also ends where the overflow changes. For tests: ``invalid_events`` are
    written with the valid bit cleared (merged by ``t``, after valid events of equal ``t``;
    readers must drop them), and ``special_packet=True`` inserts a one-event special packet
    (eventType 0) after the first polarity packet (readers must skip it).
    """
    name = f"events for {as_path(path)}"
    if packet_size < 1:
        raise ValueError(f"packet_size must be >= 1, got {packet_size}")
    require_fields(events, ("t", "x", "y", "p"), name)
    parts = [(events, 1)]
    if invalid_events is not None:
        require_fields(invalid_events, ("t", "x", "y", "p"), "invalid_events")
        parts.append((invalid_events, 0))
    cols = {}
    for f in ("t", "x", "y", "p"):
        cols[f] = np.concatenate([np.asarray(e[f]).astype(np.int64) for e, _ in parts])
    valid_bit = np.concatenate([np.full(e.shape[0], v, dtype=np.int64) for e, v in parts])
    if invalid_events is not None:
        order = np.argsort(cols["t"], kind="stable")
        cols = {f: c[order] for f, c in cols.items()}
        valid_bit = valid_bit[order]
    for f, lo, hi, why in (("x", 0, 0x7FFF, "x is 15 bits"), ("y", 0, 0x7FFF, "y is 15 bits"), ("p", 0, 1, "one bit")):
        c = cols[f]
        bad = np.flatnonzero((c < lo) | (c > hi))
        if bad.size:
            raise InvalidEventsError(f"{name}: {f}[{int(bad[0])}]={int(c[bad[0]])} cannot be written: {why}")
    t = cols["t"]
    if t.size and int(t.min()) < 0:
        raise InvalidEventsError(f"{name}: negative timestamp t={int(t.min())}; AEDAT 3.1 stores unsigned µs")
    data = (
        (cols["x"].astype(np.uint32) << 17)
        | (cols["y"].astype(np.uint32) << 2)
        | (cols["p"].astype(np.uint32) << 1)
        | valid_bit.astype(np.uint32)
    )
    ovf = t >> 31
    ts = (t & 0x7FFFFFFF).astype(np.int32)
    N = t.shape[0]
    starts = set(range(0, N, packet_size)) | set((np.flatnonzero(np.diff(ovf)) + 1).tolist())
    bounds = sorted(starts) + [N]
    header = (
        f"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source {source_id}: {device}\r\n"
        f"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n"
    )
    with open(as_path(path), "wb") as fh:
        fh.write(header.encode("ascii"))
        for k in range(len(bounds) - 1):
            a, b = bounds[k], bounds[k + 1]
            rec = np.empty(b - a, dtype=_POLARITY)
            rec["data"] = data[a:b]
            rec["ts"] = ts[a:b]
            nvalid = int(valid_bit[a:b].sum())
            fh.write(_PACKET_HEADER.pack(POLARITY_EVENT, source_id, 8, 4, int(ovf[a]), b - a, b - a, nvalid))
            fh.write(rec.tobytes())
            if special_packet and k == 0:
                special = np.zeros(1, dtype=_POLARITY)
                special["data"] = (2 << 1) | 1  # a valid special event of type 2 (timestamp reset)
                special["ts"] = ts[b - 1]
                fh.write(_PACKET_HEADER.pack(SPECIAL_EVENT, source_id, 8, 4, int(ovf[a]), 1, 1, 1))
                fh.write(special.tobytes())
        if special_packet and N == 0:
            special = np.zeros(1, dtype=_POLARITY)
            special["data"] = (2 << 1) | 1
            fh.write(_PACKET_HEADER.pack(SPECIAL_EVENT, source_id, 8, 4, 0, 1, 1, 1))
            fh.write(special.tobytes())


# ----------------------------------------------------------------------------------------------
# DVS128 Gesture label CSVs and samples


@dataclass(frozen=True, eq=False)
class GestureSample:
    """One labelled gesture cut out of a DVS128 Gesture recording.

    ``events``: vision events with ``start_us <= t < end_us`` (absolute µs, sorted);
    ``label``: 0-based class (CSV class - 1); ``start_us``/``end_us``: the CSV row's window;
    ``index``: the row index in the CSV (0 = first data row).
    """

    events: np.ndarray
    label: int
    start_us: int
    end_us: int
    index: int


def read_gesture_labels(path: PathType) -> np.ndarray:
    """Read a DVS128 Gesture label CSV -> structured array ``[label (0-based), start_us, end_us]``.

    The first line must be the ``class,startTime_usec,endTime_usec`` header; every other
    non-blank line three integers with ``class >= 1`` and ``start < end``. A malformed line
    raises :class:`~eventkit.errors.EventFileError` naming the file, the line number and its
    byte offset.
    """
    p = as_path(path)
    data = read_all_bytes(p, what="a DVS128 Gesture label CSV (class,startTime_usec,endTime_usec)")
    rows: list[tuple[int, int, int]] = []
    offset = 0
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        line_offset = offset
        offset += len(raw) + 1
        text = raw.decode("utf-8", errors="replace").strip()
        if lineno == 1:
            fields = [f.strip() for f in text.lstrip("\ufeff").split(",")]
            if fields != ["class", "startTime_usec", "endTime_usec"]:
                raise EventFileError(
                    p, f"line 1: expected the header 'class,startTime_usec,endTime_usec', got {text[:80]!r}",
                    offset=line_offset,
                )
            continue
        if not text:
            continue
        fields = [f.strip() for f in text.split(",")]
        try:
            if len(fields) != 3:
                raise ValueError(f"{len(fields)} fields")
            cls, start, end = (int(f) for f in fields)
        except ValueError:
            raise EventFileError(
                p, f"line {lineno}: expected three integers 'class,startTime_usec,endTime_usec', got {text[:80]!r}",
                offset=line_offset,
            ) from None
        if cls < 1:
            raise EventFileError(p, f"line {lineno}: class {cls} < 1 (classes are 1-based)", offset=line_offset)
        if start < 0 or end <= start:
            raise EventFileError(
                p, f"line {lineno}: window [{start}, {end}) µs is empty or negative", offset=line_offset
            )
        if max(cls, end) > INT64_MAX:
            raise EventFileError(p, f"line {lineno}: {max(cls, end)} does not fit in a signed 64-bit integer",
                                 offset=line_offset)
        rows.append((cls - 1, start, end))
    return np.array(rows, dtype=LABEL_DTYPE)


def write_gesture_labels(path: PathType, classes: Sequence[int], start_us: Sequence[int],
                         end_us: Sequence[int]) -> None:
    """Write a DVS128 Gesture label CSV; ``classes`` are the CSV's 1-based class ids."""
    c, s, e = (np.asarray(v, dtype=np.int64) for v in (classes, start_us, end_us))
    if not (c.shape == s.shape == e.shape) or c.ndim != 1:
        raise ValueError("classes, start_us and end_us must be 1-D sequences of equal length")
    lines = ["class,startTime_usec,endTime_usec"]
    lines += [f"{int(ci)},{int(si)},{int(ei)}" for ci, si, ei in zip(c, s, e, strict=True)]
    with open(as_path(path), "w", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")


def cut_gesture_samples(
    events: np.ndarray, labels: np.ndarray, rows: Sequence[int] | None = None
) -> list[GestureSample]:
    """Cut a recording's events (sorted by ``t``) at label rows ``start_us <= t < end_us``.

    ``labels``: a :func:`read_gesture_labels` array; ``rows``: which rows (CSV order, 0 =
    first data row), default all. Only the requested rows are copied out of ``events``.
    """
    index = range(labels.shape[0]) if rows is None else [int(r) for r in rows]
    for r in index:
        if not 0 <= r < labels.shape[0]:
            raise ParameterError(f"label row {r} out of range: the labels hold {labels.shape[0]} rows")
    sel = labels[list(index)]
    t = events["t"]
    lo = np.searchsorted(t, sel["start_us"], side="left")
    hi = np.searchsorted(t, sel["end_us"], side="left")
    return [
        GestureSample(
            events=events[int(a):int(b)].copy(),
            label=int(row["label"]),
            start_us=int(row["start_us"]),
            end_us=int(row["end_us"]),
            index=i,
        )
        for i, row, a, b in zip(index, sel, lo, hi, strict=True)
    ]


def read_gesture_samples(aedat_path: PathType, labels_csv_path: PathType) -> list[GestureSample]:
    """Cut an AEDAT 3.1 DVS128 Gesture recording into its labelled samples (one per CSV row).

    Each sample holds the events with ``start_us <= t < end_us`` (absolute µs); a class may
    appear in several rows. Rows are returned in CSV order with ``index`` = row index.
    (:func:`cut_gesture_samples` cuts only some rows of an already read recording.)
    """
    labels = read_gesture_labels(labels_csv_path)
    return cut_gesture_samples(read_aedat31(aedat_path), labels)
