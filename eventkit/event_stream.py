"""Frames made on the fly from an event store, with event augmentation, in DataLoader workers.

:class:`EventFrameStream` is :class:`eventkit.loader.FrameStream` with the frames computed
per sample from :class:`eventkit.events_store.EventStore` instead of read from a frame cache:
same constructor options, same epoch plan (``eventkit.loader.epoch_order``: shard shuffle,
shuffle buffer, ranks x workers without overlap or loss), same items
``(frames [T, P, H, W] uint16/uint8 tensor, int label)``. Without augmentation the frames
equal those of the ``frames`` store of the same parameters, sample for sample (the stores
share their sample order), and with equal shard sizes the whole sequence is the same.

With ``augment`` (:class:`eventkit.augment.EventAugment`), training (``train=True``)
applies its random ops to each sample's events before framing, seeded by
``(seed, epoch, sample index)`` — the same frames for any number of workers or ranks,
other frames in another epoch. Evaluation (``train=False``) applies only the
deterministic part (:meth:`EventAugment.evaluate`): never a random draw.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from eventkit.augment import EventAugment
from eventkit.errors import ParameterError
from eventkit.events_store import EventStore
from eventkit.loader import EventkitLoader, epoch_order, rank_bounds

__all__ = ["EventFrameStream", "EventFrameLoader", "make_event_loader", "framer"]


def framer(params: dict[str, Any], sensor_size: tuple[int, int, int] | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """events -> frames for a ``frames`` parameter dict (``eventkit.build.frames_params``): vision
    ``[T, P, H, W]`` by ``to_frames`` (on ``sensor_size`` when given, e.g. after a crop), audio
    ``[T, P, C']`` by ``to_audio_frames`` (fixed ``dt_us`` bins from 0 with ``split_by="time"``)."""
    T = int(params["T"])
    dtype = np.dtype(params["dtype"])
    sensor = tuple(int(v) for v in (sensor_size or params["sensor_size"]))
    merge = bool(params["merge_polarity"])
    split_by = params["split_by"]
    if params["kind"] == "audio":
        from eventkit.audio import to_audio_frames

        time_bins = {"dt_us": int(params["dt_us"]), "start_us": 0} if split_by == "time" else {}
        return lambda events: to_audio_frames(events, sensor, T=T, split_by=split_by, n_channels=params["n_channels"],
                                              merge_polarity=merge, dtype=dtype, **time_bins)
    from eventkit.frames import to_frames

    return lambda events: to_frames(events, T, sensor, split_by=split_by, dtype=dtype, merge_polarity=merge)


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values, else ``torch.distributed`` when initialised, else (0, 1)."""
    dist = torch.distributed
    if (rank is None or world_size is None) and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return (0 if rank is None else int(rank)), (1 if world_size is None else int(world_size))


class _LazyEvents:
    """An event store's location; opened once in each process that reads it (never pickled open)."""

    def __init__(self, path: str | os.PathLike):
        store = EventStore.open(path)  # fail early, in the main process
        self.url = store.url
        self.meta = store.meta
        self.n_samples = store.n_samples
        self.shard_size = store.shard_size
        self.shard_ranges = store.shard_ranges
        self._store: EventStore | None = store
        self._pid = os.getpid()

    def store(self) -> EventStore:
        if self._store is None or self._pid != os.getpid():
            self._store = EventStore.open(self.url)
            self._pid = os.getpid()
        return self._store

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_store": None}


class EventFrameStream(IterableDataset):
    """Streaming dataset of frames made on the fly from an event store (see the module docstring).

    Framing: ``T``, ``split_by``, ``dtype``, ``merge_polarity``, ``n_channels`` as in
    ``eventkit frames`` / ``build_cache``. ``augment``: event augmentation (None: plain
    frames); ``train``: random ops (True) or the deterministic evaluation part (False).
    Loader options as :class:`eventkit.loader.FrameStream`: ``shuffle``, ``seed`` (also seeds
    the augmentation), ``rank``/``world_size``, ``shuffle_buffer``, ``drop_last``,
    ``return_index``, ``batch_size`` (the DataLoader's: worker-count-independent order).
    Call :meth:`set_epoch` before each epoch.
    """

    def __init__(self, path: str | os.PathLike, *, T: int, split_by: str = "count", dtype: str = "uint16",
                 merge_polarity: bool = False, n_channels: int | None = None, augment: EventAugment | None = None,
                 train: bool = True, shuffle: bool = True, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, shuffle_buffer: int = 256, drop_last: bool = False,
                 return_index: bool = False, batch_size: int | None = None):
        from eventkit.build import frames_params
        from eventkit.datasets import get_dataset

        if augment is not None and not isinstance(augment, EventAugment):
            raise ParameterError(f"EventFrameStream: augment must be an eventkit.augment.EventAugment or None, "
                                 f"got {type(augment).__name__}")
        if batch_size is not None and int(batch_size) < 1:
            raise ParameterError(f"EventFrameStream: batch_size={batch_size} must be >= 1 (or None)")
        if int(shuffle_buffer) < 0:
            raise ParameterError(f"EventFrameStream: shuffle_buffer={shuffle_buffer} must be >= 0")
        if (rank is None) != (world_size is None):
            raise ParameterError("EventFrameStream: give both rank and world_size, or neither")
        if rank is not None:
            rank_bounds(0, rank, world_size)  # checks 0 <= rank < world_size
        self._lazy = _LazyEvents(path)
        meta = self._lazy.meta
        spec = get_dataset(meta["dataset"])
        self.params = frames_params(spec, meta["split"], T=T, split_by=split_by, dtype=dtype,
                                    merge_polarity=merge_polarity, n_channels=n_channels)
        if tuple(self.params["sensor_size"]) != tuple(meta["sensor_size"]):
            raise ParameterError(f"{self._lazy.url}: store sensor {meta['sensor_size']} differs from the dataset's "
                                 f"{self.params['sensor_size']}; rebuild the event store")
        self.augment = augment if augment is not None and not augment.is_empty else None
        if self.augment is not None and self.augment.spatial and spec.kind != "vision":
            raise ParameterError(f"{spec.name} is an audio dataset: spatial augment ops (flips, crops, "
                                 "rotations...) apply to vision events only")
        self.sensor_size = tuple(int(v) for v in meta["sensor_size"])
        out_sensor = self.augment.output_sensor(self.sensor_size) if self.augment else self.sensor_size
        self._frame = framer(self.params, out_sensor if spec.kind == "vision" else None)
        self.frame_shape = tuple(self._frame(np.zeros(0, dtype=self._lazy.store().dtype)).shape)
        self.dtype = np.dtype(self.params["dtype"])
        self.path = self._lazy.url
        self.meta = meta
        self.train = bool(train)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.rank, self.world_size = rank, world_size
        self.shuffle_buffer = int(shuffle_buffer)
        self.drop_last = bool(drop_last)
        self.return_index = bool(return_index)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.epoch = 0
        self._warm_up()

    def _warm_up(self) -> None:
        """Run the ops and the framing once on two events here, in the parent process: tonic is
        imported and the compiled kernels are loaded before DataLoader workers are forked, instead
        of in every worker of every epoch (seconds each)."""
        dummy = np.zeros(2, dtype=self._lazy.store().dtype)
        dummy["t"] = [0, 1]
        if self.augment is not None:
            self._frame(self.augment(dummy, self.sensor_size, seed=0, epoch=0, index=0))
            self._frame(self.augment.evaluate(dummy, self.sensor_size))
        self._frame(dummy)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch: sample order and augmentation draws."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)  # rank/world resolved in the parent (spawned workers have no process group)
        state["rank"], state["world_size"] = _rank_world(self.rank, self.world_size)
        state.pop("_frame")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        out_sensor = self.augment.output_sensor(self.sensor_size) if self.augment else self.sensor_size
        self._frame = framer(self.params, out_sensor if self.params["kind"] == "vision" else None)

    def __len__(self) -> int:
        """Samples this rank yields per epoch (over all its DataLoader workers)."""
        rank, world = _rank_world(self.rank, self.world_size)
        lo, hi = rank_bounds(self._lazy.n_samples, rank, world, self.drop_last)
        return hi - lo

    def order(self, worker: int = 0, n_workers: int = 1) -> np.ndarray:
        """Sample indices in the order ``worker`` of ``n_workers`` yields them this epoch."""
        rank, world = _rank_world(self.rank, self.world_size)
        lazy = self._lazy
        return epoch_order(lazy.n_samples, lazy.shard_ranges, rank, world, worker, n_workers, self.seed, self.epoch,
                           shuffle=self.shuffle, shuffle_buffer=self.shuffle_buffer, drop_last=self.drop_last,
                           batch_size=self.batch_size)

    def transform(self, events: np.ndarray, index: int) -> np.ndarray:
        """One sample's frames: its events augmented (training) or evaluated, then framed."""
        if self.augment is not None:
            if self.train:
                events = self.augment(events, self.sensor_size, seed=self.seed, epoch=self.epoch, index=index)
            else:
                events = self.augment.evaluate(events, self.sensor_size)
        return self._frame(events)

    def __iter__(self) -> Iterator[tuple]:
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        store = self._lazy.store()
        mine = self.order(worker, n_workers)
        labels = store.labels()
        shard_of = mine // store.shard_size
        remaining = np.bincount(shard_of, minlength=store.n_shards)
        held: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}  # shard -> (events, offsets, first sample)
        for index, k in zip(mine.tolist(), shard_of.tolist()):
            if k not in held:
                lo, hi = store.shard_ranges[k]
                events, offsets = store.read_range(lo, hi)
                held[k] = (events, offsets, lo)
            events, offsets, lo = held[k]
            j = index - lo
            frames = self.transform(events[offsets[j]:offsets[j + 1]], index)
            remaining[k] -= 1
            if remaining[k] == 0:
                del held[k]
            item = (torch.from_numpy(np.ascontiguousarray(frames)), int(labels[index]))
            yield (*item, index) if self.return_index else item


