"""The bytes of one store: get, put, create-if-absent, list, delete — on a local folder or an object store.

Every call goes to the storage itself: nothing is answered from a cached listing (s3fs keeps
listings in the client; a build on several workers would never see the markers the others
wrote). Object-store reads are ranged GETs (``bytes=0-`` for a whole object), so a read is
one request and a missing key one 404, without the HEAD that s3fs sends first otherwise.

Local writes go to a temporary file ``<path>.<host>-<pid>.tmp`` renamed over the target, so
a reader sees the old file or the whole new one; ``durable=True`` fsyncs the file before the
rename. A writer killed between the two leaves its temporary file: :meth:`StoreIO.stale_temp_files`
finds those whose process is gone (same host) or that are older than :data:`STALE_TMP_AGE_S`
(another host), and the builder removes them when it resumes the store.
"""
from __future__ import annotations

import inspect
import os
import re
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eventkit.cache.location import url_to_fs
from eventkit.errors import CacheError

__all__ = ["StoreIO", "STALE_TMP_AGE_S", "TMP_PATTERN"]

#: age (seconds) after which a temporary file written from another host is stale
STALE_TMP_AGE_S = 3600.0
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname() or "host")
#: ``<file>.<host>-<pid>.tmp``: the temporary files this module writes
TMP_PATTERN = re.compile(r"\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.tmp$")


def _pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs on this host (a zombie, killed but not reaped yet, is not running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):  # no /proc: trust kill(0)
        return True


