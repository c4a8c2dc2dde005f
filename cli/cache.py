"""``eventkit cache``: inspect (``info``), verify (``verify``), list (``ls``), remove (``rm``, ``gc``) cache stores.

Thin wrappers over :class:`eventkit.cache.CacheStore`, :func:`eventkit.build.verify_store` and
``eventkit.cache.inventory``. Exit codes: 0 all good, 1 a mismatch / corrupt, missing or
stray file was found (``verify``), 2 an error (not a store, raw data missing, bad option).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from .options import (
    cache_option,
    human_bytes,
    json_option,
    parse_key_values,
    positive_int,
    storage_options_option,
)


def store_info(path: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``cache info --json`` object of the store at ``path`` (complete or not).

    A shard is ``complete`` (valid marker and every data file present), ``missing`` (no valid
    marker: to be built) or ``lost`` (a marker, but a data file is gone: remove and rebuild).
    """
    from eventkit.cache import CacheStore
    from eventkit.cache.layout import chunk_key

    store = CacheStore.open(path, require_complete=False, storage_options=storage_options)
    meta = store.meta
    files = store.files()  # one fresh listing
    completion = store.completion()
    shards = []
    for k in range(store.n_shards):
        start, stop = store.shard_range(k)
        marker = completion.get(k)
        keys = [store._frames_key(k), *(chunk_key(a, k) for a in ("label", "n_events", "sample_id"))]
        absent = [key for key in keys if key not in files]
        status = "missing" if marker is None else ("lost" if absent else "complete")
        shards.append({"shard": k, "start": start, "stop": stop, "status": status,
                       "complete": status == "complete", "n_events": marker.get("n_events") if marker else None,
                       "absent_files": absent if marker else []})
    missing = [s["shard"] for s in shards if s["status"] == "missing"]
    lost = [s["shard"] for s in shards if s["status"] == "lost"]
    size = sum(files.values())
    return {
        "url": store.url, "format_version": meta["format_version"], "dataset": meta["dataset"],
        "split": meta["split"], "representation": meta["representation"], "params": meta["params"],
        "params_hash": meta.get("params_hash"), "eventkit_version": meta.get("eventkit_version"),
        "manifest_sha256": meta.get("manifest_sha256"), "classes": meta.get("classes", []),
        "n_samples": store.n_samples, "frame_shape": list(store.frame_shape), "dtype": store.dtype.name,
        "shard_size": store.shard_size, "n_shards": store.n_shards, "marked_complete": bool(meta.get("complete")),
        "complete": bool(meta.get("complete")) and not missing and not lost, "missing_shards": missing,
        "lost_shards": lost, "stray_files": store.stray_files(files), "skipped_samples": store.skipped_samples(),
        "disk_bytes": size, "bytes_per_sample": round(size / store.n_samples, 1), "shards": shards,
    }


@click.group()
def cache() -> None:
    """Inspect, verify, list and remove cache stores."""


@cache.command()
@click.argument("path", metavar="PATH")
@storage_options_option
@json_option
def info(path: str, storage_options: dict[str, Any], as_json: bool) -> None:
    """Show a store's dataset, parameters, size and per-shard status (PATH: folder or URL)."""
    data = store_info(path, storage_options)
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    if data["complete"]:
        state = "complete"
    else:
        parts = [f"{len(data[k])} shards {w}" for k, w in (("missing_shards", "missing"), ("lost_shards", "lost"))
                 if data[k]] or ["never marked complete"]
        state = f"INCOMPLETE ({', '.join(parts)})"
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
    for key, word in (("missing_shards", "missing"), ("lost_shards", "lost")):
        if data[key]:
            more = ", ..." if len(data[key]) > 20 else ""
            click.echo(f"{word + ':':<11} {', '.join(map(str, data[key][:20]))}{more}")
    for s in data["skipped_samples"]:
        click.echo(f"skipped:    sample {s['index']} ({s['sample_id']}): {s['error']}")
    for name in data["stray_files"]:
        click.echo(f"stray file: {name}")
    for s in data["shards"]:
        events = "" if s["n_events"] is None else f"  {s['n_events']} events"
        absent = f" (absent: {', '.join(s['absent_files'])})" if s["absent_files"] else ""
        click.echo(f"  shard {s['shard']:>5}  [{s['start']}, {s['stop']})  {s['status']}{absent}{events}")


@cache.command()
@click.argument("path", metavar="PATH")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Raw data folder of the dataset (default: $EVENTKIT_DATA/<name>).")
@click.option("--shards", "n_shards", type=int, default=3, show_default=True, callback=positive_int,
              help="Number of shards (drawn with --seed) to recompute from the raw data.")
@click.option("--all", "all_shards", is_flag=True, default=False, help="Recompute every shard.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the shard draw.")
@storage_options_option
@json_option
def verify(path: str, root: Path | None, n_shards: int, all_shards: bool, seed: int, storage_options: dict[str, Any],
           as_json: bool) -> None:
    """Check every shard's bytes, list stray files, recompute shards from the raw files (exit 1 on a problem)."""
    from eventkit.build import verify_store

    report = verify_store(path, root=root, n_shards=n_shards, seed=seed, all_shards=all_shards,
                          storage_options=storage_options)
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
        for name in data["stray_files"]:
            click.echo(f"STRAY      {name}: not part of the store (`eventkit cache gc` or a resumed build removes "
                       "temporary files of killed writers)")
        if data["stale"]:
            click.echo(f"STALE      {data['stale']}")
        for s in data["skipped_samples"]:
            click.echo(f"skipped    sample {s['index']} ({s['sample_id']}): {s['error']}")
        click.echo("OK: the store matches its raw data" if data["ok"] else "FAILED")
    if not data["ok"]:
        sys.exit(1)


