"""The trainer's loaders with augmentation: one call from (dataset, split, frame parameters, augment).

:func:`make_augmented_loader` returns a DataLoader of ``(uint frames [B, T, ...], int64 labels
[B])`` batches (what ``eventkit.loader.make_loader`` gives) for training or evaluation:

* training with event ops: frames made on the fly from the split's event store
  (:mod:`eventkit.event_stream`), the event ops applied per (seed, epoch, sample);
* evaluation with event ops that change what a sample is (``crop``, ``time_crop`` with
  ``eval_duration_us``, ``tonic`` filters with ``eval = true``): the same stream with their
  deterministic part only;
* otherwise: the frame cache (``eventkit.build.build_cache`` + ``make_loader``).

Frame ops are applied by the training loop on the device (``AugmentConfig.frame_batch``).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from eventkit.errors import ParameterError
from eventkit.loader import EventkitLoader
from eventkit.progress import ProgressMode
from eventkit_train.augment.config import AugmentConfig

__all__ = ["make_augmented_loader", "needs_event_store"]


def needs_event_store(augment: AugmentConfig | None, *, train: bool) -> bool:
    """True when this loader frames events on the fly (else it reads the frame cache)."""
    if augment is None or augment.event.is_empty:
        return False
    return True if train else augment.event.changes_evaluation


def make_augmented_loader(name: str, split: str, *, T: int, batch_size: int,
                          augment: AugmentConfig | Mapping[str, Any] | None = None, train: bool = True,
                          root: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
                          split_by: str = "count", dtype: str = "uint16", merge_polarity: bool = False,
                          n_channels: int | None = None, workers: int = 0, seed: int = 0,
                          rank: int | None = None, world_size: int | None = None, drop_last: bool | None = None,
                          shuffle: bool | None = None, build: bool = True, progress: ProgressMode = False,
                          storage_options: Mapping[str, Any] | None = None, **loader_kwargs: Any) -> EventkitLoader:
    """A DataLoader over dataset ``name``'s ``split`` with the event part of ``augment``.

    Args:
        name, split: dataset and split (``"train"``, ``"test"``, ...).
        T, split_by, dtype, merge_polarity, n_channels: frame parameters (as ``eventkit frames``).
        batch_size: per-rank batch size; workers: DataLoader workers; seed: shuffling and augmentation.
        augment: an :class:`AugmentConfig` (or its ``[augment]`` table); None: no augmentation.
        train: training (random event ops, shuffled, ``drop_last``) or evaluation (deterministic,
            in store order, every sample once); ``shuffle``/``drop_last`` override those defaults.
        root, cache: raw data folder and cache root (``--root``, ``--cache``).
        rank, world_size: DDP split (default: ``torch.distributed`` when initialised, else 0/1).
        build: build the store when missing (False: only open it). Every rank may build: concurrent
            builds of one store all succeed; to build it once, call with ``build=True`` on rank 0, then a
            barrier, then ``build=False`` on the others.
        progress: report the build on stderr.
        storage_options: the cache URL's fsspec filesystem arguments (e.g. ``{"endpoint_url": ...}``
            for S3), given to the frame cache and the event store alike.

    Returns an :class:`eventkit.loader.EventkitLoader`; call ``loader.set_epoch(e)`` each epoch.
    """
    from eventkit.build import build_cache, frames_store_url
    from eventkit.loader import make_loader

    if augment is not None and not isinstance(augment, AugmentConfig):
        if not isinstance(augment, Mapping):
            raise ParameterError(
                f"augment must be an AugmentConfig or an [augment] table, got {type(augment).__name__}")
        augment = AugmentConfig.from_table(augment, source="augment")
    shuffle = bool(train) if shuffle is None else bool(shuffle)
    drop_last = bool(train) if drop_last is None else bool(drop_last)
    frames: dict[str, Any] = {"T": T, "split_by": split_by, "dtype": dtype, "merge_polarity": merge_polarity,
                              "n_channels": n_channels}
    common: dict[str, Any] = {"workers": workers, "shuffle": shuffle, "seed": seed, "drop_last": drop_last,
                              "rank": rank, "world_size": world_size, "storage_options": storage_options,
                              **loader_kwargs}
    where: dict[str, Any] = {"root": root, "cache": cache, "storage_options": storage_options, "progress": progress}
    if needs_event_store(augment, train=train):
        from eventkit.event_stream import make_event_loader
        from eventkit.events_build import build_events_store, events_store_url

        if build:
            url = build_events_store(name, splits=[split], **where).stores[split]
        else:
            url = events_store_url(name, split, cache=cache)
        event_ops = augment.event if augment is not None else None
        return make_event_loader(url, batch_size, augment=event_ops, train=train, **frames, **common)
    if build:
        url = build_cache(name, splits=[split], **where, **frames).stores[split]
    else:
        url = frames_store_url(name, split, cache=cache, **frames)
    return make_loader(url, batch_size, **common)
