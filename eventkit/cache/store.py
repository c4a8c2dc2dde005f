"""The :class:`CacheStore` façade: create or resume, write shards, completion, open for reading.

Concurrency: every file is written whole (local: a temporary file renamed; object stores: one
PUT), metadata documents and markers are created only if absent, and data files of a shard
always get the same bytes. So any number of builders (processes, DDP ranks, machines) may
build one store at once: each skips the shards already marked, a shard built twice gets the
same bytes twice, and the first marker of a shard is kept.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eventkit.cache import codec
from eventkit.cache.layout import (
    ARRAYS,
    COMPLETION_KEYS,
    MARKER_GROUP,
    build_attrs,
    chunk_key,
    layout_keys,
    marker_key,
    parse_group,
    render_documents,
    render_group,
)
from eventkit.cache.location import _plain, canonical_json, check_storage_options, normalize_url
from eventkit.cache.markers import (
    frames_sha256,
    labels_sha256,
    make_marker,
    marker_is_valid,
    parse_marker,
    read_completion,
    write_marker,
)
from eventkit.cache.objects import TMP_PATTERN, StoreIO
from eventkit.cache.reader import ShardReader
from eventkit.errors import CacheError, ParameterError

__all__ = ["CacheStore"]


class CacheStore(ShardReader):
    """A sharded Zarr v3 frame store (layout: ``eventkit.cache.layout``; format: ``docs/cache-format.md``).

    :meth:`create` writes (or resumes), :meth:`open` reads. Attributes: ``url`` (normalised
    location), ``storage_options``, ``meta`` (the group's ``eventkit`` attributes),
    ``n_samples``, ``shard_size``, ``n_shards``, ``frame_shape`` (e.g. ``(T, P, H, W)``),
    ``dtype`` (NumPy integer dtype of ``frames``). Pickling carries the location and the
    metadata already read (and the labels once read): unpickling makes no request.
    """

    def __init__(self, url: str, meta: dict, *, writable: bool, storage_options: Mapping[str, Any] | None = None,
                 io: StoreIO | None = None, labels: np.ndarray | None = None):
        self.url = url
        self.meta = meta
        self.storage_options = dict(storage_options or {})
        self.n_samples = int(meta["n_samples"])
        self.shard_size = int(meta["shard_size"])
        self.n_shards = int(meta["n_shards"])
        self.frame_shape = tuple(int(v) for v in meta["frame_shape"])
        self.dtype = np.dtype(meta["dtype"])
        self._writable = writable
        self._io = io if io is not None else StoreIO(url, self.storage_options)
        self._labels = labels
        self._indexes: dict[int, np.ndarray] = {}
        self.last_marker: bytes | None = None  # the marker bytes of the last write_shard

    def __repr__(self) -> str:
        m = self.meta
        return (f"CacheStore({self.url!r}, dataset={m.get('dataset')!r}, split={m.get('split')!r}, "
                f"n_samples={self.n_samples}, frame_shape={self.frame_shape}, dtype={self.dtype.name}, "
                f"shards={self.n_shards}x{self.shard_size}, complete={m.get('complete')})")

    def __getstate__(self) -> dict:
        return {"url": self.url, "meta": self.meta, "writable": self._writable,
                "storage_options": self.storage_options, "labels": self._labels}

    def __setstate__(self, state: dict) -> None:
        CacheStore.__init__(self, state["url"], state["meta"], writable=state["writable"],
                            storage_options=state["storage_options"], labels=state["labels"])

    # -- construction ---------------------------------------------------------------

    @classmethod
    def create(cls, url: str | os.PathLike, *, meta: dict, frame_shape: tuple[int, ...], dtype: Any,
               n_samples: int, shard_size: int, storage_options: Mapping[str, Any] | None = None) -> CacheStore:
        """Create a store, or re-open it for resume when one with identical metadata exists.

        ``meta`` must hold ``dataset``, ``split``, ``representation`` and ``params`` (the full
        parameter dict); ``params_hash``, ``eventkit_version``, ``manifest_sha256`` (None) and
        ``classes`` ([]) are filled in when absent. ``frame_shape`` is one sample's shape, ``dtype``
        an integer dtype, ``shard_size`` samples per shard. Raises :class:`CacheError` when a
        store exists at ``url`` with other metadata (both parameter sets are named) or when
        ``url`` holds something else. Safe when several processes create the same store at once.
        """
        url = normalize_url(url)
        options = check_storage_options(storage_options)
        attrs = build_attrs(meta, frame_shape, dtype, n_samples, shard_size)
        io = StoreIO(url, options)
        if io.get("zarr.json") is None:
            cls._refuse_foreign(io, url)
            docs = render_documents(attrs)
            try:
                # the group document last: it makes the folder a store; all created here -> nothing to read back
                created = [io.put_new(key, payload, durable=key == "zarr.json") for key, payload in docs.items()]
            except OSError as exc:  # e.g. --cache under a file, or a read-only folder
                raise CacheError(f"{url}: cannot create the cache store ({type(exc).__name__}: {exc}); "
                                 "choose another --cache") from exc
            if all(created):
                return cls(url, attrs, writable=True, storage_options=options, io=io)
        store = cls._open(url, options, writable=True, io=io)
        if _comparable(store.meta) != _comparable(attrs):
            raise CacheError(_mismatch_message(url, store.meta, attrs))
        return store

    @staticmethod
    def _refuse_foreign(io: StoreIO, url: str) -> None:
        """Refuse a location that holds files of something else (a partly created store is fine)."""
        if io.local and os.path.exists(io.root) and not os.path.isdir(io.root):
            raise CacheError(f"{url} is a file, not a cache store folder; remove it or choose another --cache")
        allowed = {"zarr.json", f"{MARKER_GROUP}/zarr.json", *(f"{a}/zarr.json" for a in ARRAYS)}
        foreign = [k for k in io.list_files() if k not in allowed and not TMP_PATTERN.search(k)]
        if foreign:
            raise CacheError(f"{url} exists and is not empty but is not a Zarr store ({foreign[0]}); refusing to "
                             "write into it (choose another --cache folder or delete it)")

    @classmethod
    def create_resume(cls, url: str | os.PathLike, *, storage_options: Mapping[str, Any] | None = None
                      ) -> CacheStore:
        """Re-open an existing eventkit store for writing (what :meth:`create` does on resume)."""
        return cls._open(normalize_url(url), check_storage_options(storage_options), writable=True)

    @classmethod
    def open(cls, url: str | os.PathLike, *, require_complete: bool = True,
             storage_options: Mapping[str, Any] | None = None) -> CacheStore:
        """Open a store for reading.

        One read of the group, array and marker-group documents (object stores: 6 concurrent GETs); the
        completion markers are read only when the store is not marked complete. Raises
        :class:`CacheError` when nothing is at ``url``, when it is not an eventkit store, when its
        format version is unknown (format 1: rebuild it), when its layout is not format 2, or
        (``require_complete=True``) when shards are missing — the message says which command
        resumes the build.
        """
        store = cls._open(normalize_url(url), check_storage_options(storage_options), writable=False)
        if require_complete and not store.meta.get("complete"):
            raise CacheError(store._incomplete_message(store.missing_shards()))
        return store

    @classmethod
    def _open(cls, url: str, options: dict, *, writable: bool, io: StoreIO | None = None) -> CacheStore:
        io = io if io is not None else StoreIO(url, options)
        keys = ["zarr.json", *(f"{a}/zarr.json" for a in ARRAYS), f"{MARKER_GROUP}/zarr.json"]
        try:
            docs = io.get_many(keys)
        except OSError as exc:
            raise CacheError(f"{url}: cannot read the store ({type(exc).__name__}: {exc})") from exc
        if "zarr.json" not in docs:
            there = io.local and os.path.isdir(io.root) and os.listdir(io.root)
            what = "folder is not a Zarr store" if there else "nothing found"
            raise CacheError(f"{url}: no eventkit cache store ({what}); build it with `eventkit frames NAME --T N` "
                             "(event datasets) or `eventkit encode NAME ...` (static datasets)")
        attrs = parse_group(url, docs["zarr.json"])
        expected = render_documents(attrs)
        for key in keys[1:]:
            if key not in docs:
                raise CacheError(f"{url}: cache store lacks {key}; it is damaged — delete it and rebuild "
                                 "(`eventkit frames ...`)")
            if _layout_of(docs[key]) != _layout_of(expected[key]):
                raise CacheError(f"{url}: {key} is not the layout of cache format 2 (damaged or written by other "
                                 "software); delete the store and rebuild it (`eventkit frames ...`)")
        return cls(url, attrs, writable=writable, storage_options=options, io=io)

    # -- writing ----------------------------------------------------------------------

    def _require_writable(self) -> None:
        if not self._writable:
            raise CacheError(f"{self.url}: store opened read-only; use CacheStore.create(...) to write or resume")

    def write_shard(self, k: int, frames: np.ndarray, labels: Sequence[int] | np.ndarray,
                    n_events: Sequence[int] | np.ndarray, sample_ids: Sequence[str], *,
                    skipped: Sequence[dict] = ()) -> bool:
        """Write shard ``k`` whole, then its completion marker (created only if absent).

        ``frames`` ``[n, *frame_shape]`` of the store's dtype, ``labels``/``n_events`` ``[n]``
        integers, ``sample_ids`` ``n`` strings (``n`` = the shard's sample count); ``skipped``:
        ``{"index", "sample_id", "error"}`` of samples left out by ``--skip-bad`` (their slots
        hold zeros and label -1). A valid marker already there is kept (returns False): the
        data written are the same bytes.
        """
        self._require_writable()
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
        frames = np.ascontiguousarray(frames)
        s = self.shard_size
        files = {
            # an all-zero sample is left out of the shard, as zarr's writer does (its index entry reads as zeros)
            self._frames_key(k): codec.encode_shard([codec.encode_chunk(f) if f.any() else None for f in frames], s),
            chunk_key("label", k): codec.encode_int64_chunk(labels_arr, s, -1),
            chunk_key("n_events", k): codec.encode_int64_chunk(n_events_arr, s, 0),
            chunk_key("sample_id", k): codec.encode_strings_chunk(ids, s),
        }
        for key, payload in files.items():
            self._io.put(key, payload)
        self._io.sync(files)  # the data reach the disk before the marker that vouches for them
        self._indexes.pop(k, None)
        marker = make_marker(k, start, stop, frames, labels_arr, n_events_arr, ids, skipped)
        self.last_marker = marker
        return write_marker(self._io, k, n, marker)

    def completion(self, known: dict[int, dict] | None = None) -> dict[int, dict]:
        """Valid markers by shard, read from the storage now (never a cached listing); ``known``: markers
        this process wrote (not read again when listed)."""
        return read_completion(self._io, [b - a for a, b in map(self.shard_range, range(self.n_shards))], known)

    def read_marker(self, k: int) -> dict | None:
        """Shard ``k``'s completion marker as a dict, or None when absent or unreadable."""
        return parse_marker(self._io.get(marker_key(self._check_shard(k))))

    def is_shard_complete(self, k: int, marker: dict | None = None) -> bool:
        """True when shard ``k`` has a valid completion marker (``marker``: one already read)."""
        start, stop = self.shard_range(k)
        return marker_is_valid(self.read_marker(k) if marker is None else marker, k, stop - start)

    def completed_shards(self) -> list[int]:
        """Shards with a valid completion marker (a fresh listing plus one small read each)."""
        return sorted(self.completion())

    def missing_shards(self) -> list[int]:
        """Shards without a valid completion marker (to be written, or rewritten whole)."""
        done = self.completion()
        return [k for k in range(self.n_shards) if k not in done]

    def mark_complete(self, completion: dict[int, dict] | None = None) -> None:
        """Set the group attribute ``complete`` (with ``n_events_total`` and any ``skipped_samples``) once every
        shard has its marker.

        ``completion``: markers already read (else read now). Two builders marking one store
        write the same bytes.
        """
        self._require_writable()
        completion = self.completion() if completion is None else completion
        missing = [k for k in range(self.n_shards) if k not in completion]
        if missing:
            raise CacheError(self._incomplete_message(missing))
        attrs = {k: v for k, v in self.meta.items() if k not in COMPLETION_KEYS}
        skipped = [s for k in sorted(completion) for s in completion[k].get("skipped", [])]
        if skipped:
            attrs["skipped_samples"] = skipped
        attrs["n_events_total"] = int(sum(int(m["n_events"]) for m in completion.values()))
        attrs["complete"] = True
        attrs = _plain(attrs)
        self._io.put("zarr.json", render_group(attrs), durable=True)
        self.meta = attrs

    def _incomplete_message(self, missing: list[int]) -> str:
        m = self.meta
        command = "frames" if m.get("representation", "frames") == "frames" else "encode"
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        what = (f"{len(missing)} of {self.n_shards} shards missing ({shown})" if missing
                else "all shards written but the store was never marked complete")
        return (f"{self.url}: cache store is incomplete: {what}; rerun `eventkit {command} {m.get('dataset')} ...` "
                f"with the same parameters {canonical_json(m.get('params', {}))} to resume")

    # -- inspection -------------------------------------------------------------------

    def shard_problem(self, k: int, marker: dict | None = None) -> str | None:
        """``None`` when shard ``k`` reads back (every checksum) and matches its marker, else the problem."""
        marker = self.read_marker(k) if marker is None else marker
        if marker is None or not self.is_shard_complete(k, marker):
            return "no valid completion marker"
        self._indexes.pop(k, None)  # read the index from the storage again
        try:
            frames = self.read_frames(k)
            labels, n_events, ids = self.shard_columns(k)
        except CacheError as exc:
            return str(exc)
        if frames_sha256(frames) != marker.get("sha256"):
            return "frames differ from the sha256 of the completion marker"
        if int(n_events.sum()) != marker.get("n_events"):
            return "n_events differ from the completion marker"
        if "labels_sha256" in marker and labels_sha256(labels, ids) != marker["labels_sha256"]:
            return "labels or sample ids differ from the labels_sha256 of the completion marker"
        return None

    def check_shard(self, k: int) -> bool:
        """True when shard ``k`` reads back and matches the sha256 hashes of its marker."""
        return self.shard_problem(k) is None

    def files(self) -> dict[str, int]:
        """Every file of the store (key -> bytes), listed from the storage now."""
        return self._io.list_files()

    def stray_files(self, files: Mapping[str, int] | None = None) -> list[str]:
        """Files under the store that are not part of it (temporary files of killed writers, strangers)."""
        files = self.files() if files is None else files
        expected = layout_keys(self.n_shards, len(self.frame_shape))
        return sorted(k for k in files if k not in expected)

    def remove_stale_temp_files(self) -> list[str]:
        """Remove the temporary files of writers that are gone; returns their keys."""
        return self._io.remove_stale_temp_files()

    def disk_size(self) -> int:
        """Bytes used by the store (all files under its location)."""
        try:
            return self._io.total_size()
        except (FileNotFoundError, OSError):
            return 0

    def skipped_samples(self) -> list[dict]:
        """Samples left out by ``--skip-bad`` (``index``, ``sample_id``, ``error``); label -1, zero frames."""
        return list(self.meta.get("skipped_samples", []))


def _int_column(values: Sequence[int] | np.ndarray, n: int, name: str, url: str, k: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ParameterError(f"{url}: shard {k} {name} have shape {arr.shape}, expected ({n},)")
    if arr.size and arr.dtype.kind not in "ui":
        raise ParameterError(f"{url}: shard {k} {name} must be integers, got {arr.dtype}")
    return arr.astype(np.int64)


_LAYOUT_FIELDS = ("shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value", "codecs", "zarr_format",
                  "node_type")


def _layout_of(raw: bytes) -> dict | None:
    """The fields of an array or group document that fix how its bytes are read."""
    doc = parse_marker(raw)
    return None if doc is None else {k: doc.get(k) for k in _LAYOUT_FIELDS}


def _comparable(attrs: dict) -> dict:
    """Attributes compared on resume (without those set when the store is marked complete)."""
    return {k: v for k, v in _plain(attrs).items() if k not in COMPLETION_KEYS}


def _mismatch_message(url: str, old: dict, new: dict) -> str:
    a, b = _comparable(old), _comparable(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    diff = "; ".join(f"{k}: existing {canonical_json(a.get(k))} vs requested {canonical_json(b.get(k))}" for k in keys)
    return (f"{url} already holds a cache built with other parameters ({diff}). Existing parameters: "
            f"{canonical_json(a.get('params'))}; requested: {canonical_json(b.get('params'))}. "
            f"Delete the store (`eventkit cache rm {url}`) or choose another --cache to rebuild; it is never reused "
            "silently")




