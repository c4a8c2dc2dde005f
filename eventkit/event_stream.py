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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from eventkit.augment import EventAugment
from eventkit.errors import ParameterError
from eventkit.events_store import EventStore
from eventkit.loader import EventkitLoader, FrameStream

__all__ = ["EventFrameStream", "make_event_loader", "framer"]


def framer(params: dict[str, Any],
           sensor_size: tuple[int, int, int] | None = None) -> Callable[[np.ndarray], np.ndarray]:
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

        time_bins: dict[str, Any] = {"dt_us": int(params["dt_us"]), "start_us": 0} if split_by == "time" else {}
        return lambda events: to_audio_frames(events, sensor, T=T, split_by=split_by, n_channels=params["n_channels"],
                                              merge_polarity=merge, dtype=dtype, **time_bins)
    from eventkit.frames import to_frames

    return lambda events: to_frames(events, sensor, T=T, split_by=split_by, dtype=dtype, merge_polarity=merge)


class _EventFrames:
    """An event store's location and how its samples become frames (``source`` of a
    :class:`FrameStream`); the store is opened once in each process that reads it, with the
    ``storage_options`` of its URL (pickled with it into DataLoader workers)."""

    def __init__(self, path: str | os.PathLike, *, T: int, split_by: str, dtype: str, merge_polarity: bool,
                 n_channels: int | None, augment: EventAugment | None,
                 storage_options: Mapping[str, Any] | None = None):
        from eventkit.build import frames_params
        from eventkit.datasets import get_dataset

        if augment is not None and not isinstance(augment, EventAugment):
            raise ParameterError(f"EventFrameStream: augment must be an eventkit.augment.EventAugment or None, "
                                 f"got {type(augment).__name__}")
        store = EventStore.open(path, storage_options=storage_options)  # fail early, in the main process
        self._store: EventStore | None = store
        self._pid = os.getpid()
        self.url, self.meta, self.storage_options = store.url, store.meta, store.storage_options
        self.n_samples, self.shard_ranges = store.n_samples, store.shard_ranges
        spec = get_dataset(self.meta["dataset"])
        self.params = frames_params(spec, self.meta["split"], T=T, split_by=split_by, dtype=dtype,
                                    merge_polarity=merge_polarity, n_channels=n_channels)
        if tuple(self.params["sensor_size"]) != tuple(self.meta["sensor_size"]):
            raise ParameterError(f"{self.url}: store sensor {self.meta['sensor_size']} differs from the dataset's "
                                 f"{self.params['sensor_size']}; rebuild the event store")
        self.augment = augment if augment is not None and not augment.is_empty else None
        if self.augment is not None and self.augment.spatial and spec.kind != "vision":
            raise ParameterError(f"{spec.name} is an audio dataset: spatial augment ops (flips, crops, "
                                 "rotations...) apply to vision events only")
        W, H, P = (int(v) for v in self.meta["sensor_size"])
        self.sensor_size = (W, H, P)
        self._frame = self._framer()
        self.frame_shape = tuple(self._frame(np.zeros(0, dtype=store.dtype)).shape)
        self.dtype = np.dtype(self.params["dtype"])
        self._warm_up(store.dtype)

    def _framer(self) -> Callable[[np.ndarray], np.ndarray]:
        out_sensor = self.augment.output_sensor(self.sensor_size) if self.augment else self.sensor_size
        return framer(self.params, out_sensor if self.params["kind"] == "vision" else None)

    def _warm_up(self, dtype: np.dtype) -> None:
        """Run the ops and the framing once on two events here, in the parent process: tonic is
        imported and the compiled kernels are loaded before DataLoader workers are forked, instead
        of in every worker of every epoch (seconds each)."""
        dummy = np.zeros(2, dtype=dtype)
        dummy["t"] = [0, 1]
        if self.augment is not None:
            self._frame(self.augment(dummy, self.sensor_size, seed=0, epoch=0, index=0))
            self._frame(self.augment.evaluate(dummy, self.sensor_size))
        self._frame(dummy)

    def store(self) -> EventStore:
        if self._store is None or self._pid != os.getpid():  # first use, or a forked worker
            self._store = EventStore.open(self.url, storage_options=self.storage_options)
            self._pid = os.getpid()
        return self._store

    def frames(self, events: np.ndarray, index: int, *, train: bool, seed: int, epoch: int) -> np.ndarray:
        """One sample's frames: its events augmented (training) or evaluated, then framed."""
        if self.augment is not None:
            if train:
                events = self.augment(events, self.sensor_size, seed=seed, epoch=epoch, index=index)
            else:
                events = self.augment.evaluate(events, self.sensor_size)
        return self._frame(events)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_store", "_frame")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _store=None)
        self._frame = self._framer()


