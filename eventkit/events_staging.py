"""Staging of an event store build: one part file and one completion marker per shard.

A part file holds a shard's events as the concatenated columns plus the per-sample
counts: ``EKEVPART1\n``, a uint32 header length, a canonical JSON header (counts and
column dtypes), the int64 counts, then each column's little-endian bytes, all
zstd-compressed. The same events give the same bytes in every process, so concurrent
builders of one store write identical files. The marker (``<k>.json``, written after the
part) holds the counts and the part's sha256. Files are written atomically (local: a
temporary file renamed; object stores: one put, with the store's ``storage_options``).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eventkit.errors import CacheError
from eventkit.events_location import get_file, put_file, remove_tree
from eventkit.events_store import FORMAT_VERSION, column_dtypes

__all__ = ["stage_shard", "read_marker", "read_part", "drop_staging", "read_events"]


def _spec(name: str):
    from eventkit.datasets import get_dataset

    return get_dataset(name)


def read_events(spec, split: str, k: int, samples: Sequence[Any]) -> list[np.ndarray]:
    from eventkit.build import BuildError

    out = []
    it = iter(spec.iter_events(samples))
    try:
        for sample in samples:
            try:
                out.append(next(it))
            except StopIteration:
                raise BuildError(f"{spec.name}/{split} shard {k}: the reader yielded only {len(out)} of "
                                 f"{len(samples)} samples", sample.sample_id, str(sample.path)) from None
            except Exception as exc:  # re-raised with the sample named
                raise BuildError(f"{spec.name}/{split} shard {k}: sample {sample.sample_id!r} (file {sample.path}): "
                                 f"{type(exc).__name__}: {exc}", sample.sample_id, str(sample.path)) from exc
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    return out


_PART_MAGIC = b"EKEVPART1\n"


def _encode_part(counts: np.ndarray, columns: dict[str, np.ndarray]) -> bytes:
    """A shard's part file: magic, a JSON header, the int64 counts, then each column's little-endian
    bytes, zstd-compressed. Deterministic: the same events give the same bytes in every process."""
    from numcodecs import Zstd

    from eventkit.cache import canonical_json

    header = canonical_json({"n_samples": int(counts.shape[0]), "n_events": int(counts.sum()),
                             "columns": [[c, a.dtype.str] for c, a in columns.items()]}).encode("ascii")
    body = b"".join([_PART_MAGIC, len(header).to_bytes(4, "little"), header, counts.astype("<i8").tobytes()]
                    + [np.ascontiguousarray(a).tobytes() for a in columns.values()])
    return bytes(Zstd(level=3).encode(body))


def _decode_part(payload: bytes, where: str) -> dict[str, np.ndarray]:
    import json

    from numcodecs import Zstd

    body = bytes(Zstd().decode(payload))
    if not body.startswith(_PART_MAGIC):
        raise CacheError(f"{where} is not an eventkit staging part; delete the staging folder and rebuild")
    pos = len(_PART_MAGIC)
    size = int.from_bytes(body[pos:pos + 4], "little")
    header = json.loads(body[pos + 4:pos + 4 + size])
    pos += 4 + size
    n, e = int(header["n_samples"]), int(header["n_events"])
    out = {"counts": np.frombuffer(body, dtype="<i8", count=n, offset=pos)}
    pos += 8 * n
    for name, dt in header["columns"]:
        out[name] = np.frombuffer(body, dtype=np.dtype(dt), count=e, offset=pos)
        pos += e * np.dtype(dt).itemsize
    return out


def stage_shard(staging: str, name: str, split: str, k: int, samples: Sequence[Any],
                storage_options: Mapping[str, Any] | None = None) -> tuple[int, int, int]:
    """Read shard ``k``'s samples, write its part file then its marker; returns ``(k, n, events)``.
    ``storage_options``: arguments of the staging URL's fsspec filesystem."""
    from eventkit.cache import canonical_json

    spec = _spec(name)
    events = read_events(spec, split, k, samples)
    counts = np.asarray([e.shape[0] for e in events], dtype=np.int64)
    columns = {c: np.concatenate([e[c] for e in events]) if events else np.zeros(0, dt)
               for c, dt in column_dtypes(spec.kind).items()}
    payload = _encode_part(counts, columns)
    put_file(f"{staging}/{k}.part", payload, storage_options)
    marker = {"format_version": FORMAT_VERSION, "shard": int(k), "n_samples": len(samples),
              "n_events": int(counts.sum()), "counts": counts.tolist(), "sha256": hashlib.sha256(payload).hexdigest()}
    put_file(f"{staging}/{k}.json", (canonical_json(marker) + "\n").encode("ascii"), storage_options)
    return k, len(samples), int(counts.sum())


def read_marker(staging: str, k: int, n: int, storage_options: Mapping[str, Any] | None = None) -> dict | None:
    """Shard ``k``'s completion marker when it is there and describes ``n`` samples, else None."""
    import json

    raw = get_file(f"{staging}/{k}.json", storage_options)
    try:
        marker = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    if not isinstance(marker, dict) or marker.get("n_samples") != n or len(marker.get("counts", [])) != n:
        return None
    return marker


def read_part(staging: str, k: int, marker: dict,
              storage_options: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Shard ``k``'s part file, checked against its marker's sha256."""
    raw = get_file(f"{staging}/{k}.part", storage_options)
    if raw is None or hashlib.sha256(raw).hexdigest() != marker["sha256"]:
        raise CacheError(f"{staging}/{k}.part is missing or does not match its marker; delete {staging} and rebuild")
    return _decode_part(raw, f"{staging}/{k}.part")


def drop_staging(staging: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Remove the staging folder (nothing there is fine)."""
    remove_tree(staging, storage_options)
