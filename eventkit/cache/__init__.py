"""The frame cache: one Zarr v3 group per (dataset, split, representation, parameters).

Layout of a store (format version 1, see ``docs/cache-format.md``)::

    <cache_root>/<name>/<split>/<repr>-<params_hash[:12]>.zarr/
        zarr.json                 group; attrs["eventkit"] = the metadata below
        frames/                   [N, *frame_shape] uint8/uint16, inner chunk (1, *frame_shape),
                                  shards (shard_size, *frame_shape), zstd
        label/                    int64 [N], chunk = shard_size
        n_events/                 int64 [N], chunk = shard_size (events that went into the sample)
        sample_id/                string (vlen UTF-8) [N], chunk = shard_size
        completion/zarr.json      an empty group holding the markers
        completion/<k>.json       written only after shard k's data are stored

A shard ``k`` holds samples ``[k * shard_size, min((k + 1) * shard_size, N))``; one writer
task writes one shard file of ``frames`` plus exactly one chunk of each small array, then
its completion marker. A store is served only when every marker is present and the
group attribute ``complete`` is true; a half-written shard (no marker) is rewritten whole
on resume. Nothing in the store depends on the wall clock or the write order: the same
inputs give byte-identical files.

Locations are local paths or fsspec URLs (``s3://``, ``gs://``, ``memory://``; ``file://``
is treated as a local path). zarr is imported here only, never by ``import eventkit``.
"""
from __future__ import annotations

from eventkit.cache.location import canonical_json, default_cache_root, params_hash, store_path
from eventkit.cache.store import ATTRS_KEY, FORMAT_VERSION, MARKER_GROUP, CacheStore

__all__ = ["CacheStore", "store_path", "params_hash", "canonical_json", "default_cache_root", "FORMAT_VERSION",
           "ATTRS_KEY", "MARKER_GROUP"]
