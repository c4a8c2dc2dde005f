"""Readers (and writers, for tests) of the static image formats: IDX and CIFAR-10 binary.

IDX (MNIST, Fashion-MNIST; http://yann.lecun.com/exdb/mnist/): a 4-byte magic
``0x00 0x00 <type> <ndim>`` (type 0x08 = unsigned byte), then ``ndim`` big-endian
int32 sizes, then the data row-major. Images: magic 0x00000803, sizes (N, 28, 28);
labels: magic 0x00000801, size (N,). Files may be gzip-compressed (``.gz``).

CIFAR-10 binary version (https://www.cs.toronto.edu/~kriz/cifar.html): each file is a
sequence of 3073-byte records: 1 label byte (0..9) then 3072 pixel bytes, the 1024 red,
1024 green and 1024 blue values of a 32x32 image, row-major. Never the pickle version.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

import numpy as np

from eventkit.errors import ImageFileError
from eventkit.io._common import open_regular

__all__ = [
    "read_idx", "write_idx", "read_cifar10_bin", "write_cifar10_bin", "find_idx_file",
    "CIFAR10_RECORD_BYTES",
]

# element types of the IDX spec that image datasets use (MNIST-family files are 0x08)
_IDX_TYPES: dict[int, np.dtype] = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
                                   0x0C: np.dtype(">i4")}
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32


GZIP_MAX_RATIO = 1100  # deflate cannot expand more than ~1032x


@contextmanager
def _open(path: Path, what: str):
    """A binary stream of ``path`` (gzip-decompressed for ``.gz``); a missing, non-regular
    (FIFO, device) or unreadable file, or a corrupt gzip stream -> :class:`ImageFileError`."""
    with open_regular(path, what, ImageFileError) as raw:
        try:
            if path.suffix == ".gz":
                with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
                    yield fh
            else:
                yield raw
        except (OSError, EOFError, zlib.error) as exc:
            raise ImageFileError(path, f"cannot read (corrupt or truncated gzip?): {exc}") from exc


def _read_bytes(path: Path, what: str) -> bytes:
    with _open(path, what) as fh:
        return fh.read()


def read_idx(path: str | PathLike, *, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally ``.gz``) into a native-endian array of its shape.

    Checks the magic number, the element type, ``expect_ndim`` when given and that the
    byte count matches the header's sizes exactly; the sizes are checked against what the
    file can hold (its size; ~1032x that for gzip) *before* the data are read, so a header
    with huge or overflowing sizes is an :class:`ImageFileError` (file, problem, byte offset),
    never an allocation.
    """
    path = Path(path)
    what = "an IDX file"
    with _open(path, what) as fh:
        raw = fh.read(4)
        if len(raw) < 4:
            raise ImageFileError(path, f"too short for an IDX header ({len(raw)} bytes)", 0)
        if raw[0] != 0 or raw[1] != 0:
            raise ImageFileError(path, f"bad IDX magic {raw[:4].hex()} (expected 0000<type><ndim>, e.g. 00000803)", 0)
        type_code, ndim = raw[2], raw[3]
        if type_code not in _IDX_TYPES:
            raise ImageFileError(
                path, f"unsupported IDX element type 0x{type_code:02x} (image files use 0x08, unsigned byte)", 2)
        if expect_ndim is not None and ndim != expect_ndim:
            raise ImageFileError(
                path, f"IDX file has {ndim} dimension(s), expected {expect_ndim} "
                f"(magic {raw[:4].hex()}; images are 00000803, labels 00000801)", 3)
        header = 4 + 4 * ndim
        sizes = fh.read(4 * ndim)
        if len(sizes) < 4 * ndim:
            raise ImageFileError(path, f"truncated IDX header: {4 + len(sizes)} bytes, need {header}", 4 + len(sizes))
        shape = struct.unpack(f">{ndim}i", sizes)
        if any(s < 0 for s in shape):
            raise ImageFileError(path, f"negative IDX size in {shape}", 4)
        dtype = _IDX_TYPES[type_code]
        n_bytes = dtype.itemsize
        for s in shape:  # Python ints: no overflow, whatever the header says
            n_bytes *= s
        if path.suffix != ".gz" and n_bytes > os.fstat(fh.fileno()).st_size - header:
            raise ImageFileError(
                path, f"IDX sizes {shape} need {n_bytes} data bytes, file holds "
                f"{os.fstat(fh.fileno()).st_size - header} (truncated, or corrupt sizes)", header)
        if n_bytes > GZIP_MAX_RATIO * path.stat().st_size:
            raise ImageFileError(
                path, f"IDX sizes {shape} need {n_bytes} data bytes, more than ~1032x the "
                f"{path.stat().st_size}-byte gzip file can hold (corrupt sizes)", 4)
        data = fh.read(n_bytes + 1)
    if len(data) != n_bytes:
        raise ImageFileError(
            path, f"IDX sizes {shape} need {n_bytes} data bytes, file holds "
            f"{len(data) if len(data) < n_bytes else 'more'} "
            f"({'truncated' if len(data) < n_bytes else 'trailing bytes'})", header)
    arr = np.frombuffer(data, dtype=dtype, count=n_bytes // dtype.itemsize)
    return arr.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | PathLike, array: np.ndarray) -> Path:
    """Write a uint8 ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ImageFileError(path, f"write_idx writes uint8 arrays only, got {array.dtype}")
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        # mtime=0: the same content gives the same bytes (reproducible fixtures)
        with open(path, "wb") as raw_fh, gzip.GzipFile(filename="", mode="wb", fileobj=raw_fh, mtime=0) as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


def find_idx_file(root: Path, stem: str) -> Path | None:
    """``root/stem`` or ``root/stem.gz`` (the unpacked file first), or None."""
    for cand in (root / stem, root / (stem + ".gz")):
        if cand.is_file():
            return cand
    return None


def read_cifar10_bin(paths: Sequence[str | PathLike]) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 binary batch files -> (uint8 images ``[N, 3, 32, 32]``, int64 labels ``[N]``).

    Each file must be a whole number of 3073-byte records with labels 0..9;
    :class:`ImageFileError` names the file and the offset otherwise.
    """
    images, labels = [], []
    for p in paths:
        p = Path(p)
        raw = _read_bytes(p, "a CIFAR-10 binary batch file")
        if len(raw) == 0 or len(raw) % CIFAR10_RECORD_BYTES:
            raise ImageFileError(
                p, f"size {len(raw)} bytes is not a positive multiple of the {CIFAR10_RECORD_BYTES}-byte "
                f"CIFAR-10 record (1 label byte + 3072 pixels): truncated, or not the binary version",
                len(raw) - len(raw) % CIFAR10_RECORD_BYTES)
        rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
        lab = rec[:, 0]
        bad = np.flatnonzero(lab > 9)
        if bad.size:
            i = int(bad[0])
            raise ImageFileError(p, f"record {i} has label {int(lab[i])} (expected 0..9)", i * CIFAR10_RECORD_BYTES)
        images.append(rec[:, 1:].reshape(-1, 3, 32, 32).copy())
        labels.append(lab.astype(np.int64))
    if not images:
        return np.zeros((0, 3, 32, 32), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(images), np.concatenate(labels)


def write_cifar10_bin(path: str | PathLike, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write uint8 ``images [N, 3, 32, 32]`` and ``labels [N]`` (0..9) as a CIFAR-10 binary batch file."""
    path = Path(path)
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        raise ImageFileError(path, f"images must be uint8 [N, 3, 32, 32], got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ImageFileError(path, f"labels must be [N] in 0..9, got shape {labels.shape}")
    rec = np.empty((images.shape[0], CIFAR10_RECORD_BYTES), np.uint8)
    rec[:, 0] = labels
    rec[:, 1:] = images.reshape(images.shape[0], -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rec.tobytes())
    return path
