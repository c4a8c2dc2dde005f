"""Health of a running build: replace ended batch jobs, or stop with one line when stuck."""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from eventkit.cluster.jobqueue import _CLUSTERS, ClusterLostError, _rejected, _submit_command, _submit_jobs
from eventkit.cluster.queue import QueueState, queue_state
from eventkit.errors import ParameterError

__all__ = ["DEFAULT_GRACE_S", "JOB_LOST_S", "GRACE_ENV", "ClusterHealth", "grace_from_env"]

#: seconds a build waits without any worker (and no batch job waiting in the queue) before it stops
DEFAULT_GRACE_S = 300.0
#: seconds after which a batch job none of whose workers is connected any more counts as ended
JOB_LOST_S = 10.0
#: environment variable overriding :data:`DEFAULT_GRACE_S` (seconds)
GRACE_ENV = "EVENTKIT_WORKER_GRACE_S"


def grace_from_env() -> float:
    """Seconds a build waits with no worker: ``$EVENTKIT_WORKER_GRACE_S``, else :data:`DEFAULT_GRACE_S`."""
    text = os.environ.get(GRACE_ENV, "").strip()
    if not text:
        return DEFAULT_GRACE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ParameterError(f"{GRACE_ENV} must be a number of seconds > 0, got {text!r}")
    return value


def _kind_of(cluster) -> str | None:
    return {"sbatch": "slurm", "qsub": "pbs"}.get(_submit_command(cluster))