def _fsync(path: str | Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # e.g. directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:  # filesystems without fsync on directories
        pass
    finally:
        os.close(fd)


def _mtime(info: Mapping[str, Any]) -> float:
    """Modification time of an fsspec ``info`` dict (s3fs: ``LastModified``), 0.0 when it has none."""
    value = info.get("LastModified", info.get("mtime", info.get("created")))
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class _Guarded:
    """An object-store filesystem whose failures (network, credentials, refused requests) become a
    one-line CacheError naming the location; FileNotFoundError and FileExistsError pass as they are."""

    def __init__(self, fs, url: str):
        self._fs, self._url = fs, url

    def __getattr__(self, name: str):
        value = getattr(self._fs, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            except (FileNotFoundError, FileExistsError):
                raise
            except Exception as exc:  # any failure of the store: one line naming it
                detail = " ".join(str(exc).split()) or type(exc).__name__
                raise CacheError(f"{self._url}: the object store failed ({type(exc).__name__}: {detail}); check "
                                 "the endpoint, the credentials and --storage-option") from exc
        return call


class StoreIO:
    """Key-value access to the files under one store location (keys are ``/``-separated, relative)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None):
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = url_to_fs(url, self.storage_options)
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.root = self.root.rstrip("/")
        self._create_mode = self._supports_create_mode()  # asked of the filesystem itself, before the guard
        if not self.local:
            self.fs = _Guarded(self.fs, url)

    def path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def _supports_create_mode(self) -> bool:
        """True when the filesystem's ``pipe_file`` takes ``mode="create"`` (s3fs: If-None-Match)."""
        if self.local:
            return False
        fn = getattr(self.fs, "_pipe_file", None) or getattr(self.fs, "pipe_file", None)
        if fn is None:
            return False
        try:
            return "mode" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            return False

    # -- reading ------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The whole object, or None when absent."""
        if self.local:
            try:
                with open(self.path(key), "rb") as fh:
                    return fh.read()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
        try:
            return self.fs.cat_file(self.path(key), start=0)
        except FileNotFoundError:
            return None

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The objects of ``keys`` that exist (remote: concurrent GETs)."""
        keys = list(keys)
        if self.local or not keys:
            out = {}
            for key in keys:
                data = self.get(key)
                if data is not None:
                    out[key] = data
            return out
        got = self.fs.cat_ranges([self.path(k) for k in keys], [0] * len(keys), [None] * len(keys),
                                 on_error="return")
        out = {}
        for key, data in zip(keys, got, strict=True):
            if isinstance(data, FileNotFoundError):
                continue
            if isinstance(data, BaseException):
                detail = " ".join(str(data).split()) or type(data).__name__
                raise CacheError(f"{self.url}: the object store failed ({type(data).__name__}: {detail}); check the "
                                 "endpoint, the credentials and --storage-option") from data
            out[key] = bytes(data)
        return out

    def get_range(self, key: str, start: int, stop: int | None = None) -> bytes:
        """Bytes ``[start, stop)`` of an object (``start < 0``: the last ``-start`` bytes).

        FileNotFoundError when absent.
        """
        if self.local:
            with open(self.path(key), "rb") as fh:
                if start < 0:
                    size = fh.seek(0, os.SEEK_END)
                    fh.seek(max(0, size + start))
                    return fh.read()
                fh.seek(start)
                return fh.read(-1 if stop is None else max(0, stop - start))
        return self.fs.cat_file(self.path(key), start=start, end=stop)

    def get_ranges(self, key: str, spans: list[tuple[int, int]]) -> list[bytes]:
        """Several byte spans ``[start, stop)`` of one object (remote: concurrent ranged GETs)."""
        if self.local or len(spans) <= 1:
            return [self.get_range(key, a, b) for a, b in spans]
        got = self.fs.cat_ranges([self.path(key)] * len(spans), [a for a, _ in spans], [b for _, b in spans],
                                 on_error="raise")
        return [bytes(g) for g in got]

    def list_files(self, prefix: str = "") -> dict[str, int]:
        """Every file under ``prefix`` (relative key -> size in bytes), read from the storage, never a cache."""
        return {k: size for k, (size, _) in self.list_files_detail(prefix).items()}

    def list_files_detail(self, prefix: str = "") -> dict[str, tuple[int, float]]:
        """Every file under ``prefix``: relative key -> (size in bytes, modification time in s since the epoch)."""
        base = self.path(prefix).rstrip("/")
        out: dict[str, tuple[int, float]] = {}
        if self.local:
            for folder, _, names in os.walk(base):
                for name in names:
                    full = os.path.join(folder, name)
                    try:
                        st = os.stat(full)
                    except FileNotFoundError:  # renamed away meanwhile
                        continue
                    out[os.path.relpath(full, self.root).replace(os.sep, "/")] = (st.st_size, st.st_mtime)
            return out
        self.fs.invalidate_cache(base)
        try:
            found = self.fs.find(base, withdirs=False, detail=True)
        except FileNotFoundError:
            return {}
        finally:
            self.fs.invalidate_cache(base)
        root = self.fs._strip_protocol(self.root).rstrip("/")
        for name, info in found.items():
            name = self.fs._strip_protocol(name)
            if name.startswith(root + "/"):
                out[name[len(root) + 1:]] = (int(info.get("size") or 0), _mtime(info))
        return out

    def list_names(self, prefix: str) -> list[str]:
        """Names directly under the folder ``prefix`` (fresh listing; [] when absent)."""
        if self.local:
            try:
                return sorted(os.listdir(self.path(prefix)))
            except (FileNotFoundError, NotADirectoryError):
                return []
        path = self.path(prefix)
        self.fs.invalidate_cache(path)
        try:
            names = self.fs.ls(path, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        finally:
            self.fs.invalidate_cache(path)
        return sorted(n.rstrip("/").rsplit("/", 1)[-1] for n in names)

    # -- writing ------------------------------------------------------------------------

    def _tmp_path(self, path: str) -> str:
        return f"{path}.{_HOST}-{os.getpid()}.tmp"

    def _write_tmp(self, path: str, data: bytes, durable: bool) -> str:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp_path(path)
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        return tmp

    def put(self, key: str, data: bytes, *, durable: bool = False) -> None:
        """Write (or atomically replace) an object. ``durable``: on disk before this returns (local)."""
        path = self.path(key)
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        tmp = self._write_tmp(path, data, durable)
        try:
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if durable:
            _fsync(os.path.dirname(path), directory=True)

    def put_new(self, key: str, data: bytes, *, durable: bool = False) -> bool:
        """Create an object only if it does not exist yet; True when this call created it.

        Local: hard link of a complete temporary file (atomic, fails if the name exists).
        s3fs: a PUT with ``If-None-Match: *``. Other filesystems: check then put (a concurrent
        writer may win the race; both then wrote complete objects).
        """
        path = self.path(key)
        if self.local:
            tmp = self._write_tmp(path, data, durable)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                Path(tmp).unlink(missing_ok=True)
            if durable:
                _fsync(os.path.dirname(path), directory=True)
            return True
        if self._create_mode:
            try:
                self.fs.pipe_file(path, data, mode="create")
            except FileExistsError:
                return False
            return True
        if self.get(key) is not None:
            return False
        self.fs.pipe_file(path, data)
        return True

    def delete(self, key: str) -> None:
        """Remove an object (nothing when absent)."""
        if self.local:
            Path(self.path(key)).unlink(missing_ok=True)
            return
        try:
            self.fs.rm_file(self.path(key))
        except FileNotFoundError:
            pass

    def delete_all(self) -> None:
        """Remove every file under the location and the location itself."""
        if self.local:
            import shutil

            shutil.rmtree(self.root, ignore_errors=True)
            return
        files = list(self.list_files())
        if files:
            self.fs.rm([self.path(k) for k in files])
        self.fs.invalidate_cache(self.root)

    def sync(self, keys: Iterable[str]) -> None:
        """fsync local files and their folders (object stores: a completed PUT is durable)."""
        if not self.local:
            return
        folders = set()
        for key in keys:
            path = self.path(key)
            if os.path.exists(path):
                _fsync(path)
                folders.add(os.path.dirname(path))
        for folder in sorted(folders):
            _fsync(folder, directory=True)

    # -- temporary files of killed writers ------------------------------------------------

    def stale_temp_files(self, files: Mapping[str, int] | None = None) -> list[str]:
        """Keys of temporary files left by writers that are gone (local stores only)."""
        if not self.local:
            return []
        files = self.list_files() if files is None else files
        now = time.time()
        stale = []
        for key in files:
            m = TMP_PATTERN.search(key)
            if m is None:
                continue
            if m["host"] == _HOST:
                if not _pid_alive(int(m["pid"])):
                    stale.append(key)
                continue
            try:
                age = now - os.stat(self.path(key)).st_mtime
            except FileNotFoundError:
                continue
            if age > STALE_TMP_AGE_S:
                stale.append(key)
        return sorted(stale)

    def remove_stale_temp_files(self) -> list[str]:
        """Remove :meth:`stale_temp_files`; returns their keys."""
        stale = self.stale_temp_files()
        for key in stale:
            self.delete(key)
        return stale

    def total_size(self) -> int:
        return int(sum(self.list_files().values()))
