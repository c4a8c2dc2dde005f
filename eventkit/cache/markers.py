"""Completion markers: what ``completion/<k>.json`` holds, how it is written and read.

A marker is written after its shard's data, create-if-absent: a valid marker is never
deleted or rewritten (two builders of one store write the same bytes, and the second keeps
the first's marker). An unreadable marker, or one for another sample count, counts as
absent and is replaced. The completion state is read from the storage every time (a fresh
listing of ``completion/`` and one GET per listed marker), never from a cached listing.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from eventkit.cache.layout import FORMAT_VERSION, MARKER_GROUP, marker_key
from eventkit.cache.location import canonical_json
from eventkit.cache.objects import StoreIO

__all__ = ["frames_sha256", "labels_sha256", "make_marker", "parse_marker", "marker_is_valid", "write_marker",
           "read_completion"]


def frames_sha256(frames: np.ndarray) -> str:
    """sha256 of the frames' little-endian C-order bytes (independent of compression)."""
    arr = np.ascontiguousarray(frames)
    if arr.dtype.itemsize > 1 and arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return hashlib.sha256(arr.data.cast("B")).hexdigest()


def labels_sha256(labels: np.ndarray, sample_ids: Sequence[str]) -> str:
    """sha256 of a shard's labels (int64 little-endian) then its sample ids (each UTF-8, preceded by its
    byte length as uint32 little-endian): what the marker vouches for besides the frames."""
    h = hashlib.sha256(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    for sid in sample_ids:
        raw = str(sid).encode("utf-8")
        h.update(len(raw).to_bytes(4, "little"))
        h.update(raw)
    return h.hexdigest()


def make_marker(k: int, start: int, stop: int, frames: np.ndarray, labels: np.ndarray, n_events: np.ndarray,
                sample_ids: Sequence[str], skipped: Sequence[dict] = ()) -> bytes:
    """The marker bytes of shard ``k`` (samples ``[start, stop)``); ``skipped``: samples left out (``--skip-bad``)."""
    marker = {"format_version": FORMAT_VERSION, "shard": int(k), "start": int(start), "stop": int(stop),
              "n_samples": int(stop - start), "n_events": int(np.asarray(n_events, dtype=np.int64).sum()),
              "sha256": frames_sha256(frames), "labels_sha256": labels_sha256(labels, sample_ids)}
    if skipped:
        marker["skipped"] = sorted((dict(s) for s in skipped), key=lambda s: s["index"])
    return (canonical_json(marker) + "\n").encode("ascii")


def parse_marker(raw: bytes | None) -> dict | None:
    """A marker's dict, or None when absent or not a JSON object."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def marker_is_valid(marker: dict | None, k: int, n_samples: int) -> bool:
    """True when ``marker`` vouches for shard ``k`` of ``n_samples`` samples."""
    return (marker is not None and marker.get("n_samples") == n_samples and isinstance(marker.get("sha256"), str)
            and marker.get("shard", k) == k and isinstance(marker.get("n_events"), int))


def write_marker(io: StoreIO, k: int, n_samples: int, payload: bytes) -> bool:
    """Create shard ``k``'s marker; an existing valid marker is kept. True when this call wrote it."""
    key = marker_key(k)
    if io.put_new(key, payload, durable=True):
        return True
    if marker_is_valid(parse_marker(io.get(key)), k, n_samples):
        return False  # another writer marked the shard: its data are the same bytes
    io.put(key, payload, durable=True)  # an unreadable marker of a killed writer: replaced
    return True


def read_completion(io: StoreIO, shard_sizes: Sequence[int], known: dict[int, dict] | None = None) -> dict[int, dict]:
    """Valid markers by shard index, read from the storage (fresh listing, one GET per listed marker).

    ``known``: markers this process wrote itself; they are taken as is when the listing shows them.
    """
    known = known or {}
    n_shards = len(shard_sizes)
    wanted = []
    for name in io.list_names(MARKER_GROUP):
        stem = name[:-5] if name.endswith(".json") else ""
        if stem.isdigit() and int(stem) < n_shards and str(int(stem)) == stem:
            wanted.append(int(stem))
    raw = io.get_many([marker_key(k) for k in wanted if k not in known])
    out: dict[int, dict] = {}
    for k in wanted:
        marker = known[k] if k in known else parse_marker(raw.get(marker_key(k)))
        if marker is not None and marker_is_valid(marker, k, shard_sizes[k]):
            out[k] = marker
    return out
