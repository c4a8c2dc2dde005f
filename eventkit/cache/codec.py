"""The bytes of a store's chunks (Zarr v3 codecs), as pure functions of bytes and arrays.

- An *encoded chunk* is ``zstd(level 3, no content checksum)`` of the chunk's little-endian
  bytes followed by the crc32c (Castagnoli) of those zstd bytes as 4 little-endian bytes:
  the codec chain ``bytes`` → ``zstd`` → ``crc32c`` of the Zarr v3 specification.
- A *shard file* (``sharding_indexed`` codec, index at the end) is the encoded inner chunks
  one after the other from offset 0, then the index — ``n_slots`` pairs of little-endian
  uint64 ``(offset, nbytes)``, ``2**64 - 1`` for a slot without a chunk — and the crc32c of
  the index.
- A *strings chunk* (``vlen-utf8`` codec) is a uint32 count, then each string as a uint32
  byte length and its UTF-8 bytes, then zstd and crc32c as above.

Decoding checks the crc32c of every chunk and of every index before anything else, so a
damaged byte anywhere in a shard file or a chunk is a :class:`ChunkError`, never data.
The store turns it into a ``CacheError`` that names the store, shard and sample.
"""
from __future__ import annotations

from collections.abc import Sequence

import google_crc32c
import numpy as np
from numcodecs import Zstd

__all__ = ["ZSTD_LEVEL", "ABSENT", "ChunkError", "encode_chunk", "decode_chunk", "decode_chunk_into",
           "encode_shard", "index_nbytes", "parse_index", "encode_int64_chunk", "decode_int64_chunk",
           "encode_strings_chunk", "decode_strings_chunk"]

#: zstd level of every chunk
ZSTD_LEVEL = 3
#: index entry of a shard slot without a chunk
ABSENT = 2**64 - 1
_ZSTD_WRITE = Zstd(level=ZSTD_LEVEL, checksum=False)
_ZSTD_READ = Zstd()
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ChunkError(ValueError):
    """Bytes that are not a valid encoded chunk, shard index or strings chunk (the message says why)."""


def _crc(data) -> bytes:
    return google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data).to_bytes(4, "little")


def encode_chunk(raw) -> bytes:
    """zstd + crc32c of a chunk's raw bytes (an array is taken as its little-endian C-order bytes)."""
    body = bytes(_ZSTD_WRITE.encode(_le_bytes(raw)))
    return body + _crc(body)


def _le_bytes(raw):
    if isinstance(raw, np.ndarray):
        arr = np.ascontiguousarray(raw)
        if arr.dtype.itemsize > 1 and arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        return arr
    return raw


def _checked_body(blob) -> memoryview:
    view = memoryview(blob)
    if len(view) < 4:
        raise ChunkError(f"chunk of {len(view)} bytes is shorter than its crc32c")
    body = view[:-4]
    if google_crc32c.value(bytes(body)) != int.from_bytes(view[-4:], "little"):
        raise ChunkError("crc32c mismatch")
    return body


def _content_size(frame: memoryview) -> int:
    """Frame_Content_Size declared by a zstd frame header (RFC 8878 3.1.1.1); -1 when absent or truncated."""
    if len(frame) < 6 or bytes(frame[:4]) != _ZSTD_MAGIC:
        return -1
    descriptor = frame[4]
    single_segment = (descriptor >> 5) & 1
    pos = 5 + (1 - single_segment) + (0, 1, 2, 4)[descriptor & 3]  # window descriptor, dictionary id
    width = (single_segment, 2, 4, 8)[descriptor >> 6]
    if width == 0 or len(frame) < pos + width:
        return -1
    value = int.from_bytes(frame[pos:pos + width], "little")
    return value + 256 if width == 2 else value


def decode_chunk_into(blob, out: np.ndarray) -> None:
    """Check and decode an encoded chunk into ``out`` (C-contiguous; its byte size is the expected size)."""
    body = _checked_body(blob)
    declared = _content_size(body)
    if declared != out.nbytes:
        what = f"declares {declared} bytes" if declared >= 0 else "has no valid header"
        raise ChunkError(f"zstd frame {what}, expected {out.nbytes}")
    try:
        _ZSTD_READ.decode(body, out=out)
    except Exception as exc:  # noqa: BLE001 - zstd refuses the bytes
        raise ChunkError(f"zstd: {exc}") from None