class _FramedReader:
    """The reading side of a ``CacheStore`` (what :class:`FrameStream` calls) over an event
    store: every sample framed as it is read, for one pass of one epoch."""

    def __init__(self, source: _EventFrames, *, train: bool, seed: int, epoch: int):
        self._source = source
        self._store = source.store()
        self._how: dict[str, Any] = dict(train=train, seed=seed, epoch=epoch)
        self.shard_size, self.n_shards = self._store.shard_size, self._store.n_shards

    def labels(self) -> np.ndarray:
        return self._store.labels()

    def read_range(self, start: int, stop: int) -> tuple[_RangeFrames, np.ndarray]:
        """Samples ``[start, stop)``: their frames, each made when it is indexed (a subset stream
        reads ranges that hold samples it skips: those are never framed), and their labels."""
        events, offsets = self._store.read_range(start, stop)
        return _RangeFrames(self, events, offsets, start), self.labels()[start:stop]

    def frame(self, events: np.ndarray, index: int) -> np.ndarray:
        """Sample ``index``'s frames from its events, as this pass makes them."""
        return self._source.frames(events, index, **self._how)

    def shard_blob(self, k: int) -> _RangeFrames:
        lo, hi = self._store.shard_ranges[k]
        return self.read_range(lo, hi)[0]

    def decode_from_blob(self, k: int, blob: _RangeFrames, index: int) -> np.ndarray:
        return blob[index - blob.first]

    def read_sample(self, index: int) -> tuple[np.ndarray, int]:
        frames, labels = self.read_range(index, index + 1)
        return frames[0], int(labels[0])


class _RangeFrames:
    """The frames of samples ``first + j`` of one read range, made when ``[j]`` is indexed."""

    def __init__(self, reader: _FramedReader, events: np.ndarray, offsets: np.ndarray, first: int):
        self._reader, self._events, self._offsets, self.first = reader, events, offsets, first

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, j: int) -> np.ndarray:
        j = int(j)
        if not 0 <= j < len(self):
            raise IndexError(f"row {j} of a range of {len(self)} samples")
        return self._reader.frame(self._events[self._offsets[j]:self._offsets[j + 1]], self.first + j)


class EventFrameStream(FrameStream):
    """:class:`~eventkit.loader.FrameStream` over an event store, framing on the fly (see the module docstring).

    Framing: ``T``, ``split_by``, ``dtype``, ``merge_polarity``, ``n_channels`` as in
    ``eventkit frames`` / ``build_cache``. ``augment``: event augmentation (None: plain
    frames); ``train``: random ops (True) or the deterministic evaluation part (False).
    Every other option is :class:`~eventkit.loader.FrameStream`'s (``shuffle``, ``seed`` —
    which also seeds the augmentation —, ``rank``/``world_size``, ``shuffle_buffer``,
    ``drop_last``, ``return_index``, ``batch_size``, ``samples``, ``transform``,
    ``target_transform``, ``output_dtype``, ``storage_options`` — the arguments of the store
    URL's fsspec filesystem, e.g. s3fs's ``endpoint_url``), with the same epoch plan and epoch counter.
    """

    def __init__(self, path: str | os.PathLike, *, T: int, split_by: str = "count", dtype: str = "uint16",
                 merge_polarity: bool = False, n_channels: int | None = None, augment: EventAugment | None = None,
                 train: bool = True, **stream_kwargs: Any):
        self._framing: dict[str, Any] = dict(T=T, split_by=split_by, dtype=dtype, merge_polarity=merge_polarity,
                             n_channels=n_channels, augment=augment)
        self.train = bool(train)
        super().__init__(path, **stream_kwargs)
        self.params = self._lazy.params
        self.augment = self._lazy.augment
        self.sensor_size = self._lazy.sensor_size

    def _open_source(self, path: str | os.PathLike) -> _EventFrames:
        return _EventFrames(path, storage_options=self._storage_options, **self._framing)

    def _reader(self, epoch: int) -> _FramedReader:
        return _FramedReader(self._lazy, train=self.train, seed=self.seed, epoch=epoch)


def make_event_loader(path: str | os.PathLike, batch_size: int, *, T: int, split_by: str = "count",
                      dtype: str = "uint16", merge_polarity: bool = False, n_channels: int | None = None,
                      augment: EventAugment | None = None, train: bool = True, workers: int = 0,
                      shuffle: bool = True, seed: int = 0, drop_last: bool = False, pin_memory: bool | None = None,
                      shuffle_buffer: int = 256, rank: int | None = None, world_size: int | None = None,
                      worker_independent_order: bool = True, samples: Sequence[int] | np.ndarray | None = None,
                      transform: Callable[[torch.Tensor], Any] | None = None,
                      target_transform: Callable[[int], Any] | None = None,
                      output_dtype: str | torch.dtype | None = None,
                      storage_options: Mapping[str, Any] | None = None, **loader_kwargs: Any) -> EventkitLoader:
    """A DataLoader of ``(uint frames [B, T, ...], int64 labels [B])`` batches framed on the fly.

    As :func:`eventkit.loader.make_loader` (``stream=True``) over an event store, with the
    framing parameters and ``augment``/``train`` of :class:`EventFrameStream`;
    ``storage_options``: arguments of the store URL's fsspec filesystem (the frame cache's).
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
                          batch_size=int(batch_size) if worker_independent_order else None, samples=samples,
                          transform=transform, target_transform=target_transform, output_dtype=output_dtype,
                          storage_options=storage_options)
    return EventkitLoader(ds, batch_size=int(batch_size), num_workers=int(workers), pin_memory=pin_memory,
                          **loader_kwargs)
