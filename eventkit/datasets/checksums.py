"""File digests (md5 / sha1 / sha256) for archive checks.

The published checksums of the datasets' archives are mostly md5 digests: they are
used here for integrity (did the download arrive whole), not for security.
"""
from __future__ import annotations

import hashlib
from os import PathLike
from pathlib import Path

from eventkit.errors import DatasetNotFound, ParameterError

ALGORITHMS = ("md5", "sha1", "sha256")
_BLOCK = 1 << 20


def file_digest(path: str | PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of the bytes of ``path`` with ``algorithm`` (md5, sha1 or sha256), read in 1 MiB blocks."""
    if algorithm not in ALGORITHMS:
        raise ParameterError(f"checksum algorithm {algorithm!r} is not supported; use one of {ALGORITHMS}")
    digest = hashlib.new(algorithm, usedforsecurity=False) if algorithm != "sha256" else hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def verify_file(path: str | PathLike, expected: str, algorithm: str = "md5") -> str:
    """Check ``path`` against the ``expected`` hex digest; return the digest.

    Raises :class:`DatasetNotFound` naming the file, the expected and the actual digest
    on a mismatch (the file is then a broken or wrong download: fetch it again).
    """
    path = Path(path)
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.strip().lower():
        raise DatasetNotFound(
            f"checksum mismatch for {path}: expected {algorithm} {expected.strip().lower()}, got {actual} "
            f"(the file is incomplete or not the published one: download it again)"
        )
    return actual
