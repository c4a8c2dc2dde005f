"""One executor-shaped runner for the shard tasks: in-process, a local cluster, a scheduler address, jobqueue.

Every executor has ``submit(fn, *args) -> future``, ``as_completed(futures)``, ``result(future)``
and ``cancel(futures)``. :func:`open_executor` picks one:

- :class:`InlineExecutor` — this process, one task after the other (``workers=1``);
- :class:`DaskExecutor` over a ``distributed.Client`` of an embedded ``LocalCluster``
  (``workers=N``), of a running scheduler (``scheduler="tcp://..."``) or of a dask-jobqueue
  cluster object (``cluster=``, e.g. ``eventkit.cluster.make_cluster("slurm", ...)``).

While it waits on a cluster or a scheduler, the Dask executor calls ``poll()`` of an
``eventkit.cluster.ClusterHealth`` at least every :data:`HEALTH_POLL_S` seconds, which raises
``ClusterLostError`` (a one-line message) when the build cannot make progress; it never blocks
on a result without a timeout (a finished result lost with its worker is recomputed by Dask,
and the wait for it keeps polling). Tasks that
fail for another reason than a bad sample (e.g. a network error) are retried :data:`RETRIES`
times; a bad sample is not retried (it fails the same way again).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from eventkit.build.params import RETRIES
from eventkit.build.result import BuildError
from eventkit.build.tasks import ShardTask, TaskResult, run_shard_task
from eventkit.errors import EventkitError, ParameterError
from eventkit.progress import Progress

__all__ = ["HEALTH_POLL_S", "InlineExecutor", "DaskExecutor", "open_executor", "run_tasks", "check_execution"]

#: seconds between two health checks of a cluster while waiting on its tasks (at most 5)
HEALTH_POLL_S = 2.0


class _InlineFuture:
    def __init__(self, fn: Callable, args: tuple):
        self.fn, self.args = fn, args
        self.key = id(self)
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        for _attempt in range(RETRIES + 1):
            try:
                self._value = self.fn(*self.args)
                self._error = None
                break
            except Exception as exc:  # noqa: BLE001 - retried, then reported by result()
                self._error = exc
                if isinstance(exc, (ParameterError, BuildError)):  # a bad parameter or sample does not heal
                    break
        self._done = True

    def result(self) -> Any:
        if not self._done:
            self.run()
        if self._error is not None:
            raise self._error
        return self._value


class InlineExecutor:
    """Runs each task in this process, in submission order, when :meth:`as_completed` reaches it."""

    def submit(self, fn: Callable, *args: Any) -> _InlineFuture:
        return _InlineFuture(fn, args)

    def as_completed(self, futures: Iterable[_InlineFuture]) -> Iterator[_InlineFuture]:
        for fut in futures:
            fut.run()
            yield fut

    def result(self, fut: _InlineFuture) -> Any:
        return fut.result()

    def cancel(self, futures: Iterable[Any]) -> None:
        pass


class DaskExecutor:
    """Tasks on a ``distributed.Client``; ``health.poll()`` at least every :data:`HEALTH_POLL_S` s while waiting."""

    def __init__(self, client, health: Any | None = None, poll_s: float = HEALTH_POLL_S):
        self.client, self.health, self.poll_s = client, health, float(poll_s)

    def submit(self, fn: Callable, *args: Any):
        return self.client.submit(fn, *args, retries=RETRIES, pure=False)

    def _poll(self, futures: Iterable[Any]) -> None:
        """Check the cluster; on ``ClusterLostError`` cancel the build's tasks and re-raise."""
        if self.health is None:
            return
        try:
            self.health.poll()
        except BaseException:
            self.cancel(futures)
            raise

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        from distributed import wait

        everything = list(futures)
        pending = set(everything)
        while pending:
            self._poll(everything)
            try:
                done, pending = wait(pending, timeout=self.poll_s, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished within poll_s: check the cluster's health again
                continue
            yield from done

    def result(self, fut: Any) -> Any:
        """The task's result. Never blocks without a timeout: a result lost with its worker after
        the task finished is recomputed by Dask, and the wait for it keeps polling the cluster."""
        while True:
            try:
                return fut.result(timeout=self.poll_s)
            except TimeoutError:
                self._poll([fut])

    def cancel(self, futures: Iterable[Any]) -> None:
        self.client.cancel(list(futures))


def _cluster_health(client, cluster=None):
    """``eventkit.cluster.ClusterHealth(client, cluster)`` with the grace period of
    ``$EVENTKIT_WORKER_GRACE_S`` (default 300 s)."""
    from eventkit.cluster import ClusterHealth, grace_from_env

    return ClusterHealth(client, cluster, grace_s=grace_from_env())


@contextlib.contextmanager
def open_executor(*, workers: int | None = None, scheduler: str | None = None,
                  cluster: Any | None = None) -> Iterator[InlineExecutor | DaskExecutor]:
    """The executor of a build (see the module docstring); clients and local clusters are closed after."""
    if scheduler is None and cluster is None and (workers is None or int(workers) <= 1):
        yield InlineExecutor()
        return
    from distributed import Client

    from eventkit.cluster import local_cluster, quiet_logs

    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_logs())  # no scheduler/nanny INFO lines on start and stop
        if cluster is not None:
            client = Client(cluster)
        elif scheduler is not None:
            try:
                client = Client(scheduler, timeout="30s")
            except OSError as exc:
                raise BuildError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        else:
            try:
                cluster = local_cluster(int(workers or 1))
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise BuildError(f"could not start a local Dask cluster of {workers} worker processes "
                                 f"({type(exc).__name__}: {exc}); rerun with --workers 1") from exc
            stack.callback(cluster.close)  # after the client (closed first), before the logs are restored
            client = Client(cluster)
        stack.enter_context(client)
        yield DaskExecutor(client, _cluster_health(client, cluster))