def decode_chunk(blob, nbytes: int) -> bytes:
    """Check and decode an encoded chunk of ``nbytes`` raw bytes."""
    out = np.empty(nbytes, dtype=np.uint8)
    decode_chunk_into(blob, out)
    return out.tobytes()


def index_nbytes(n_slots: int) -> int:
    """Bytes at the end of a shard file: the index of ``n_slots`` entries and its crc32c."""
    return 16 * int(n_slots) + 4


def encode_shard(chunks: Sequence[bytes | None], n_slots: int) -> bytes:
    """A shard file of encoded chunks for slots ``0..len(chunks)-1``; a ``None`` chunk and later slots
    are absent (read as the fill value: zarr leaves an all-fill chunk out of its shard the same way)."""
    if len(chunks) > n_slots:
        raise ValueError(f"{len(chunks)} chunks for a shard of {n_slots} slots")
    index = np.full((n_slots, 2), ABSENT, dtype="<u8")
    offset = 0
    for j, blob in enumerate(chunks):
        if blob is None:
            continue
        index[j] = (offset, len(blob))
        offset += len(blob)
    tail = index.tobytes()
    return b"".join([*(c for c in chunks if c is not None), tail, _crc(tail)])


def parse_index(tail, n_slots: int, file_size: int | None = None) -> np.ndarray:
    """The index ``[n_slots, 2]`` (offset, nbytes) from a shard file's last :func:`index_nbytes` bytes.

    ``file_size``: the shard file's size, to check that every chunk lies before the index.
    """
    view = memoryview(tail)
    if len(view) != index_nbytes(n_slots):
        raise ChunkError(f"shard index of {len(view)} bytes, expected {index_nbytes(n_slots)}")
    body = _checked_body(view)
    index = np.frombuffer(body, dtype="<u8").reshape(n_slots, 2)
    if file_size is not None:
        present = index[:, 0] != np.uint64(ABSENT)
        limit = file_size - index_nbytes(n_slots)
        if present.any() and int((index[present, 0] + index[present, 1]).max()) > limit:
            raise ChunkError("shard index points past the chunk data")
    return index


def encode_int64_chunk(values, n_slots: int, fill: int) -> bytes:
    """An int64 chunk of ``n_slots`` entries: ``values`` then ``fill``."""
    arr = np.full(n_slots, fill, dtype="<i8")
    arr[:len(values)] = values
    return encode_chunk(arr.tobytes())


def decode_int64_chunk(blob, n_slots: int) -> np.ndarray:
    """int64 ``[n_slots]`` from an encoded chunk."""
    out = np.empty(n_slots, dtype="<i8")
    decode_chunk_into(blob, out)
    return out.astype(np.int64)


def _strings_payload(strings: Sequence[str], n_slots: int) -> bytes:
    parts = [int(n_slots).to_bytes(4, "little")]
    for s in [*strings, *([""] * (n_slots - len(strings)))]:
        raw = s.encode("utf-8")
        parts += [len(raw).to_bytes(4, "little"), raw]
    return b"".join(parts)


def encode_strings_chunk(strings: Sequence[str], n_slots: int) -> bytes:
    """A ``vlen-utf8`` chunk of ``n_slots`` strings: ``strings`` then ``""``."""
    return encode_chunk(_strings_payload(strings, n_slots))


def decode_strings_chunk(blob, n_slots: int) -> list[str]:
    """``n_slots`` strings from an encoded ``vlen-utf8`` chunk."""
    body = _checked_body(blob)
    size = _content_size(body)
    if size < 4:
        raise ChunkError("strings chunk without a valid zstd frame header")
    raw = decode_chunk(blob, size)
    if int.from_bytes(raw[:4], "little") != n_slots:
        raise ChunkError(f"strings chunk holds {int.from_bytes(raw[:4], 'little')} strings, expected {n_slots}")
    out, pos = [], 4
    for _ in range(n_slots):
        if pos + 4 > len(raw):
            raise ChunkError("strings chunk is cut short")
        n = int.from_bytes(raw[pos:pos + 4], "little")
        pos += 4
        if pos + n > len(raw):
            raise ChunkError("strings chunk is cut short")
        try:
            out.append(raw[pos:pos + n].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ChunkError(f"strings chunk is not UTF-8 ({exc})") from None
        pos += n
    if pos != len(raw):
        raise ChunkError("strings chunk has trailing bytes")
    return out
