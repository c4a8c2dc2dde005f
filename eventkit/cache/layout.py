"""The layout of a store, format version 2: its keys, its metadata documents, its attributes.

The ``zarr.json`` documents are rendered by zarr itself (into a memory store) and written
by eventkit as whole files, create-if-absent, so that two builders creating the same store
at once both succeed and leave the same bytes. Arrays (``S`` = shard size, ``N`` samples)::

    frames      [N, *frame_shape] uint8/uint16, inner chunk (1, *frame_shape), shard (S, *frame_shape)
                inner codecs bytes, zstd(3), crc32c; index bytes, crc32c at the end
    label       int64 [N], chunk (S,), bytes, zstd(3), crc32c, fill -1
    n_events    int64 [N], chunk (S,), bytes, zstd(3), crc32c, fill 0
    sample_id   string [N], chunk (S,), vlen-utf8, zstd(3), crc32c, fill ""
    completion/ an empty group; completion/<k>.json is shard k's marker

Stores of format version 1 (no checksum per chunk) are refused with a message saying to
rebuild them.
"""
from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np

from eventkit.cache.codec import ZSTD_LEVEL
from eventkit.cache.location import _plain
from eventkit.errors import CacheError, ParameterError

__all__ = ["FORMAT_VERSION", "ATTRS_KEY", "MARKER_GROUP", "ARRAYS", "REQUIRED_META", "DERIVED_KEYS",
           "COMPLETION_KEYS", "build_attrs", "render_group", "render_documents", "frames_key", "chunk_key",
           "marker_key", "layout_keys", "check_attrs"]

FORMAT_VERSION = 2
ATTRS_KEY = "eventkit"
MARKER_GROUP = "completion"
ARRAYS = ("frames", "label", "n_events", "sample_id")
SMALL_ARRAYS = ("label", "n_events", "sample_id")
REQUIRED_META = ("dataset", "split", "representation", "params")
#: attributes the store derives itself (never taken from ``meta``)
DERIVED_KEYS = ("format_version", "n_samples", "shard_size", "n_shards", "frame_shape", "dtype", "complete")
#: attributes set when the store is marked complete (not compared on resume)
COMPLETION_KEYS = ("complete", "skipped_samples", "n_events_total")
_MARKER_DESCRIPTION = ("eventkit per-shard completion markers <k>.json (n_samples, n_events, sha256 of the frames, "
                       "labels_sha256 of the labels and sample ids)")


def frames_key(k: int, ndim: int) -> str:
    """Key of shard ``k``'s file of ``frames`` (``ndim`` = dimensions of one sample)."""
    return f"frames/c/{int(k)}" + "/0" * int(ndim)


def chunk_key(name: str, k: int) -> str:
    """Key of chunk ``k`` of a small array (``label``, ``n_events``, ``sample_id``)."""
    return f"{name}/c/{int(k)}"


def marker_key(k: int) -> str:
    return f"{MARKER_GROUP}/{int(k)}.json"


def layout_keys(n_shards: int, ndim: int) -> set[str]:
    """Every key of a complete store."""
    keys = {"zarr.json", f"{MARKER_GROUP}/zarr.json", *(f"{a}/zarr.json" for a in ARRAYS)}
    for k in range(n_shards):
        keys.add(frames_key(k, ndim))
        keys.update(chunk_key(a, k) for a in SMALL_ARRAYS)
        keys.add(marker_key(k))
    return keys


