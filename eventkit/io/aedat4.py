"""AEDAT 4.0 files (iniVation DV; e.g. the figshare CIFAR10-DVS re-release, DVXplorer recordings).

Byte layout (iniVation, "AEDAT 4.0",
https://docs.inivation.com/software/software-advanced-usage/file-formats/aedat-4.0.html)::

    '#!AER-DAT4.0\\r\\n'                  14-byte version line
    uint32 n + n bytes                  IOHeader flatbuffer ('IOHE'): int32 compression
                                        (0 none, 1 LZ4, 2 LZ4 high, 3 zstd, 4 zstd high),
                                        int64 data-table position (-1: none), XML description
                                        naming the streams (<node name="<id>"> with typeIdentifier)
    packets until the data table:       int32 stream id, uint32 size, size bytes of a
                                        compressed, size-prefixed flatbuffer: EventPacket
                                        ('EVTS': vector of 16-byte structs t int64 µs, x int16,
                                        y int16, on bool, 3 padding bytes), IMU, trigger, frame
    optional FileDataTable              index of the packets (not needed to read them)

eventkit decodes the container itself (LZ4 / zstd through the reference C libraries of the
``lz4`` and ``zstandard`` packages, flatbuffers by hand) rather than through a third-party
decoder: every size and offset is checked against the file before it is used, a packet may
expand at most :data:`MAX_EXPANSION` times (LZ4's own limit is ~255x), and a failure of any
kind is an :class:`~eventkit.errors.EventFileError` naming the file and the byte offset of
the packet. Only the packets of the chosen event stream are decompressed.

Timestamps are kept **absolute** (epoch µs, ≈1.6e15); the dataset layer may subtract the first.
:func:`write_aedat4` writes the same layout (tests, fixtures).
"""
from __future__ import annotations

import struct
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator

import numpy as np

from eventkit.errors import EventFileError, InvalidEventsError, ParameterError
from eventkit.events import VISION_DTYPE
from eventkit.io import _flatbuffers as fb
from eventkit.io._common import PathType, as_path, read_all_bytes, require_fields, sort_by

MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSION = {0: "none", 1: "lz4", 2: "lz4", 3: "zstd", 4: "zstd"}  # IOHeader code -> codec
_CODE = {"none": 0, "lz4": 1, "zstd": 3}
MAX_EXPANSION = 256  # decompressed bytes per compressed byte of a packet (+ 64 KiB); LZ4 maxes at ~255
_SLACK = 1 << 16
_PACKET = struct.Struct("<iI")
#: one event of an EventPacket as stored (flatbuffers struct: 8-byte aligned, 16 bytes)
EVENT_STRUCT = np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                         "offsets": [0, 8, 10, 12], "itemsize": 16})
_STREAM_TYPES = {"EVTS": "events", "FRME": "frame", "IMUS": "imus", "TRIG": "triggers"}


def _corrupt(path, problem: str, offset: int | None) -> EventFileError:
    return EventFileError(path, f"corrupt or truncated AEDAT 4 file: {problem}", offset=offset)


def _streams(path, description: bytes, at: int) -> dict[int, str]:
    """{stream id: type} from the IOHeader's XML description (``outInfo/<id>/typeIdentifier``)."""
    if b"<!" in description:  # no DTD/entities: nothing in a DV description needs them (entity bombs)
        raise _corrupt(path, "the IOHeader description holds a DTD or entity declaration", at)
    try:
        dv = ElementTree.fromstring(description.rstrip(b"\x00"))
    except ElementTree.ParseError as exc:
        raise _corrupt(path, f"the IOHeader description is not XML ({exc})", at) from None
    out: dict[int, str] = {}
    for info in dv.iter("node"):
        if info.get("name") != "outInfo":
            continue
        for node in info.findall("node"):
            name = node.get("name", "")
            kind = next((a.text for a in node.findall("attr") if a.get("key") == "typeIdentifier"), None)
            if not name.isdigit() or int(name) >= 1 << 31 or kind is None:
                raise _corrupt(path, f"stream node {name!r} without an integer id and a typeIdentifier", at)
            if int(name) in out:
                raise _corrupt(path, f"stream id {name} declared twice", at)
            out[int(name)] = _STREAM_TYPES.get(kind.strip(), kind.strip())
    if not out:
        raise _corrupt(path, "the IOHeader description declares no stream", at)
    return out


