"""The :class:`CacheStore` façade (see the package docstring for the layout)."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from numcodecs import Zstd
from zarr.codecs import ZstdCodec

from eventkit import __version__
from eventkit.cache.files import (_fsync_path, _frames_sha256, _int_column, _labels_sha256, _mismatch_message,
                                  _replace_atomically, _without_complete, _zstd_content_size)
from eventkit.cache.location import _is_url, _normalize, _plain, _url_to_fs, canonical_json, params_hash
from eventkit.errors import CacheError, ParameterError

FORMAT_VERSION = 1
ATTRS_KEY = "eventkit"
ZSTD_LEVEL = 3
MARKER_GROUP = "completion"
REQUIRED_META = ("dataset", "split", "representation", "params")
# group attributes that CacheStore.create derives itself (never taken from ``meta``)
_ZSTD = Zstd()  # decoder of the inner chunks (fast read path)
_ZSTD_WRITE = Zstd(level=ZSTD_LEVEL, checksum=False)  # encoder of the inner chunks (fast write path)
DERIVED_KEYS = ("format_version", "n_samples", "shard_size", "n_shards", "frame_shape", "dtype", "complete")


# ---------------------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------------------

class CacheStore:
    """A sharded Zarr v3 frame store (see the module docstring for the layout).

    Use :meth:`create` to write (or resume) and :meth:`open` to read. Attributes:
    ``url`` (normalised location), ``meta`` (the group's ``eventkit`` attributes),
    ``n_samples``, ``shard_size``, ``n_shards``, ``frame_shape`` (e.g. ``(T, P, H, W)``),
    ``dtype`` (NumPy integer dtype of ``frames``).
    """

    url: str
    meta: dict
    n_samples: int
    shard_size: int
    n_shards: int
    frame_shape: tuple
    dtype: np.dtype

    def __init__(self, url: str, group: zarr.Group, meta: dict, *, writable: bool):
        self.url = url
        self.meta = meta
        self.n_samples = int(meta["n_samples"])
        self.shard_size = int(meta["shard_size"])
        self.n_shards = int(meta["n_shards"])
        self.frame_shape = tuple(int(v) for v in meta["frame_shape"])
        self.dtype = np.dtype(meta["dtype"])
        self._group = group
        self._writable = writable
        self._fs, self._root = _url_to_fs(url)
        self._labels_cache: np.ndarray | None = None
        try:
            self._frames = group["frames"]
            self._label = group["label"]
            self._n_events = group["n_events"]
            self._sample_id = group["sample_id"]
        except KeyError as exc:
            raise CacheError(f"{url}: cache store lacks the array {exc}; it is damaged — delete it and "
                             "rebuild (`eventkit frames ...`)") from None
        except Exception as exc:  # noqa: BLE001 - e.g. an array's zarr.json cut short
            raise CacheError(f"{url}: cannot open the store's arrays ({type(exc).__name__}: {exc}); it is "
                             "damaged — delete it and rebuild (`eventkit frames ...`)") from exc

    def __repr__(self) -> str:
        m = self.meta
        return (f"CacheStore({self.url!r}, dataset={m.get('dataset')!r}, split={m.get('split')!r}, "
                f"n_samples={self.n_samples}, frame_shape={self.frame_shape}, dtype={self.dtype.name}, "
                f"shards={self.n_shards}x{self.shard_size}, complete={m.get('complete')})")

    # pickling: only the location travels (DataLoader workers re-open the store themselves)
    def __getstate__(self) -> dict:
        return {"url": self.url, "writable": self._writable}

    def __setstate__(self, state: dict) -> None:
        other = (CacheStore.create_resume(state["url"]) if state["writable"]
                 else CacheStore.open(state["url"], require_complete=False))
        self.__dict__.update(other.__dict__)

    # -- construction ---------------------------------------------------------------

    @classmethod
    def create(cls, url: str | os.PathLike, *, meta: dict, frame_shape: tuple[int, ...], dtype: Any,
               n_samples: int, shard_size: int) -> "CacheStore":
        """Create a store, or re-open it for resume when one with identical metadata exists.

        ``meta`` must hold ``dataset``, ``split``, ``representation`` and ``params`` (the full
        parameter dict); ``params_hash``, ``eventkit_version``, ``manifest_sha256`` (None) and
        ``classes`` ([]) are filled in when absent. ``frame_shape`` is one sample's shape
        (vision ``(T, P, H, W)``), ``dtype`` an integer dtype (uint8/uint16), ``shard_size``
        samples per shard. Raises :class:`CacheError` when a store exists at ``url`` with other
        metadata (both parameter sets are named) or when ``url`` holds something else.
        """
        url = _normalize(url)
        attrs = cls._build_attrs(meta, frame_shape, dtype, n_samples, shard_size)
        fs, root = _url_to_fs(url)
        group_json = f"{root}/zarr.json"
        if fs.exists(group_json):
            try:
                group = zarr.open_group(url, mode="r+")
            except Exception as exc:  # noqa: BLE001 - e.g. a zarr.json cut short: an unreadable store
                raise CacheError(f"{url}: cannot open the existing Zarr group ({type(exc).__name__}: {exc}); "
                                 "it is damaged — delete it and rebuild") from exc
            old = group.attrs.get(ATTRS_KEY)
            if not isinstance(old, dict):
                raise CacheError(f"{url} is a Zarr group but not an eventkit cache store; refusing to write "
                                 "into it (choose another --cache folder or delete it)")
            cls._check_version(url, old)
            if _without_complete(old) != _without_complete(attrs):
                raise CacheError(_mismatch_message(url, old, attrs))
            try:
                cls._ensure_arrays(group, attrs)
            except Exception as exc:  # noqa: BLE001 - e.g. an array's zarr.json cut short
                raise CacheError(f"{url}: cannot open the store's arrays ({type(exc).__name__}: {exc}); it is "
                                 "damaged — delete it and rebuild") from exc
            return cls(url, group, _plain(old), writable=True)
        if fs.exists(root) and fs.isdir(root) and fs.ls(root, detail=False):
            raise CacheError(f"{url} exists and is not empty but is not a Zarr store; refusing to write "
                             "into it (choose another --cache folder or delete it)")
        if fs.exists(root) and not fs.isdir(root):
            raise CacheError(f"{url} is a file, not a cache store folder; remove it or choose another --cache")
        group = zarr.open_group(url, mode="w-", attributes={ATTRS_KEY: attrs})
        cls._ensure_arrays(group, attrs)
        return cls(url, group, attrs, writable=True)

    @classmethod
    def create_resume(cls, url: str | os.PathLike) -> "CacheStore":
        """Re-open an existing eventkit store for writing (what :meth:`create` does on resume)."""
        return cls._open(url, require_complete=False, writable=True)

    @classmethod
    def open(cls, url: str | os.PathLike, *, require_complete: bool = True) -> "CacheStore":
        """Open a store for reading.

        Raises :class:`CacheError` when nothing is at ``url``, when it is not an eventkit
        store, when its ``format_version`` is unknown, or (``require_complete=True``) when
        shards are missing — the message says which command resumes the build.
        """
        return cls._open(url, require_complete=require_complete, writable=False)

    @classmethod
    def _open(cls, url: str | os.PathLike, *, require_complete: bool, writable: bool) -> "CacheStore":
        """:meth:`open` (``writable=False``) or :meth:`create_resume` (``writable=True``): one
        group open with the same checks either way."""
        url = _normalize(url)
        fs, root = _url_to_fs(url)
        if not fs.exists(f"{root}/zarr.json"):
            what = "folder is not a Zarr store" if fs.exists(root) else "nothing found"
            raise CacheError(f"{url}: no eventkit cache store ({what}); build it with `eventkit frames NAME --T N` "
                             "(event datasets) or `eventkit encode NAME ...` (static datasets)")
        try:
            group = zarr.open_group(url, mode="r+" if writable else "r")
        except Exception as exc:  # noqa: BLE001 - any zarr failure means an unreadable store
            raise CacheError(f"{url}: cannot open the Zarr group ({type(exc).__name__}: {exc})") from exc
        attrs = group.attrs.get(ATTRS_KEY)
        if not isinstance(attrs, dict):
            raise CacheError(f"{url} is a Zarr group but not an eventkit cache store (no '{ATTRS_KEY}' attributes)")
        cls._check_version(url, attrs)
        store = cls(url, group, _plain(attrs), writable=writable)
        if require_complete:
            missing = store.missing_shards()
            if missing or not attrs.get("complete"):
                raise CacheError(store._incomplete_message(missing))
        return store

    @staticmethod
    def _check_version(url: str, attrs: dict) -> None:
        version = attrs.get("format_version")
        if version != FORMAT_VERSION:
            raise CacheError(f"{url}: cache format_version {version!r} is not supported by eventkit {__version__} "
                             f"(it reads version {FORMAT_VERSION}); upgrade eventkit or rebuild the store")
        missing = [k for k in (*REQUIRED_META, *DERIVED_KEYS) if k not in attrs]
        if missing:
            raise CacheError(f"{url}: eventkit metadata lacks {missing}; the store is damaged — delete and rebuild it")

    @staticmethod
    def _build_attrs(meta: dict, frame_shape: tuple[int, ...], dtype: Any, n_samples: int,
                     shard_size: int) -> dict:
        if not isinstance(meta, dict):
            raise ParameterError(f"CacheStore.create: meta must be a dict, got {type(meta).__name__}")
        missing = [k for k in REQUIRED_META if k not in meta]
        if missing:
            raise ParameterError(f"CacheStore.create: meta lacks {missing} (needs {list(REQUIRED_META)})")
        if not isinstance(meta["params"], dict):
            raise ParameterError("CacheStore.create: meta['params'] must be the full parameter dict")
        clash = [k for k in DERIVED_KEYS if k in meta and k != "format_version"]
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

    @staticmethod
    def _ensure_arrays(group: zarr.Group, attrs: dict) -> None:
        """Create the arrays that do not exist yet (all of them for a new store)."""
        n, s = attrs["n_samples"], attrs["shard_size"]
        shape = tuple(attrs["frame_shape"])
        existing = set(group.array_keys())
        config = {"write_empty_chunks": True}
        zstd = ZstdCodec(level=ZSTD_LEVEL, checksum=False)
        if "frames" not in existing:
            group.create_array("frames", shape=(n, *shape), chunks=(1, *shape), shards=(s, *shape),
                               dtype=np.dtype(attrs["dtype"]), compressors=zstd, fill_value=0, config=config)
        for name in ("label", "n_events"):
            if name not in existing:
                group.create_array(name, shape=(n,), chunks=(s,), dtype="<i8", compressors=zstd,
                                   fill_value=-1 if name == "label" else 0, config=config)
        if "sample_id" not in existing:
            group.create_array("sample_id", shape=(n,), chunks=(s,), dtype=str, compressors=zstd,
                               fill_value="", config=config)
        if MARKER_GROUP not in set(group.group_keys()):
            group.create_group(MARKER_GROUP, attributes={
                "description": "eventkit per-shard completion markers <k>.json (n_samples, n_events, sha256 of the frames, "
                               "labels_sha256 of the labels and sample ids)"})

    # -- shards ---------------------------------------------------------------------

    def shard_range(self, k: int) -> tuple[int, int]:
        """Sample index range ``[start, stop)`` of shard ``k``."""
        k = self._check_shard(k)
        return k * self.shard_size, min((k + 1) * self.shard_size, self.n_samples)

    def _check_shard(self, k: int) -> int:
        if not isinstance(k, (int, np.integer)) or not 0 <= int(k) < self.n_shards:
            raise ParameterError(f"{self.url}: shard {k!r} out of range (store has {self.n_shards} shards)")
        return int(k)

    def _marker_key(self, k: int) -> str:
        return f"{self._root}/{MARKER_GROUP}/{k}.json"

    def write_shard(self, k: int, frames: np.ndarray, labels: Sequence[int] | np.ndarray,
                    n_events: Sequence[int] | np.ndarray, sample_ids: Sequence[str]) -> None:
        """Write shard ``k`` whole, then its completion marker.

        ``frames`` ``[n, *frame_shape]`` of the store's dtype, ``labels``/``n_events`` ``[n]``
        integers, ``sample_ids`` ``n`` strings, with ``n`` the shard's sample count. An old
        marker is removed first, so an interrupted rewrite is never served.
        """
        if not self._writable:
            raise CacheError(f"{self.url}: store opened read-only; use CacheStore.create(...) to write or resume")
        start, stop = self.shard_range(k)
        n = stop - start
        frames = np.asarray(frames)
        if frames.shape != (n, *self.frame_shape):
            raise ParameterError(f"{self.url}: shard {k} frames have shape {frames.shape}, expected "
                                 f"{(n, *self.frame_shape)} (samples {start}..{stop - 1})")
        if frames.dtype != self.dtype:
            raise ParameterError(f"{self.url}: shard {k} frames are {frames.dtype}, the store holds {self.dtype}")
        labels_arr = _int_column(labels, n, "labels", self.url, k)
        n_events_arr = _int_column(n_events, n, "n_events", self.url, k)
        ids = [str(s) for s in sample_ids]
        if len(ids) != n:
            raise ParameterError(f"{self.url}: shard {k} got {len(ids)} sample_ids, expected {n}")
        if self._fs.exists(self._marker_key(k)):
            self._fs.rm(self._marker_key(k))
        frames = np.ascontiguousarray(frames)
        if self._fast_ok():
            self._write_frames_shard(k, frames)
        else:
            self._frames[start:stop] = frames
        if self._small_fast_ok():
            self._write_small_chunks(k, labels_arr, n_events_arr, ids)
        else:
            self._label[start:stop] = labels_arr
            self._n_events[start:stop] = n_events_arr
            self._sample_id[start:stop] = np.array(ids, dtype=object)
        self._sync_shard_data(k)  # the data reach the disk before the marker that vouches for them
        marker = {"format_version": FORMAT_VERSION, "shard": int(k), "start": start, "stop": stop,
                  "n_samples": n, "n_events": int(n_events_arr.sum()), "sha256": _frames_sha256(frames),
                  "labels_sha256": _labels_sha256(labels_arr, ids)}
        self._write_marker(k, (canonical_json(marker) + "\n").encode("ascii"))

    def _sync_shard_data(self, k: int) -> None:
        """fsync shard ``k``'s files (frames shard, label/n_events/sample_id chunks) and their
        directories on a local store, so that a power loss after the (fsynced) marker cannot
        leave a marker vouching for data that never reached the disk. Object stores: no-op
        (a completed put is durable)."""
        if _is_url(self.url):
            return
        paths = [Path(self._shard_key(k))] + [Path(f"{self._root}/{name}/c/{k}")
                                              for name in ("label", "n_events", "sample_id")]
        for path in paths:
            if path.exists():
                _fsync_path(path)
        for folder in {path.parent for path in paths}:
            if folder.exists():
                _fsync_path(folder)

    def _write_frames_shard(self, k: int, frames: np.ndarray) -> None:
        """Encode shard ``k`` of ``frames`` as one Zarr v3 sharding-codec file and put it.

        Same bytes as zarr's own writer for this layout (zstd per inner chunk, chunks in
        C order from offset 0, then the index of little-endian uint64 (offset, nbytes)
        pairs and its crc32c), without zarr's per-chunk async overhead -- except for an
        all-zero sample, which zarr leaves out of the shard (index entry "absent", read
        back as the fill value 0) and this writer stores compressed; both read back the
        same frames. Local files are written to a temporary name and renamed, so a killed
        build never leaves a torn shard.
        """
        s = self.shard_size
        pieces: list[bytes] = []
        index = np.full((s, 2), np.uint64(2**64 - 1), dtype="<u8")  # absent chunks (past N)
        offset = 0
        for j in range(frames.shape[0]):
            blob = bytes(_ZSTD_WRITE.encode(frames[j]))
            index[j] = (offset, len(blob))
            pieces.append(blob)
            offset += len(blob)
        index_bytes = index.tobytes()
        pieces.append(index_bytes)
        pieces.append(google_crc32c.value(index_bytes).to_bytes(4, "little"))
        payload = b"".join(pieces)
        key = self._shard_key(k)
        if _is_url(self.url):
            self._fs.pipe_file(key, payload)
            return
        Path(key).parent.mkdir(parents=True, exist_ok=True)
        _replace_atomically(Path(key), payload, fsync=True)

    def _write_small_chunks(self, k: int, labels: np.ndarray, n_events: np.ndarray, ids: list[str]) -> None:
        """Write chunk ``k`` of ``label``, ``n_events`` and ``sample_id`` directly: the bytes zarr
        writes for them (the whole chunk of ``shard_size`` entries, fill values past the last
        sample; int64 little-endian or vlen-utf8 -- a uint32 count, then each string as a
        uint32 byte length and its UTF-8 bytes -- then zstd), without three round trips
        through zarr's event loop per shard. A chunk of fill values only is not written (an
        older one is removed), as zarr does for an array opened without ``write_empty_chunks``."""
        s = self.shard_size
        n = len(ids)
        lab = np.full(s, -1, dtype="<i8")
        lab[:n] = labels
        nev = np.zeros(s, dtype="<i8")
        nev[:n] = n_events
        parts = [s.to_bytes(4, "little")]
        for sid in [*ids, *([""] * (s - n))]:
            raw = sid.encode("utf-8")
            parts += [len(raw).to_bytes(4, "little"), raw]
        chunks = (("label", lab.tobytes(), not (lab == -1).all()), ("n_events", nev.tobytes(), bool(nev.any())),
                  ("sample_id", b"".join(parts), any(ids)))
        for name, payload, has_data in chunks:
            key = f"{self._root}/{name}/c/{k}"
            if not has_data:  # all fill values: no chunk file, as zarr (write_empty_chunks off) leaves it
                if self._fs.exists(key):
                    self._fs.rm(key)
                continue
            blob = bytes(_ZSTD_WRITE.encode(payload))
            if _is_url(self.url):
                self._fs.pipe_file(key, blob)
            else:
                Path(key).parent.mkdir(parents=True, exist_ok=True)
                _replace_atomically(Path(key), blob, fsync=False)  # fsynced with the shard before the marker

    def _small_fast_ok(self) -> bool:
        """True when ``label``/``n_events``/``sample_id`` use exactly the layout this module creates
        (chunks of ``shard_size``, zstd at ``ZSTD_LEVEL`` without checksum, the fill values
        -1 / 0 / ""), so :meth:`_write_small_chunks` writes what zarr would."""
        cached = getattr(self, "_small_fast", None)
        if cached is not None:
            return cached
        zstd = {"name": "zstd", "configuration": {"level": ZSTD_LEVEL, "checksum": False}}
        expected = {"label": ([{"name": "bytes", "configuration": {"endian": "little"}}, zstd], "int64", -1),
                    "n_events": ([{"name": "bytes", "configuration": {"endian": "little"}}, zstd], "int64", 0),
                    "sample_id": ([{"name": "vlen-utf8", "configuration": {}}, zstd], "string", "")}
        ok = sys.byteorder == "little"
        try:
            for name, array in (("label", self._label), ("n_events", self._n_events), ("sample_id", self._sample_id)):
                meta = array.metadata.to_dict()
                codecs, dtype, fill = expected[name]
                ok = ok and (list(meta["codecs"]) == codecs and meta["data_type"] == dtype
                             and meta["fill_value"] == fill
                             and list(meta["chunk_grid"]["configuration"]["chunk_shape"]) == [self.shard_size]
                             and meta.get("chunk_key_encoding") == {"name": "default",
                                                                     "configuration": {"separator": "/"}})
        except Exception:  # noqa: BLE001 - unknown metadata shape: use zarr
            ok = False
        self._small_fast = ok
        return ok

    def _write_marker(self, k: int, payload: bytes) -> None:
        key = self._marker_key(k)
        if _is_url(self.url):  # object stores: a put is atomic
            self._fs.pipe_file(key, payload)
            return
        Path(key).parent.mkdir(parents=True, exist_ok=True)
        _replace_atomically(Path(key), payload, fsync=True)

    def read_marker(self, k: int) -> dict | None:
        """Shard ``k``'s completion marker as a dict, or None when absent or unreadable."""
        k = self._check_shard(k)
        try:
            data = json.loads(self._fs.cat_file(self._marker_key(k)))
        except (FileNotFoundError, ValueError, OSError):
            return None
        return data if isinstance(data, dict) else None

    def is_shard_complete(self, k: int, marker: dict | None = None) -> bool:
        """True when shard ``k`` has a valid completion marker for its sample count.

        ``marker``: the marker already read with :meth:`read_marker` (read here when None).
        """
        if marker is None:
            marker = self.read_marker(k)
        start, stop = self.shard_range(k)
        return marker is not None and marker.get("n_samples") == stop - start and "sha256" in marker

    def completed_shards(self) -> list[int]:
        """Shards with a valid completion marker (one listing plus one small read each)."""
        try:
            names = self._fs.ls(f"{self._root}/{MARKER_GROUP}", detail=False)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            stem = name.rstrip("/").rsplit("/", 1)[-1]
            if stem.endswith(".json") and stem[:-5].isdigit() and int(stem[:-5]) < self.n_shards:
                found.append(int(stem[:-5]))
        return sorted(k for k in found if self.is_shard_complete(k))

    def missing_shards(self) -> list[int]:
        """Shards without a valid completion marker (to be written, or rewritten whole)."""
        done = set(self.completed_shards())
        return [k for k in range(self.n_shards) if k not in done]

    def mark_complete(self) -> None:
        """Set the group attribute ``complete`` once every shard has its marker."""
        if not self._writable:
            raise CacheError(f"{self.url}: store opened read-only; use CacheStore.create(...) to resume")
        missing = self.missing_shards()
        if missing:
            raise CacheError(self._incomplete_message(missing))
        attrs = dict(self.meta)
        attrs["complete"] = True
        attrs = _plain(attrs)
        self._group.attrs.put({ATTRS_KEY: attrs})
        self.meta = attrs

    def check_shard(self, k: int) -> bool:
        """Read shard ``k`` back and compare its sha256 with the marker's (False on any mismatch)."""
        marker = self.read_marker(k)
        if marker is None or "sha256" not in marker:
            return False
        start, stop = self.shard_range(k)
        try:
            frames = np.asarray(self._frames[start:stop])
            n_events = np.asarray(self._n_events[start:stop])
        except Exception:  # noqa: BLE001 - undecodable bytes are a corrupt shard
            return False
        if not (marker["sha256"] == _frames_sha256(frames) and marker.get("n_events") == int(n_events.sum())
                and marker.get("n_samples") == stop - start):
            return False
        if "labels_sha256" in marker:  # markers of stores built before this field existed hash the frames only
            try:
                labels = np.asarray(self._label[start:stop], dtype=np.int64)
                ids = [str(v) for v in np.asarray(self._sample_id[start:stop]).tolist()]
            except Exception:  # noqa: BLE001 - undecodable bytes are a corrupt shard
                return False
            return marker["labels_sha256"] == _labels_sha256(labels, ids)
        return True

    def _incomplete_message(self, missing: list[int]) -> str:
        m = self.meta
        command = "frames" if m.get("representation", "frames") == "frames" else "encode"
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        what = (f"{len(missing)} of {self.n_shards} shards missing ({shown})" if missing
                else "all shards written but the store was never marked complete")
        return (f"{self.url}: cache store is incomplete: {what}; rerun `eventkit {command} {m.get('dataset')} ...` "
                f"with the same parameters {canonical_json(m.get('params', {}))} to resume")

    # -- reading --------------------------------------------------------------------

    def read_shard(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard ``k``: frames ``[n, *frame_shape]`` (store dtype) and int64 labels ``[n]``."""
        start, stop = self.shard_range(k)
        return self.read_range(start, stop)

    def read_range(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``[start, stop)``: frames ``[stop - start, *frame_shape]`` and int64 labels.

        Each shard's part of the range is decoded straight from the shard file (one read of
        the byte span, zstd per inner chunk); a layout the fast path does not recognise, or
        a range touching an unwritten shard, goes through zarr.
        """
        if not 0 <= start <= stop <= self.n_samples:
            raise ParameterError(f"{self.url}: range [{start}, {stop}) outside [0, {self.n_samples})")
        frames = None
        if stop > start and self._fast_ok():
            pieces = []
            for k in range(start // self.shard_size, (stop - 1) // self.shard_size + 1):
                lo, hi = max(start, k * self.shard_size), min(stop, (k + 1) * self.shard_size)
                piece = self._read_shard_span(k, lo, hi)
                if piece is None:  # an unwritten shard: let zarr fill the whole range
                    pieces = None
                    break
                pieces.append(piece)
            if pieces is not None:
                frames = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        if frames is None:
            frames = np.asarray(self._frames[start:stop])
        if self._labels_cache is not None:
            return frames, self._labels_cache[start:stop].copy()
        return frames, np.asarray(self._label[start:stop], dtype=np.int64)

    def _fast_ok(self) -> bool:
        """True when ``frames`` uses exactly the sharding layout this module writes."""
        cached = getattr(self, "_fast", None)
        if cached is not None:
            return cached
        ok = False
        try:
            codecs = self._frames.metadata.to_dict()["codecs"]
            cfg = codecs[0]["configuration"] if len(codecs) == 1 and codecs[0]["name"] == "sharding_indexed" else {}
            inner = [c["name"] for c in cfg.get("codecs", [])]
            index = [c["name"] for c in cfg.get("index_codecs", [])]
            endian = [c.get("configuration", {}).get("endian", "little") for c in cfg.get("codecs", [])
                      if c["name"] == "bytes"]
            ok = (inner == ["bytes", "zstd"] and index == ["bytes", "crc32c"] and cfg.get("index_location") == "end"
                  and list(cfg.get("chunk_shape", [])) == [1, *self.frame_shape] and endian in (["little"], [None])
                  and sys.byteorder == "little" and self._frames.metadata.to_dict().get("chunk_key_encoding") ==
                  {"name": "default", "configuration": {"separator": "/"}})
        except Exception:  # noqa: BLE001 - unknown metadata shape: use zarr
            ok = False
        self._fast = ok
        return ok

    def _shard_key(self, k: int) -> str:
        return f"{self._root}/frames/c/{k}" + "/0" * len(self.frame_shape)

    def _parse_index(self, k: int, tail: bytes) -> np.ndarray:
        """The shard index ``[shard_size, 2]`` (offset, nbytes) from the last bytes of shard ``k``."""
        s = self.shard_size
        if len(tail) != 16 * s + 4 or google_crc32c.value(tail[:-4]) != int.from_bytes(tail[-4:], "little"):
            raise CacheError(f"{self.url}: shard {k} of frames has a corrupt index (crc32c mismatch); "
                             "rebuild the store (`eventkit cache verify` names the shards)")
        return np.frombuffer(tail, dtype="<u8", count=2 * s).reshape(s, 2)

    def _decode_chunk(self, k: int, view: memoryview, base: int, entry: np.ndarray, out: np.ndarray,
                      sample: int) -> None:
        """Decode one inner chunk (index ``entry`` = offset, nbytes; ``view`` starts at file byte ``base``)."""
        if entry[0] == np.uint64(2**64 - 1):  # chunk absent: the fill value
            out[...] = 0
            return
        offset, size = int(entry[0]) - base, int(entry[1])
        chunk = view[offset:offset + size]
        # numcodecs decodes a frame smaller than ``out`` into its head and leaves the rest as it
        # was (``np.empty``): compare the frame's declared size first, never serve a partial sample
        declared = _zstd_content_size(chunk)
        if declared != out.nbytes:
            what = f"declares {declared} bytes" if declared >= 0 else "has no valid zstd frame header"
            raise CacheError(f"{self.url}: shard {k} sample {sample} {what}, expected {out.nbytes} "
                             "(corrupt shard file); rebuild the store")
        try:
            _ZSTD.decode(chunk, out=out)
        except Exception as exc:  # noqa: BLE001 - corrupt bytes
            raise CacheError(f"{self.url}: shard {k} sample {sample} does not decode "
                             f"({type(exc).__name__}: {exc}); rebuild the store") from exc

    def _read_shard_span(self, k: int, start: int, stop: int) -> np.ndarray | None:
        """Decode samples ``[start, stop)`` of shard ``k`` from its file (Zarr v3 sharding spec).

        Reads the whole file when the range is the whole shard, else the index and then the
        byte span of the needed chunks. None when the shard file does not exist in a store
        still being built; :class:`CacheError` when it is missing from a complete store.
        """
        s = self.shard_size
        index_bytes = 16 * s + 4
        lo, hi = start - k * s, stop - k * s
        key = self._shard_key(k)
        try:
            if hi - lo == min(s, self.n_samples - k * s):
                data = self._fs.cat_file(key)
                index = self._parse_index(k, data[-index_bytes:])[lo:hi]
                base = 0
            else:
                index = self._parse_index(k, self._fs.cat_file(key, start=-index_bytes))[lo:hi]
                present = index[:, 0] != np.uint64(2**64 - 1)
                data, base = b"", 0
                if present.any():
                    base = int(index[present, 0].min())
                    data = self._fs.cat_file(key, start=base, end=int((index[present, 0] + index[present, 1]).max()))
        except FileNotFoundError:
            if self.meta.get("complete"):  # every shard was written and marked: the file was lost
                raise CacheError(f"{self.url}: shard {k} of frames is missing ({key}) although the store "
                                 "is marked complete; rebuild the store (`eventkit cache verify` names "
                                 "the shards)") from None
            return None  # not written yet: zarr returns the fill value
        out = np.empty((hi - lo, *self.frame_shape), dtype=self.dtype)
        view = memoryview(data)
        for j in range(hi - lo):
            self._decode_chunk(k, view, base, index[j], out[j], k * s + lo + j)
        return out

    def shard_blob(self, k: int) -> tuple[bytes, np.ndarray] | None:
        """Shard ``k``'s compressed file bytes and its index, for :meth:`decode_from_blob`.

        One read of the whole shard file; None when the frames array does not use this
        module's layout (then read with :meth:`read_sample`) or the shard file is absent.
        """
        k = self._check_shard(k)
        if not self._fast_ok():
            return None
        try:
            data = self._fs.cat_file(self._shard_key(k))
        except FileNotFoundError:
            return None  # read_sample then reports it (CacheError in a complete store)
        return data, self._parse_index(k, data[-(16 * self.shard_size + 4):])

    def decode_from_blob(self, k: int, blob: tuple[bytes, np.ndarray], i: int) -> np.ndarray:
        """Frames ``[*frame_shape]`` of sample ``i`` (in shard ``k``) from :meth:`shard_blob`'s result."""
        data, index = blob
        out = np.empty(self.frame_shape, dtype=self.dtype)
        self._decode_chunk(k, memoryview(data), 0, index[i - k * self.shard_size], out, i)
        return out

    def read_sample(self, i: int) -> tuple[np.ndarray, int]:
        """Sample ``i``: frames ``[*frame_shape]`` (one inner chunk read) and its label."""
        if not isinstance(i, (int, np.integer)) or not -self.n_samples <= int(i) < self.n_samples:
            raise IndexError(f"{self.url}: sample {i!r} out of range (store has {self.n_samples} samples)")
        i = int(i) % self.n_samples
        k = i // self.shard_size
        frames = self._read_shard_span(k, i, i + 1) if self._fast_ok() else None
        frames = np.asarray(self._frames[i]) if frames is None else frames[0]
        return frames, int(self.labels()[i])

    def labels(self) -> np.ndarray:
        """int64 labels ``[N]`` (-1 where a shard is not written); cached once the store is complete."""
        if self._labels_cache is not None:
            return self._labels_cache
        labels = np.asarray(self._label[:], dtype=np.int64)
        if self.meta.get("complete") and not self._writable:
            self._labels_cache = labels
        return labels

    def n_events(self) -> np.ndarray:
        """int64 number of events that went into each sample ``[N]``."""
        return np.asarray(self._n_events[:], dtype=np.int64)

    def sample_ids(self) -> list[str]:
        """The samples' ids (raw file path relative to the dataset root, ``#k`` for rows), ``N`` strings."""
        return [str(s) for s in np.asarray(self._sample_id[:])]

    def disk_size(self) -> int:
        """Bytes used by the store (all files under its location)."""
        try:
            return int(self._fs.du(self._root, total=True))
        except (FileNotFoundError, OSError):
            return 0


