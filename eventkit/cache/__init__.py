"""The frame cache: one Zarr v3 group per (dataset, split, representation, parameters).

Layout of a store (format version 2, see ``docs/cache-format.md``)::

    <cache_root>/<name>/<split>/<repr>-<params_hash[:12]>.zarr/
        zarr.json                 group; attrs["eventkit"] = the metadata
        frames/                   [N, *frame_shape] uint8/uint16, inner chunk (1, *frame_shape),
                                  shards (shard_size, *frame_shape), zstd + crc32c per chunk
        label/                    int64 [N], chunk = shard_size, zstd + crc32c
        n_events/                 int64 [N], chunk = shard_size (events that went into the sample)
        sample_id/                string (vlen UTF-8) [N], chunk = shard_size
        completion/zarr.json      an empty group holding the markers
        completion/<k>.json       written only after shard k's data are stored

Modules: ``location`` (paths, URLs, hashes), ``objects`` (the bytes of a store on a folder or
an object store), ``codec`` (pure chunk and shard codec), ``layout`` (keys, metadata
documents, attributes), ``markers`` (completion), ``reader`` and ``store`` (the
:class:`CacheStore` façade), ``inventory`` (the stores under a cache root).
zarr is imported by this package only, never by ``import eventkit``.
"""
from __future__ import annotations

from eventkit.cache.layout import ATTRS_KEY, FORMAT_VERSION, MARKER_GROUP
from eventkit.cache.location import canonical_json, default_cache_root, params_hash, store_path
from eventkit.cache.store import CacheStore

__all__ = ["CacheStore", "store_path", "params_hash", "canonical_json", "default_cache_root", "FORMAT_VERSION",
           "ATTRS_KEY", "MARKER_GROUP"]
