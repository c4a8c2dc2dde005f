"""Where stores live: canonical JSON, the parameter hash, store paths, URLs and their filesystems.

A location is a local path or an fsspec URL (``s3://``, ``gs://``, ``memory://``; ``file://``
is a local path). ``storage_options`` are the keyword arguments of the URL's fsspec
filesystem (for s3fs: ``endpoint_url``, ``key``, ``secret``, ``anon``, ``client_kwargs``...).
fsspec's own configuration also applies to every filesystem it creates: the environment
variables ``FSSPEC_<PROTOCOL>`` (a JSON object) and ``FSSPEC_<PROTOCOL>_<OPTION>``, and the
JSON/INI files of ``~/.config/fsspec/``; explicit ``storage_options`` win over them.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import CacheError, ParameterError

__all__ = ["canonical_json", "params_hash", "default_cache_root", "store_path", "normalize_url", "is_url",
           "check_storage_options", "url_to_fs"]


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


def is_url(location: str) -> bool:
    """True for ``<protocol>://...`` locations (``file://`` included; see :func:`normalize_url`)."""
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
    if is_url(root) and not root.startswith("file://"):
        return "/".join([root.rstrip("/"), name, split, leaf])
    return str(Path(normalize_url(root)) / name / split / leaf)


def normalize_url(url: str | os.PathLike) -> str:
    """A local absolute path for paths and ``file://`` URLs; other URLs without a trailing ``/``."""
    text = os.fspath(url)
    if text.startswith("file://"):
        text = text[len("file://"):]
    if is_url(text):
        return text.rstrip("/")
    return str(Path(text).expanduser().absolute())


def check_storage_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` as a plain dict with string keys (``None`` -> ``{}``); a ParameterError otherwise."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ParameterError(f"storage_options must be a dict of fsspec filesystem arguments, got "
                             f"{type(options).__name__}")
    bad = [k for k in options if not isinstance(k, str) or not k]
    if bad:
        raise ParameterError(f"storage_options keys must be non-empty strings, got {bad!r}")
    return dict(options)


def url_to_fs(url: str, storage_options: Mapping[str, Any] | None = None):
    """``(filesystem, root path)`` of a normalised location.

    Local paths get fsspec's local filesystem (``storage_options`` must then be empty);
    URLs get their protocol's filesystem with ``storage_options``. A CacheError names the URL
    when the protocol is unknown or its package is not installed (s3fs: ``pip install
    'eventkit-snn[s3]'``) or the options are refused.
    """
    import fsspec

    options = check_storage_options(storage_options)
    if not is_url(url):
        if options:
            raise ParameterError(f"{url}: storage options {sorted(options)} apply to URLs (s3://...), not to "
                                 "local paths")
        return fsspec.filesystem("file"), url
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        extra = " (pip install 'eventkit-snn[s3]')" if url.startswith(("s3://", "s3a://")) else ""
        raise CacheError(f"{url}: cannot open this location ({type(exc).__name__}: {exc}); object stores need the "
                         f"fsspec filesystem package of their protocol{extra}") from None
    except (ValueError, TypeError) as exc:
        raise CacheError(f"{url}: cannot open this location ({type(exc).__name__}: {exc}); for object stores "
                         "install the fsspec filesystem package of the protocol (s3fs, gcsfs, adlfs, ...) and "
                         "check --storage-option") from None
