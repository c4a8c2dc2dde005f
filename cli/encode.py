"""``eventkit encode``: build the spike cache of a static image dataset (mnist, fashionmnist, cifar10).

Thin wrapper over :func:`eventkit.build.encode_cache`; same output as ``eventkit frames``
(store paths and a summary, or one JSON object with ``--json``).
"""
from __future__ import annotations

import contextlib
from typing import Any

import click

from .frames import execution_target, print_result
from .options import (
    T_option,
    cache_option,
    cluster_options,
    dataset_argument,
    isolation_options,
    json_option,
    progress_enabled,
    root_option,
    scheduler_option,
    seed_option,
    shard_size_option,
    split_option,
    storage_options_option,
    workers_option,
)


@click.command("encode")
@dataset_argument
@T_option
@click.option("--encoder", type=click.Choice(["rate", "poisson", "direct", "latency"]), required=True,
              help="rate: Bernoulli spikes p=intensity per step; poisson: Poisson-process spikes "
                   "(1000 Hz at intensity 1, 1 ms steps); direct: the image "
                   "repeated T times (uint8, value_scale 1/255); latency: one spike per pixel, brighter earlier.")
@seed_option
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
def encode(name: str, T: int, encoder: str, seed: int, shard_size: int | None, root, cache: str | None,
           storage_options: dict[str, Any], workers: int, scheduler: str | None, cluster: str | None, jobs: int,
           cluster_option: dict[str, Any], task_timeout: float | None, skip_bad: bool, splits: tuple[str, ...],
           as_json: bool) -> None:
    """Encode the static image dataset NAME into uint8 spikes [T, C, H, W] (one store per split).

    Sample i draws from a generator seeded by (--seed, i): the cache is reproducible and
    independent of the number of workers.

    \b
    Examples:
      eventkit encode --T 8 --encoder rate mnist --root ~/data/mnist
      eventkit encode --T 4 --encoder direct cifar10 --json
    """
    from eventkit.build import encode_cache

    if seed < 0:
        raise click.BadParameter(f"must be >= 0, got {seed}", param_hint="--seed")
    # an event dataset (nmnist, ...) is refused by encode_cache with the `eventkit frames` command to use
    with contextlib.ExitStack() as stack:
        target = execution_target(cluster, jobs, cluster_option, scheduler, stack, cache)
        result = encode_cache(
            name, T=T, encoder=encoder, seed=seed, root=root, cache=cache, workers=workers,
            splits=list(splits) or None, shard_size=shard_size, progress=progress_enabled(as_json),
            storage_options=storage_options, task_timeout=task_timeout, skip_bad=skip_bad, **target)
    print_result(result, as_json, extra={"encoder": encoder, "seed": seed})
