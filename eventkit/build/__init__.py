"""Distributed cache builder: raw dataset -> one sharded Zarr store per split.

``build_cache`` (event datasets, representation ``"frames"``) and ``encode_cache`` (static
image datasets, representation = encoder name) share one skeleton, plan → run → finish:

1. **plan**: typed, validated parameters (:class:`FrameParams`, :class:`EncodeParams`) give
   the parameter dict hashed into the store path, the frame shape and the location
   ``<cache>/<name>/<split>/<repr>-<hash12>.zarr``; the split's samples are put in the fixed
   shuffled :func:`store_order`; the store is created, resumed or reused; one task per shard
   without a completion marker;
2. **run**: each task skips its shard when another builder marked it meanwhile, else reads
   its samples, frames or encodes them (the per-shard compute that :func:`verify_store` uses
   too) in a child process under a time limit, and writes the shard itself (marker last);
3. **finish**: the completion state is read again and every store is marked complete.

A task's output depends only on its shard index and the parameters, so a store is
byte-identical whatever the number of workers, the completion order, how often the build
was interrupted, and how many builders (processes, DDP ranks, machines) built it at once.

Modules: ``params`` (typed parameters, store locations), ``compute`` (per-shard compute),
``tasks`` (one shard task), ``isolation`` (child processes with a time limit), ``runner``
(in-process, local cluster, scheduler address, jobqueue; cluster health; progress on stderr by
``eventkit.progress``),
``plan`` (the skeleton and the store policy), ``entry`` (the public entry points),
``verify``, ``result``.
"""
from __future__ import annotations

from eventkit.build.entry import build_cache, encode_cache
from eventkit.build.isolation import DEFAULT_TASK_TIMEOUT
from eventkit.build.params import (
    RETRIES,
    SAMPLE_ORDER,
    SHARD_TARGET_BYTES,
    EncodeParams,
    FrameParams,
    cache_root,
    default_shard_size,
    encode_params,
    encode_store_url,
    frames_params,
    frames_store_url,
    store_order,
)
from eventkit.build.result import BuildError, BuildResult, StoreVerifyReport, VerifyReport
from eventkit.build.verify import verify_store

__all__ = [
    "RETRIES", "SAMPLE_ORDER", "SHARD_TARGET_BYTES", "DEFAULT_TASK_TIMEOUT", "BuildError", "BuildResult",
    "StoreVerifyReport", "VerifyReport", "FrameParams", "EncodeParams", "build_cache", "encode_cache", "verify_store",
    "default_shard_size", "frames_params", "encode_params", "frames_store_url", "encode_store_url", "cache_root",
    "store_order",
]