def _cache_root(cache_dir: str | None) -> str:
    from eventkit.build import cache_root

    return cache_root(cache_dir)


@cache.command("ls")
@cache_option
@storage_options_option
@json_option
def ls(cache: str | None, storage_options: dict[str, Any], as_json: bool) -> None:
    """List the stores under the cache root: state, size, samples, dataset, split, parameters."""
    from eventkit.cache.inventory import list_stores

    root = _cache_root(cache)
    entries = list_stores(root, storage_options)
    if as_json:
        click.echo(json.dumps({"root": root, "stores": [e.to_json() for e in entries]}, sort_keys=True))
        return
    if not entries:
        click.echo(f"no stores under {root}")
        return
    for e in entries:
        what = (f"{e.dataset}/{e.split} {e.representation} T={e.params.get('T')}" if e.dataset else "?")
        if e.state == "incomplete":
            state = f"incomplete ({e.markers}/{e.n_shards} shards)"
        else:
            state = e.state
        click.echo(f"{state:<24} {human_bytes(e.bytes):>10} {str(e.n_samples or '-'):>7}  {what}  {e.url}"
                   + (f"  ({e.reason})" if e.reason else ""))
    total = sum(e.bytes for e in entries)
    click.echo(f"{len(entries)} stores, {human_bytes(total)} under {root}")



def _removal(removed: list[dict[str, Any]], as_json: bool, dry_run: bool, root: str | None = None,
             temp_files: list[str] | None = None) -> None:
    freed = sum(r["bytes"] for r in removed)
    if as_json:
        payload = {"root": root, "dry_run": dry_run, "removed": removed, "bytes": freed}
        if temp_files is not None:
            payload["temp_files_removed"] = temp_files
        click.echo(json.dumps(payload, sort_keys=True))
        return
    verb = "would remove" if dry_run else "removed"
    for r in removed:
        click.echo(f"{verb} {r['url']}  ({human_bytes(r['bytes'])}{', ' + r['reason'] if r.get('reason') else ''})")
    for name in temp_files or []:
        click.echo(f"removed temporary file {name} (its writer is gone)")
    click.echo(f"{verb} {len(removed)} stores, {human_bytes(freed)}")


@cache.command("rm")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--dataset", default=None, help="Remove the stores of this dataset (under --cache).")
@click.option("--split", default=None, help="... of this split only.")
@click.option("--representation", default=None, help="... of this representation only (frames, rate, ...).")
@click.option("--param", "params", multiple=True, callback=parse_key_values, metavar="KEY=VALUE",
              help="... whose parameter KEY has VALUE (repeatable; VALUE read as JSON), e.g. T=10.")
@cache_option
@click.option("--dry-run", is_flag=True, default=False, help="Only say what would be removed.")
@storage_options_option
@json_option
def rm(paths: tuple[str, ...], dataset: str | None, split: str | None, representation: str | None,
       params: dict[str, Any], cache: str | None, dry_run: bool, storage_options: dict[str, Any],
       as_json: bool) -> None:
    """Remove stores by PATH, or by --dataset (and --split, --representation, --param) under --cache."""
    from eventkit.cache.inventory import find_stores, list_stores, remove_store

    if paths and (dataset or split or representation or params):
        raise click.BadParameter("give store paths or --dataset/--split/--representation/--param, not both")
    root = None
    if paths:
        targets: list[dict[str, Any]] = [{"url": p, "bytes": 0} for p in paths]
    else:
        if dataset is None:
            raise click.BadParameter("give store paths, or --dataset NAME to remove its stores", param_hint="--dataset")
        root = _cache_root(cache)
        found = find_stores(list_stores(root, storage_options), dataset=dataset, split=split,
                            representation=representation, params=params)
        targets = [{"url": e.url, "bytes": e.bytes, "state": e.state} for e in found]
    removed: list[dict[str, Any]] = []
    for target in targets:
        if dry_run:
            removed.append(target)
            continue
        removed.append(dict(target, bytes=remove_store(target["url"], storage_options)))
    _removal(removed, as_json, dry_run, root)


@cache.command("gc")
@cache_option
@click.option("--min-age", type=float, default=3600.0, show_default=True, metavar="SECONDS",
              help="Keep stores written to more recently than this (a build may be running).")
@click.option("--dry-run", is_flag=True, default=False, help="Only say what would be removed.")
@storage_options_option
@json_option
def gc(cache: str | None, min_age: float, dry_run: bool, storage_options: dict[str, Any], as_json: bool) -> None:
    """Remove the incomplete and orphaned stores under the cache root (see `eventkit cache ls`), and the
    temporary files of killed writers from the stores that are kept."""
    from eventkit.cache.inventory import gc_candidates, list_stores, remove_stale_temp_files, remove_store

    if min_age < 0:
        raise click.BadParameter(f"must be >= 0 seconds, got {min_age:g}", param_hint="--min-age")
    root = _cache_root(cache)
    entries = list_stores(root, storage_options)
    candidates = gc_candidates(entries, min_age_s=min_age, now=time.time())
    removed, temp_files = [], []
    for e in candidates:
        freed = e.bytes if dry_run else remove_store(e.url, storage_options)
        removed.append({"url": e.url, "bytes": freed, "state": e.state, "reason": e.reason})
    if not dry_run:
        for e in entries:
            if e not in candidates:
                temp_files += [f"{e.url}/{k}" for k in remove_stale_temp_files(e, storage_options)]
    _removal(removed, as_json, dry_run, root, temp_files)