def _fail(task: ShardTask, exc: BaseException) -> EventkitError:
    if isinstance(exc, EventkitError):
        return exc
    detail = " ".join(str(exc).split())  # one line: e.g. distributed's KilledWorker spans several
    return BuildError(f"{task.what} failed after {RETRIES + 1} attempts: {type(exc).__name__}: {detail}")


def run_tasks(tasks: list[ShardTask], executor, progress: Progress) -> list[TaskResult]:
    """Run every task; a bad sample's error is raised once the other tasks are done (their shards are kept).

    Any other failure cancels the remaining tasks and is raised at once.
    """
    futures = {executor.submit(run_shard_task, task): task for task in tasks}
    by_key = {fut.key: task for fut, task in futures.items()}
    results, errors = [], []
    for fut in executor.as_completed(list(futures)):
        task = by_key[fut.key]
        try:
            result = executor.result(fut)
        except Exception as exc:  # noqa: BLE001 - reported with the shard named
            executor.cancel(list(futures))
            raise _fail(task, exc) from None
        if result.error is not None:
            errors.append(result.error)
            continue
        results.append(result)
        if result.built:
            progress.update(result.n_samples, events=result.events)
        else:
            progress.skip(result.n_samples)
    if errors:
        first = errors[0]
        more = f" ({len(errors) - 1} more shards failed)" if len(errors) > 1 else ""
        raise BuildError(f"{first}{more}", first.sample_id, first.path)
    return results


def check_execution(workers: int | None, scheduler: str | None, cluster: Any | None = None) -> None:
    """ParameterError for ``workers < 1``, a scheduler that is not an address, or both a scheduler and a cluster."""
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ParameterError(f"workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None and "://" not in str(scheduler):
        raise ParameterError(f"scheduler must be a Dask address such as tcp://host:8786, got {scheduler!r}")
    if scheduler is not None and cluster is not None:
        raise ParameterError("give a scheduler address or a cluster, not both")
