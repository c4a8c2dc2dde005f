"""jAER AEDAT 2.0 files with DVS128 addresses (e.g. the original CIFAR10-DVS release).

Byte layout (iniVation, "AEDAT 2.0",
https://docs.inivation.com/software/software-advanced-usage/file-formats/aedat-2.0.html)::

    header   lines starting with '#', each ended by CRLF (jAER) or LF; the first is the
             version line '#!AER-DAT2.0'. The header ends at the first line that does not
             start with '#'; that byte is the data start.
    data     8-byte records, big-endian: int32 address, int32 timestamp (µs)

DVS128 address (jAER ``DVS128`` chip class; the same table as AEDAT 1.0)::

    bit 0       polarity (1 = ON / increase, 0 = OFF)
    bits 1-7    x
    bits 8-14   y
    bit 15      external (sync) event: not a pixel event, dropped

Addresses with bits above 15 set do not belong to a DVS128 and raise
:class:`~eventkit.errors.EventFileError` with the byte offset of the first such record.
No axis flip here: the CIFAR10-DVS convention (``x' = 127 - y``, ``y' = 127 - x``,
``p' = 1 - p``) belongs to the dataset layer. tonic's ``read_dvs_128`` takes ``x`` from bits
8-14 and ``y`` from bits 1-7, i.e. it returns this reader's ``y`` as ``x``.

Timestamps are kept raw (uint32 µs from the file, as int64, not shifted to 0); jAER may
reset/wrap them, in which case events are stably sorted by ``t``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eventkit.errors import EventFileError
from eventkit.events import VISION_DTYPE
from eventkit.io._common import (
    PathType,
    as_path,
    check_range,
    check_record_size,
    read_all_bytes,
    require_fields,
    sorted_by_t,
)

RECORD_BYTES = 8
_RECORD = np.dtype([("a", ">u4"), ("t", ">u4")])
# The same record with the two low address bytes as uint8 fields (big-endian: byte 2 = bits 15-8,
# byte 3 = bits 7-0): p = b3 bit 0, x = b3 >> 1, y = b2 & 0x7F. uint8 columns move 4-8x fewer bytes.
_BYTES = np.dtype({"names": ["a", "b2", "b3", "t"], "formats": [">u4", "u1", "u1", ">u4"],
                   "offsets": [0, 2, 3, 4], "itemsize": 8})
EXTERNAL_BIT = 1 << 15

DEFAULT_HEADER = (
    "# This is a raw AE data file - do not edit",
    "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event",
    "# Timestamps tick is 1 us",
    "# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128",
)


def _parse_header(path: PathType, data: bytes) -> tuple[float, int]:
    """(version, data_start) from the bytes of an AEDAT file; raises EventFileError on a bad header."""
    n = len(data)
    if not data.startswith(b"#!AER-DAT"):
        raise EventFileError(
            as_path(path),
            "no '#!AER-DAT2.0' version line at the start: not an AEDAT 2.0 file "
            "(AEDAT 1.0 files without a version line are not supported)",
            offset=0,
        )
    pos = 0
    version_line: bytes | None = None
    while pos < n and data[pos] == 0x23:  # '#'
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise EventFileError(
                as_path(path), "truncated header: the last '#' header line has no line end", offset=pos
            )
        if version_line is None:
            version_line = data[pos:nl].rstrip(b"\r")
        pos = nl + 1
    text = (version_line or b"").decode("ascii", errors="replace")[len("#!AER-DAT"):].strip()
    try:
        version = float(text)
    except ValueError:
        raise EventFileError(as_path(path), f"corrupt version line {version_line!r}", offset=0) from None
    return version, pos


def read_aedat2_header(path: PathType) -> tuple[float, int]:
    """``(version, data_start_offset)`` of an AEDAT file: the ``#!AER-DAT`` version number and
    the byte where the binary data begin (the file size for a header-only file)."""
    data = read_all_bytes(path, what="an AEDAT 2.0 file")
    return _parse_header(path, data)


def read_aedat2(path: PathType) -> np.ndarray:
    """Read an AEDAT 2.0 DVS128 recording -> vision events (raw µs timestamps) sorted by ``t``.

    A header-only file gives 0 events; a trailing partial 8-byte record, a missing/corrupt
    version line, a version other than 2.x, or a non-DVS128 address raises
    :class:`~eventkit.errors.EventFileError` (with the byte offset).
    """
    what = "an AEDAT 2.0 file"
    data = read_all_bytes(path, what=what)
    version, start = _parse_header(path, data)
    if not 2.0 <= version < 3.0:
        hint = "use format='aedat31'" if 3.0 <= version < 4.0 else (
            "use format='aedat4'" if version >= 4.0 else "AEDAT 1.x is not supported")
        raise EventFileError(as_path(path), f"AEDAT version {version}, not 2.x ({hint})", offset=0)
    n = check_record_size(path, len(data), start, RECORD_BYTES, "AEDAT 2.0 (8-byte address/timestamp records)")
    # Byte-level view of the big-endian address: a = b0 b1 b2 b3 (b3 least significant), so
    # p = b3 bit 0, x = b3 bits 1-7, y = b2 bits 0-6, external = b2 bit 7, bits 16+ = b0 b1.
    # Working on uint8 columns moves 4-8x fewer bytes than decoding the uint32 address.
    rec = np.frombuffer(data, dtype=_BYTES, count=n, offset=start)
    if (rec["a"] >= EXTERNAL_BIT).any():  # rare: bit 15 (external events) or bits 16+ (not a DVS128)
        high = np.flatnonzero(rec["a"] >= 1 << 16)
        if high.size:
            i = int(high[0])
            a = int.from_bytes(data[start + 8 * i:start + 8 * i + 4], "big")
            raise EventFileError(
                as_path(path),
                f"address 0x{a:08x} of record {i} has bits above 15 set: not a DVS128 address "
                f"(this reader decodes DVS128 polarity events only)",
                offset=start + i * RECORD_BYTES,
            )
        rec = rec[rec["a"] < EXTERNAL_BIT]  # drop external (sync) events
    out = np.empty(rec.shape[0], dtype=VISION_DTYPE)
    out["t"] = rec["t"]
    # ufuncs write straight into the output fields: no large temporaries
    np.right_shift(rec["b3"], 1, out=out["x"])
    np.bitwise_and(rec["b2"], 0x7F, out=out["y"])
    np.bitwise_and(rec["b3"], 1, out=out["p"])
    return sorted_by_t(out)


def write_aedat2(
    path: PathType,
    events: np.ndarray,
    *,
    header_lines: Sequence[str] = DEFAULT_HEADER,
    newline: str = "\r\n",
) -> None:
    """Write vision events as an AEDAT 2.0 DVS128 file (jAER layout, see the module docstring).

    ``x, y`` in 0..127, ``p`` in {0, 1}, ``0 <= t < 2**32`` µs. ``header_lines`` follow the
    ``#!AER-DAT2.0`` version line; each must start with ``#``. ``newline`` is ``"\\r\\n"``
    (jAER) or ``"\\n"``. Zero events give a valid header-only file.
    """
    name = f"events for {as_path(path)}"
    require_fields(events, ("t", "x", "y", "p"), name)
    check_range(events, "x", 0, 127, name, "DVS128 x is 7 bits")
    check_range(events, "y", 0, 127, name, "DVS128 y is 7 bits")
    check_range(events, "p", 0, 1, name, "polarity is one bit")
    check_range(events, "t", 0, 0xFFFFFFFF, name, "the timestamp is 32 bits")
    if newline not in ("\r\n", "\n"):
        raise ValueError(f"newline must be '\\r\\n' or '\\n', got {newline!r}")
    for line in header_lines:
        if not line.startswith("#") or "\n" in line or "\r" in line:
            raise ValueError(f"header line {line!r} must start with '#' and hold no line break")
    header = newline.join(["#!AER-DAT2.0", *header_lines]) + newline
    rec = np.empty(events.shape[0], dtype=_RECORD)
    rec["a"] = (
        (events["y"].astype(np.uint32) << 8) | (events["x"].astype(np.uint32) << 1) | events["p"].astype(np.uint32)
    )
    rec["t"] = events["t"].astype(np.uint32)
    with open(as_path(path), "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(rec.tobytes())
