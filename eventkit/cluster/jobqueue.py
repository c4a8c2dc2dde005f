"""dask-jobqueue clusters (SLURM, PBS) on top of the site's ``jobqueue.yaml``.

Every value of a cluster comes from, in order: the caller's arguments, the site's dask
config ``jobqueue.<kind>``, then eventkit's defaults for what both leave unset. Jobs are
submitted on the cluster's event loop and awaited, so a submission the batch system
rejects raises :class:`ClusterLostError` here (one line) instead of a traceback in a
callback while the build waits forever.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import weakref
from pathlib import Path
from typing import Any

from eventkit.cluster.local import WORKER_ENV
from eventkit.errors import EventkitError, ParameterError

__all__ = ["CLUSTER_KINDS", "MEMORY_PER_CORE_GB", "ClusterLostError", "make_cluster", "default_log_directory"]

#: dask-jobqueue cluster class per ``--cluster`` value
CLUSTER_KINDS: dict[str, str] = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}

#: memory per job when neither the caller nor jobqueue.yaml sets it: this many GB per core
MEMORY_PER_CORE_GB = 4


class ClusterLostError(EventkitError, RuntimeError):
    """The build's Dask workers are gone and cannot be replaced, or the batch system refused the jobs."""


# clusters made by make_cluster, by scheduler address: ClusterHealth(client) finds its jobs there
_CLUSTERS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def _jobqueue():
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ParameterError(
            "--cluster slurm|pbs needs dask-jobqueue, which is not installed: "
            "pip install 'eventkit-snn[hpc]'") from exc
    return dask_jobqueue


def _site(kind: str, key: str) -> Any:
    """``jobqueue.<kind>.<key>`` of the dask configuration (site/user ``jobqueue.yaml``, ``DASK_*`` env)."""
    import dask

    return dask.config.get(f"jobqueue.{kind}.{key}", None)


def default_log_directory(kind: str, cache: str | os.PathLike | None = None) -> str:
    """Where the batch jobs' stdout/stderr go unless set: ``<cache>/logs/<kind>`` for a local cache root
    (``cache``, else ``$EVENTKIT_CACHE``, else ``~/.cache/eventkit``), ``./eventkit-logs/<kind>`` in the
    current folder when the cache is a URL (the batch system writes logs to a file system)."""
    root = str(cache) if cache is not None and str(cache) else os.environ.get("EVENTKIT_CACHE") or "~/.cache/eventkit"
    if "://" in root:
        return str(Path.cwd() / "eventkit-logs" / kind)
    return str(Path(root).expanduser().absolute() / "logs" / kind)


def _options(kind: str, kwargs: dict[str, Any], cache) -> dict[str, Any]:
    """The dask-jobqueue arguments: explicit ``kwargs`` > the site's ``jobqueue.<kind>`` > eventkit defaults."""
    options = dict(kwargs)
    site_cores, site_processes = _site(kind, "cores"), _site(kind, "processes")
    given_cores = options.get("cores", site_cores)
    given_processes = options.get("processes", site_processes)
    where = "--cluster-option" if ("cores" in options or "processes" in options) else f"jobqueue.{kind} (dask config)"
    options["cores"], options["processes"] = _cores_and_processes(given_cores, given_processes, where)
    if options.get("memory") is None and _site(kind, "memory") is None:
        options["memory"] = f"{MEMORY_PER_CORE_GB * options['cores']}GB"
    if options.get("log_directory") is None and _site(kind, "log-directory") is None:
        options["log_directory"] = default_log_directory(kind, cache)
    # the job script: eventkit's worker environment, then the caller's prologue or else the site's
    prologue = options.get("job_script_prologue")
    if prologue is None:
        prologue = _site(kind, "job-script-prologue") or _site(kind, "env-extra") or []
    if isinstance(prologue, str):
        prologue = [prologue]
    options["job_script_prologue"] = [f"export {k}={v}" for k, v in WORKER_ENV.items()] + list(prologue)
    # the scheduler (in this process): the site's options, the caller's on top, the dashboard on a free port
    scheduler_options = dict(_site(kind, "scheduler-options") or {})
    scheduler_options.update(options.pop("scheduler_options", None) or {})
    dashboard = options.pop("dashboard_address", None)
    if dashboard is not None:
        scheduler_options["dashboard_address"] = dashboard
    scheduler_options.setdefault("dashboard_address", ":0")
    options["scheduler_options"] = scheduler_options
    options.setdefault("silence_logs", "error")
    return options


