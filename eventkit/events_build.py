"""Building an event store (:mod:`eventkit.events_store`) from a dataset's raw files.

1. list the split's samples in the frame cache's order (``eventkit.build.store_order``),
   locate the store (``eventkit.cache.store_path(cache, name, split, "events", params)``)
   and fingerprint the raw files (relative path and size of each, sha256 of the list);
2. stage: one task per shard of ``shard_size`` samples reads its samples
   (``spec.iter_events``) and writes one part file (the concatenated columns and the
   per-sample counts, zstd) to ``<store>.staging/``, then its completion marker;
   an interrupted build resumes with the shards that have no marker;
3. finish: the parts are streamed into the Zarr arrays of a temporary group
   (``<store>.<host>.<pid>.tmp``), which is renamed into place once complete (local
   stores; object stores are written in place and marked complete last), then the
   staging folder is removed. A temporary group whose build was killed (its process is
   gone from this host) is removed by the next build of the store.

Object stores (``s3://...``) are reached with ``storage_options``, the arguments of the
URL's fsspec filesystem, in every step and every staging process
(:mod:`eventkit.events_location`).

Two processes building the same store at once both succeed: parts and markers are
written atomically with identical bytes, and the first finished group wins the rename.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eventkit.cache.location import is_url
from eventkit.errors import CacheError, ParameterError
from eventkit.events_location import (
    checked_options,
    disk_size,
    get_file,
    location,
    publish_group,
    put_file,
    remove_stale_tmp,
    tmp_suffix,
    zarr_options,
)
from eventkit.events_staging import drop_staging, read_events, read_marker, read_part, stage_shard
from eventkit.events_store import (
    ATTRS_KEY,
    CHUNK_EVENTS,
    FORMAT_VERSION,
    REPRESENTATION,
    SHARD_EVENTS,
    SMALL_CHUNK,
    EventStore,
    column_dtypes,
    events_params,
)
from eventkit.progress import ProgressMode

_stage_task = stage_shard  # module attribute: the staging step (tests replace it)

__all__ = ["build_events_store", "events_store_url", "EventsBuildResult", "raw_identity"]


@dataclass(frozen=True)
class EventsBuildResult:
    """``stores``: split -> store URL; ``samples``/``events``: totals over them; ``built_samples``:
    samples read from raw files by this call (0 when every store was already complete)."""

    dataset: str
    stores: dict[str, str]
    samples: int
    events: int
    seconds: float
    built_samples: int = 0
    store_bytes: dict[str, int] = field(default_factory=dict)


def _spec(name: str):
    from eventkit.datasets import get_dataset

    return get_dataset(name)


def events_store_url(name: str, split: str, *, cache: str | os.PathLike | None = None) -> str:
    """Location of the event store of (dataset ``name``, ``split``) under ``cache`` (nothing is read)."""
    from eventkit.build import cache_root
    from eventkit.cache import store_path

    spec = _spec(name)
    return store_path(cache_root(cache), spec.name, split, REPRESENTATION, events_params(spec, split))


def raw_identity(root: Path, samples: Sequence[Any]) -> dict[str, Any]:
    """The raw files behind ``samples``: count, total bytes and the sha256 of the sorted
    ``[relative path, size]`` list (canonical JSON)."""
    from eventkit.cache import canonical_json

    sizes: dict[str, int] = {}
    for sample in samples:
        path = Path(sample.path)
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.as_posix()
        if rel not in sizes:
            sizes[rel] = int(path.stat().st_size)
    listing = sorted([rel, size] for rel, size in sizes.items())
    return {"n_files": len(listing), "bytes": sum(sizes.values()),
            "listing_sha256": hashlib.sha256(canonical_json(listing).encode("ascii")).hexdigest()}


def _ids_sha256(samples: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for s in samples:
        raw = f"{s.sample_id}\t{int(s.label)}".encode()
        h.update(len(raw).to_bytes(4, "little") + raw)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# finishing: staged parts -> Zarr arrays
# ---------------------------------------------------------------------------------------

def _create_arrays(group: Any, kind: str, n_samples: int, n_events: int) -> dict[str, Any]:
    """The store's arrays; every chunk ends with its crc32c, so a damaged byte is an error, never data."""
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

    arrays = {}
    for name, dt in column_dtypes(kind).items():
        codec = BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle" if dt.itemsize == 1 else "shuffle")
        arrays[name] = group.create_array(name, shape=(n_events,), chunks=(CHUNK_EVENTS,), shards=(SHARD_EVENTS,),
                                          dtype=dt, compressors=[codec, Crc32cCodec()], fill_value=0)
    small = min(SMALL_CHUNK, n_samples + 1)
    small_arrays: tuple[tuple[str, int, Any, Any], ...] = (
        ("offsets", n_samples + 1, "<i8", 0), ("label", n_samples, "<i8", -1), ("sample_id", n_samples, str, ""))
    for name, shape, small_dt, fill in small_arrays:
        arrays[name] = group.create_array(name, shape=(shape,), chunks=(small,), dtype=small_dt, fill_value=fill,
                                          compressors=[ZstdCodec(level=3), Crc32cCodec()])
    return arrays


