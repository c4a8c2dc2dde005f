"""Dask clusters for the cache builder: local processes, a running scheduler, SLURM or PBS.

``make_cluster("slurm" | "pbs", jobs=N, **kwargs)`` builds a dask-jobqueue cluster (the
optional ``eventkit[hpc]`` extra) with eventkit's defaults (one single-threaded worker
process per core, Numba/BLAS threads pinned to 1) and asks for ``jobs`` batch jobs. Any
dask-jobqueue argument may be overridden: ``queue``, ``account``, ``cores``, ``memory``,
``walltime``, ``job_extra_directives``, ``job_script_prologue``... The rendered batch
script is ``cluster.job_script()``; nothing is submitted before ``jobs >= 1`` scales it.

``local_cluster(n_workers)`` is the embedded ``distributed.LocalCluster`` used by
``build_cache(workers=N)`` (N processes, one thread each, quiet logs, no dashboard).
``quiet_logs()`` silences the in-process Dask loggers (scheduler, nanny, client) for
the time of a build: ``LocalCluster(silence_logs=...)`` only quiets the worker
processes and dask's own stderr handler, while an application that configured the
root logger (``logging.basicConfig``, as the ``eventkit`` command does) would
otherwise print every INFO line of the scheduler's start and stop.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from typing import Any

from eventkit.errors import ParameterError

__all__ = ["CLUSTER_KINDS", "WORKER_ENV", "DASK_LOGGERS", "make_cluster", "local_cluster", "quiet_logs"]

#: dask-jobqueue cluster class per ``--cluster`` value
CLUSTER_KINDS: dict[str, str] = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}

#: environment of every worker process: one process per core, single-threaded kernels
WORKER_ENV: dict[str, str] = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


#: loggers of the in-process Dask scheduler, nanny and client (and their web/IO stack)
DASK_LOGGERS = ("distributed", "dask_jobqueue", "tornado", "bokeh")


@contextlib.contextmanager
def quiet_logs(level: int = logging.CRITICAL) -> Iterator[None]:
    """Raise the Dask loggers to ``level`` inside the block, then restore them.

    Left alone when the ``eventkit`` logger is at DEBUG (``eventkit -vv``): then the
    Dask logs are what was asked for.
    """
    if logging.getLogger("eventkit").isEnabledFor(logging.DEBUG):
        yield
        return
    import distributed  # noqa: F401 - its import sets the levels this block overrides

    loggers = [logging.getLogger(name) for name in DASK_LOGGERS]
    loggers += [logger for name, logger in list(logging.root.manager.loggerDict.items())
                if isinstance(logger, logging.Logger) and "." in name and name.split(".")[0] in DASK_LOGGERS
                and logger.level != logging.NOTSET]  # e.g. distributed.client, set to WARNING by dask
    old = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(level, logger.level))
    try:
        yield
    finally:
        for logger, value in zip(loggers, old):
            logger.setLevel(value)


def _jobqueue():
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ParameterError(
            "--cluster slurm|pbs needs dask-jobqueue, which is not installed: "
            "pip install 'eventkit[hpc]'") from exc
    return dask_jobqueue


def make_cluster(kind: str, *, jobs: int = 0, **kwargs: Any):
    """A dask-jobqueue cluster of ``kind`` ("slurm" or "pbs") scaled to ``jobs`` batch jobs.

    Defaults (each overridable through ``kwargs``): ``cores=1`` (or ``processes`` when
    only that is given), ``processes=cores`` (one single-threaded worker per core; more
    processes than cores is refused), ``memory="4GB"``, ``walltime="01:00:00"``, worker
    environment :data:`WORKER_ENV` exported at the top of the job script. ``jobs=0``
    creates the cluster (and its scheduler, in this process) without submitting anything,
    which is how ``cluster.job_script()`` can be rendered on a machine with no queue.

    Raises :class:`ParameterError` for an unknown kind, ``jobs < 0``, ``cores``/``processes``
    that are not integers with ``cores >= processes >= 1``, an argument
    dask-jobqueue refuses, ``jobs > 0`` without the batch system's submit command
    (``sbatch``/``qsub``) on the PATH, or a missing dask-jobqueue (with the
    ``pip install 'eventkit[hpc]'`` fix).
    """
    kind = str(kind).lower()
    if kind not in CLUSTER_KINDS:
        raise ParameterError(f"cluster kind must be one of {sorted(CLUSTER_KINDS)}, got {kind!r}")
    if int(jobs) < 0:
        raise ParameterError(f"jobs must be >= 0, got {jobs}")
    cls = getattr(_jobqueue(), CLUSTER_KINDS[kind])
    submit = str(getattr(cls.job_cls, "submit_command", "") or "").split()
    if jobs and submit and shutil.which(submit[0]) is None:
        raise ParameterError(
            f"--cluster {kind} submits jobs with `{submit[0]}`, which is not on this machine's PATH: run the "
            f"build from a {kind.upper()} login node (or start workers yourself and pass --scheduler ADDR)")
    options: dict[str, Any] = dict(kwargs)
    cores, processes = _cores_and_processes(options.get("cores"), options.get("processes"))
    options["cores"], options["processes"] = cores, processes
    options.setdefault("memory", "4GB")
    options.setdefault("walltime", "01:00:00")
    prologue = [f"export {k}={v}" for k, v in WORKER_ENV.items()]
    options["job_script_prologue"] = prologue + list(options.get("job_script_prologue") or [])
    options.setdefault("silence_logs", "error")
    try:
        cluster = cls(**options)
    except (TypeError, ValueError) as exc:  # an argument dask-jobqueue does not know, or a bad value
        raise ParameterError(f"invalid --cluster-option for {kind}: {str(exc).splitlines()[0]}") from exc
    if jobs:
        cluster.scale(jobs=int(jobs))
    return cluster


def _cores_and_processes(cores: Any, processes: Any) -> tuple[int, int]:
    """Cores per job and worker processes per job: integers with ``cores >= processes >= 1``.

    Either defaults to the other (both to 1), so ``processes=4`` alone asks for 4 cores:
    one single-threaded worker per core, never more workers than the job's cores.
    """
    values = {}
    for name, value in (("cores", cores), ("processes", processes)):
        if value is None:
            continue
        try:
            number = int(str(value))
        except ValueError:
            raise ParameterError(f"--cluster-option {name} must be an integer >= 1, got {value!r}") from None
        if number < 1:
            raise ParameterError(f"--cluster-option {name} must be an integer >= 1, got {number}")
        values[name] = number
    c = values.get("cores", values.get("processes", 1))
    p = values.get("processes", c)
    if p > c:
        raise ParameterError(f"--cluster-option processes={p} exceeds cores={c}: each worker is single-threaded "
                             "and needs a core of its own")
    return c, p


def local_cluster(n_workers: int):
    """The embedded local cluster: ``n_workers`` processes, one thread each, quiet, no dashboard."""
    from distributed import LocalCluster

    if int(n_workers) < 1:
        raise ParameterError(f"workers must be >= 1, got {n_workers}")
    return LocalCluster(
        n_workers=int(n_workers),
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
        env=dict(WORKER_ENV),
    )
