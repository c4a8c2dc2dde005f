"""One shard task: skip it when another builder marked it, else compute and write it (isolated).

A task carries everything it needs (the store's location and metadata, the parameters, its
samples or images), so it runs the same way in this process, in a local cluster's worker or
on a SLURM node, and writes its shard itself. A sample that fails (an exception, or a crash or
hang of the isolated child) ends the task with a :class:`BuildError` naming it — or, with
``skip_bad``, is left out and recorded in the shard's marker.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np

from eventkit.build.compute import compute_encode_shard, compute_frames_shard, describe_sample, pin_threads
from eventkit.build.isolation import TaskDied, run_isolated
from eventkit.build.params import EncodeParams, FrameParams
from eventkit.build.result import BuildError
from eventkit.cache.markers import marker_is_valid, parse_marker

__all__ = ["StoreRef", "ShardTask", "TaskResult", "run_shard_task"]


@dataclass(frozen=True)
class StoreRef:
    """A store to write into: location, storage options and the attributes already read (no request to open)."""

    url: str
    meta: dict
    storage_options: dict = field(default_factory=dict)

    def open(self):
        from eventkit.cache import CacheStore

        return CacheStore(self.url, self.meta, writable=True, storage_options=self.storage_options)


@dataclass
class ShardTask:
    """Shard ``k`` of a store: ``samples`` (event datasets) or ``images``/``labels``/``ids`` (static)."""

    store: StoreRef
    k: int
    start: int
    n_samples: int
    what: str
    params: FrameParams | EncodeParams
    samples: list | None = None
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    ids: list[str] | None = None
    skip_bad: bool = False
    time_limit: float | None = None


@dataclass(frozen=True)
class TaskResult:
    """``built``: this task wrote the shard (False: another builder had marked it); ``events``: its event
    count; ``skipped``: samples left out (absolute indices); ``error``: a sample that failed; ``marker``:
    the shard's marker as written or found."""

    url: str
    k: int
    n_samples: int
    events: int = 0
    built: bool = False
    skipped: list[dict] = field(default_factory=list)
    error: BuildError | None = None
    marker: dict | None = None


def _compute_and_write(task: ShardTask, skip: Collection[int], *, on_sample: Callable[[int], None]) -> TaskResult:
    """Skip the shard when a valid marker is there (another builder), else compute and write it.

    Runs where the shard is computed (the sandbox when isolated), so only that process opens a
    connection to an object store.
    """
    if task.time_limit is not None:
        pin_threads()  # an isolated child: single-threaded kernels, whatever the parent uses
    store = task.store.open()
    marker = store.read_marker(task.k)
    if marker_is_valid(marker, task.k, task.n_samples):  # marked meanwhile by another builder: nothing to do
        return TaskResult(task.store.url, task.k, task.n_samples, int(marker["n_events"]), False,
                          list(marker.get("skipped", [])), marker=marker)
    if isinstance(task.params, FrameParams):
        assert task.samples is not None  # a frames task carries its samples
        data = compute_frames_shard(task.params, task.k, task.samples, skip_bad=task.skip_bad, skip=skip,
                                    on_sample=on_sample)
    else:
        assert task.images is not None and task.labels is not None and task.ids is not None  # an encode task
        data = compute_encode_shard(task.params, task.start, task.images, task.labels, task.ids)
    skipped = [dict(s, index=task.start + s["index"]) for s in data.skipped]
    store.write_shard(task.k, data.frames, data.labels, data.n_events, data.sample_ids, skipped=skipped)
    marker = parse_marker(store.last_marker)
    return TaskResult(task.store.url, task.k, task.n_samples, int(data.n_events.sum()), True, skipped, marker=marker)


def _in_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def run_shard_task(task: ShardTask) -> TaskResult:
    """Run one shard task (see the module docstring). Other errors (I/O) propagate to be retried."""
    if _in_dask_worker():
        pin_threads()
    skip: set[int] = set()
    while True:
        try:
            if task.time_limit is None:
                return _compute_and_write(task, skip, on_sample=lambda j: None)
            return run_isolated(_compute_and_write, (task, frozenset(skip)), time_limit=task.time_limit)
        except TaskDied as died:
            if died.sample is None or task.samples is None:
                return TaskResult(task.store.url, task.k, task.n_samples,
                                  error=BuildError(f"{task.what}: the task {died.reason}"))
            sample = task.samples[died.sample]
            if not task.skip_bad:
                return TaskResult(task.store.url, task.k, task.n_samples, error=BuildError(
                    f"{describe_sample(task.params, task.k, sample)}: {died.reason}; the other shards are kept "
                    "(rerun to resume, or pass --skip-bad to leave this sample out)", sample.sample_id,
                    str(sample.path)))
            skip.add(died.sample)
        except BuildError as exc:
            if exc.sample_id is None:
                raise
            return TaskResult(task.store.url, task.k, task.n_samples, error=exc)

