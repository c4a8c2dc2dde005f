"""Prophesee DAT (v2), EVT 2.0 and EVT 3.0 files, decoded by ``expelliarmus``.

Byte layouts (Prophesee, "Event Data File Formats",
https://docs.prophesee.ai/stable/data/file_formats/dat.html and
https://docs.prophesee.ai/stable/data/encoding_formats/evt2.html / evt3.html)::

    DAT v2   '%'-header lines (LF), then 1 byte event type and 1 byte event size (8), then
             8-byte little-endian records: uint32 t (µs), uint32 data with
             x = bits 0-13, y = bits 14-27, p = bits 28-31 (CD events)
    EVT 2.0  '%'-header lines (ending with '% end' in recent files, '% evt 2.0' inside), then
             32-bit little-endian words: 4-bit type (CD_OFF 0x0, CD_ON 0x1, EVT_TIME_HIGH 0x8,
             EXT_TRIGGER 0xA, ...); CD words carry 6 low timestamp bits, 11-bit x, 11-bit y;
             TIME_HIGH words carry the upper 28 bits of the µs timestamp
    EVT 3.0  '%'-header lines ('% evt 3.0'), then 16-bit little-endian words (4-bit type):
             EVT_ADDR_Y, EVT_ADDR_X, VECT_BASE_X, VECT_12, VECT_8, EVT_TIME_LOW,
             EVT_TIME_HIGH, EXT_TRIGGER, ... (vectorised CD events relative to a base x)

``expelliarmus`` (maintained, C backend) does the decoding; eventkit validates the header,
checks that the payload is a whole number of records/words (expelliarmus reads a truncated
file silently), wraps its errors into :class:`~eventkit.errors.EventFileError` naming the file,
and converts to ``VISION_DTYPE`` (x, y uint16, p uint8, t int64 µs as stored in the file).

Writers: :func:`write_prophesee_dat` and :func:`write_evt2` use expelliarmus's encoder
(round-trip checked). There is no EVT 3.0 writer: re-encoding the real EVT 3 sample with
expelliarmus 1.1.12 changed 199475 of 219596 timestamps, so it is not trusted.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from eventkit.errors import EventFileError, InvalidEventsError
from eventkit.events import VISION_DTYPE
from eventkit.io._common import (
    PathType,
    as_path,
    check_range,
    check_record_size,
    decoder_errors,
    read_all_bytes,
    read_head,
    require_fields,
    sorted_by_t,
)

_SUFFIX = {"DAT": ".dat", "EVT2": ".raw", "EVT3": ".raw"}
_WORD = {"EVT2": 4, "EVT3": 2}
_WHAT = {
    "DAT": "a Prophesee DAT file ('%' header + 8-byte CD records)",
    "EVT2": "a Prophesee EVT 2.0 RAW file ('%' header with 'evt 2.0' + 32-bit words)",
    "EVT3": "a Prophesee EVT 3.0 RAW file ('%' header with 'evt 3.0' + 16-bit words)",
}


def _header_end(data: bytes) -> tuple[int, list[str]]:
    """(offset after the '%' header, header lines). Header = leading lines starting with '%'."""
    pos, n = 0, len(data)
    lines: list[str] = []
    while pos < n and data[pos] == 0x25:  # '%'
        nl = data.find(b"\n", pos)
        if nl < 0:
            return -1, lines
        lines.append(data[pos:nl].decode("latin-1").strip())
        pos = nl + 1
        if lines[-1] == "% end":
            break
    return pos, lines


def raw_evt_version(lines: list[str]) -> str | None:
    """'EVT2' / 'EVT3' from RAW header lines ('% evt 2.0', '% evt 3.0', '% format EVT3;...'), else None."""
    for line in lines:
        low = line.lower().replace(" ", "")
        if low.startswith("%evt"):
            v = low[4:]
            return {"2.0": "EVT2", "2.1": "EVT21", "3.0": "EVT3"}.get(v, v)
        if low.startswith("%format"):
            fmt = low[len("%format"):].split(";")[0].upper()
            return {"EVT2": "EVT2", "EVT21": "EVT21", "EVT3": "EVT3"}.get(fmt, fmt)
    return None


_HEAD_BYTES = 1 << 16  # Prophesee headers are a few hundred bytes


def _head_and_size(p: Path, what: str) -> tuple[bytes, int]:
    """(the first bytes of the file, holding its whole '%' header, the file size in bytes).

    Only the header is read here: expelliarmus reads the payload itself, so the file is not
    read (and held in memory) twice.
    """
    head = read_head(p, _HEAD_BYTES)
    if not head:
        raise EventFileError(p, f"empty file (0 bytes), expected {what}", offset=0)
    size = os.path.getsize(p)
    if size > len(head):
        start, _ = _header_end(head)
        if start < 0 or start + 2 > len(head):  # header (or DAT's type/size bytes) runs past the head
            head = read_all_bytes(p, what=what)
            size = len(head)
    return head, size


def _validate(path: PathType, data: bytes, size: int, encoding: str) -> int:
    """Check the header in ``data`` (the file's first bytes) and that the ``size``-byte file
    holds whole records after it; returns the byte offset where the records start."""
    p = as_path(path)
    what = _WHAT[encoding]
    if data[0] != 0x25:
        raise EventFileError(p, f"no '%' header line at the start: not {what}", offset=0)
    start, lines = _header_end(data)
    if start < 0:
        raise EventFileError(p, f"truncated header: the last '%' line has no line end (expected {what})",
                             offset=size)
    if encoding == "DAT":
        if size < start + 2:
            raise EventFileError(p, "truncated: the 2-byte event type/size after the header is missing", offset=start)
        ev_size = data[start + 1]
        if ev_size != 8:
            raise EventFileError(p, f"event size byte is {ev_size}, expected 8 (CD events)", offset=start + 1)
        check_record_size(p, size, start + 2, 8, what)
        return start + 2
    else:
        version = raw_evt_version(lines)
        if version is None:
            raise EventFileError(p, f"no '% evt <version>' header line: cannot tell the encoding ({what})", offset=0)
        if version != encoding:
            raise EventFileError(
                p, f"header says {version}, not {encoding}; use format='{version.lower()}'"
                if version in ("EVT2", "EVT3") else f"header says {version}; only EVT2/EVT3 are supported",
                offset=0,
            )
        check_record_size(p, size, start, _WORD[encoding], what)
        return start


def _read(path: PathType, encoding: str) -> np.ndarray:
    import expelliarmus  # imported where used

    p = as_path(path)
    head, size = _head_and_size(p, _WHAT[encoding])
    if _validate(p, head, size, encoding) == size:  # a header and no event: an empty (valid) recording
        return np.empty(0, dtype=VISION_DTYPE)
    with tempfile.TemporaryDirectory(prefix="eventkit-") as tmp:
        src = p
        if p.suffix.lower() != _SUFFIX[encoding]:  # expelliarmus insists on the suffix (of the resolved path)
            src = Path(tmp) / ("events" + _SUFFIX[encoding])
            shutil.copyfile(p, src)
        with decoder_errors(p, f"expelliarmus could not decode it as {_WHAT[encoding]}"):
            arr = expelliarmus.Wizard(encoding=encoding, fpath=str(src)).read()
    if arr is None or getattr(arr, "dtype", None) is None or arr.dtype.names is None:
        raise EventFileError(p, f"expelliarmus could not decode it as {_WHAT[encoding]} (it returned no array)")
    out = np.empty(arr.shape[0], dtype=VISION_DTYPE)
    out["t"] = arr["t"]
    out["x"] = arr["x"]
    out["y"] = arr["y"]
    out["p"] = arr["p"]
    return sorted_by_t(out)


def read_prophesee_dat(path: PathType) -> np.ndarray:
    """Read a Prophesee DAT v2 CD file (e.g. N-CARS) -> vision events sorted by ``t`` (µs)."""
    return _read(path, "DAT")


def read_evt2(path: PathType) -> np.ndarray:
    """Read a Prophesee EVT 2.0 RAW file -> vision events sorted by ``t`` (µs as stored)."""
    return _read(path, "EVT2")


def read_evt3(path: PathType) -> np.ndarray:
    """Read a Prophesee EVT 3.0 RAW file -> vision events sorted by ``t`` (µs as stored)."""
    return _read(path, "EVT3")


def _write(path: PathType, events: np.ndarray, encoding: str, max_xy: int) -> None:
    import expelliarmus

    p = as_path(path)
    name = f"events for {p}"
    require_fields(events, ("t", "x", "y", "p"), name)
    if events.shape[0] == 0:
        raise InvalidEventsError(f"{name}: no events (expelliarmus cannot encode an empty array)")
    check_range(events, "x", 0, max_xy, name, f"the {encoding} x address field")
    check_range(events, "y", 0, max_xy, name, f"the {encoding} y address field")
    check_range(events, "p", 0, 1, name, "CD polarity is one bit")
    t = events["t"]
    if int(t.min()) < 0 or bool(np.any(t[1:] < t[:-1])):
        raise InvalidEventsError(f"{name}: timestamps must be >= 0 and sorted for {encoding}")
    arr = np.empty(events.shape[0], dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
    arr["t"], arr["x"], arr["y"], arr["p"] = events["t"], events["x"], events["y"], events["p"]
    with tempfile.TemporaryDirectory(prefix="eventkit-") as tmp:
        dst = Path(tmp) / ("events" + _SUFFIX[encoding])
        try:
            expelliarmus.Wizard(encoding=encoding).save(str(dst), arr)
        except (ValueError, RuntimeError, TypeError, OSError) as exc:
            raise InvalidEventsError(f"{name}: expelliarmus could not encode {encoding} ({exc})") from None
        with open(dst, "rb") as src, open(p, "wb") as out:
            out.write(src.read())


def write_prophesee_dat(path: PathType, events: np.ndarray) -> None:
    """Write vision events (sorted, t >= 0 µs, x, y < 2**14, p in {0,1}) as a Prophesee DAT v2 file."""
    _write(path, events, "DAT", (1 << 14) - 1)


def write_evt2(path: PathType, events: np.ndarray) -> None:
    """Write vision events (sorted, t >= 0 µs, x, y < 2**11, p in {0,1}) as a Prophesee EVT 2.0 file."""
    _write(path, events, "EVT2", (1 << 11) - 1)
