"""The embedded local cluster and the worker environment shared by every kind of cluster.

``local_cluster(n_workers)`` is the ``distributed.LocalCluster`` of ``build_cache(workers=N)``
(N processes, one thread each, quiet logs, no dashboard). ``quiet_logs()`` silences the
in-process Dask loggers (scheduler, nanny, client) for the time of a build:
``LocalCluster(silence_logs=...)`` only quiets the worker processes and dask's own stderr
handler, while an application that configured the root logger (``logging.basicConfig``,
as the ``eventkit`` command does) would otherwise print every INFO line of the
scheduler's start and stop.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from eventkit.errors import ParameterError

__all__ = ["WORKER_ENV", "DASK_LOGGERS", "quiet_logs", "local_cluster"]

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
        for logger, value in zip(loggers, old, strict=True):
            logger.setLevel(value)


def local_cluster(n_workers: int):
    """The embedded local cluster: ``n_workers`` processes, one thread each, quiet.

    Its scheduler's HTTP server (which Dask starts even without a dashboard) binds a free
    port: ``dashboard_address=None`` would mean Dask's default 8787 and a warning on stderr
    whenever that port is taken.
    """
    from distributed import LocalCluster

    if int(n_workers) < 1:
        raise ParameterError(f"workers must be >= 1, got {n_workers}")
    return LocalCluster(
        n_workers=int(n_workers),
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
        env=dict(WORKER_ENV),
    )

