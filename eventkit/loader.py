"""Torch datasets over a frame cache (``eventkit.cache.CacheStore``).

- :class:`FrameDataset` — map-style: ``ds[i] -> (frames, label)``, frames a tensor
  ``[T, P, H, W]`` (audio ``[T, P, C]``) of the store's dtype (uint8 or uint16) unless
  ``output_dtype`` asks for ``uint8`` (saturating) or ``float32``.
- :class:`FrameStream` — ``IterableDataset`` reading whole shards: shard-level shuffle
  plus a shuffle buffer, split across DDP ranks and DataLoader workers so that every
  sample is yielded exactly once per epoch in total (or equal counts per rank with
  ``drop_last=True``); deterministic per ``(seed, epoch, world_size)`` — independent of
  ``num_workers`` when given the DataLoader's ``batch_size`` (``make_loader`` does).
  Without :meth:`~FrameStream.set_epoch` every pass advances the epoch by one by itself
  (also in DataLoader workers, persistent or not).
- Both take ``samples=`` (a subset of store indices, e.g. a validation split),
  ``transform=`` (a callable on the frames tensor of one sample, run where the sample is
  read: in the DataLoader worker) and ``target_transform=``.
- :func:`to_device` — a batch ``([B, T, ...], [B] labels)`` to ``(float [T, B, ...],
  int64 [B])`` on the device (the integer tensor moves first; conversion happens there).
- :func:`make_loader` — a ``DataLoader`` with a ``set_epoch`` passthrough.

Stores are opened lazily in the process that reads them (each DataLoader worker opens its
own: :mod:`eventkit.store_access`); pickling a dataset carries only its path (and a few bytes of epoch counters).
How an epoch is split over ranks and workers: :mod:`eventkit.epoch_plan`.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info
from torch.utils.data.distributed import DistributedSampler

from eventkit.epoch_clock import EpochClock
from eventkit.epoch_plan import Segment, _check_split, _ordered, _worker_rng, epoch_order, partition, rank_bounds
from eventkit.errors import ParameterError
from eventkit.store_access import (
    OUTPUT_DTYPES,
    Delivery,
    LazyStore,
    check_callable,
    dist_rank_world,
    resolve_output_dtype,
    served_indices,
)

__all__ = ["FrameDataset", "FrameStream", "to_device", "make_loader", "partition", "epoch_order", "rank_bounds",
           "EventkitLoader", "OUTPUT_DTYPES"]

class FrameDataset(Dataset):
    """Map-style dataset over a complete cache store.

    ``ds[i] -> (frames, label)``: frames a tensor ``[T, P, H, W]`` (vision; audio
    ``[T, P, C]``) of the store's dtype (uint16 by default) or of ``output_dtype``
    (``"uint8"``: counts above 255 saturate; ``"float32"``), label a Python int; then
    ``transform(frames)`` and ``target_transform(label)`` when given. ``samples``: a subset
    of store indices (item ``i`` is store sample ``samples[i]``). One read of one inner
    chunk per item; the store is opened lazily in each worker process.
    """

    def __init__(self, path: str | os.PathLike, *, samples: Sequence[int] | np.ndarray | None = None,
                 transform: Callable[[torch.Tensor], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None,
                 output_dtype: str | torch.dtype | None = None, storage_options: dict | None = None):
        check_callable(transform, "transform", "FrameDataset")
        check_callable(target_transform, "target_transform", "FrameDataset")
        self._lazy = LazyStore(path, storage_options)
        self.path = self._lazy.url
        self.meta = self._lazy.meta
        self.frame_shape = self._lazy.frame_shape
        self.dtype = self._lazy.dtype
        self.indices = served_indices(samples, self._lazy, "FrameDataset")
        self._deliver = Delivery(resolve_output_dtype(output_dtype, "FrameDataset"), transform, target_transform)

    def __len__(self) -> int:
        return self._lazy.n_samples if self.indices is None else int(self.indices.size)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        index = int(i) if self.indices is None else int(self.indices[i])
        frames, label = self._lazy.store().read_sample(index)
        return self._deliver(frames, label)

    def labels(self) -> np.ndarray:
        """int64 labels ``[len(self)]`` (for class-balanced samplers), in item order."""
        labels = self._lazy.store().labels()
        return labels if self.indices is None else labels[self.indices]


class FrameStream(IterableDataset):
    """Streaming dataset over a complete cache store, reading whole shards.

    Parameters: ``shuffle`` (shard order and a shuffle buffer of ``shuffle_buffer`` samples),
    ``seed``, ``rank``/``world_size`` (default: ``torch.distributed`` when initialised, else
    0/1), ``drop_last`` (equal sample counts on every rank), ``return_index`` (yield
    ``(frames, label, store index)``), ``samples`` (stream only these store indices, e.g. a
    validation split; the plan below then runs over their positions), ``transform`` /
    ``target_transform`` (callables on one sample's frames / label), ``output_dtype``
    (``None``: the store's integers; ``"uint8"``: saturating; ``"float32"``). Yields
    ``(frames [T, P, H, W], int label)``.

    Every epoch yields each sample exactly once over all ranks and DataLoader workers.
    The set of samples of a rank depends on ``(seed, epoch, world_size)`` only. Their
    order: with ``batch_size`` equal to the DataLoader's batch size, workers take whole
    batches of the rank's sequence in turn, so the DataLoader yields the same order for
    any ``num_workers`` (each worker reads the compressed bytes of its rank's shards but
    decodes only its own samples); with ``batch_size=None`` each worker reads a contiguous
    slice of the shards (least I/O) and the order also depends on ``num_workers``.

    Epochs: :meth:`set_epoch` selects the epoch of the next pass; without it each pass
    (each ``iter()``, in this process or in every DataLoader worker) advances the epoch by
    one, so plain loops and frameworks that never call it still reshuffle. The counters
    live in shared memory: persistent DataLoader workers see ``set_epoch`` too.
    """

    def __init__(self, path: str | os.PathLike, shuffle: bool = True, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, shuffle_buffer: int = 256, drop_last: bool = False,
                 return_index: bool = False, batch_size: int | None = None, *,
                 samples: Sequence[int] | np.ndarray | None = None,
                 transform: Callable[[torch.Tensor], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None,
                 output_dtype: str | torch.dtype | None = None, storage_options: dict | None = None):
        if batch_size is not None and int(batch_size) < 1:
            raise ParameterError(f"FrameStream: batch_size={batch_size} must be >= 1 (or None)")
        if int(shuffle_buffer) < 0:
            raise ParameterError(f"FrameStream: shuffle_buffer={shuffle_buffer} must be >= 0 (0 or 1: no buffer)")
        if rank is not None or world_size is not None:
            if rank is None or world_size is None:
                raise ParameterError("FrameStream: give both rank and world_size, or neither")
            _check_split("rank", rank, world_size)
        check_callable(transform, "transform", "FrameStream")
        check_callable(target_transform, "target_transform", "FrameStream")
        self._storage_options = storage_options
        self._lazy = self._open_source(path)
        self.path = self._lazy.url
        self.meta = self._lazy.meta
        self.frame_shape = self._lazy.frame_shape
        self.dtype = self._lazy.dtype
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.shuffle_buffer = int(shuffle_buffer)
        self.drop_last = bool(drop_last)
        self.return_index = bool(return_index)
        self.batch_size = None if batch_size is None else int(batch_size)
        self._deliver = Delivery(resolve_output_dtype(output_dtype, "FrameStream"), transform, target_transform)
        n = self._lazy.n_samples
        served = served_indices(samples, self._lazy, "FrameStream")
        if served is None:
            self.indices: np.ndarray | None = None
            self._ranges = [tuple(r) for r in self._lazy.shard_ranges]
        else:  # positions of the sorted subset; shard k's members are one contiguous run of them
            self.indices = np.sort(served)
            cuts = np.searchsorted(self.indices, [a for a, _ in self._lazy.shard_ranges] + [n])
            self._ranges = [(int(cuts[k]), int(cuts[k + 1])) for k in range(len(self._lazy.shard_ranges))]
        self._n = n if self.indices is None else int(self.indices.size)
        self._clock = EpochClock()

    def _open_source(self, path: str | os.PathLike) -> Any:
        """Where the samples come from: a lazily opened frame store (subclasses frame other
        sources, e.g. :class:`eventkit.event_stream.EventFrameStream`). The object has ``url``,
        ``meta``, ``n_samples``, ``shard_ranges``, ``frame_shape``, ``dtype`` and ``store()``."""
        return LazyStore(path, self._storage_options)

    def _reader(self, epoch: int) -> Any:
        """The opened source for one pass of ``epoch``: ``read_range``, ``labels``, ``shard_size``,
        ``n_shards``, ``shard_blob``, ``decode_from_blob``, ``read_sample`` as on a ``CacheStore``."""
        return self._lazy.store()

    @property
    def epoch(self) -> int:
        """The epoch of the next pass (after the passes made since the last :meth:`set_epoch`)."""
        return self._clock.next_epoch()

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.set_epoch(value)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch of the next pass (changes shard order and shuffle buffer draws)."""
        self._clock.set(int(epoch))

    def __getstate__(self) -> dict:
        # DataLoader workers started by spawn/forkserver unpickle the dataset in a process where
        # torch.distributed is not initialised: resolve rank/world_size here, in the parent,
        # or every rank's workers would read the whole epoch as rank 0 of 1.
        state = dict(self.__dict__)
        state["rank"], state["world_size"] = dist_rank_world(self.rank, self.world_size)
        return state

    def __len__(self) -> int:
        """Samples this rank yields per epoch (over all its DataLoader workers)."""
        rank, world = dist_rank_world(self.rank, self.world_size)
        lo, hi = rank_bounds(self._n, rank, world, self.drop_last)
        return hi - lo

    def plan(self, worker: int = 0, n_workers: int = 1, epoch: int | None = None) -> list[Segment]:
        """The segments (k, start, stop) that ``worker`` of ``n_workers`` reads in ``epoch``
        (default: the next pass's). ``start``/``stop`` are store indices, or positions in the
        sorted ``indices`` when the stream has ``samples``.

        (``batch_size=None`` mode; with ``batch_size`` set and several workers, every worker
        reads the rank's whole plan, ``plan(0, 1)``, and decodes only its own batches.)
        """
        rank, world = dist_rank_world(self.rank, self.world_size)
        epoch = self.epoch if epoch is None else int(epoch)
        return partition(self._n, self._ranges, rank, world, worker, n_workers, self.seed, epoch,
                         shuffle=self.shuffle, drop_last=self.drop_last)

    def _item(self, frames: np.ndarray, label: int, index: int) -> tuple:
        item = self._deliver(frames, label)
        return (*item, index) if self.return_index else item

    def __iter__(self) -> Iterator[tuple]:
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        epoch = self._clock.begin_pass(0 if info is None else 1 + info.id)
        rank, world = dist_rank_world(self.rank, self.world_size)
        store = self._reader(epoch)
        if self.batch_size is not None and n_workers > 1:
            yield from self._iter_batch_interleaved(store, rank, world, worker, n_workers, epoch)
            return
        segments = self.plan(worker, n_workers, epoch)
        rng = _worker_rng(self.seed, epoch, rank, world, worker, n_workers)
        sub = self.indices

        def read(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            if sub is None:
                return (*store.read_range(start, stop), None)
            idx = sub[start:stop]
            return (*store.read_range(int(idx[0]), int(idx[-1]) + 1), idx - idx[0])

        for pos, (frames, labels, rows), j in _ordered(segments, read, rng, self.shuffle, self.shuffle_buffer):
            r = j if rows is None else int(rows[j])
            yield self._item(frames[r], labels[r], pos if sub is None else int(sub[pos]))

    def _iter_batch_interleaved(self, store: Any, rank: int, world: int, worker: int,
                                n_workers: int, epoch: int) -> Iterator[tuple]:
        """Worker ``worker``'s batches of the rank's one-worker sequence, decoded on demand."""
        mine = epoch_order(self._n, self._ranges, rank, world, worker, n_workers, self.seed, epoch,
                           shuffle=self.shuffle, shuffle_buffer=self.shuffle_buffer, drop_last=self.drop_last,
                           batch_size=self.batch_size)
        if self.indices is not None:
            mine = self.indices[mine]
        labels = store.labels()
        shard_of = mine // store.shard_size
        remaining = np.bincount(shard_of, minlength=store.n_shards)
        blobs: dict[int, Any] = {}  # compressed shard bytes, dropped once this worker is done with them
        for index, k in zip(mine.tolist(), shard_of.tolist(), strict=True):
            if k not in blobs:
                blobs[k] = store.shard_blob(k)
            blob = blobs[k]
            frames = store.decode_from_blob(k, blob, index) if blob is not None else store.read_sample(index)[0]
            remaining[k] -= 1
            if remaining[k] == 0:
                del blobs[k]
            yield self._item(frames, labels[index], index)


# ---------------------------------------------------------------------------------------
# device transfer and DataLoader
# ---------------------------------------------------------------------------------------

def to_device(batch: Sequence[torch.Tensor], device: torch.device | str, dtype: torch.dtype = torch.float32,
              non_blocking: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(frames [B, T, ...], labels [B])`` -> ``(frames [T, B, ...] dtype, labels int64 [B])`` on ``device``.

    The frames are moved as they come (integers: 2-4x fewer bytes than float32) and
    converted on the device, in one pass that also makes them time-first and contiguous.
    """
    frames, labels = batch[0], batch[1]
    if not isinstance(frames, torch.Tensor) or frames.dim() < 2:
        raise ParameterError(f"to_device: frames must be a tensor [B, T, ...], got "
                             f"{getattr(frames, 'shape', type(frames).__name__)}")
    x = frames.to(device, non_blocking=non_blocking)
    out = torch.empty((x.shape[1], x.shape[0], *x.shape[2:]), dtype=dtype, device=x.device)
    try:
        out.copy_(x.transpose(0, 1))
    except (NotImplementedError, RuntimeError):
        if x.dtype != torch.uint16:
            raise
        # a backend without uint16 casts: reinterpret the bits as int16, widen on the device
        out.copy_(x.view(torch.int16).to(torch.int32).bitwise_and_(0xFFFF).transpose(0, 1))
    y = torch.as_tensor(labels).to(x.device, non_blocking=non_blocking).to(torch.int64)
    return out, y


class EventkitLoader(DataLoader):
    """A ``DataLoader`` whose :meth:`set_epoch` reaches the ``FrameStream`` or the sampler.

    Without ``set_epoch`` every pass advances the epoch by one (the ``FrameStream`` counts
    its passes; a sampler with ``set_epoch`` is advanced here before each pass)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._ek_epoch, self._ek_fresh = 0, True

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch for shuffling (call before iterating)."""
        if isinstance(self.dataset, FrameStream):
            self.dataset.set_epoch(epoch)
        elif hasattr(self.sampler, "set_epoch"):
            self._ek_epoch, self._ek_fresh = int(epoch), True

    def __iter__(self):
        if not isinstance(self.dataset, FrameStream) and hasattr(self.sampler, "set_epoch"):
            if not self._ek_fresh:
                self._ek_epoch += 1
            self.sampler.set_epoch(self._ek_epoch)
            self._ek_fresh = False
        return super().__iter__()


def make_loader(path: str | os.PathLike, batch_size: int, *, stream: bool = True, workers: int = 0,
                shuffle: bool = True, seed: int = 0, drop_last: bool = False, pin_memory: bool | None = None,
                shuffle_buffer: int = 256, rank: int | None = None, world_size: int | None = None,
                worker_independent_order: bool = True, samples: Sequence[int] | np.ndarray | None = None,
                transform: Callable[[torch.Tensor], Any] | None = None,
                target_transform: Callable[[int], Any] | None = None,
                output_dtype: str | torch.dtype | None = None, storage_options: dict | None = None,
                **loader_kwargs: Any) -> EventkitLoader:
    """A DataLoader of ``(frames [B, T, ...], int64 labels [B])`` batches over a cache store.

    ``stream=True``: :class:`FrameStream` (whole-shard reads, rank/worker split, exactly
    once per epoch; ``worker_independent_order=True`` gives the same batches for any
    ``workers``, ``False`` the least I/O per worker). ``stream=False``: :class:`FrameDataset`
    with a ``DistributedSampler`` (random access; it pads ranks to equal length unless
    ``drop_last``). ``samples``, ``transform``, ``target_transform``, ``output_dtype`` and
    ``storage_options`` (the URL's fsspec filesystem arguments) go to the dataset. Samples a
    ``--skip-bad`` build left out are never served. ``pin_memory`` defaults to ``torch.cuda.is_available()``.
    ``loader.set_epoch(e)`` selects the epoch; without it each pass advances it by one.
    ``persistent_workers=True`` keeps the per-epoch shuffle (the epoch is shared memory).
    """
    if int(batch_size) < 1:
        raise ParameterError(f"make_loader: batch_size={batch_size} must be >= 1")
    if int(workers) < 0:
        raise ParameterError(f"make_loader: workers={workers} must be >= 0")
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    data_kw: dict[str, Any] = dict(samples=samples, transform=transform, target_transform=target_transform,
                   output_dtype=output_dtype, storage_options=storage_options)
    if stream:
        ds = FrameStream(path, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size,
                         shuffle_buffer=shuffle_buffer, drop_last=drop_last,
                         batch_size=int(batch_size) if worker_independent_order else None, **data_kw)
        return EventkitLoader(ds, batch_size=int(batch_size), num_workers=int(workers), pin_memory=pin_memory,
                              **loader_kwargs)
    ds_map = FrameDataset(path, **data_kw)
    r, w = dist_rank_world(rank, world_size)
    sampler: DistributedSampler = DistributedSampler(ds_map, num_replicas=w, rank=r, shuffle=shuffle, seed=seed,
                                                     drop_last=drop_last)
    return EventkitLoader(ds_map, batch_size=int(batch_size), sampler=sampler, num_workers=int(workers),
                          pin_memory=pin_memory, **loader_kwargs)