def build_attrs(meta: dict, frame_shape: tuple[int, ...], dtype: Any, n_samples: int, shard_size: int) -> dict:
    """The group's ``eventkit`` attributes of a new store (``complete`` false)."""
    from eventkit import __version__
    from eventkit.cache.location import params_hash

    if not isinstance(meta, dict):
        raise ParameterError(f"CacheStore.create: meta must be a dict, got {type(meta).__name__}")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ParameterError(f"CacheStore.create: meta lacks {missing} (needs {list(REQUIRED_META)})")
    if not isinstance(meta["params"], dict):
        raise ParameterError("CacheStore.create: meta['params'] must be the full parameter dict")
    clash = [k for k in (*DERIVED_KEYS, *COMPLETION_KEYS) if k in meta and k != "format_version"]
    if clash:
        raise ParameterError(f"CacheStore.create: meta must not set {clash}; pass them as arguments")
    if int(n_samples) < 1:
        raise ParameterError(f"CacheStore.create: n_samples={n_samples} must be >= 1")
    if int(shard_size) < 1:
        raise ParameterError(f"CacheStore.create: shard_size={shard_size} must be >= 1")
    shape = tuple(int(v) for v in frame_shape)
    if not shape or min(shape) < 1:
        raise ParameterError(f"CacheStore.create: frame_shape={tuple(frame_shape)} must be non-empty, all >= 1")
    dt = np.dtype(dtype)
    if dt.kind not in "ui":
        raise ParameterError(f"CacheStore.create: dtype={dt} must be an integer dtype (uint8/uint16): "
                             "frames are counts, converted to float on the device")
    attrs = dict(meta)
    attrs.setdefault("params_hash", params_hash(meta["params"]))
    attrs.setdefault("eventkit_version", __version__)
    attrs.setdefault("manifest_sha256", None)
    attrs.setdefault("classes", [])
    attrs.update(format_version=FORMAT_VERSION, n_samples=int(n_samples), shard_size=int(shard_size),
                 n_shards=-(-int(n_samples) // int(shard_size)), frame_shape=list(shape),
                 dtype=dt.newbyteorder("<").str if dt.itemsize > 1 else dt.str, complete=False)
    return _plain(attrs, "meta")


def check_attrs(url: str, attrs: Any) -> dict:
    """``attrs`` (the group's ``eventkit`` attributes) checked: a known format version and every key."""
    if not isinstance(attrs, dict):
        raise CacheError(f"{url} is a Zarr group but not an eventkit cache store (no '{ATTRS_KEY}' attributes); "
                         "refusing to use it (choose another --cache folder or delete it)")
    version = attrs.get("format_version")
    if version == 1:
        raise CacheError(f"{url}: cache format version 1 (no checksum per chunk) is no longer read; remove it "
                         f"(`eventkit cache rm {url}`) and rerun the build command to rebuild it")
    if version != FORMAT_VERSION:
        raise CacheError(f"{url}: cache format_version {version!r} is not supported (this eventkit reads version "
                         f"{FORMAT_VERSION}); upgrade eventkit or rebuild the store")
    missing = [k for k in (*REQUIRED_META, *DERIVED_KEYS) if k not in attrs]
    if missing:
        raise CacheError(f"{url}: eventkit metadata lacks {missing}; the store is damaged — delete and rebuild it")
    return _plain(attrs)


def render_group(attrs: dict) -> bytes:
    """The group ``zarr.json`` holding ``attrs`` under :data:`ATTRS_KEY`, as zarr writes it."""
    import zarr
    from zarr.storage import MemoryStore

    store = MemoryStore()
    zarr.open_group(store, mode="w", attributes={ATTRS_KEY: _plain(attrs)})
    return store._store_dict["zarr.json"].to_bytes()


@functools.lru_cache(maxsize=32)
def _render_arrays(n: int, s: int, shape: tuple[int, ...], dtype: str) -> tuple[tuple[str, bytes], ...]:
    import zarr
    from zarr.codecs import Crc32cCodec, ZstdCodec
    from zarr.storage import MemoryStore

    store = MemoryStore()
    group = zarr.open_group(store, mode="w")

    def compressors():
        return [ZstdCodec(level=ZSTD_LEVEL, checksum=False), Crc32cCodec()]

    group.create_array("frames", shape=(n, *shape), chunks=(1, *shape), shards=(s, *shape), dtype=np.dtype(dtype),
                       compressors=compressors(), fill_value=0)
    group.create_array("label", shape=(n,), chunks=(s,), dtype="<i8", compressors=compressors(), fill_value=-1)
    group.create_array("n_events", shape=(n,), chunks=(s,), dtype="<i8", compressors=compressors(), fill_value=0)
    group.create_array("sample_id", shape=(n,), chunks=(s,), dtype=str, compressors=compressors(), fill_value="")
    group.create_group(MARKER_GROUP, attributes={"description": _MARKER_DESCRIPTION})
    return tuple((k, v.to_bytes()) for k, v in sorted(store._store_dict.items()) if k != "zarr.json")


def render_documents(attrs: dict) -> dict[str, bytes]:
    """Every ``zarr.json`` of a store with these attributes: arrays, marker group, then the group (last key)."""
    docs = dict(_render_arrays(int(attrs["n_samples"]), int(attrs["shard_size"]), tuple(attrs["frame_shape"]),
                               str(attrs["dtype"])))
    docs["zarr.json"] = render_group(attrs)
    return docs


def parse_group(url: str, raw: bytes) -> dict:
    """The ``eventkit`` attributes of a group ``zarr.json`` (checked with :func:`check_attrs`)."""
    try:
        doc = json.loads(raw)
        attrs = doc.get("attributes", {}).get(ATTRS_KEY) if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or doc.get("zarr_format") != 3 or doc.get("node_type") != "group":
            raise ValueError("not a Zarr v3 group document")
    except (ValueError, AttributeError) as exc:
        raise CacheError(f"{url}: cannot read the store's zarr.json ({type(exc).__name__}: {exc}); it is damaged — "
                         "delete it and rebuild (`eventkit frames ...`)") from None
    return check_attrs(url, attrs)
