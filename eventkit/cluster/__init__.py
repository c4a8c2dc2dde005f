"""Dask clusters for the cache builder: local processes, a running scheduler, SLURM or PBS.

``make_cluster("slurm" | "pbs", jobs=N, **kwargs)`` builds a dask-jobqueue cluster (the
optional ``eventkit-snn[hpc]`` extra) on top of the site's ``jobqueue.yaml`` (dask config
``jobqueue.<kind>``) and submits ``jobs`` batch jobs. The site's values are kept: eventkit
only fills what the configuration leaves unset (one single-threaded worker process per
core, 4 GB per core, logs under the cache) and adds its worker environment
(:data:`WORKER_ENV`) to the job script; an argument passed explicitly overrides the
site's value. A submission the batch system rejects is a one-line
:class:`ClusterLostError`. The rendered batch script is ``cluster.job_script()``;
``jobs=0`` submits nothing.

:class:`ClusterHealth` watches a build's workers: a batch job whose workers all vanished
(``scancel``, walltime) is replaced by a new submission; when the build cannot make
progress (no worker for ``grace_s`` seconds and no job waiting in the queue, a job that
ended before its workers connected, a rejected resubmission) ``poll()`` raises
:class:`ClusterLostError` with one line saying why.

``local_cluster(n_workers)`` is the embedded ``distributed.LocalCluster`` used by
``build_cache(workers=N)``; ``quiet_logs()`` silences the in-process Dask loggers for
the time of a build.

Modules: ``local`` (local cluster, worker environment, quiet logs), ``jobqueue``
(``make_cluster``), ``queue`` (``squeue``/``qstat`` job states), ``health``
(``ClusterHealth``).
"""
from __future__ import annotations

from eventkit.cluster.health import DEFAULT_GRACE_S, GRACE_ENV, JOB_LOST_S, ClusterHealth, grace_from_env
from eventkit.cluster.jobqueue import (
    CLUSTER_KINDS,
    MEMORY_PER_CORE_GB,
    ClusterLostError,
    default_log_directory,
    make_cluster,
)
from eventkit.cluster.local import DASK_LOGGERS, WORKER_ENV, local_cluster, quiet_logs

__all__ = [
    "CLUSTER_KINDS", "WORKER_ENV", "DASK_LOGGERS", "DEFAULT_GRACE_S", "JOB_LOST_S", "GRACE_ENV",
    "MEMORY_PER_CORE_GB", "ClusterLostError", "ClusterHealth", "make_cluster", "local_cluster", "quiet_logs",
    "grace_from_env", "default_log_directory",
]