def make_cluster(kind: str, *, jobs: int = 0, cache: str | os.PathLike | None = None, **kwargs: Any):
    """A dask-jobqueue cluster of ``kind`` ("slurm" or "pbs") with ``jobs`` batch jobs submitted.

    Every value comes from, in order: ``kwargs`` (any dask-jobqueue argument), the site's
    dask config ``jobqueue.<kind>`` (``jobqueue.yaml``), then eventkit's defaults for what
    both leave unset: ``cores=1`` (or ``processes``), ``processes=cores`` (single-threaded
    workers; more processes than cores is refused), ``memory`` 4 GB per core,
    ``log_directory`` from :func:`default_log_directory` (``cache`` = the build's cache
    root). ``walltime`` is the site's (dask-jobqueue's default: 00:30:00). The job script
    exports :data:`WORKER_ENV`, then runs the caller's ``job_script_prologue`` or else the
    site's (module loads, conda activation). The dashboard binds a free port unless
    ``dashboard_address`` or the site's ``scheduler-options`` say otherwise.

    ``jobs=0`` creates the cluster (and its scheduler, in this process) without submitting
    anything: ``cluster.job_script()`` renders on a machine with no queue. With ``jobs > 0``
    this returns after the batch system accepted every job.

    Raises :class:`ParameterError` for an unknown kind, ``jobs < 0``, bad ``cores``/``processes``,
    an argument dask-jobqueue refuses, no ``sbatch``/``qsub`` on the PATH or no dask-jobqueue;
    :class:`ClusterLostError` when the batch system rejects a job (one line with its message).
    """
    kind = str(kind).lower()
    if kind not in CLUSTER_KINDS:
        raise ParameterError(f"cluster kind must be one of {sorted(CLUSTER_KINDS)}, got {kind!r}")
    if int(jobs) < 0:
        raise ParameterError(f"jobs must be >= 0, got {jobs}")
    cls = getattr(_jobqueue(), CLUSTER_KINDS[kind])
    submit = _submit_command(cls)
    if jobs and submit and shutil.which(submit) is None:
        raise ParameterError(
            f"--cluster {kind} submits jobs with `{submit}`, which is not on this machine's PATH: run the "
            f"build from a {kind.upper()} login node (or start workers yourself and pass --scheduler ADDR)")
    options = _options(kind, kwargs, cache)
    try:
        cluster = cls(**options)
    except (TypeError, ValueError) as exc:  # an argument dask-jobqueue does not know, or a bad value
        raise ParameterError(f"invalid --cluster-option for {kind}: {str(exc).splitlines()[0]}") from exc
    _CLUSTERS[cluster.scheduler_address] = cluster
    if jobs:
        try:
            cluster.sync(_submit_jobs, cluster, [], int(jobs))
        except Exception as exc:  # noqa: BLE001 - whatever the batch system's client raised: one line naming it
            cluster.close()
            raise ClusterLostError(_rejected(submit, exc)) from None
    return cluster


def _submit_command(cluster_or_cls) -> str:
    return (str(getattr(cluster_or_cls.job_cls, "submit_command", "") or "").split() or [""])[0]


def _rejected(submit: str, exc: BaseException) -> str:
    """One line from a failed submission: the batch system's own error lines (``sbatch: error: ...``)."""
    text = str(exc)
    if "stderr:" in text:  # dask-jobqueue: "Command exited with non-zero exit code. ... stderr:\n<lines>"
        text = text.rsplit("stderr:", 1)[1]
    detail = "; ".join(line.strip() for line in text.splitlines() if line.strip()) or type(exc).__name__
    return f"{submit or 'the batch system'} rejected the batch job: {detail}"


async def _submit_jobs(cluster, dead: list[str], n_new: int) -> None:
    """On the cluster's event loop: forget the ``dead`` jobs, add ``n_new`` job specs and submit them.

    Awaiting the cluster's state correction makes a failed ``sbatch``/``qsub`` raise here, not
    in a callback whose traceback nobody sees.
    """
    for name in dead:
        cluster.worker_spec.pop(name, None)
        job = cluster.workers.pop(name, None)
        if job is not None:
            with contextlib.suppress(Exception):
                await job.close()  # scancel/qdel of an ended job: harmless
    for _ in range(int(n_new)):
        cluster.worker_spec.update(cluster.new_worker_spec())
    try:
        await cluster._correct_state()
    except Exception:  # forget the jobs that were not submitted, so that nothing waits for them
        from distributed.core import Status

        for name in [n for n in cluster.worker_spec if getattr(cluster.workers.get(n), "job_id", None) is None]:
            cluster.worker_spec.pop(name, None)
            job = cluster.workers.pop(name, None)
            if job is not None:
                job.status = Status.failed  # what SpecCluster.close() expects of a job that never started
        raise


def _cores_and_processes(cores: Any, processes: Any, where: str = "--cluster-option") -> tuple[int, int]:
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
            raise ParameterError(f"{where} {name} must be an integer >= 1, got {value!r}") from None
        if number < 1:
            raise ParameterError(f"{where} {name} must be an integer >= 1, got {number}")
        values[name] = number
    c = values.get("cores", values.get("processes", 1))
    p = values.get("processes", c)
    if p > c:
        raise ParameterError(f"{where} processes={p} exceeds cores={c}: each worker is single-threaded "
                             "and needs a core of its own")
    return c, p

