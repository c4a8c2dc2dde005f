"""``eventkit cache``: inspect (``info``) and verify (``verify``) cache stores.

Thin wrappers: ``info`` reads :class:`eventkit.cache.CacheStore` metadata and markers;
``verify`` calls :func:`eventkit.build.verify_store` (recompute shards from the raw files
and compare). Exit codes: 0 all good, 1 a mismatch / corrupt or missing shard was found,
2 an error (not a store, raw data missing, bad option).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from eventkit.cli.options import human_bytes, json_option, positive_int


def store_info(path: str) -> dict[str, Any]:
    """The ``cache info --json`` object of the store at ``path`` (complete or not)."""
    from eventkit.cache import CacheStore

    store = CacheStore.open(path, require_complete=False)
    meta = store.meta
    shards = []
    for k in range(store.n_shards):
        start, stop = store.shard_range(k)
        marker = store.read_marker(k)
        done = marker is not None and store.is_shard_complete(k, marker)  # one read of the marker
        shards.append({"shard": k, "start": start, "stop": stop, "complete": done,
                       "n_events": marker.get("n_events") if done else None})
    missing = [s["shard"] for s in shards if not s["complete"]]
    size = store.disk_size()
    return {
        "url": store.url, "format_version": meta["format_version"], "dataset": meta["dataset"],
        "split": meta["split"], "representation": meta["representation"], "params": meta["params"],
        "params_hash": meta.get("params_hash"), "eventkit_version": meta.get("eventkit_version"),
        "manifest_sha256": meta.get("manifest_sha256"), "classes": meta.get("classes", []),
        "n_samples": store.n_samples, "frame_shape": list(store.frame_shape), "dtype": store.dtype.name,
        "shard_size": store.shard_size, "n_shards": store.n_shards,
        "complete": bool(meta.get("complete")) and not missing, "missing_shards": missing,
        "disk_bytes": size, "bytes_per_sample": round(size / store.n_samples, 1), "shards": shards,
    }


@click.group()
def cache() -> None:
    """Inspect and verify cache stores."""


@cache.command()
@click.argument("path", metavar="PATH")
@json_option
def info(path: str, as_json: bool) -> None:
    """Show a store's dataset, parameters, size and per-shard status (PATH: folder or URL)."""
    data = store_info(path)
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    state = "complete" if data["complete"] else f"INCOMPLETE ({len(data['missing_shards'])} shards missing)"
    lines = [
        f"store:      {data['url']}",
        f"dataset:    {data['dataset']} / {data['split']} ({data['representation']}, format v{data['format_version']})",
        f"params:     {json.dumps(data['params'], sort_keys=True)}",
        f"samples:    {data['n_samples']} x {tuple(data['frame_shape'])} {data['dtype']}",
        f"shards:     {data['n_shards']} x {data['shard_size']} samples, {state}",
        f"disk:       {human_bytes(data['disk_bytes'])} ({data['bytes_per_sample']:.0f} B/sample)",
        f"eventkit:   {data['eventkit_version']}, manifest sha256 {data['manifest_sha256']}",
    ]
    click.echo("\n".join(lines))
    if data["missing_shards"]:
        shown = ", ".join(map(str, data["missing_shards"][:20]))
        more = ", ..." if len(data["missing_shards"]) > 20 else ""
        click.echo(f"missing:    {shown}{more}")
    for s in data["shards"]:
        status = "ok" if s["complete"] else "missing"
        events = "" if s["n_events"] is None else f"  {s['n_events']} events"
        click.echo(f"  shard {s['shard']:>5}  [{s['start']}, {s['stop']})  {status}{events}")


@cache.command()
@click.argument("path", metavar="PATH")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Raw data folder of the dataset (default: $EVENTKIT_DATA/<name>).")
@click.option("--shards", "n_shards", type=int, default=3, show_default=True, callback=positive_int,
              help="Number of shards (drawn with --seed) to recompute from the raw data.")
@click.option("--all", "all_shards", is_flag=True, default=False, help="Recompute every shard.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the shard draw.")
@json_option
def verify(path: str, root: Path | None, n_shards: int, all_shards: bool, seed: int, as_json: bool) -> None:
    """Recompute shards from the raw files and compare them with the store (exit 1 on a mismatch)."""
    from eventkit.build import verify_store

    report = verify_store(path, root=root, n_shards=n_shards, seed=seed, all_shards=all_shards)
    data = report.to_json()
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
    else:
        checked = ", ".join(map(str, data["checked_shards"])) or "none"
        click.echo(f"store:      {data['url']}")
        click.echo(f"recomputed: {len(data['checked_shards'])} of {data['n_shards']} shards ({checked})")
        for k in data["incomplete_shards"]:
            click.echo(f"INCOMPLETE shard {k}: no completion marker (resume the build)")
        if not data["marked_complete"] and not data["incomplete_shards"]:
            click.echo("INCOMPLETE store: every shard is written but the store was never marked complete "
                       "(rerun the build command to finish it)")
        for k, problem in data["corrupt_shards"]:
            click.echo(f"CORRUPT    shard {k}: {problem}")
        for k, i, sample_id in data["mismatches"]:
            click.echo(f"MISMATCH   shard {k} sample {i} ({sample_id})")
        click.echo("OK: the store matches its raw data" if data["ok"] else "FAILED")
    if not data["ok"]:
        sys.exit(1)