def _header(path, data: bytes) -> tuple[str, int, dict[int, str], int]:
    """(codec, first packet offset, streams, end of packets) from the version line and IOHeader."""
    n = len(data)
    at = len(MAGIC)
    if n < at + 4:
        raise _corrupt(path, f"the file ends at byte {n}, inside the IOHeader length", n)
    (hlen,) = struct.unpack_from("<I", data, at)
    start = at + 4 + hlen
    if start > n:
        raise _corrupt(path, f"the IOHeader declares {hlen} bytes, only {n - at - 4} follow", at)
    try:
        table = fb.root(memoryview(data)[at + 4:start])
        code = table.scalar(0, struct.Struct("<i"), 0)
        table_pos = table.scalar(1, struct.Struct("<q"), -1)
        description = table.string(2)
    except fb.FlatbufferError as exc:
        raise _corrupt(path, f"IOHeader: {exc}", at + 4 + exc.pos) from None
    if code not in COMPRESSION:
        raise _corrupt(path, f"unknown compression code {code} in the IOHeader", at + 4)
    if description is None:
        raise _corrupt(path, "the IOHeader has no stream description", at + 4)
    if table_pos == -1:
        end = n
    elif table_pos < start:
        raise _corrupt(path, f"the IOHeader places the data table at byte {table_pos}, before the packets", at + 4)
    else:
        end = table_pos
    return COMPRESSION[code], start, _streams(path, description, at + 4), end


def _packets(path, data: bytes, start: int, end: int, streams: dict[int, str]) -> Iterator[tuple[int, int, int]]:
    """(offset, stream id, size) of every packet between ``start`` and ``end``, each checked against the file."""
    n = len(data)
    pos = start
    while pos < end:
        if pos == n:
            raise _corrupt(path, f"the file ends at byte {n}, before the data table at byte {end}", n)
        if pos + 8 > n:
            raise _corrupt(path, f"the file ends at byte {n}, inside a packet header", pos)
        sid, size = _PACKET.unpack_from(data, pos)
        if pos + 8 + size > n:
            raise _corrupt(path, f"packet of stream {sid} declares {size} bytes, only {n - pos - 8} left", pos)
        if sid not in streams:
            raise _corrupt(path, f"packet of stream {sid}, which the IOHeader does not declare "
                                 f"(streams {sorted(streams)})", pos)
        if pos + 8 + size > end:
            raise _corrupt(path, f"packet runs past the data table at byte {end}", pos)
        yield pos, sid, size
        pos += 8 + size


def _lz4_content_size(raw) -> int:
    """The content size an LZ4 frame header declares (-1: none); the decoder would allocate it up front."""
    if len(raw) >= 14 and bytes(raw[:4]) == b"\x04\x22\x4d\x18" and raw[4] & 0x08:
        return int.from_bytes(raw[6:14], "little")
    return -1


def _decompress(codec: str, raw: memoryview, limit: int) -> bytes | memoryview:
    """Decompress one packet, refusing output beyond ``limit`` bytes (a decompression bomb).

    LZ4 cannot expand more than ~255x, and a declared content size is checked before the
    decoder allocates it; zstd output is capped at ``limit`` by the decoder.
    """
    if codec == "none":
        return raw
    if codec == "lz4":
        import lz4.frame

        if _lz4_content_size(raw) > limit:
            raise ValueError(f"LZ4 frame declares {_lz4_content_size(raw)} bytes, more than {limit}")
        return lz4.frame.decompress(raw)
    import zstandard

    declared = zstandard.frame_content_size(raw)
    if declared > limit:
        raise ValueError(f"zstd frame declares {declared} bytes, more than {limit}")
    return zstandard.ZstdDecompressor(max_window_size=1 << 24).decompress(raw, max_output_size=limit)


def _event_chunk(path, codec: str, data: bytes, pos: int, size: int) -> np.ndarray:
    """The events of the packet at ``pos``: their raw ``EVENT_STRUCT`` bytes as a uint8 array."""
    try:
        buf = _decompress(codec, memoryview(data)[pos + 8:pos + 8 + size], MAX_EXPANSION * size + _SLACK)
        found = fb.root(fb.size_prefixed(buf), b"EVTS").struct_vector(0, EVENT_STRUCT.itemsize)
    except fb.FlatbufferError as exc:
        raise _corrupt(path, f"event packet: {exc}", pos) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the codec's errors, MemoryError: never past this reader
        raise _corrupt(path, f"{codec} data of an event packet do not decode ({type(exc).__name__}: {exc})",
                       pos) from None
    if found is None:
        raise _corrupt(path, "event packet without an events vector", pos)
    first, count = found
    return np.frombuffer(buf, dtype=np.uint8, count=count * EVENT_STRUCT.itemsize, offset=4 + first)


