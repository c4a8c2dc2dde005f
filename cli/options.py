"""Shared click options of the ``eventkit`` commands (one definition, one meaning).

Every value check lives in a callback that raises :class:`click.BadParameter`, so a bad
value prints click's usage line and exits with code 2 before any work starts. Commands
use the decorators below::

    @click.command()
    @dataset_argument
    @T_option
    @root_option
    @cache_option
    @workers_option
    @json_option
    def frames(name, T, root, cache, workers, as_json): ...

Nothing here imports torch, dask or zarr: ``eventkit --help`` stays fast.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "positive_int", "parse_key_value", "parse_cluster_options", "progress_enabled",
    "dataset_argument", "root_option", "cache_option", "workers_option", "json_option",
    "T_option", "seed_option", "shard_size_option", "scheduler_option", "cluster_options",
    "split_option", "human_bytes", "parse_storage_options", "storage_options_option", "isolation_options",
    "TASK_TIMEOUT_S",
]

#: default of --task-timeout (seconds); the same value as eventkit.build.DEFAULT_TASK_TIMEOUT (tested)
TASK_TIMEOUT_S = 1800.0


# ---------------------------------------------------------------------------------------
# callbacks (plain functions: usable by other modules' own options too)
# ---------------------------------------------------------------------------------------

def positive_int(ctx: click.Context | None, param: click.Parameter | None, value: int | None) -> int | None:
    """Callback: ``value`` must be an integer >= 1 (``None`` passes through)."""
    if value is None:
        return None
    if value < 1:
        name = param.opts[0] if param is not None and param.opts else "value"
        raise click.BadParameter(f"must be an integer >= 1, got {value} ({name})", ctx=ctx, param=param)
    return value


def parse_key_value(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(key, value)``; VALUE is read as JSON when it parses
    (``cores=4`` -> 4, ``job_extra_directives=["--gres=gpu:1"]`` -> list), else kept as text
    (``memory=16GB`` -> ``"16GB"``). Raises ``click.BadParameter`` on a missing ``=`` or key."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise click.BadParameter(f"expected KEY=VALUE (e.g. memory=16GB), got {text!r}")
    if not key.isidentifier():
        raise click.BadParameter(f"KEY must be a Python identifier (a dask-jobqueue argument), got {key!r}")
    raw = raw.strip()
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def parse_cluster_options(ctx: click.Context | None, param: click.Parameter | None,
                          values: tuple[str, ...] | None) -> dict[str, Any]:
    """Callback of ``--cluster-option KEY=VALUE`` (repeatable) -> ``{key: value}``."""
    return parse_key_values(ctx, param, values)


def parse_storage_options(ctx: click.Context | None, param: click.Parameter | None,
                          values: tuple[str, ...] | None) -> dict[str, Any]:
    """Callback of ``--storage-option KEY=VALUE`` (repeatable) -> ``{key: value}`` (fsspec filesystem arguments)."""
    return parse_key_values(ctx, param, values)


def parse_key_values(ctx: click.Context | None, param: click.Parameter | None,
                     values: tuple[str, ...] | None) -> dict[str, Any]:
    """Callback of a repeatable ``KEY=VALUE`` option -> ``{key: value}`` (:func:`parse_key_value`);
    a key given twice is an error."""
    out: dict[str, Any] = {}
    for text in values or ():
        try:
            key, value = parse_key_value(text)
        except click.BadParameter as exc:
            raise click.BadParameter(exc.message, ctx=ctx, param=param) from None
        if key in out:
            raise click.BadParameter(f"{key!r} given twice", ctx=ctx, param=param)
        out[key] = value
    return out


def _check_scheduler(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if "://" not in value:
        raise click.BadParameter(
            f"expected a Dask scheduler address such as tcp://host:8786, got {value!r}", ctx=ctx, param=param)
    return value


def _check_dataset(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """The dataset name must be one of the manifests (listed in the error)."""
    name = value.strip().lower()
    try:
        from eventkit.datasets import list_datasets
    except ImportError:  # pragma: no cover - the datasets package is part of eventkit
        return name
    known = list_datasets()
    if name not in known:
        raise click.BadParameter(f"unknown dataset {value!r}; known: {', '.join(known)}", ctx=ctx, param=param)
    return name


def progress_enabled(as_json: bool) -> bool | str:
    """The progress mode of a command (``eventkit.progress``): off with ``eventkit -q``, plain
    rate-limited lines with ``--json`` (never a bar), else a bar on a terminal and lines elsewhere."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("quiet"):
        return False
    return "lines" if as_json else True


# ---------------------------------------------------------------------------------------
# decorators
# ---------------------------------------------------------------------------------------

def dataset_argument(f: F) -> F:
    """``NAME``: a dataset of the manifests (``eventkit data list``), lower-cased."""
    return click.argument("name", metavar="NAME", callback=_check_dataset)(f)


