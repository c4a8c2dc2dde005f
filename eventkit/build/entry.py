"""The public entry points :func:`build_cache` (event datasets) and :func:`encode_cache` (static images).

Both validate every option first (typed parameters), then plan → run → finish
(``eventkit.build.plan``).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eventkit.build.compute import images_identity, sources_identity, static_ids
from eventkit.build.isolation import DEFAULT_TASK_TIMEOUT
from eventkit.build.params import EncodeParams, FrameParams, _spec, cache_root, store_order
from eventkit.build.plan import BuildPlan, finish_plan, plan_store, run_plan, store_meta
from eventkit.build.result import BuildResult
from eventkit.build.runner import check_execution
from eventkit.build.tasks import ShardTask, StoreRef
from eventkit.cache.location import check_storage_options
from eventkit.errors import ParameterError
from eventkit.progress import Progress, ProgressMode

__all__ = ["build_cache", "encode_cache"]


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


def _check_time_limit(task_timeout: float | None) -> float | None:
    if task_timeout is None:
        return None
    try:
        value = float(task_timeout)
    except (TypeError, ValueError):
        raise ParameterError(f"task_timeout (--task-timeout) must be a number of seconds, "
                             f"got {task_timeout!r}") from None
    if not value > 0 or value == float("inf"):
        raise ParameterError(f"task_timeout (--task-timeout) must be > 0 seconds (None: no limit), "
                             f"got {task_timeout!r}")
    return value


def _check_options(name: str, splits, workers, scheduler, cluster, storage_options, task_timeout):
    """The options every entry point shares, checked: ``(spec, splits, storage options, time limit)``."""
    check_execution(workers, scheduler, cluster)
    options = check_storage_options(storage_options)
    time_limit = _check_time_limit(task_timeout)
    spec = _spec(name)
    return spec, _resolve_splits(spec, splits), options, time_limit


def _execute(plan: BuildPlan, t0: float, progress: ProgressMode, *, workers, scheduler, cluster) -> BuildResult:
    total = sum(s.store.n_samples for s in plan.splits)
    bar = Progress(total, plan.label, progress=progress, unit="samples", initial=sum(s.done for s in plan.splits))
    try:
        results = run_plan(plan, bar, workers=workers, scheduler=scheduler, cluster=cluster)
    except BaseException:
        bar.close(failed=True)
        raise
    return finish_plan(plan, t0, bar, results)


def build_cache(name: str, *, T: int, split_by: str = "count", dtype: str = "uint16", root=None, cache=None,
                workers: int | None = None, splits: Sequence[str] | None = None, merge_polarity: bool = False,
                n_channels: int | None = None, shard_size: int | None = None, scheduler: str | None = None,
                progress: ProgressMode = True, storage_options: Mapping[str, Any] | None = None, cluster: Any = None,
                task_timeout: float | None = DEFAULT_TASK_TIMEOUT, skip_bad: bool = False) -> BuildResult:
    """Build (or resume) the ``frames`` stores of an event dataset, one per split.

    Args:
        name: dataset name (``nmnist``, ``cifar10dvs``, ``dvsgesture``, ``shd``, ``ssc``, ``ntidigits18``).
        T: time steps per sample; frames are ``[T, P, H, W]`` (vision) or ``[T, P, C']`` (audio).
        split_by: ``"count"`` (Eq. 22: equal event counts) or ``"time"`` (equal windows; audio: fixed
            ``dt_us = ceil(duration_us / T)`` bins shared by every sample).
        dtype: ``"uint16"`` or ``"uint8"`` (saturating) counts.
        root: raw data folder (default ``$EVENTKIT_DATA/<name>``); cache: cache root folder or URL.
        workers: 1/None in-process, N > 1 a local Dask cluster of N processes.
        splits: subset of the dataset's splits (default: all). merge_polarity: sum polarities into P=1.
        n_channels: audio channel pooling (e.g. 700 -> 140). shard_size: samples per shard/task.
        scheduler: address of a running Dask scheduler (``tcp://host:8786``); overrides ``workers``.
        progress: tqdm bar on stderr.
        storage_options: arguments of the cache URL's fsspec filesystem (s3fs: ``endpoint_url``, ``key``...).
        cluster: a dask-jobqueue cluster object (``eventkit.cluster.make_cluster``) to run the tasks on.
        task_timeout: seconds one shard task may take (each task runs in a child process that is
            killed past it); ``None``: no limit, tasks run in the calling process.
        skip_bad: leave out samples that fail (zero frames, label -1, listed in the store's
            ``skipped_samples``) instead of stopping the build.

    Returns a :class:`BuildResult`. Raises ``DatasetNotFound`` (no raw data), ``ParameterError``
    (bad option), ``CacheError`` (a store with other parameters or stale raw data at the path),
    ``BuildError`` (a sample failed, crashed or hung; its id and file are named — the shards of
    the other tasks are written and kept for the resume).
    """
    from eventkit.datasets import resolve_root

    t0 = time.perf_counter()
    spec, run_splits, options, time_limit = _check_options(name, splits, workers, scheduler, cluster, storage_options,
                                                           task_timeout)
    params_by_split = {s: FrameParams.for_split(spec, s, T=T, split_by=split_by, dtype=dtype,
                                                merge_polarity=merge_polarity, n_channels=n_channels)
                       for s in run_splits}
    root_path = resolve_root(spec.name, root)
    croot = cache_root(cache)
    plan = BuildPlan(spec.name, int(T), split_by, "frames", f"{spec.name} T={int(T)}", skip_bad=bool(skip_bad))
    for split in run_splits:
        params = params_by_split[split]
        samples = store_order(spec.samples(root_path, split))

        def make_task(ref: StoreRef, k: int, lo: int, hi: int, params=params, samples=samples) -> ShardTask:
            what = (f"{spec.name}/{params.split} shard {k} (samples {samples[lo].sample_id!r} .. "
                    f"{samples[hi - 1].sample_id!r})")
            return ShardTask(ref, k, lo, hi - lo, what, params, samples=samples[lo:hi], skip_bad=bool(skip_bad),
                             time_limit=time_limit)

        meta = store_meta(spec, params, sources_identity(samples))
        plan.splits.append(plan_store(split, params.store_url(croot), meta, params, len(samples), shard_size, make_task,
                                      storage_options=options, skip_bad=bool(skip_bad)))
    return _execute(plan, t0, progress, workers=workers, scheduler=scheduler, cluster=cluster)


def encode_cache(name: str, *, T: int, encoder: str, seed: int = 0, root=None, cache=None,
                 workers: int | None = None, splits: Sequence[str] | None = None, shard_size: int | None = None,
                 scheduler: str | None = None, progress: ProgressMode = True,
                 storage_options: Mapping[str, Any] | None = None, cluster: Any = None,
                 task_timeout: float | None = DEFAULT_TASK_TIMEOUT, skip_bad: bool = False) -> BuildResult:
    """Build (or resume) the spike stores of a static image dataset (mnist, fashionmnist, cifar10).

    Sample i of a split is ``eventkit.encode.encode(image_i / 255, T, encoder,
    generator=sample_generator(seed, i, "cpu"))`` stored as uint8 ``[T, C, H, W]``; ``direct``
    stores the uint8 intensities repeated T times (``params["value_scale"] = 1/255``).
    Same execution options and errors as :func:`build_cache`; ``BuildResult.split_by`` is None
    and ``events`` counts nonzero entries.
    """
    from eventkit.datasets import resolve_root

    t0 = time.perf_counter()
    spec, run_splits, options, time_limit = _check_options(name, splits, workers, scheduler, cluster, storage_options,
                                                           task_timeout)
    for split in run_splits:  # validate every option before touching the raw data
        EncodeParams.for_split(spec, split, T=T, encoder=encoder, seed=seed)
    root_path = resolve_root(spec.name, root)
    croot = cache_root(cache)
    plan = BuildPlan(spec.name, int(T), None, encoder, f"{spec.name} {encoder} T={int(T)}", skip_bad=bool(skip_bad))
    for split in run_splits:
        images, labels = spec.load_images(root_path, split)
        images = np.ascontiguousarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ParameterError(f"{spec.name}/{split}: load_images returned {images.dtype} {images.shape}, "
                                 f"expected uint8 [N, C, H, W]")
        labels = np.asarray(labels, dtype=np.int64)
        ids = static_ids(spec, root_path, split, images.shape[0])
        params = EncodeParams.for_split(spec, split, T=T, encoder=encoder, seed=seed, image_shape=images.shape[1:])

        def make_task(ref: StoreRef, k: int, lo: int, hi: int, params=params, images=images, labels=labels,
                      ids=ids) -> ShardTask:
            return ShardTask(ref, k, lo, hi - lo, f"{spec.name}/{params.split} shard {k} (images {lo}..{hi - 1})",
                             params, images=images[lo:hi], labels=labels[lo:hi], ids=ids[lo:hi],
                             skip_bad=bool(skip_bad), time_limit=time_limit)

        meta = store_meta(spec, params, images_identity(images, labels))
        plan.splits.append(plan_store(split, params.store_url(croot), meta, params, images.shape[0], shard_size,
                                      make_task, storage_options=options, skip_bad=bool(skip_bad)))
    return _execute(plan, t0, progress, workers=workers, scheduler=scheduler, cluster=cluster)
