"""Where stores live: canonical JSON, the parameter hash, store paths, URL normalisation, filesystems."""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import fsspec
import numpy as np

from eventkit.errors import CacheError, ParameterError

def _plain(obj: Any, where: str = "params") -> Any:
    """``obj`` as plain JSON types (dict keys sorted, tuples -> lists, NumPy scalars -> Python)."""
    if isinstance(obj, dict):
        out = {}
        for key in sorted(obj, key=str):
            if not isinstance(key, str):
                raise ParameterError(f"{where}: keys must be strings, got {key!r} ({type(key).__name__})")
            out[key] = _plain(obj[key], f"{where}.{key}")
        return out
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            raise ParameterError(f"{where}: non-finite number {obj!r} cannot be stored in the cache metadata")
        return value
    if isinstance(obj, Path):
        return obj.as_posix()
    raise ParameterError(f"{where}: value {obj!r} of type {type(obj).__name__} is not JSON data "
                         "(use str/int/float/bool/None, lists or dicts of them)")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON text of ``obj``: sorted keys, no spaces, ASCII only."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def params_hash(params: dict) -> str:
    """sha256 hex digest of the canonical JSON of a parameter dict (the store key)."""
    return hashlib.sha256(canonical_json(params).encode("ascii")).hexdigest()


def default_cache_root() -> str:
    """``$EVENTKIT_CACHE`` when set, else ``~/.cache/eventkit``."""
    return os.environ.get("EVENTKIT_CACHE") or str(Path("~/.cache/eventkit").expanduser())


def _is_url(location: str) -> bool:
    return "://" in location


def store_path(cache_root: str | os.PathLike | None, name: str, split: str, representation: str,
               params: dict) -> str:
    """Location of the store of (dataset ``name``, ``split``, ``representation``, ``params``).

    ``<cache_root>/<name>/<split>/<representation>-<params_hash[:12]>.zarr``; ``cache_root``
    is a folder or an fsspec URL, ``None`` meaning :func:`default_cache_root`. The hash is
    over the canonical JSON of ``params``, so key order and tuple/list do not matter.
    """
    for label, part in (("name", name), ("split", split), ("representation", representation)):
        if not part or "/" in part or part in (".", ".."):
            raise ParameterError(f"store_path: {label}={part!r} must be a non-empty name without '/'")
    root = default_cache_root() if cache_root is None else os.fspath(cache_root)
    leaf = f"{representation}-{params_hash(params)[:12]}.zarr"
    if _is_url(root):
        return "/".join([root.rstrip("/"), name, split, leaf])
    return str(Path(root).expanduser() / name / split / leaf)


def _normalize(url: str | os.PathLike) -> str:
    """A local absolute path for paths and ``file://`` URLs; other URLs unchanged."""
    text = os.fspath(url)
    if text.startswith("file://"):
        text = text[len("file://"):]
    if _is_url(text):
        return text.rstrip("/")
    return str(Path(text).expanduser().absolute())


def _url_to_fs(url: str):
    """``fsspec.core.url_to_fs(url)``, or a CacheError naming the URL (unknown protocol, or the
    filesystem package for it not installed, e.g. s3fs for ``s3://``)."""
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise CacheError(f"{url}: cannot open this location ({type(exc).__name__}: {exc}); for object stores "
                         "install the fsspec filesystem package of the protocol (s3fs, gcsfs, adlfs, ...)") from None

