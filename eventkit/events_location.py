"""Where an event store lives: a local folder, or an fsspec URL opened with its storage options.

An event store sits beside the frame stores of its cache root, at a location of the same
kind (``eventkit.cache.store_path``), and is reached with the same ``storage_options``: the
keyword arguments of the URL's fsspec filesystem (s3fs: ``endpoint_url``, ``key``,
``secret``, ...; see :mod:`eventkit.cache.location`). Storage options apply to URLs only;
given for a local path they are a :class:`~eventkit.errors.ParameterError`.

Local paths keep their fast paths: files are written to a temporary file renamed into
place, a finished group is a temporary folder ``<store>.<host>.<pid>.tmp`` renamed into
place, and temporary groups of killed builds on this host are removed. Object stores have
no rename: a file is one put, and the group is written in place and marked complete last,
so they never hold a temporary group. A failing request to an object store (unreachable
endpoint, refused credentials) is a :class:`~eventkit.errors.CacheError` naming the URL.
"""
from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eventkit.cache.location import check_storage_options, is_url, normalize_url, url_to_fs
from eventkit.errors import CacheError, ParameterError

__all__ = ["location", "checked_options", "url_fs", "zarr_options", "put_file", "get_file", "remove_tree",
           "disk_size", "tmp_suffix", "remove_stale_tmp", "publish_group"]


def location(url: str | os.PathLike) -> str:
    """A store location as zarr opens it: fsspec URLs without a trailing ``/``, ``file://`` and ``~``
    expanded to normalised absolute local paths."""
    text = normalize_url(url)
    return text if is_url(text) else os.path.normpath(text)


def checked_options(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``storage_options`` as a plain dict; a ParameterError when they are given for a local path."""
    options = check_storage_options(storage_options)
    if options and not is_url(url):
        raise ParameterError(f"{url}: storage options {sorted(options)} apply to URLs (s3://...), not to local paths")
    return options


def url_fs(url: str, storage_options: Mapping[str, Any] | None = None):
    """``(filesystem, path)`` of a local path or fsspec URL; a CacheError naming an unusable URL (also
    when its filesystem refuses the options, e.g. missing credentials)."""
    options = checked_options(url, storage_options)
    try:
        return url_to_fs(url, options)
    except (CacheError, ParameterError):
        raise
    except Exception as exc:
        raise _unreachable(url, exc) from exc


def zarr_options(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments that make ``zarr.open_group(url, ...)`` reach ``url`` with the options."""
    options = checked_options(url, storage_options)
    return {"storage_options": options} if is_url(url) else {}


def _unreachable(url: str, exc: BaseException) -> CacheError:
    return CacheError(f"{url}: request failed ({type(exc).__name__}: {exc}); check the endpoint and credentials "
                      "(storage_options, --storage-option)")


def put_file(url: str, payload: bytes, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write a whole file atomically: local temp file + rename, object stores one put."""
    if is_url(url):
        fs, path = url_fs(url, storage_options)
        try:
            fs.pipe_file(path, payload)
        except Exception as exc:
            raise _unreachable(url, exc) from exc
        return
    checked_options(url, storage_options)
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def get_file(url: str, storage_options: Mapping[str, Any] | None = None) -> bytes | None:
    """A whole file's bytes; None when it does not exist (an object store that cannot be reached: CacheError)."""
    fs, path = url_fs(url, storage_options)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None
    except Exception as exc:
        if is_url(url):
            raise _unreachable(url, exc) from exc
        if isinstance(exc, OSError):  # e.g. a folder at the file's path: as absent
            return None
        raise


def remove_tree(url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Remove a folder (a prefix of an object store) and everything under it; nothing there is fine."""
    fs, path = url_fs(url, storage_options)
    try:
        fs.rm(path, recursive=True)
    except (FileNotFoundError, OSError):
        pass


def disk_size(url: str, storage_options: Mapping[str, Any] | None = None) -> int:
    """Bytes under a store (0 when it cannot be listed)."""
    fs, path = url_fs(url, storage_options)
    try:
        if is_url(url):
            fs.invalidate_cache(path)  # a listing cached before the build finished would miss its objects
        return int(fs.du(path, total=True))
    except (FileNotFoundError, OSError):
        return 0


def tmp_suffix() -> str:
    """``.<host>.<pid>.tmp``: whose temporary group it is (the cache may be shared by several hosts)."""
    return f".{socket.gethostname()}.{os.getpid()}.tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_tmp(url: str) -> list[str]:
    """Remove the temporary groups ``<url>.<host>.<pid>.tmp`` that killed builds on this host left
    (their process is gone); a live builder's, or another host's, are kept. Returns the removed paths.
    Object stores never hold one (their groups are written in place): nothing to list there."""
    if is_url(url):
        return []
    store = Path(url)
    prefix = f"{store.name}.{socket.gethostname()}."
    removed = []
    try:
        candidates = [p for p in store.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return []
    for p in candidates:
        pid = p.name[len(prefix):-len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(str(p))
    return removed


def publish_group(tmp: str, url: str) -> None:
    """Rename the finished local group ``tmp`` to ``url``; when another process got there first its
    group (the same store) stays and ``tmp`` is dropped."""
    try:
        os.rename(tmp, url)
    except OSError:  # another process finished first: its store is the same
        if not Path(url, "zarr.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