class ClusterHealth:
    """Watches the workers of a build; ``poll()`` heals or raises :class:`ClusterLostError`.

    ``client``: the build's ``distributed.Client``. ``cluster``: its dask-jobqueue cluster
    (default: the one :func:`make_cluster` made for the client's scheduler, if any).
    ``grace_s``: seconds without any connected worker, while no batch job waits in the
    queue, after which the build stops.

    With a jobqueue cluster each poll also looks at its batch jobs. A job whose workers all
    left (``scancel``, walltime) and did not come back within :data:`JOB_LOST_S` seconds, or
    that the queue lists as ended, is replaced by a new submission (at most
    ``2 * jobs + 2`` replacements per build). The build stops with a one-line error when no
    worker is connected and: a job ended before any of its workers connected (its log and
    what a compute node needs are named), a job waits for a reason that never clears
    (e.g. ``PartitionTimeLimit``), the batch system rejected a replacement, or the
    replacements are used up. Calls closer than one second apart return at once.
    """

    #: minimum seconds between two checks (poll() may be called more often)
    MIN_INTERVAL_S = 1.0
    #: seconds between two queue look-ups (squeue/qstat) of one job
    QUEUE_EVERY_S = 5.0

    def __init__(self, client, cluster=None, *, grace_s: float = DEFAULT_GRACE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not float(grace_s) > 0:
            raise ParameterError(f"grace_s must be > 0 seconds, got {grace_s!r}")
        self.client = client
        self.address = str(getattr(getattr(client, "scheduler", None), "address", "") or "")
        self.cluster = cluster if cluster is not None else _CLUSTERS.get(self.address)
        self.kind = _kind_of(self.cluster) if self.cluster is not None and hasattr(self.cluster, "job_cls") else None
        self.grace_s = float(grace_s)
        self.clock = clock
        self.last_worker = clock()            # last time a worker was connected (or a job was replaced)
        self.replaced = 0
        self.max_replacements = 2 * len(getattr(self.cluster, "worker_spec", ())) + 2
        self._connected_at: dict[str, float] = {}   # job name -> last time one of its workers was connected
        self._job_ids: dict[str, str] = {}
        self._queue: dict[str, tuple[float, QueueState | None]] = {}
        self._next = 0.0

    # -- observations -----------------------------------------------------------------
    def worker_names(self) -> set[str]:
        """Names of the workers connected to the scheduler now (empty when it cannot be reached)."""
        try:
            info = self.client.scheduler_info()
        except Exception:  # noqa: BLE001 - an unreachable scheduler has no worker
            return set()
        return {str(w.get("name")) for w in (info or {}).get("workers", {}).values()}

    def _queue_state(self, job_id: str, now: float) -> QueueState | None:
        last = self._queue.get(job_id)
        if last is None or now - last[0] >= self.QUEUE_EVERY_S:
            last = (now, queue_state(self.kind, job_id) if self.kind else None)
            self._queue[job_id] = last
        return last[1]

    # -- the check ----------------------------------------------------------------------
    def poll(self) -> None:
        """Check the workers (and batch jobs); replace ended jobs; raise ClusterLostError when stuck."""
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.MIN_INTERVAL_S
        names = self.worker_names()
        if names:
            self.last_worker = now
        waiting = self._check_jobs(names, now) if self.kind is not None else False
        if not names and not waiting and now - self.last_worker >= self.grace_s:
            raise ClusterLostError(self._grace_message(now))

    def _grace_message(self, now: float) -> str:
        waited = now - self.last_worker
        if self.kind is not None:
            return (f"no Dask worker has been connected to the scheduler at {self.address} for {waited:.0f} s and no "
                    f"batch job is waiting in the queue: the build cannot make progress (rerun to resume)")
        return (f"no Dask worker has been connected to the scheduler at {self.address} for {waited:.0f} s: the build "
                f"cannot make progress (start workers, e.g. `dask worker {self.address}`, then rerun to resume)")

    def _check_jobs(self, names: set[str], now: float) -> bool:
        """Look at every batch job of the cluster; returns whether one is queued or starting."""
        cluster = self.cluster
        assert cluster is not None  # only called for a dask-jobqueue cluster (self.kind is set)
        # job ids only: a Job object held by a traceback's frame would fail SpecCluster.close()'s status check
        submitted = {str(name): getattr(job, "job_id", None) for name, job in list(cluster.workers.items())}
        waiting = False
        ended: list[tuple[str, str | None, str]] = []
        for name in list(cluster.worker_spec):
            name = str(name)
            job_id = submitted.get(name) or self._job_ids.get(name)
            if job_id:
                self._job_ids[name] = str(job_id)
            if any(w == name or w.startswith(f"{name}-") for w in names):
                self._connected_at[name] = now
                continue
            state = self._queue_state(str(job_id), now) if job_id else None
            if name in self._connected_at:  # its workers were connected and left
                if (state is not None and not state.waiting) or now - self._connected_at[name] >= JOB_LOST_S:
                    ended.append((name, job_id, state.text if state is not None else "its workers left"))
                else:
                    waiting = True
                continue
            if job_id is None or state is None:  # being submitted, or the queue cannot be asked
                waiting = waiting or job_id is None
                continue
            if state.waiting and not state.hopeless:
                waiting = True
            elif not names:
                raise ClusterLostError(self._never_started(job_id, state))
        if ended:
            self._replace(cluster, ended, names, now)
            waiting = True
        return waiting

    def _never_started(self, job_id: str, state: QueueState) -> str:
        if state.hopeless:
            return f"batch job {job_id} cannot start: the queue holds it as {state.text}; change the job's options"
        logs = getattr(self.cluster, "_job_kwargs", {}).get("log_directory") or "the folder it was submitted from"
        return (f"batch job {job_id} ended ({state.text}) before its Dask workers connected to {self.address}: see "
                f"its log in {logs}; a compute node needs this Python environment at {sys.executable} (or a "
                f"container with it) and must reach this machine")

    def _replace(self, cluster: Any, ended: list[tuple[str, str | None, str]], names: set[str], now: float) -> None:
        what = ", ".join(f"{job_id or name} ({text})" for name, job_id, text in ended)
        dead = [name for name, _, _ in ended]
        if self.replaced + len(ended) > self.max_replacements:
            if not names:
                raise ClusterLostError(f"the build's batch jobs keep ending ({what}); gave up after "
                                       f"{self.replaced} replacements (rerun to resume)")
            cluster.sync(_submit_jobs, cluster, dead, 0)
            return
        log = logging.getLogger("eventkit.cluster")
        log.warning("batch job %s ended; submitting %d replacement job(s)", what, len(ended))
        for name in dead:
            self._connected_at.pop(name, None)
        try:
            cluster.sync(_submit_jobs, cluster, dead, len(ended))
        except Exception as exc:  # noqa: BLE001 - the batch system refused the replacement
            if not names:
                raise ClusterLostError(f"batch job {what} ended and its replacement failed: "
                                       f"{_rejected(_submit_command(self.cluster), exc)}") from None
            log.warning("%s", _rejected(_submit_command(self.cluster), exc))
            return
        self.replaced += len(ended)
        self.last_worker = now
