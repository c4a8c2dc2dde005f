"""Distributed cache builder: raw dataset -> one sharded Zarr store per split.

``build_cache`` (event datasets, representation ``"frames"``) and ``encode_cache``
(static image datasets, representation = encoder name) share one plan:

1. resolve the raw root (``eventkit.datasets.resolve_root``) and list the split's
   samples (``spec.samples(root, split)``), put for event datasets in the fixed shuffled
   :func:`store_order` so every shard mixes classes;
2. build the full parameter dict (dataset, split, representation, T, split_by, dtype,
   polarity merge, sensor size, channels, audio time base, manifest sha256 — never the
   eventkit version, which only goes to the attrs) and the store URL
   ``<cache>/<name>/<split>/<repr>-<hash12>.zarr`` (``eventkit.cache.store_path``);
3. ``CacheStore.create`` (re-opens a store with identical attrs: resume);
4. one task per *missing* shard reads its samples (``spec.iter_events``), frames them
   (``eventkit.frames.to_frames`` / ``eventkit.audio.to_audio_frames`` /
   ``eventkit.encode.encode``) and writes the shard itself (``store.write_shard``: the
   completion marker is written after the data are flushed);
5. ``mark_complete()`` once every shard has its marker.

A task's output depends only on its shard index and the parameters, so the store is
byte-identical whatever the number of workers, the completion order, or how often
the build was interrupted and resumed.

Execution (Dask): ``workers=1`` runs the tasks in-process on Dask's synchronous
scheduler; ``workers=N>1`` starts an embedded ``distributed.LocalCluster`` of N
single-threaded processes; ``scheduler="tcp://host:port"`` submits to a running
scheduler (e.g. the one of ``eventkit.cluster.make_cluster("slurm", ...)``). Failing
tasks are retried (:data:`RETRIES`); a persistent failure raises :class:`BuildError`
naming the sample id and raw file.

Default shard size: ``max(1, 16 MiB // bytes_per_sample)`` samples (capped at the
number of samples), so a shard holds about 16 MiB of uncompressed frames (between 8
and 64 MiB whenever one sample is below 8 MiB; a larger sample is a shard of its own).
"""
from __future__ import annotations

from eventkit.build.params import (
    RETRIES, SHARD_TARGET_BYTES, cache_root, default_shard_size, encode_params, encode_store_url, frames_params,
    frames_store_url, store_order,
)
from eventkit.build.plan import build_cache, encode_cache
from eventkit.build.result import BuildError, BuildResult, VerifyReport
from eventkit.build.verify import verify_store

__all__ = [
    "RETRIES", "SHARD_TARGET_BYTES", "BuildError", "BuildResult", "VerifyReport",
    "build_cache", "encode_cache", "verify_store", "default_shard_size", "frames_params",
    "encode_params", "frames_store_url", "encode_store_url", "cache_root", "store_order",
]
