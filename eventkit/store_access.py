"""How the loaders reach a frame store and hand out its samples.

- :class:`LazyStore` — a store's location, opened once per process (DataLoader workers
  open their own handle from the state the parent read: no request);
- :func:`served_indices` — the store indices a dataset serves (a subset, less the samples
  a ``--skip-bad`` build left out);
- :class:`Delivery` — what one sample becomes on its way out: the output dtype, then the
  ``transform`` and ``target_transform``;
- :func:`dist_rank_world` — the DDP rank and world size a loader splits over.
"""
from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from eventkit.cache import CacheStore
from eventkit.epoch_plan import _check_split
from eventkit.errors import ParameterError

__all__ = ["OUTPUT_DTYPES", "LazyStore", "Delivery", "served_indices", "subset_indices", "dist_rank_world",
           "resolve_output_dtype", "check_callable"]

#: ``output_dtype`` values: ``None``/``"store"`` keeps the store's integers (uint8/uint16),
#: ``"uint8"`` saturates counts above 255, ``"float32"`` converts exactly (counts < 2**24)
OUTPUT_DTYPES: dict[str, torch.dtype | None] = {"store": None, "uint8": torch.uint8, "float32": torch.float32,
                                                "float": torch.float32}


def dist_rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values win; else ``torch.distributed`` when initialised; else (0, 1)."""
    if rank is None or world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
        else:
            rank = 0 if rank is None else rank
            world_size = 1 if world_size is None else world_size
    _check_split("rank", rank, world_size)
    return int(rank), int(world_size)


def resolve_output_dtype(value: str | torch.dtype | None, where: str) -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype) and value in (torch.uint8, torch.float32):
        return value
    if isinstance(value, str) and value.lower() in OUTPUT_DTYPES:
        return OUTPUT_DTYPES[value.lower()]
    raise ParameterError(f"{where}: output_dtype={value!r}; use None/'store' (the store's integers), 'uint8' or "
                         f"'float32'")


def subset_indices(samples: Any, n: int, where: str) -> np.ndarray:
    """``samples`` as int64 store indices ``[m]`` (in [0, n), no repeats)."""
    arr = np.asarray(samples)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ParameterError(f"{where}: samples must be a 1-D sequence of integer store indices, got "
                             f"{arr.dtype} of shape {list(arr.shape)}")
    arr = arr.astype(np.int64)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= n):
        raise ParameterError(f"{where}: samples must lie in [0, {n}) (the store's samples), got "
                             f"{int(arr.min())}..{int(arr.max())}")
    if np.unique(arr).size != arr.size:
        raise ParameterError(f"{where}: samples repeats indices; give each store index once")
    return arr


def served_indices(samples: Any, lazy: Any, where: str) -> np.ndarray | None:
    """The store indices a dataset serves, in the given order: ``samples`` (None: all), less the
    samples a ``--skip-bad`` build left out (label -1, zero frames). None: every sample."""
    skipped = np.asarray([int(d["index"]) for d in lazy.meta.get("skipped_samples", [])], dtype=np.int64)
    if samples is None and skipped.size == 0:
        return None
    n = lazy.n_samples
    base = np.arange(n, dtype=np.int64) if samples is None else subset_indices(samples, n, where)
    return base[~np.isin(base, skipped)] if skipped.size else base


def check_callable(fn: Any, name: str, where: str) -> None:
    if fn is not None and not callable(fn):
        raise ParameterError(f"{where}: {name} must be callable or None, got {type(fn).__name__}")


class Delivery:
    """What happens to one sample on its way out: dtype conversion, then the transforms."""

    def __init__(self, output_dtype: torch.dtype | None, transform: Callable | None,
                 target_transform: Callable | None):
        self.output_dtype = output_dtype
        self.transform = transform
        self.target_transform = target_transform

    def __call__(self, frames: np.ndarray, label: int) -> tuple[Any, Any]:
        if self.output_dtype == torch.uint8 and frames.dtype != np.uint8:
            frames = np.minimum(frames, 255).astype(np.uint8)
        elif self.output_dtype == torch.float32:
            frames = frames.astype(np.float32)
        x: Any = torch.from_numpy(np.ascontiguousarray(frames))
        y: Any = int(label)
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y


class LazyStore:
    """A store's location, opened once per process (the open store itself is never pickled).

    The process that creates it opens the store (one read of its metadata; the completion
    state is the store's ``complete`` flag, read once) and reads its labels; DataLoader
    workers receive both with the pickled dataset and make their own handle from them
    without any request, once per worker process (kept for every later epoch and dataset
    copy in that process). ``storage_options``: arguments of the URL's fsspec filesystem
    (fsspec's ``FSSPEC_<PROTOCOL>`` environment configuration applies as well).
    """

    _open_here: weakref.WeakValueDictionary[tuple, CacheStore] = weakref.WeakValueDictionary()

    def __init__(self, path: str | os.PathLike, storage_options: dict | None = None):
        self.path = os.fspath(path)
        store = CacheStore.open(self.path, require_complete=True, storage_options=storage_options)
        store.labels()  # read once here; the workers get them with the state below
        self.url = store.url
        self.n_samples = store.n_samples
        self.n_shards = store.n_shards
        self.shard_ranges = [store.shard_range(k) for k in range(store.n_shards)]
        self.frame_shape = store.frame_shape
        self.dtype = store.dtype
        self.meta = store.meta
        self._state = store.__getstate__()
        self._key = (store.url, repr(sorted(store.storage_options.items())), id(self._state))
        self._store: CacheStore | None = store
        self._pid = os.getpid()

    def store(self) -> CacheStore:
        """The open store of this process (opened from the state read by the parent: no request)."""
        if self._store is None or self._pid != os.getpid():  # first use in a worker, or a forked worker
            key = (*self._key, os.getpid())
            store = LazyStore._open_here.get(key)
            if store is None:
                store = CacheStore.__new__(CacheStore)
                store.__setstate__(self._state)
                LazyStore._open_here[key] = store
            self._store, self._pid = store, os.getpid()
        return self._store

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_store"] = None
        return state
