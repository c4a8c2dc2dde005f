"""Local file writes and the hashes and checks the completion markers rely on."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eventkit.cache.location import _plain, canonical_json
from eventkit.errors import ParameterError

def _replace_atomically(path: Path, payload: bytes, *, fsync: bool) -> None:
    """Write ``payload`` to a temporary file beside ``path`` and rename it over ``path``.

    A reader sees the old file or the whole new one; a failed write leaves no temporary file.
    ``fsync``: the file is on disk before the rename, and the rename before the return.
    """
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_path(path.parent)


def _fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory's fsync makes renames in it durable)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:  # e.g. directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:  # filesystems without fsync on directories
        pass
    finally:
        os.close(fd)


def _labels_sha256(labels: np.ndarray, sample_ids: Sequence[str]) -> str:
    """sha256 of a shard's labels (int64 little-endian) then its sample ids (each UTF-8,
    preceded by its byte length as uint32 little-endian): what the marker vouches for
    besides the frames."""
    h = hashlib.sha256(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    for sid in sample_ids:
        raw = str(sid).encode("utf-8")
        h.update(len(raw).to_bytes(4, "little"))
        h.update(raw)
    return h.hexdigest()


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _zstd_content_size(frame: memoryview) -> int:
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


def _frames_sha256(frames: np.ndarray) -> str:
    """sha256 of the frames' little-endian C-order bytes (independent of compression)."""
    arr = np.ascontiguousarray(frames)
    if arr.dtype.itemsize > 1 and arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return hashlib.sha256(memoryview(arr).cast("B")).hexdigest()


def _int_column(values: Sequence[int] | np.ndarray, n: int, name: str, url: str, k: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ParameterError(f"{url}: shard {k} {name} have shape {arr.shape}, expected ({n},)")
    if arr.size and arr.dtype.kind not in "ui":
        raise ParameterError(f"{url}: shard {k} {name} must be integers, got {arr.dtype}")
    return arr.astype(np.int64)


def _without_complete(attrs: dict) -> dict:
    return {k: v for k, v in _plain(attrs).items() if k != "complete"}


def _mismatch_message(url: str, old: dict, new: dict) -> str:
    a, b = _without_complete(old), _without_complete(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    diff = "; ".join(f"{k}: existing {canonical_json(a.get(k))} vs requested {canonical_json(b.get(k))}" for k in keys)
    return (f"{url} already holds a cache built with other parameters ({diff}). Existing parameters: "
            f"{canonical_json(a.get('params'))}; requested: {canonical_json(b.get('params'))}. "
            "Delete the store or choose another --cache to rebuild; it is never reused silently")
