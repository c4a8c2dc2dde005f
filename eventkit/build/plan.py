"""The public entry points :func:`build_cache` and :func:`encode_cache`: plan, run, finish."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from eventkit.build.compute import _encode_task, _frame_shape, _frames_task, _static_ids
from eventkit.build.params import _meta, _spec, cache_root, default_shard_size, encode_params, frames_params, store_order
from eventkit.build.result import BuildResult
from eventkit.build.runner import _check_workers, _execute, _Progress, _Task
from eventkit.errors import CacheError, ParameterError

def _resolve_splits(spec, splits: Sequence[str] | None) -> list[str]:
    if splits is None or len(splits) == 0:
        return list(spec.splits)
    if isinstance(splits, str):
        splits = [splits]
    out = []
    for split in splits:
        if split not in spec.splits:
            raise ParameterError(f"{spec.name} has no split {split!r}; splits: {', '.join(spec.splits)}")
        if split not in out:
            out.append(split)
    return out


def _open_or_create(url: str, meta: dict[str, Any], frame_shape: tuple[int, ...], dtype: str, n_samples: int,
                    shard_size: int | None):
    """Create the store, or re-open it for resume; an existing store's shard size is kept when none is given.

    A *complete* store with the same parameters and sample count is reused as is (read-only),
    even when another eventkit version wrote it: the version is recorded, not hashed. A partial
    store is resumed only when every attribute matches (``CacheStore.create`` checks them).
    """
    from eventkit.cache import CacheStore

    if shard_size is not None:  # a shard never holds more samples than the split (its index has one slot per sample)
        shard_size = min(int(shard_size), max(1, int(n_samples)))
    existing = None
    try:
        existing = CacheStore.open(url, require_complete=False)
    except CacheError:
        existing = None
    if existing is not None and existing.meta.get("params") == meta["params"]:
        if shard_size is None:
            shard_size = int(existing.shard_size)
        elif int(shard_size) != int(existing.shard_size):
            raise CacheError(
                f"{url} already holds this cache with shard_size={existing.shard_size}, not {shard_size}: "
                f"rerun with --shard-size {existing.shard_size}, or delete the store to rebuild it")
        if (existing.meta.get("complete") and existing.n_samples == int(n_samples)
                and tuple(existing.frame_shape) == tuple(frame_shape) and existing.dtype == np.dtype(dtype)
                and not existing.missing_shards()):
            return existing
    if shard_size is None:
        shard_size = default_shard_size(frame_shape, dtype, n_samples)
    try:
        return CacheStore.create(url, meta=meta, frame_shape=frame_shape, dtype=np.dtype(dtype),
                                 n_samples=n_samples, shard_size=int(shard_size))
    except OSError as exc:  # e.g. --cache under a file, or a read-only folder
        raise CacheError(f"{url}: cannot create the cache store ({type(exc).__name__}: {exc}); "
                         "choose another --cache") from exc


def _finish(stores: dict[str, Any], t0: float, progress: _Progress, *, name: str, T: int,
            split_by: str | None, representation: str) -> BuildResult:
    progress.close()
    samples = events = 0
    for split, store in stores.items():
        if not store.meta.get("complete"):
            missing = store.missing_shards()
            if missing:
                raise CacheError(f"{store.url}: shards {missing[:10]} are still missing after the build; "
                                 "rerun to resume")
            store.mark_complete()
        samples += int(store.n_samples)
        events += int(np.asarray(store.n_events(), dtype=np.int64).sum())
    return BuildResult(
        dataset=name, T=int(T), split_by=split_by, stores={s: st.url for s, st in stores.items()},
        samples=samples, events=events, seconds=time.perf_counter() - t0, representation=representation,
        built_samples=progress.samples, built_events=progress.events,
        store_bytes={s: int(st.disk_size()) for s, st in stores.items()})


# ---------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------

def build_cache(name: str, *, T: int, split_by: str = "count", dtype: str = "uint16", root=None, cache=None,
                workers: int | None = None, splits: Sequence[str] | None = None, merge_polarity: bool = False,
                n_channels: int | None = None, shard_size: int | None = None, scheduler: str | None = None,
                progress: bool = True) -> BuildResult:
    """Build (or resume) the ``frames`` stores of an event dataset, one per split.

    Args:
        name: dataset name (``nmnist``, ``cifar10dvs``, ``dvsgesture``, ``shd``, ``ssc``, ``ntidigits18``).
        T: time steps per sample; frames are ``[T, P, H, W]`` (vision) or ``[T, P, C']`` (audio).
        split_by: ``"count"`` (Eq. 22: equal event counts) or ``"time"`` (equal windows; audio: fixed
            ``dt_us = ceil(duration_us / T)`` bins shared by every sample).
        dtype: ``"uint16"`` or ``"uint8"`` (saturating) counts.
        root: raw data folder (default ``$EVENTKIT_DATA/<name>``); cache: cache root folder or URL.
        workers: 1/None in-process (Dask synchronous scheduler), N > 1 a local cluster of N processes.
        splits: subset of the dataset's splits (default: all). merge_polarity: sum polarities into P=1.
        n_channels: audio channel pooling (e.g. 700 -> 140). shard_size: samples per shard/task.
        scheduler: address of a running Dask scheduler (``tcp://host:8786``); overrides ``workers``.
        progress: tqdm bar on stderr.

    Returns a :class:`BuildResult`. Raises ``DatasetNotFound`` (no raw data), ``ParameterError``
    (bad option), ``CacheError`` (a store with other parameters at the path), ``BuildError``
    (a sample failed; its id and file are named).
    """
    from eventkit.cache import store_path
    from eventkit.datasets import resolve_root

    t0 = time.perf_counter()
    _check_workers(workers, scheduler)
    spec = _spec(name)
    run_splits = _resolve_splits(spec, splits)
    params_by_split = {s: frames_params(spec, s, T=T, split_by=split_by, dtype=dtype,
                                        merge_polarity=merge_polarity, n_channels=n_channels) for s in run_splits}
    root_path = resolve_root(spec.name, root)
    croot = cache_root(cache)
    stores: dict[str, Any] = {}
    tasks: list[_Task] = []
    total = done = 0
    for split in run_splits:
        params = params_by_split[split]
        samples = store_order(spec.samples(root_path, split))
        url = store_path(croot, spec.name, split, "frames", params)
        store = _open_or_create(url, _meta(spec, params), _frame_shape(params), params["dtype"], len(samples),
                                shard_size)
        stores[split] = store
        total += len(samples)
        missing = set(store.missing_shards())
        for k in range(store.n_shards):
            lo, hi = store.shard_range(k)
            if k not in missing:
                done += hi - lo
                continue
            what = f"{spec.name}/{split} shard {k} (samples {samples[lo].sample_id!r} .. {samples[hi - 1].sample_id!r})"
            tasks.append(_Task(store.url, k, hi - lo, what, _frames_task,
                               (store.url, spec.name, split, k, samples[lo:hi], params)))
    bar = _Progress(total, done, f"{spec.name} T={int(T)}", progress)
    try:
        _execute(tasks, bar, workers=workers, scheduler=scheduler)
    except BaseException:
        bar.close(failed=True)
        raise
    return _finish(stores, t0, bar, name=spec.name, T=T, split_by=split_by, representation="frames")


def encode_cache(name: str, *, T: int, encoder: str, seed: int = 0, root=None, cache=None,
                 workers: int | None = None, splits: Sequence[str] | None = None, shard_size: int | None = None,
                 scheduler: str | None = None, progress: bool = True) -> BuildResult:
    """Build (or resume) the spike stores of a static image dataset (mnist, fashionmnist, cifar10).

    Sample i of a split is ``eventkit.encode.encode(image_i / 255, T, encoder,
    generator=sample_generator(seed, i, "cpu"))`` stored as uint8 ``[T, C, H, W]``; ``direct``
    stores the uint8 intensities repeated T times (``params["value_scale"] = 1/255``).
    Same execution options and errors as :func:`build_cache`; ``BuildResult.split_by`` is None
    and ``events`` counts nonzero entries.
    """
    from eventkit.cache import store_path
    from eventkit.datasets import resolve_root

    t0 = time.perf_counter()
    _check_workers(workers, scheduler)
    spec = _spec(name)
    run_splits = _resolve_splits(spec, splits)
    for split in run_splits:  # validate every option before touching the raw data
        encode_params(spec, split, T=T, encoder=encoder, seed=seed)
    root_path = resolve_root(spec.name, root)
    croot = cache_root(cache)
    stores: dict[str, Any] = {}
    tasks: list[_Task] = []
    total = done = 0
    for split in run_splits:
        images, labels = spec.load_images(root_path, split)
        images = np.ascontiguousarray(images)
        ids = _static_ids(spec, root_path, split, images.shape[0])
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ParameterError(f"{spec.name}/{split}: load_images returned {images.dtype} {images.shape}, "
                                 f"expected uint8 [N, C, H, W]")
        params = encode_params(spec, split, T=T, encoder=encoder, seed=seed, image_shape=images.shape[1:])
        url = store_path(croot, spec.name, split, encoder, params)
        store = _open_or_create(url, _meta(spec, params), _frame_shape(params), "uint8", images.shape[0], shard_size)
        stores[split] = store
        total += images.shape[0]
        missing = set(store.missing_shards())
        for k in range(store.n_shards):
            lo, hi = store.shard_range(k)
            if k not in missing:
                done += hi - lo
                continue
            tasks.append(_Task(store.url, k, hi - lo, f"{spec.name}/{split} shard {k} (images {lo}..{hi - 1})",
                               _encode_task, (store.url, k, lo, images[lo:hi],
                                              np.asarray(labels[lo:hi], dtype=np.int64), ids[lo:hi], params)))
    bar = _Progress(total, done, f"{spec.name} {encoder} T={int(T)}", progress)
    try:
        _execute(tasks, bar, workers=workers, scheduler=scheduler)
    except BaseException:
        bar.close(failed=True)
        raise
    return _finish(stores, t0, bar, name=spec.name, T=T, split_by=None, representation=encoder)

