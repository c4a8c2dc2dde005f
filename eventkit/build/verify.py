""":func:`verify_store`: check a store's bytes, its files and its raw data, with the build's own shard compute."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from eventkit.build.compute import (
    compute_encode_shard,
    compute_frames_shard,
    images_identity,
    sources_identity,
    static_ids,
)
from eventkit.build.params import EncodeParams, _spec, params_from_dict, store_order
from eventkit.build.result import StoreVerifyReport
from eventkit.errors import CacheError, DatasetNotFound, ParameterError

__all__ = ["verify_store"]


def _draw(complete: list[int], n_shards: int | None, seed: int, all_shards: bool) -> list[int]:
    if all_shards or n_shards is None or int(n_shards) >= len(complete):
        return complete
    rng = np.random.default_rng(seed)
    return sorted(int(k) for k in rng.choice(np.asarray(complete), size=int(n_shards), replace=False))


def verify_store(url: str, *, root=None, n_shards: int | None = 3, seed: int = 0, all_shards: bool = False,
                 storage_options: Mapping[str, Any] | None = None) -> StoreVerifyReport:
    """Check a store against its markers, its layout and its raw data.

    Every shard is read back (every chunk's crc32c) and compared with the sha256 of its
    completion marker; every file under the store must belong to it (``stray_files``); the raw
    files must be those the store was built from (``stale``; skipped when the raw data are
    absent and no shard is to be recomputed); then ``n_shards`` shards drawn
    with ``numpy.random.default_rng(seed)`` (every shard when ``all_shards`` or ``n_shards is
    None``) are recomputed from the raw files with the build's own per-shard compute and
    compared exactly (frames, labels, n_events, sample ids). Raises ``CacheError`` when ``url``
    is not an eventkit store, ``DatasetNotFound`` when the raw data are absent.
    """
    from eventkit.cache import CacheStore
    from eventkit.datasets import resolve_root

    if n_shards is not None and (isinstance(n_shards, bool) or int(n_shards) < 0):
        raise ParameterError(f"n_shards (--shards) must be an integer >= 0, got {n_shards!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ParameterError(f"seed (--seed) of the shard draw must be an integer >= 0, got {seed!r}")
    store = CacheStore.open(url, require_complete=False, storage_options=storage_options)
    meta = store.meta
    params = params_from_dict(meta["params"])
    spec = _spec(meta["dataset"])
    report = StoreVerifyReport(url=store.url, n_shards=int(store.n_shards), checked_shards=[],
                               marked_complete=bool(meta.get("complete")), stray_files=store.stray_files(),
                               skipped_samples=store.skipped_samples())
    completion = store.completion()
    complete = []
    for k in range(store.n_shards):
        if k not in completion:
            report.incomplete_shards.append(k)
            continue
        problem = store.shard_problem(k, completion[k])
        if problem is not None:
            report.corrupt_shards.append((k, problem))
        complete.append(k)
    chosen = _draw(complete, n_shards, seed, all_shards)
    try:
        root_path = resolve_root(spec.name, root)
    except DatasetNotFound:
        if chosen:
            raise
        return report  # nothing to recompute and no raw data to compare the store's record with
    if isinstance(params, EncodeParams):
        images, all_labels = spec.load_images(root_path, params.split)
        all_labels = np.asarray(all_labels, dtype=np.int64)
        found, identity = images.shape[0], images_identity(np.ascontiguousarray(images), all_labels)
        all_ids = static_ids(spec, root_path, params.split, images.shape[0])
    else:
        samples = store_order(spec.samples(root_path, params.split))
        found, identity = len(samples), sources_identity(samples)
    if found != store.n_samples:
        raise CacheError(f"{url}: the store holds {store.n_samples} samples but {spec.name}/{params.split} under "
                         f"{root_path} has {found}: it was built from other raw data")
    if meta.get("sources") is not None and meta["sources"].get("sha256") != identity["sha256"]:
        report.stale = ("the raw files changed since the store was built (sample ids, labels, file sizes or "
                        "modification times differ from those recorded)")
    skipped = {int(s["index"]) for s in completion_skipped(completion)}
    for k in chosen:
        lo, hi = store.shard_range(k)
        if isinstance(params, EncodeParams):
            data = compute_encode_shard(params, lo, images[lo:hi], all_labels[lo:hi], all_ids[lo:hi])
        else:
            data = compute_frames_shard(params, k, samples[lo:hi], skip={i - lo for i in skipped if lo <= i < hi})
        report.checked_shards.append(k)
        try:
            got_frames = store.read_frames(k)
            got_labels, got_events, got_ids = store.shard_columns(k)
        except CacheError:  # a damaged shard: every sample mismatches
            report.mismatches.extend((k, i, data.sample_ids[i - lo]) for i in range(lo, hi))
            continue
        for j, i in enumerate(range(lo, hi)):
            same = (got_frames.dtype == data.frames.dtype and np.array_equal(got_frames[j], data.frames[j])
                    and int(got_labels[j]) == int(data.labels[j]) and int(got_events[j]) == int(data.n_events[j])
                    and got_ids[j] == data.sample_ids[j])
            if not same:
                report.mismatches.append((k, i, data.sample_ids[j]))
    return report


def completion_skipped(completion: dict[int, dict]) -> list[dict]:
    """The samples the markers list as left out (``--skip-bad``)."""
    return [s for k in sorted(completion) for s in completion[k].get("skipped", [])]