def _write_group(target: str, staging: str, markers: list[dict], samples: Sequence[Any], meta: dict,
                 options: dict[str, Any]) -> None:
    """Write the complete group at ``target``: small arrays, then the columns shard by shard, then the
    attributes with ``complete: true``. ``options``: the storage options of ``target`` and ``staging``."""
    import zarr

    counts = np.concatenate([np.asarray(m["counts"], dtype=np.int64) for m in markers]) if markers else \
        np.zeros(0, np.int64)
    offsets = np.zeros(len(samples) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    n_events = int(offsets[-1])
    group = zarr.open_group(target, mode="w", attributes={ATTRS_KEY: {**meta, "complete": False}},
                            **zarr_options(target, options))
    arrays = _create_arrays(group, meta["kind"], len(samples), n_events)
    arrays["offsets"][:] = offsets
    arrays["label"][:] = np.asarray([s.label for s in samples], dtype=np.int64)
    arrays["sample_id"][:] = np.asarray([s.sample_id for s in samples], dtype=object)
    names = list(column_dtypes(meta["kind"]))
    pending: dict[str, list[np.ndarray]] = {c: [] for c in names}
    held = pos = 0
    for k, marker in enumerate(markers):
        part = read_part(staging, k, marker, options)
        for c in names:
            pending[c].append(part[c])
        held += int(part["counts"].sum())
        while held >= SHARD_EVENTS or (k == len(markers) - 1 and held > 0):
            size = SHARD_EVENTS if held >= SHARD_EVENTS else held  # whole shard files, the tail last
            for c in names:
                data = np.concatenate(pending[c]) if len(pending[c]) > 1 else pending[c][0]
                arrays[c][pos:pos + size] = data[:size]
                pending[c] = [data[size:]] if data.shape[0] > size else []
            pos += size
            held -= size
    group.attrs.put({ATTRS_KEY: {**meta, "n_events": n_events, "complete": True}})


def _write_final(url: str, staging: str, markers: list[dict], samples: Sequence[Any], meta: dict,
                 options: dict[str, Any]) -> None:
    """Local: write a temporary group and rename it into place. Object store: write in place, unless a
    concurrent builder has completed the same store meanwhile (checked through the filesystem)."""
    if is_url(url):
        if _check_existing(url, meta, options) is None:
            _write_group(url, staging, markers, samples, meta, options)
        return
    tmp = url + tmp_suffix()
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_group(tmp, staging, markers, samples, meta, options)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish_group(tmp, url)


# ---------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------

def _default_shard_size(spec, split: str, samples: Sequence[Any]) -> int:
    """About ``SHARD_TARGET_BYTES`` of events per shard, estimated from the first sample."""
    from eventkit.build import SHARD_TARGET_BYTES

    first = read_events(spec, split, 0, samples[:1])[0]
    per_sample = max(1, first.shape[0]) * first.dtype.itemsize
    return int(max(1, min(SHARD_TARGET_BYTES // per_sample, len(samples))))


def _check_existing(url: str, meta: dict, options: dict[str, Any]) -> EventStore | None:
    """The complete store at ``url`` when it holds these samples from these raw files; a CacheError
    naming what differs when it holds others; None when there is none."""
    try:
        store = EventStore.open(url, storage_options=options)
    except CacheError:
        return None
    keys = ("params", "n_samples", "samples_sha256", "raw_files")
    diff = [k for k in keys if store.meta.get(k) != meta[k]]
    if diff:
        from eventkit.cache import canonical_json

        detail = "; ".join(f"{k}: existing {canonical_json(store.meta.get(k))} vs requested {canonical_json(meta[k])}"
                           for k in diff)
        raise CacheError(f"{url} already holds an event store of other raw data ({detail}); delete it or choose "
                         "another cache folder; it is never reused silently")
    return store


def _plan(staging: str, meta: dict, shard_size: int | None, estimate, options: dict[str, Any]) -> int:
    """The staging plan's shard size: the existing plan's (same samples) or a new plan written now."""
    import json

    from eventkit.cache import canonical_json

    raw = get_file(f"{staging}/plan.json", options)
    keys = ("params", "n_samples", "samples_sha256", "raw_files")
    if raw is not None:
        try:
            plan = json.loads(raw)
        except ValueError:
            plan = None
        if isinstance(plan, dict) and all(plan.get(k) == meta[k] for k in keys):
            if shard_size is not None and int(shard_size) != plan["shard_size"]:
                raise CacheError(f"{staging} holds a partial build with shard_size={plan['shard_size']}, not "
                                 f"{shard_size}: rerun with that shard size or delete the folder")
            return int(plan["shard_size"])
        raise CacheError(f"{staging} holds a partial build of other samples or raw files; delete it to rebuild")
    size = int(shard_size) if shard_size is not None else estimate()
    put_file(f"{staging}/plan.json", (canonical_json({**{k: meta[k] for k in keys}, "shard_size": size}) + "\n")
             .encode("ascii"), options)
    return size


def _stage_and_finish(url: str, staging: str, spec: Any, split: str, samples: Sequence[Any], meta: dict,
                      shard_size: int | None, workers: int | None, options: dict[str, Any]) -> int:
    """Stage the missing shards and write the group; returns the samples staged by this call."""
    size = _plan(staging, meta, shard_size, lambda: _default_shard_size(spec, split, samples), options)
    n_shards = -(-len(samples) // size)
    meta.update(shard_size=size, n_shards=n_shards, n_events=0)
    ranges = [(k * size, min((k + 1) * size, len(samples))) for k in range(n_shards)]
    tasks = [(staging, spec.name, split, k, samples[lo:hi]) for k, (lo, hi) in enumerate(ranges)
             if read_marker(staging, k, hi - lo, options) is None]
    n = _run(tasks, workers, options)
    markers = [read_marker(staging, k, hi - lo, options) for k, (lo, hi) in enumerate(ranges)]
    missing = [k for k, m in enumerate(markers) if m is None]
    if missing:
        raise CacheError(f"{staging}: shards {missing[:10]} are still missing after staging; rerun to resume")
    _write_final(url, staging, markers, samples, meta, options)  # type: ignore[arg-type]
    return n


def _run(tasks: list[tuple], workers: int | None, options: dict[str, Any]) -> int:
    """Run the staging tasks (in process, or on a process pool); returns the samples staged. The
    storage options go to every task (and so to every pool process) as a keyword argument."""
    if not tasks:
        return 0
    stage = functools.partial(_stage_task, storage_options=options) if options else _stage_task
    if workers is None or int(workers) <= 1:
        return sum(stage(*task)[1] for task in tasks)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(int(workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(n for _, n, _ in pool.map(stage, *zip(*tasks, strict=True)))


def build_events_store(name: str, *, root: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
                       splits: Sequence[str] | None = None, shard_size: int | None = None,
                       workers: int | None = None, progress: ProgressMode = True,
                       storage_options: Mapping[str, Any] | None = None) -> EventsBuildResult:
    """Build (or resume, or reuse) the event store of each split of an event dataset.

    ``root``: raw data folder (default ``$EVENTKIT_DATA/<name>``); ``cache``: cache root folder
    or fsspec URL (as for ``eventkit frames``; the stores sit beside its frame stores);
    ``storage_options``: arguments of that URL's fsspec filesystem (s3fs: ``endpoint_url``,
    ``key``, ``secret``...), the same as the frame cache's; ``shard_size``: samples per shard (default:
    about 16 MiB of events, from the first sample); ``workers``: staging processes. A complete
    store of the same samples and raw files is reused as is. Raises ``DatasetNotFound``,
    ``ParameterError``, ``CacheError`` (a store of other raw data at the path), ``BuildError``
    (a sample failed; its id and file are named).
    """
    from eventkit import __version__
    from eventkit.build import cache_root, store_order
    from eventkit.cache import store_path
    from eventkit.datasets import resolve_root

    t0 = time.perf_counter()
    if shard_size is not None and (isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1):
        raise ParameterError(f"shard_size must be an integer >= 1, got {shard_size!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError(f"workers must be an integer >= 1, got {workers!r}")
    spec = _spec(name)
    run_splits = list(spec.splits) if not splits else ([splits] if isinstance(splits, str) else list(splits))
    params = {split: events_params(spec, split) for split in run_splits}  # checks kind and split names
    root_path = resolve_root(spec.name, root)
    croot = cache_root(cache)
    stores: dict[str, EventStore] = {}
    built = 0
    for split in run_splits:
        samples = store_order(spec.samples(root_path, split))
        url = location(store_path(croot, spec.name, split, REPRESENTATION, params[split]))
        options = checked_options(url, storage_options)
        meta = {"format_version": FORMAT_VERSION, "dataset": spec.name, "split": split,
                "representation": REPRESENTATION, "params": params[split], "kind": spec.kind,
                "sensor_size": [int(v) for v in spec.sensor_size], "classes": list(spec.classes),
                "manifest_sha256": spec.manifest_sha256, "eventkit_version": __version__,
                "n_samples": len(samples), "samples_sha256": _ids_sha256(samples),
                "raw_files": raw_identity(root_path, samples)}
        remove_stale_tmp(url)  # a build killed while writing its group left it
        existing = _check_existing(url, meta, options)
        if existing is not None:
            stores[split] = existing
            continue
        staging = f"{url}.staging"
        try:
            n = _stage_and_finish(url, staging, spec, split, samples, meta, shard_size, workers, options)
        except (OSError, CacheError):
            # another process building the same store may have finished it and removed the staging folder
            if _check_existing(url, meta, options) is None:
                raise
            n = 0
        drop_staging(staging, options)  # also when a concurrent build re-created it after the other one finished
        built += n
        stores[split] = EventStore.open(url, storage_options=options)
        if progress:
            print(f"events store {spec.name}/{split}: {len(samples)} samples, {stores[split].n_events} events "
                  f"-> {url}", file=sys.stderr)
    return EventsBuildResult(
        dataset=spec.name, stores={s: st.url for s, st in stores.items()},
        samples=sum(st.n_samples for st in stores.values()), events=sum(st.n_events for st in stores.values()),
        seconds=time.perf_counter() - t0, built_samples=built,
        store_bytes={s: disk_size(st.url, st.storage_options) for s, st in stores.items()})

