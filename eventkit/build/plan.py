"""The build skeleton shared by ``build_cache`` and ``encode_cache``: plan → run → finish.

1. **plan** (:func:`plan_store` per split): open the store (reused when complete, resumed
   when its attributes match, refused when it holds other parameters or stale raw data;
   stale temporary files of killed writers are removed), read its completion state once,
   and make one :class:`ShardTask` per shard without a marker;
2. **run** (:func:`run_plan`): the tasks on the executor of ``workers``/``scheduler``/``cluster``;
3. **finish** (:func:`finish_plan`): read the completion state again (fresh: other builders
   may have written shards meanwhile), mark every store complete, return a :class:`BuildResult`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventkit.build.params import EncodeParams, FrameParams, default_shard_size
from eventkit.build.result import BuildResult
from eventkit.build.runner import open_executor, run_tasks
from eventkit.build.tasks import ShardTask, StoreRef, TaskResult
from eventkit.cache import CacheStore
from eventkit.errors import CacheError
from eventkit.progress import Progress

__all__ = ["SplitPlan", "BuildPlan", "plan_store", "run_plan", "finish_plan", "open_or_create", "store_meta"]


@dataclass
class SplitPlan:
    """One split: its store, the tasks of its missing shards and the samples already built."""

    split: str
    store: CacheStore
    tasks: list[ShardTask] = field(default_factory=list)
    done: int = 0


@dataclass
class BuildPlan:
    """Every split of one ``build_cache`` / ``encode_cache`` call."""

    dataset: str
    T: int
    split_by: str | None
    representation: str
    label: str
    skip_bad: bool = False
    splits: list[SplitPlan] = field(default_factory=list)

    @property
    def tasks(self) -> list[ShardTask]:
        return [t for s in self.splits for t in s.tasks]


def _skipped_message(url: str, skipped: list[dict]) -> str:
    ids = ", ".join(repr(s["sample_id"]) for s in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
    return (f"{url} leaves out {len(skipped)} bad samples ({ids}; built with --skip-bad): rerun with --skip-bad "
            f"to use it, or remove it (`eventkit cache rm {url}`) to rebuild it without skipping")


def open_or_create(url: str, meta: dict[str, Any], params: FrameParams | EncodeParams, n_samples: int,
                   shard_size: int | None, *, storage_options: dict | None = None,
                   skip_bad: bool = False) -> CacheStore:
    """The store to build into: a complete store with these parameters and raw data is reused as is
    (even when another eventkit version wrote it: the version is recorded, not hashed); a partial
    one is resumed when every attribute matches (``CacheStore.create`` checks them). A store whose
    raw files changed since it was built is stale: a CacheError says to remove it."""
    if shard_size is not None:  # a shard never holds more samples than the split (its index has one slot each)
        shard_size = min(int(shard_size), max(1, int(n_samples)))
    try:
        existing = CacheStore.open(url, require_complete=False, storage_options=storage_options)
    except CacheError:
        existing = None  # nothing there (created below), or refused again by create with its message
    if existing is not None and existing.meta.get("params") == meta["params"]:
        if shard_size is None:
            shard_size = int(existing.shard_size)
        elif int(shard_size) != int(existing.shard_size):
            raise CacheError(
                f"{url} already holds this cache with shard_size={existing.shard_size}, not {shard_size}: "
                f"rerun with --shard-size {existing.shard_size}, or delete the store to rebuild it")
        if existing.n_samples == int(n_samples) and existing.meta.get("sources") != meta.get("sources"):
            raise CacheError(
                f"{url} is stale: the raw files of {meta['dataset']}/{meta['split']} changed since it was built "
                "(sample ids, labels, file sizes or modification times differ from those recorded); remove it "
                f"(`eventkit cache rm {url}`) and rerun to rebuild it")
        if (existing.meta.get("complete") and existing.n_samples == int(n_samples)
                and existing.frame_shape == tuple(params.frame_shape) and existing.dtype == np.dtype(params.dtype)):
            if existing.skipped_samples() and not skip_bad:
                raise CacheError(_skipped_message(url, existing.skipped_samples()))
            return existing
    if shard_size is None:
        shard_size = default_shard_size(params.frame_shape, params.dtype, n_samples)
    store = CacheStore.create(url, meta=meta, frame_shape=params.frame_shape, dtype=np.dtype(params.dtype),
                              n_samples=n_samples, shard_size=int(shard_size), storage_options=storage_options)
    store.remove_stale_temp_files()
    return store


def plan_store(split: str, url: str, meta: dict[str, Any], params: FrameParams | EncodeParams, n_samples: int,
               shard_size: int | None, make_task: Callable[[StoreRef, int, int, int], ShardTask], *,
               storage_options: dict | None = None, skip_bad: bool = False) -> SplitPlan:
    """Open (or create) one split's store and make a task per shard without a marker."""
    store = open_or_create(url, meta, params, n_samples, shard_size, storage_options=storage_options,
                           skip_bad=skip_bad)
    plan = SplitPlan(split, store)
    if store.meta.get("complete"):
        plan.done = store.n_samples
        return plan
    done = store.completion()
    ref = StoreRef(store.url, store.meta, dict(store.storage_options))
    for k in range(store.n_shards):
        lo, hi = store.shard_range(k)
        if k in done:
            plan.done += hi - lo
        else:
            plan.tasks.append(make_task(ref, k, lo, hi))
    return plan


