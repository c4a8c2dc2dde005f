"""``eventkit frames``: build the sharded Zarr frame cache of an event dataset.

Thin wrapper over :func:`eventkit.build.build_cache`: parse, build, print the store
paths and a summary (or one JSON object with ``--json``; progress goes to stderr).
"""
from __future__ import annotations

import contextlib
import json
from typing import Any

import click

from .options import (
    T_option,
    cache_option,
    cluster_options,
    dataset_argument,
    human_bytes,
    isolation_options,
    json_option,
    positive_int,
    progress_enabled,
    root_option,
    scheduler_option,
    shard_size_option,
    split_option,
    storage_options_option,
    workers_option,
)


def execution_target(cluster: str | None, jobs: int, cluster_option: dict[str, Any], scheduler: str | None,
                     stack: contextlib.ExitStack, cache: str | None = None) -> dict[str, Any]:
    """Where the build runs: ``{"scheduler": --scheduler}`` or, with ``--cluster``, ``{"cluster": a new
    dask-jobqueue cluster}`` (closed when ``stack`` exits; the build watches its health; its job logs
    go under ``cache``)."""
    if cluster is None:
        if cluster_option:
            raise click.BadParameter("--cluster-option needs --cluster slurm|pbs", param_hint="--cluster-option")
        if jobs != 1:
            raise click.BadParameter("--jobs needs --cluster slurm|pbs", param_hint="--jobs")
        return {"scheduler": scheduler}
    if scheduler is not None:
        raise click.BadParameter("give --cluster or --scheduler, not both", param_hint="--cluster")
    from eventkit.cluster import make_cluster, quiet_logs

    stack.enter_context(quiet_logs())  # the jobqueue scheduler runs in this process: no INFO lines
    return {"cluster": stack.enter_context(make_cluster(cluster, jobs=jobs, cache=cache, **cluster_option))}


def print_result(result, as_json: bool, *, extra: dict[str, Any] | None = None) -> None:
    """Print a :class:`eventkit.build.BuildResult` as text or as one JSON object."""
    if as_json:
        payload = result.to_json()
        payload.update(extra or {})
        click.echo(json.dumps(payload))
        return
    for split, url in result.stores.items():
        size = result.store_bytes.get(split)
        click.echo(f"{split}: {url}" + (f"  ({human_bytes(size)})" if size is not None else ""))
        for s in result.skipped.get(split, []):
            click.echo(f"  skipped sample {s['index']} ({s['sample_id']}): {s['error']}")
    rate = result.built_events / result.seconds if result.seconds > 0 else 0.0
    built = (f"built {result.built_samples} samples ({result.built_events:,} events) in {result.seconds:.1f} s, "
             f"{rate:,.0f} events/s" if result.built_samples else
             f"nothing to build: the store{'s are' if len(result.stores) > 1 else ' is'} complete")
    total = sum(result.store_bytes.values())
    click.echo(f"{result.dataset}: {result.samples} samples, {result.events:,} "
               f"{'events' if result.representation == 'frames' else 'nonzero entries'}, "
               f"{human_bytes(total)} on disk; {built}")


@click.command("frames")
@dataset_argument
@T_option
@click.option("--split-by", type=click.Choice(["count", "time"]), default="count", show_default=True,
              help="count: T slices of equal event counts (Eq. 22); time: T equal time windows "
                   "(audio: fixed bins of ceil(duration/T) µs).")
@click.option("--dtype", type=click.Choice(["uint16", "uint8"]), default="uint16", show_default=True,
              help="Count dtype of the frames (uint8 saturates at 255).")
@click.option("--merge-polarity", is_flag=True, default=False, help="Sum ON/OFF polarities into one channel.")
@click.option("--channels", "n_channels", type=int, default=None, callback=positive_int,
              help="Audio datasets: pool the cochlea channels to N (a divisor, e.g. 700 -> 140).")
@shard_size_option
@root_option
@cache_option
@storage_options_option
@workers_option
@scheduler_option
@cluster_options
@isolation_options
@split_option
@json_option
def frames(name: str, T: int, split_by: str, dtype: str, merge_polarity: bool, n_channels: int | None,
           shard_size: int | None, root, cache: str | None, storage_options: dict[str, Any], workers: int,
           scheduler: str | None, cluster: str | None, jobs: int, cluster_option: dict[str, Any],
           task_timeout: float | None, skip_bad: bool, splits: tuple[str, ...], as_json: bool) -> None:
    """Build the frame cache of the event dataset NAME (one Zarr store per split).

    Frames are integer counts [T, P, H, W] (vision) or [T, P, C] (audio). An interrupted
    build resumes where it stopped; a store built with other parameters is never reused.

    \b
    Examples:
      eventkit frames --T 20 nmnist --root ~/data/nmnist
      eventkit frames --T 16 --split-by time --workers 8 dvsgesture
      eventkit frames --T 100 --split-by time --channels 140 shd --json
      eventkit frames --T 10 cifar10dvs --cluster slurm --jobs 4 --cluster-option queue=cpu
      eventkit frames --T 10 nmnist --cache s3://bucket/caches \\
          --storage-option endpoint_url=http://127.0.0.1:9000
    """
    from eventkit.build import build_cache

    # a static dataset (mnist, ...) is refused by build_cache with the `eventkit encode` command to use
    with contextlib.ExitStack() as stack:
        target = execution_target(cluster, jobs, cluster_option, scheduler, stack, cache)
        result = build_cache(
            name, T=T, split_by=split_by, dtype=dtype, root=root, cache=cache, workers=workers,
            splits=list(splits) or None, merge_polarity=merge_polarity, n_channels=n_channels,
            shard_size=shard_size, progress=progress_enabled(as_json), storage_options=storage_options,
            task_timeout=task_timeout, skip_bad=skip_bad, **target)
    print_result(result, as_json)