class EventFrameLoader(EventkitLoader):
    """A ``DataLoader`` over an :class:`EventFrameStream` whose :meth:`set_epoch` reaches the stream."""

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.dataset, EventFrameStream):
            self.dataset.set_epoch(epoch)
        else:
            super().set_epoch(epoch)


def make_event_loader(path: str | os.PathLike, batch_size: int, *, T: int, split_by: str = "count",
                      dtype: str = "uint16", merge_polarity: bool = False, n_channels: int | None = None,
                      augment: EventAugment | None = None, train: bool = True, workers: int = 0,
                      shuffle: bool = True, seed: int = 0, drop_last: bool = False, pin_memory: bool | None = None,
                      shuffle_buffer: int = 256, rank: int | None = None, world_size: int | None = None,
                      worker_independent_order: bool = True, **loader_kwargs: Any) -> EventFrameLoader:
    """A DataLoader of ``(uint frames [B, T, ...], int64 labels [B])`` batches framed on the fly.

    As :func:`eventkit.loader.make_loader` (``stream=True``) over an event store, with the
    framing parameters and ``augment``/``train`` of :class:`EventFrameStream`.
    """
    if int(batch_size) < 1:
        raise ParameterError(f"make_event_loader: batch_size={batch_size} must be >= 1")
    if int(workers) < 0:
        raise ParameterError(f"make_event_loader: workers={workers} must be >= 0")
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    ds = EventFrameStream(path, T=T, split_by=split_by, dtype=dtype, merge_polarity=merge_polarity,
                          n_channels=n_channels, augment=augment, train=train, shuffle=shuffle, seed=seed, rank=rank,
                          world_size=world_size, shuffle_buffer=shuffle_buffer, drop_last=drop_last,
                          batch_size=int(batch_size) if worker_independent_order else None)
    return EventFrameLoader(ds, batch_size=int(batch_size), num_workers=int(workers), pin_memory=pin_memory,
                            **loader_kwargs)
