"""Small stores written through CacheStore for the cache, loader and CLI tests."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eventkit.cache import CacheStore

META = {"dataset": "toy", "split": "train", "representation": "frames",
        "params": {"T": 3, "split_by": "count", "dtype": "uint16"}, "classes": ["a", "b", "c"]}
FRAME_SHAPE = (3, 2, 4, 5)


def toy_data(n: int, frame_shape: tuple[int, ...] = FRAME_SHAPE, seed: int = 0):
    """Frames [n, *frame_shape] uint16 whose first element encodes the sample index, labels, counts, ids."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 7, size=(n, *frame_shape)).astype(np.uint16)
    frames.reshape(n, -1)[:, 0] = np.arange(n, dtype=np.uint16)
    labels = (np.arange(n) * 7) % 3
    n_events = frames.reshape(n, -1).sum(axis=1, dtype=np.int64)
    ids = [f"train/{i // 10}/{i:05d}.bin#{i % 2}" for i in range(n)]
    return frames, labels, n_events, ids


def write_store(url: str, n: int = 20, shard_size: int = 3, *, order: Sequence[int] | None = None,
                complete: bool = True, meta: dict | None = None, data=None) -> CacheStore:
    """Create a store of ``n`` toy samples; write shards in ``order`` (all by default)."""
    frames, labels, n_events, ids = toy_data(n) if data is None else data
    store = CacheStore.create(url, meta=dict(META if meta is None else meta), frame_shape=frames.shape[1:],
                              dtype=frames.dtype, n_samples=n, shard_size=shard_size)
    for k in (range(store.n_shards) if order is None else order):
        a, b = store.shard_range(k)
        store.write_shard(k, frames[a:b], labels[a:b], n_events[a:b], ids[a:b])
    if complete:
        store.mark_complete()
    return store
