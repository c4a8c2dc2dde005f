"""Bounds-checked reading (and minimal writing) of the FlatBuffers tables in AEDAT 4 files.

Private. Only what the AEDAT 4 IOHeader and EventPacket need: the root table, scalar fields,
a string and a vector of fixed-size structs (FlatBuffers binary format,
https://flatbuffers.dev/internals/). Every offset read from the buffer is checked against
its length before it is followed; a bad one raises :class:`FlatbufferError` with the
position inside the buffer, never an ``IndexError`` or a read outside it.
"""
from __future__ import annotations

import struct

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")


class FlatbufferError(ValueError):
    """A FlatBuffers offset or length points outside its buffer (``pos``: where, in the buffer)."""

    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.pos = pos


class Table:
    """One table of a FlatBuffers buffer: ``buf`` (bytes-like), ``pos`` (its start in ``buf``)."""

    __slots__ = ("buf", "pos", "_vtable", "_vt_size")

    def __init__(self, buf, pos: int):
        n = len(buf)
        if pos < 0 or pos + 4 > n or pos % 4:
            raise FlatbufferError(f"table offset {pos} outside the {n}-byte buffer or misaligned", pos)
        vtable = pos - _I32.unpack_from(buf, pos)[0]
        if vtable < 0 or vtable + 4 > n or vtable % 2:
            raise FlatbufferError(f"vtable offset {vtable} outside the {n}-byte buffer", pos)
        vt_size, tbl_size = _U16.unpack_from(buf, vtable)[0], _U16.unpack_from(buf, vtable + 2)[0]
        if vt_size < 4 or vt_size % 2 or vtable + vt_size > n or pos + tbl_size > n or tbl_size < 4:
            raise FlatbufferError(f"vtable at {vtable} declares sizes {vt_size}/{tbl_size} beyond the buffer", vtable)
        self.buf, self.pos, self._vtable, self._vt_size = buf, pos, vtable, vt_size

    def field(self, index: int, size: int) -> int | None:
        """Position of field ``index`` (``size`` bytes), or None when the table leaves it out."""
        slot = 4 + 2 * index
        if slot + 2 > self._vt_size:
            return None
        off = _U16.unpack_from(self.buf, self._vtable + slot)[0]
        if off == 0:
            return None
        at = self.pos + off
        if at + size > len(self.buf):
            raise FlatbufferError(f"field {index} at {at} runs past the {len(self.buf)}-byte buffer", at)
        return at

    def scalar(self, index: int, fmt: struct.Struct, default):
        at = self.field(index, fmt.size)
        return default if at is None else fmt.unpack_from(self.buf, at)[0]

    def _indirect(self, index: int) -> int | None:
        at = self.field(index, 4)
        if at is None:
            return None
        target = at + _U32.unpack_from(self.buf, at)[0]
        if target + 4 > len(self.buf):
            raise FlatbufferError(f"field {index} points to {target}, past the {len(self.buf)}-byte buffer", at)
        return target

    def string(self, index: int) -> bytes | None:
        """The bytes of string field ``index`` (None when absent)."""
        at = self._indirect(index)
        if at is None:
            return None
        n = _U32.unpack_from(self.buf, at)[0]
        if at + 4 + n > len(self.buf):
            raise FlatbufferError(f"string of {n} bytes at {at} runs past the {len(self.buf)}-byte buffer", at)
        return bytes(self.buf[at + 4:at + 4 + n])

    def struct_vector(self, index: int, item_size: int) -> tuple[int, int] | None:
        """(start of the items, number of items) of a vector of ``item_size``-byte structs, None when absent."""
        at = self._indirect(index)
        if at is None:
            return None
        n = _U32.unpack_from(self.buf, at)[0]
        if at + 4 + n * item_size > len(self.buf):
            raise FlatbufferError(
                f"vector of {n} x {item_size} bytes at {at} runs past the {len(self.buf)}-byte buffer", at
            )
        return at + 4, n


def root(buf, identifier: bytes | None = None) -> Table:
    """The root table of ``buf``; checks the 4-byte file identifier when given."""
    if len(buf) < 8:
        raise FlatbufferError(f"{len(buf)}-byte buffer is too short for a FlatBuffers root", 0)
    if identifier is not None and bytes(buf[4:8]) != identifier:
        raise FlatbufferError(f"identifier {bytes(buf[4:8])!r}, expected {identifier!r}", 4)
    return Table(buf, _U32.unpack_from(buf, 0)[0])


def size_prefixed(buf) -> memoryview:
    """The buffer inside a size-prefixed FlatBuffer (uint32 length, then that many bytes)."""
    if len(buf) < 4:
        raise FlatbufferError(f"{len(buf)}-byte buffer has no size prefix", 0)
    n = _U32.unpack_from(buf, 0)[0]
    if 4 + n > len(buf):
        raise FlatbufferError(f"size prefix {n} exceeds the {len(buf) - 4} bytes that follow", 0)
    return memoryview(buf)[4:4 + n]


# ------------------------------------------------------------------------------------------
# writing (tests and fixtures): the two layouts AEDAT 4 needs, aligned as flatc would


def build_ioheader(compression: int, data_table_position: int, description: bytes) -> bytes:
    """An IOHeader table (identifier ``IOHE``): compression (int32), data-table position (int64), description."""
    text = description + b"\x00"
    text += b"\x00" * (-len(text) % 4)
    out = bytearray()
    out += _U32.pack(20) + b"IOHE"                                   # root -> table at 20
    out += struct.pack("<HHHHH", 10, 20, 4, 12, 8) + b"\x00\x00"     # vtable at 8
    out += _I32.pack(20 - 8) + _I32.pack(compression) + _U32.pack(40 - 28) + _I64.pack(data_table_position)
    out += _U32.pack(len(description)) + text                        # string at 40
    return bytes(out)


def build_struct_vector_packet(identifier: bytes, items: bytes, n: int) -> bytes:
    """A size-prefixed table whose only field (0) is a vector of ``n`` structs (``items``: their bytes).

    The struct data start 8-byte aligned counting the size prefix (AEDAT 4 EventPacket layout).
    """
    body = bytearray()
    body += _U32.pack(16) + identifier                               # root -> table at 16
    body += struct.pack("<HHH", 6, 8, 4) + b"\x00\x00"               # vtable at 8
    body += _I32.pack(16 - 8) + _U32.pack(24 - 20)                   # table: vector at 24
    body += _U32.pack(n) + items                                     # items at 28 (+4 prefix = 32)
    return _U32.pack(len(body)) + bytes(body)