def root_option(f: F) -> F:
    """``--root DIR``: raw data folder (default: ``$EVENTKIT_DATA/<name>``)."""
    return click.option(
        "--root", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Raw data folder of the dataset (default: $EVENTKIT_DATA/<name>).")(f)


def cache_option(f: F) -> F:
    """``--cache DIR|URL``: cache root (default: ``$EVENTKIT_CACHE`` or ``~/.cache/eventkit``)."""
    return click.option(
        "--cache", type=str, default=None, metavar="DIR|URL",
        help="Cache root: a folder or an fsspec URL (default: $EVENTKIT_CACHE, else ~/.cache/eventkit).")(f)


def workers_option(f: F) -> F:
    """``--workers N`` (>= 1): 1 runs in-process, N > 1 starts a local Dask cluster of N processes."""
    return click.option(
        "--workers", type=int, default=1, show_default=True, callback=positive_int,
        help="Worker processes: 1 builds in-process; N > 1 starts a local Dask cluster "
             "(one single-threaded process per core).")(f)


def json_option(f: F) -> F:
    """``--json``: exactly one JSON object on stdout (progress, if any, on stderr)."""
    return click.option(
        "--json", "as_json", is_flag=True, default=False,
        help="Print one JSON object on stdout instead of text (progress goes to stderr).")(f)


def T_option(f: F) -> F:  # the option is called --T in every paper
    """``--T N`` (>= 1, required): number of time steps (frames) per sample."""
    return click.option(
        "--T", "T", type=int, required=True, callback=positive_int,
        help="Number of time steps (frames) per sample, >= 1.")(f)


def seed_option(f: F) -> F:
    """``--seed S`` (default 0): base seed; sample i uses a generator derived from (seed, i)."""
    return click.option("--seed", type=int, default=0, show_default=True,
                        help="Base seed; sample i draws from a generator seeded by (seed, i).")(f)


def shard_size_option(f: F) -> F:
    """``--shard-size N`` (>= 1): samples per shard (default: ~16 MiB of frames per shard)."""
    return click.option(
        "--shard-size", type=int, default=None, callback=positive_int,
        help="Samples per shard (one Dask task each); default: about 16 MiB of uncompressed frames.")(f)


def scheduler_option(f: F) -> F:
    """``--scheduler tcp://host:port``: use a running Dask scheduler."""
    return click.option(
        "--scheduler", type=str, default=None, callback=_check_scheduler, metavar="ADDR",
        help="Address of a running Dask scheduler (tcp://host:8786); --workers is then ignored.")(f)


def cluster_options(f: F) -> F:
    """``--cluster slurm|pbs --jobs N --cluster-option KEY=VALUE ...`` (dask-jobqueue)."""
    f = click.option(
        "--cluster-option", "cluster_option", multiple=True, callback=parse_cluster_options, metavar="KEY=VALUE",
        help="Argument of the dask-jobqueue cluster (repeatable), e.g. queue=cpu, cores=8, memory=16GB, "
             "walltime=02:00:00; VALUE is read as JSON when it parses.")(f)
    f = click.option("--jobs", type=int, default=1, show_default=True, callback=positive_int,
                     help="Batch jobs to submit with --cluster.")(f)
    f = click.option("--cluster", type=click.Choice(["slurm", "pbs"]), default=None,
                     help="Run the workers as SLURM or PBS batch jobs (needs eventkit-snn[hpc]).")(f)
    return f


def storage_options_option(f: F) -> F:
    """``--storage-option KEY=VALUE`` (repeatable): arguments of the cache URL's fsspec filesystem."""
    return click.option(
        "--storage-option", "storage_options", multiple=True, callback=parse_storage_options, metavar="KEY=VALUE",
        help="Argument of the fsspec filesystem of an object-store URL (repeatable), e.g. "
             "endpoint_url=http://127.0.0.1:9000, key=..., secret=..., anon=true; VALUE is read as JSON when it "
             "parses. FSSPEC_S3_* environment variables also apply.")(f)


def _check_timeout(ctx: click.Context, param: click.Parameter, value: float) -> float | None:
    if value < 0:
        raise click.BadParameter(f"must be >= 0 seconds (0: no limit), got {value:g}", ctx=ctx, param=param)
    return None if value == 0 else float(value)


def isolation_options(f: F) -> F:
    """``--task-timeout SECONDS`` and ``--skip-bad``: how a build treats a sample that fails, crashes or hangs."""
    f = click.option(
        "--skip-bad", is_flag=True, default=False,
        help="Leave out samples that fail, crash or hang the reader (zero frames, label -1, listed by "
             "`eventkit cache info`) instead of stopping the build.")(f)
    f = click.option(
        "--task-timeout", type=float, default=TASK_TIMEOUT_S, show_default=True, callback=_check_timeout,
        metavar="SECONDS",
        help="Time limit of one shard task; each task runs in a child process, killed past it, and the sample "
             "it was on is named. 0: no limit (tasks run in the build's own process).")(f)
    return f


def split_option(f: F) -> F:
    """``--split NAME`` (repeatable): only these splits (default: every split of the dataset)."""
    return click.option("--split", "splits", multiple=True, metavar="NAME",
                        help="Build only this split (repeatable; default: all splits).")(f)


def human_bytes(n: int) -> str:
    """``n`` bytes as ``"512 B"``, ``"2.1 MiB"``, ... (binary units)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
