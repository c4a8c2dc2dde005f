"""AEDAT 4.0 files (iniVation DV; e.g. the figshare CIFAR10-DVS re-release, DVXplorer recordings).

Byte layout (iniVation, "AEDAT 4.0",
https://docs.inivation.com/software/software-advanced-usage/file-formats/aedat-4.0.html)::

    '#!AER-DAT4.0\\r\\n'                  14-byte version line
    uint32 n + n bytes                  IOHeader flatbuffer (compression: none/LZ4/zstd,
                                        data-table position, XML info node naming the streams)
    packets until the data table:       int32 stream id, uint32 size, size bytes of a
                                        (compressed) flatbuffer packet: EventPacket
                                        (t int64 µs, x int16, y int16, on bool), IMU, trigger, frame
    optional FileDataTable              index of the packets

Decoding (flatbuffers + LZ4/zstd) is done by the maintained Rust ``aedat`` package (the same
decoder tonic's ``read_aedat4`` uses); eventkit picks the event stream with the lowest id,
copies each packet's records as raw bytes into one preallocated ``VISION_DTYPE`` array (aedat's
packet dtype has the same 13-byte layout), then sorts stably only if the file is not already sorted.
Speed against tonic's reader: ``benchmarks/bench_readers.py``.

Timestamps are kept **absolute** (epoch µs, ≈1.6e15); the dataset layer may subtract the first.
There is no AEDAT 4 writer (flatbuffers + LZ4 framing); tests use the real sample file.
"""
from __future__ import annotations

import struct

import numpy as np

from eventkit.errors import EventFileError
from eventkit.events import VISION_DTYPE
from eventkit.io._common import PathType, as_path, read_head, sort_by

MAGIC = b"#!AER-DAT4.0\r\n"


def _locate_truncation(path: PathType) -> int | None:
    """Byte offset of the first packet that runs past the end of the file, if any (error path only)."""
    with open(as_path(path), "rb") as fh:
        data = fh.read()
    if len(data) < len(MAGIC) + 4:
        return len(data)
    (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
    pos = len(MAGIC) + 4 + hlen
    if pos > len(data):
        return len(MAGIC)
    while pos + 8 <= len(data):
        sid, size = struct.unpack_from("<iI", data, pos)
        if not 0 <= sid < 4096:  # not a packet header: the data table (or garbage) starts here
            return None
        if pos + 8 + size > len(data):
            return pos
        pos += 8 + size
    return pos if pos != len(data) else None


def read_aedat4(path: PathType, *, stream_id: int | None = None) -> np.ndarray:
    """Read the polarity events of an AEDAT 4.0 file -> vision events (absolute epoch µs) sorted by ``t``.

    ``stream_id``: which event stream (default: the lowest-numbered stream of type
    ``events``). A wrong magic, a corrupt or truncated file, or a file without an event
    stream raises :class:`~eventkit.errors.EventFileError`.
    """
    import aedat  # optional heavy import, where it is used

    p = as_path(path)
    head = read_head(p, len(MAGIC))
    if len(head) == 0:
        raise EventFileError(p, "empty file (0 bytes), expected an AEDAT 4.0 file", offset=0)
    if head != MAGIC:
        raise EventFileError(
            p, f"starts with {head[:12]!r}, not the AEDAT 4.0 version line '#!AER-DAT4.0': not an AEDAT 4 file",
            offset=0,
        )
    try:
        decoder = aedat.Decoder(str(p))
        streams = decoder.id_to_stream()
        event_ids = sorted(k for k, v in streams.items() if v.get("type") == "events")
        if stream_id is None:
            if not event_ids:
                raise EventFileError(
                    p, f"no event stream in the file (streams: {sorted((k, v.get('type')) for k, v in streams.items())})"
                )
            sid = event_ids[0]
        else:
            if stream_id not in event_ids:
                raise EventFileError(p, f"stream {stream_id} is not an event stream (event streams: {event_ids})")
            sid = stream_id
        chunks = [packet["events"] for packet in decoder if packet["stream_id"] == sid]
    except EventFileError:
        raise
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        raise EventFileError(
            p, f"corrupt or truncated AEDAT 4 file (aedat decoder: {exc})", offset=_locate_truncation(p)
        ) from None
    return sort_by(*_to_vision(chunks, p))


def _same_layout(dtype: np.dtype) -> bool:
    """aedat's packet dtype (t <u8 @0, x <u2 @8, y <u2 @10, on bool @12; 13 bytes) has exactly the
    byte layout of VISION_DTYPE (t <i8, x, y, p u1): the bytes can be reinterpreted, not converted."""
    f = dtype.fields or {}
    return (
        dtype.itemsize == VISION_DTYPE.itemsize
        and f.get("t", (None, -1))[:2] == (np.dtype("<u8"), 0)
        and f.get("x", (None, -1))[:2] == (np.dtype("<u2"), 8)
        and f.get("y", (None, -1))[:2] == (np.dtype("<u2"), 10)
        and f.get("on", (None, -1))[:2] == (np.dtype("?"), 12)
    )


def _to_vision(chunks: list[np.ndarray], path) -> tuple[np.ndarray, np.ndarray]:
    """Packets -> (VISION_DTYPE events, their t column)."""
    if not chunks:
        out = np.empty(0, dtype=VISION_DTYPE)
        return out, out["t"]
    n = sum(c.shape[0] for c in chunks)
    if all(_same_layout(c.dtype) and c.flags.c_contiguous for c in chunks):
        # Same 13-byte layout: each packet's records are copied as raw bytes into one
        # preallocated array (structured assignment or np.concatenate of these dtypes is ~20x
        # slower). bool 0/1 reads as uint8 0/1; epoch µs are far below 2**63, so uint64 bytes
        # read as int64 are exact; a corrupt value would show up as negative, checked below.
        out = np.empty(n, dtype=VISION_DTYPE)
        raw = out.view(np.uint8)
        i, item = 0, VISION_DTYPE.itemsize
        for c in chunks:  # one copy per packet (thousands of events), not per event
            m = c.shape[0] * item
            raw[i:i + m] = c.view(np.uint8)
            i += m
        t = out["t"]
        if n and int(t.min()) < 0:
            raise EventFileError(path, "AEDAT 4 timestamp at or above 2**63 µs: corrupt packet")
        return out, t
    out = np.empty(n, dtype=VISION_DTYPE)
    i = 0
    for c in chunks:  # one iteration per packet (thousands of events), not per event
        m = c.shape[0]
        dst = out[i:i + m]
        dst["t"] = c["t"]
        dst["x"] = c["x"]
        dst["y"] = c["y"]
        dst["p"] = c["on"]
        i += m
    return out, out["t"]
