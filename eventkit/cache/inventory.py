"""The stores under a cache root (``eventkit cache ls`` / ``rm`` / ``gc``).

One fresh listing of the root (object stores: one paged LIST) finds every
``<name>/<split>/<repr>-<hash12>.zarr`` folder; each store's ``zarr.json`` says what it holds.
A store is ``complete`` (marked complete), ``incomplete`` (a build that has not finished:
``markers`` of ``n_shards`` shards are written) or ``orphaned`` — it can never be used again
by this eventkit: no readable metadata (a creation that never finished), another format
version, a folder name that is not its parameters' hash, or a dataset manifest that has
changed since (its parameters name the old manifest's sha256).
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eventkit.cache.layout import ATTRS_KEY, FORMAT_VERSION, MARKER_GROUP
from eventkit.cache.location import is_url, normalize_url, params_hash
from eventkit.cache.objects import TMP_PATTERN, StoreIO
from eventkit.errors import CacheError

__all__ = ["StoreEntry", "list_stores", "find_stores", "remove_store", "gc_candidates", "remove_stale_temp_files"]

STATES = ("complete", "incomplete", "orphaned")


@dataclass
class StoreEntry:
    """One store found under a cache root (``reason`` says why it is orphaned)."""

    url: str
    state: str
    bytes: int
    modified: float
    dataset: str | None = None
    split: str | None = None
    representation: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    n_samples: int | None = None
    n_shards: int | None = None
    markers: int = 0
    format_version: Any = None
    reason: str | None = None
    temp_files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _join(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel}" if is_url(root) else str(Path(root) / rel)


def _current_manifests() -> dict[str, str]:
    from eventkit.datasets import get_dataset, list_datasets

    return {name: get_dataset(name).manifest_sha256 for name in list_datasets()}


def _classify(entry: StoreEntry, leaf: str, name: str, split: str, attrs: Any, manifests: dict[str, str]) -> None:
    if not isinstance(attrs, dict):
        entry.state, entry.reason = "orphaned", "not an eventkit store (no eventkit attributes)"
        return
    params: dict[str, Any] = attrs["params"] if isinstance(attrs.get("params"), dict) else {}
    entry.dataset, entry.split = attrs.get("dataset"), attrs.get("split")
    entry.representation, entry.params = attrs.get("representation"), params
    entry.n_samples, entry.n_shards = attrs.get("n_samples"), attrs.get("n_shards")
    entry.format_version = attrs.get("format_version")
    if entry.format_version != FORMAT_VERSION:
        entry.state = "orphaned"
        entry.reason = f"cache format version {entry.format_version!r} (this eventkit reads {FORMAT_VERSION})"
    elif (leaf != f"{entry.representation}-{params_hash(params)[:12]}.zarr"
          or (name, split) != (entry.dataset, entry.split)):
        entry.state, entry.reason = "orphaned", "its folder is not named after its dataset, split and parameters"
    elif entry.dataset not in manifests:
        entry.state, entry.reason = "orphaned", f"unknown dataset {entry.dataset!r}"
    elif params.get("manifest_sha256") != manifests[entry.dataset]:
        entry.state, entry.reason = "orphaned", f"built from an older {entry.dataset} manifest (another sha256)"
    else:
        entry.state = "complete" if attrs.get("complete") else "incomplete"


def list_stores(root: str, storage_options: Mapping[str, Any] | None = None) -> list[StoreEntry]:
    """Every store under the cache root ``root`` (folder or URL), sorted by location."""
    root = normalize_url(root)
    io = StoreIO(root, storage_options)
    grouped: dict[tuple[str, str, str], dict[str, tuple[int, float]]] = {}
    for key, info in io.list_files_detail().items():
        parts = key.split("/")
        if len(parts) >= 4 and parts[2].endswith(".zarr"):
            grouped.setdefault((parts[0], parts[1], parts[2]), {})["/".join(parts[3:])] = info
    docs = io.get_many([f"{n}/{s}/{leaf}/zarr.json" for (n, s, leaf), files in grouped.items() if "zarr.json" in files])
    manifests = _current_manifests()
    entries = []
    for (name, split, leaf), files in sorted(grouped.items()):
        rel = f"{name}/{split}/{leaf}"
        markers = sum(1 for k in files if k.startswith(f"{MARKER_GROUP}/") and k[len(MARKER_GROUP) + 1:-5].isdigit())
        entry = StoreEntry(url=_join(root, rel), state="orphaned", bytes=sum(size for size, _ in files.values()),
                           modified=max(mtime for _, mtime in files.values()), markers=markers,
                           temp_files=sorted(k for k in files if TMP_PATTERN.search(k)))
        raw = docs.get(f"{rel}/zarr.json")
        if raw is None:
            entry.reason = "no store metadata (a build stopped while creating it)"
        else:
            try:
                doc = json.loads(raw)
                attrs = doc.get("attributes", {}).get(ATTRS_KEY) if isinstance(doc, dict) else None
            except ValueError:
                attrs = None
            _classify(entry, leaf, name, split, attrs, manifests)
        entries.append(entry)
    return entries


def find_stores(entries: list[StoreEntry], *, dataset: str | None = None, split: str | None = None,
                representation: str | None = None, params: Mapping[str, Any] | None = None) -> list[StoreEntry]:
    """The entries matching every given criterion (``params``: values of the parameter dict)."""
    out = []
    for e in entries:
        if dataset is not None and e.dataset != dataset:
            continue
        if split is not None and e.split != split:
            continue
        if representation is not None and e.representation != representation:
            continue
        if params and any(e.params.get(k) != v for k, v in params.items()):
            continue
        out.append(e)
    return out


def gc_candidates(entries: list[StoreEntry], *, min_age_s: float, now: float | None = None) -> list[StoreEntry]:
    """Incomplete and orphaned stores untouched for ``min_age_s`` seconds (a running build keeps writing)."""
    now = time.time() if now is None else now
    return [e for e in entries if e.state != "complete" and now - e.modified >= min_age_s]


def remove_stale_temp_files(entry: StoreEntry, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Remove the temporary files of killed writers from a store that is kept (see ``StoreIO``)."""
    if not entry.temp_files:
        return []
    return StoreIO(entry.url, storage_options).remove_stale_temp_files()


def remove_store(url: str, storage_options: Mapping[str, Any] | None = None) -> int:
    """Delete the store at ``url`` (every file under it); returns the bytes freed.

    Refuses (CacheError) a location that is neither an eventkit store nor a folder holding
    only the files of one (an interrupted creation), so a mistyped path deletes nothing else.
    """
    url = normalize_url(url)
    io = StoreIO(url, storage_options)
    files = io.list_files()
    if not files:
        raise CacheError(f"{url}: nothing to remove (no files there)")
    raw = io.get("zarr.json")
    is_store = False
    if raw is not None:
        try:
            doc = json.loads(raw)
            is_store = isinstance(doc, dict) and isinstance(doc.get("attributes", {}).get(ATTRS_KEY), dict)
        except ValueError:
            is_store = False
    layout = ("zarr.json", f"{MARKER_GROUP}/", "frames/", "label/", "n_events/", "sample_id/")
    if not is_store and not (url.rstrip("/").endswith(".zarr") and all(k.startswith(layout) for k in files)):
        raise CacheError(f"{url} is not an eventkit cache store; refusing to delete it")
    freed = sum(files.values())
    io.delete_all()
    return int(freed)