def run_plan(plan: BuildPlan, progress: Progress, *, workers: int | None, scheduler: str | None,
             cluster: Any | None) -> list[TaskResult]:
    """Run the plan's tasks (nothing to start when every store is complete)."""
    if not plan.tasks:
        return []
    with open_executor(workers=workers, scheduler=scheduler, cluster=cluster) as executor:
        return run_tasks(plan.tasks, executor, progress)


def finish_plan(plan: BuildPlan, t0: float, progress: Progress, results: Sequence[TaskResult] = ()) -> BuildResult:
    """Mark every store complete (after a fresh listing of its markers) and sum up the build.

    The markers of ``results`` (this build's tasks) are not read back; the others' are.
    """
    progress.close()
    samples = events = 0
    skipped: dict[str, list[dict]] = {}
    for split in plan.splits:
        store = split.store
        if not store.meta.get("complete"):
            known = {r.k: r.marker for r in results if r.url == store.url and r.marker is not None}
            completion = store.completion(known)
            missing = [k for k in range(store.n_shards) if k not in completion]
            if missing:
                why = ("; a memory:// store exists in one process only, and each shard is written in a sandbox "
                       "process: build it with task_timeout=None, or use a folder or an object store"
                       if store.url.startswith("memory://") else "; rerun to resume")
                raise CacheError(f"{store.url}: shards {missing[:10]} are still missing after the build{why}")
            left_out = [s for k in sorted(completion) for s in completion[k].get("skipped", [])]
            if left_out and not plan.skip_bad:
                raise CacheError(_skipped_message(store.url, left_out))
            store.mark_complete(completion)
        samples += store.n_samples
        events += int(store.meta.get("n_events_total", 0))
        if store.skipped_samples():
            skipped[split.split] = store.skipped_samples()
    return BuildResult(
        dataset=plan.dataset, T=int(plan.T), split_by=plan.split_by, stores={s.split: s.store.url for s in plan.splits},
        samples=samples, events=events, seconds=time.perf_counter() - t0, representation=plan.representation,
        built_samples=progress.done, built_events=int(progress.counts.get("events", 0)),
        store_bytes={s.split: int(s.store.disk_size()) for s in plan.splits}, skipped=skipped)


def store_meta(spec, params: FrameParams | EncodeParams, sources: dict[str, Any]) -> dict[str, Any]:
    """The metadata a new store records (besides what :class:`CacheStore` derives)."""
    from eventkit import __version__
    from eventkit.cache import params_hash

    d = params.to_dict()
    return {"dataset": spec.name, "split": params.split, "representation": params.representation, "params": d,
            "params_hash": params_hash(d), "eventkit_version": __version__, "manifest_sha256": spec.manifest_sha256,
            "classes": list(spec.classes), "sources": sources}