def read_aedat4(path: PathType, *, stream_id: int | None = None) -> np.ndarray:
    """Read the polarity events of an AEDAT 4.0 file -> vision events (absolute epoch µs) sorted by ``t``.

    ``stream_id``: which event stream (default: the lowest-numbered stream of type
    ``events``). A wrong magic, a corrupt or truncated file, or a file without an event
    stream raises :class:`~eventkit.errors.EventFileError` naming the byte offset.
    """
    p = as_path(path)
    data = read_all_bytes(p, what="an AEDAT 4.0 file")
    if not data.startswith(MAGIC):
        raise EventFileError(
            p, f"starts with {data[:12]!r}, not the AEDAT 4.0 version line '#!AER-DAT4.0': not an AEDAT 4 file",
            offset=0,
        )
    codec, start, streams, end = _header(p, data)
    event_ids = sorted(k for k, v in streams.items() if v == "events")
    if stream_id is None:
        if not event_ids:
            raise EventFileError(p, f"no event stream in the file (streams: {sorted(streams.items())})")
        sid = event_ids[0]
    elif stream_id not in event_ids:
        raise EventFileError(p, f"stream {stream_id} is not an event stream (event streams: {event_ids})")
    else:
        sid = stream_id
    chunks = [(pos, _event_chunk(p, codec, data, pos, size))
              for pos, s, size in _packets(p, data, start, end, streams) if s == sid]
    return sort_by(*_to_vision(p, chunks))


def _to_vision(path, chunks: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Packets (raw EVENT_STRUCT bytes) -> (VISION_DTYPE events, their t column).

    One Numba pass per packet writes straight into the output (no gathered copy of the
    16-byte structs: fewer fresh pages to fault in); a negative t, x or y -> EventFileError
    at the packet that holds it.
    """
    from eventkit.kernels.aedat4 import unpack_event_structs

    item = EVENT_STRUCT.itemsize
    out = np.empty(sum(c.shape[0] for _, c in chunks) // item, dtype=VISION_DTYPE)
    i = 0
    for pos, c in chunks:  # one kernel call per packet (thousands of events), not per event
        m = c.shape[0] // item
        bad = unpack_event_structs(c.view("<i8"), c.view("<i2"), c, out[i:i + m])
        if bad >= 0:
            raise _corrupt(path, f"event {i + bad} has a negative timestamp or address", pos)
        i += m
    return out, out["t"]


def write_aedat4(path: PathType, events: np.ndarray, *, compression: str = "lz4", packet_size: int = 4096,
                 width: int = 320, height: int = 240) -> None:
    """Write vision events as an AEDAT 4.0 file: one event stream (id 0) of ``packet_size``-event packets.

    ``compression``: ``"lz4"``, ``"zstd"`` or ``"none"``; ``x < width``, ``y < height``,
    ``p`` in {0, 1}, ``t >= 0`` µs; no data table (position -1). Events are written in the
    order given.
    """
    p = as_path(path)
    name = f"events for {p}"
    require_fields(events, ("t", "x", "y", "p"), name)
    if compression not in _CODE:
        raise ParameterError(f"write_aedat4({p}): compression must be one of {sorted(_CODE)}, got {compression!r}")
    if packet_size < 1:
        raise ParameterError(f"write_aedat4({p}): packet_size must be >= 1, got {packet_size}")
    if events.size and (int(events["t"].min()) < 0 or int(events["x"].max()) >= width
                        or int(events["y"].max()) >= height or int(events["p"].max()) > 1):
        raise InvalidEventsError(f"{name}: needs t >= 0, x < {width}, y < {height}, p in {{0, 1}}")
    description = (
        f'<dv version="2.0">\n    <node name="outInfo" path="/mainloop/Recorder/outInfo/">\n'
        f'        <node name="0" path="/mainloop/Recorder/outInfo/0/">\n'
        f'            <attr key="compression" type="string">{compression.upper()}</attr>\n'
        f'            <attr key="typeIdentifier" type="string">EVTS</attr>\n'
        f'            <node name="info" path="/mainloop/Recorder/outInfo/0/info/">\n'
        f'                <attr key="sizeX" type="int">{width}</attr>\n'
        f'                <attr key="sizeY" type="int">{height}</attr>\n'
        f'            </node>\n        </node>\n    </node>\n</dv>\n'
    ).encode("ascii")
    header = fb.build_ioheader(_CODE[compression], -1, description)
    rec = np.zeros(events.shape[0], dtype=EVENT_STRUCT)
    rec["t"], rec["x"], rec["y"], rec["on"] = events["t"], events["x"], events["y"], events["p"]
    with open(p, "wb") as fh:
        fh.write(MAGIC + struct.pack("<I", len(header)) + header)
        for a in range(0, max(rec.shape[0], 1), packet_size):
            chunk = rec[a:a + packet_size]
            packet = fb.build_struct_vector_packet(b"EVTS", chunk.tobytes(), chunk.shape[0])
            if compression == "lz4":
                import lz4.frame

                packet = lz4.frame.compress(packet)
            elif compression == "zstd":
                import zstandard

                packet = zstandard.ZstdCompressor().compress(packet)
            fh.write(_PACKET.pack(0, len(packet)) + packet)
