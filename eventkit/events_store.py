"""The event store: a split's raw events in one Zarr v3 group, for framing every epoch.

Layout (format version 2, see ``docs/augmentation.md``)::

    <cache_root>/<name>/<split>/events-<params_hash[:12]>.zarr/
        zarr.json        group; attrs["eventkit"] = metadata (dataset, split, params,
                         sensor_size, n_samples, n_events, shard_size, raw files, complete)
        t/               int64 [E]  µs, every sample's events concatenated in store order
        x/ y/            uint16 [E] (audio stores have no y)
        p/               uint8 [E]
        offsets/         int64 [N + 1]: sample i is events [offsets[i], offsets[i+1])
        label/           int64 [N]
        sample_id/       string [N] (raw file path relative to the dataset root, ``#k`` for rows)

Event columns: inner chunks of :data:`CHUNK_EVENTS` events in shards of
:data:`SHARD_EVENTS` (one file per 4 Mi events per column), Blosc-zstd with byte
shuffle (bit shuffle for ``p``); the small arrays one chunk of :data:`SMALL_CHUNK`,
zstd. Every chunk ends with its crc32c (zarr's ``crc32c`` codec), checked on every
read: a damaged byte is a :class:`~eventkit.errors.CacheError` naming the store and
the samples, never other events or labels.
Samples are in the frame cache's order (``eventkit.build.store_order``), so sample
``i`` here is sample ``i`` of the ``frames`` stores of the same split. ``shard_size``
groups samples for building and for the loader's shard-level shuffle (the
``shard_ranges`` of ``eventkit.loader.partition``); it does not change the arrays.

Reading needs only zarr: ``g["t"][g["offsets"][i]:g["offsets"][i + 1]]``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from eventkit.errors import CacheError, ParameterError
from eventkit.events import AUDIO_DTYPE, VISION_DTYPE
from eventkit.events_location import location, zarr_options

__all__ = ["EventStore", "events_params", "FORMAT_VERSION", "REPRESENTATION", "CHUNK_EVENTS", "SHARD_EVENTS"]

FORMAT_VERSION = 2  # 2: a crc32c on every chunk
REPRESENTATION = "events"
ATTRS_KEY = "eventkit"
#: events per inner chunk of a column (512 KiB of t)
CHUNK_EVENTS = 1 << 16
#: events per shard file of a column (32 MiB of t)
SHARD_EVENTS = 1 << 22
#: entries per chunk of offsets / label / sample_id
SMALL_CHUNK = 1 << 16
REQUIRED_KEYS = ("format_version", "dataset", "split", "representation", "params", "kind", "sensor_size",
                 "n_samples", "n_events", "shard_size", "n_shards", "complete")


def events_params(spec: Any, split: str) -> dict[str, Any]:
    """Full parameter dict of an event store (hashed into its path): what changes its bytes."""
    from eventkit.build import SAMPLE_ORDER

    if spec.kind not in ("vision", "audio"):
        raise ParameterError(f"{spec.name} is a {spec.kind} dataset: it has no events to store "
                             "(static images are encoded with `eventkit encode`)")
    spec.check_split(split)
    return {
        "dataset": spec.name,
        "split": split,
        "representation": REPRESENTATION,
        "kind": spec.kind,
        "sensor_size": [int(v) for v in spec.sensor_size],
        "columns": list(column_dtypes(spec.kind)),
        "sample_order": SAMPLE_ORDER,
        "manifest_sha256": spec.manifest_sha256,
        "format_version": FORMAT_VERSION,
    }


def column_dtypes(kind: str) -> dict[str, np.dtype]:
    """Event columns of a store of ``kind`` and their dtypes (eventkit's event dtypes)."""
    dt = VISION_DTYPE if kind == "vision" else AUDIO_DTYPE
    return {name: dt[name] for name in dt.names or ()}


class EventStore:
    """A complete event store opened for reading (see the module docstring).

    Attributes: ``url``, ``meta`` (the ``eventkit`` attributes), ``kind``, ``sensor_size``
    ``(W, H, P)``, ``n_samples``, ``n_events``, ``shard_size``, ``n_shards``,
    ``shard_ranges`` (sample ranges of the shards), ``offsets`` (int64 ``[N + 1]``),
    ``dtype`` (``VISION_DTYPE`` / ``AUDIO_DTYPE``), ``storage_options`` (of the URL's fsspec
    filesystem). Pickles as its location and storage options (DataLoader workers re-open it).
    """

    def __init__(self, url: str, group: Any, meta: dict, storage_options: Mapping[str, Any] | None = None):
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.meta = meta
        self.kind = str(meta["kind"])
        self.sensor_size = tuple(int(v) for v in meta["sensor_size"])
        self.n_samples = int(meta["n_samples"])
        self.n_events = int(meta["n_events"])
        self.shard_size = int(meta["shard_size"])
        self.n_shards = int(meta["n_shards"])
        self.dtype = VISION_DTYPE if self.kind == "vision" else AUDIO_DTYPE
        self.shard_ranges = [(k * self.shard_size, min((k + 1) * self.shard_size, self.n_samples))
                             for k in range(self.n_shards)]
        try:
            self._columns = {name: group[name] for name in self.dtype.names or ()}
            self.offsets = np.asarray(group["offsets"][:], dtype=np.int64)
            self._label = group["label"]
            self._sample_id = group["sample_id"]
        except Exception as exc:  # a missing or unreadable array: a damaged store
            raise CacheError(f"{url}: event store arrays unreadable ({type(exc).__name__}: {exc}); it is damaged "
                             "— delete it and rebuild (`eventkit.events_build.build_events_store`)") from exc
        if self.offsets.shape != (self.n_samples + 1,) or self.offsets[0] != 0 or self.offsets[-1] != self.n_events \
                or np.any(np.diff(self.offsets) < 0):
            raise CacheError(f"{url}: offsets do not describe {self.n_samples} samples of {self.n_events} events; "
                             "the store is damaged — delete it and rebuild")
        self._labels: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"EventStore({self.url!r}, dataset={self.meta.get('dataset')!r}, split={self.meta.get('split')!r}, "
                f"n_samples={self.n_samples}, n_events={self.n_events}, sensor_size={self.sensor_size})")

    def __getstate__(self) -> dict:
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(EventStore.open(state["url"], storage_options=state.get("storage_options")).__dict__)

    @classmethod
    def open(cls, url: str | os.PathLike, *, storage_options: Mapping[str, Any] | None = None) -> EventStore:
        """Open a complete store; :class:`CacheError` when absent, not an event store, or unfinished.
        ``storage_options``: arguments of the URL's fsspec filesystem (s3fs: ``endpoint_url``, ...)."""
        import zarr

        url = location(url)
        options = zarr_options(url, storage_options)
        try:
            group = zarr.open_group(url, mode="r", **options)
        except Exception as exc:  # noqa: BLE001 - nothing there, not a Zarr group, or not reachable
            if "://" in url and not isinstance(exc, FileNotFoundError):
                raise CacheError(f"{url}: cannot read the event store ({type(exc).__name__}: {exc}); check the "
                                 "endpoint and credentials (storage_options, --storage-option)") from None
            raise CacheError(f"{url}: no event store ({type(exc).__name__}: {exc}); build it with "
                             "eventkit.events_build.build_events_store(NAME, ...)") from None
        meta = group.attrs.get(ATTRS_KEY)
        if not isinstance(meta, dict) or meta.get("representation") != REPRESENTATION:
            raise CacheError(f"{url} is a Zarr group but not an eventkit event store")
        if meta.get("format_version") != FORMAT_VERSION:
            raise CacheError(f"{url}: event store format_version {meta.get('format_version')!r} is not supported "
                             f"(this eventkit reads {FORMAT_VERSION}); rebuild the store")
        missing = [k for k in REQUIRED_KEYS if k not in meta]
        if missing:
            raise CacheError(f"{url}: event store metadata lacks {missing}; delete and rebuild it")
        if not meta["complete"]:
            raise CacheError(f"{url}: event store is incomplete; rerun the build to finish it")
        return cls(url, group, dict(meta), options.get("storage_options"))

    def _damaged(self, what: str, exc: Exception) -> CacheError:
        return CacheError(f"{self.url}: {what} cannot be read ({type(exc).__name__}: {exc}); the event store is "
                          "damaged — delete it and rebuild (`eventkit.events_build.build_events_store`)")

    def labels(self) -> np.ndarray:
        """int64 labels ``[N]``."""
        if self._labels is None:
            try:
                self._labels = np.asarray(self._label[:], dtype=np.int64)
            except Exception as exc:  # noqa: BLE001 - a checksum mismatch or an undecodable chunk
                raise self._damaged("the labels", exc) from None
        return self._labels

    def sample_ids(self) -> list[str]:
        """The samples' ids, ``N`` strings."""
        try:
            return [str(s) for s in np.asarray(self._sample_id[:])]
        except Exception as exc:  # noqa: BLE001 - a missing or undecodable array: a damaged store
            raise self._damaged("the sample ids", exc) from None

    def read_range(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``[start, stop)``: their events concatenated (store dtype) and int64 offsets
        ``[stop - start + 1]`` into them (sample ``start + j`` is ``events[off[j]:off[j+1]]``)."""
        if not (isinstance(start, (int, np.integer)) and isinstance(stop, (int, np.integer))
                and 0 <= start <= stop <= self.n_samples):
            raise ParameterError(f"{self.url}: sample range [{start}, {stop}) outside [0, {self.n_samples})")
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        events = np.empty(b - a, dtype=self.dtype)
        if b > a:
            try:
                for name, column in self._columns.items():
                    events[name] = column[a:b]
            except Exception as exc:  # noqa: BLE001 - a checksum mismatch or an undecodable chunk
                raise self._damaged(f"column {name!r} of samples [{start}, {stop})", exc) from None
        return events, self.offsets[start:stop + 1] - a

    def read_sample(self, i: int) -> tuple[np.ndarray, int]:
        """Sample ``i``: its events (store dtype, sorted by ``t``) and label."""
        if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < self.n_samples:
            raise IndexError(f"{self.url}: sample {i!r} out of range (store has {self.n_samples} samples)")
        events, _ = self.read_range(int(i), int(i) + 1)
        return events, int(self.labels()[int(i)])
