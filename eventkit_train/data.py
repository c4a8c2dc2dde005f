"""The data of a run: cache stores (built when missing), the validation split, the loaders.

- :func:`prepare_data` builds (or resumes, or just opens) the stores of the training and
  test splits: ``eventkit.build.encode_cache`` for datasets whose manifest says
  ``kind = "static"`` (MNIST-like images), ``build_cache`` for event datasets.
- :func:`validation_split` holds out, deterministically and per class, a fraction of the
  training split for model selection.
- :func:`make_loaders` gives the per-rank loaders: training shuffled, split over ranks
  with ``drop_last`` (equal steps per rank) at ``batch_size // world_size`` per rank;
  validation and test unshuffled and split without dropping (uneven shares, summed over
  ranks afterwards, so each sample is evaluated exactly once).

With event augmentation (a recipe's ``[augment] event`` ops) the training split is framed
on the fly from its event store (:mod:`eventkit.event_stream`: same samples, same order
as the frame store, the ops drawn per (seed, epoch, sample)); the validation and test
passes read the frame store, or the event store with the ops' deterministic evaluation
part (a centre crop, a fixed time window) when the ops define one.
"""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventkit.errors import CacheError, ParameterError
from eventkit.progress import ProgressMode

from .config import TrainConfig, dataset_spec

__all__ = ["prepare_data", "validation_split", "RunData", "open_data", "make_loaders", "split_loader", "MIN_VALIDATION",
           "store_scale", "augment_of", "EVENTS"]

#: ``stores`` key prefix of a split's event store (``"events:train"``), present with event augmentation
EVENTS = "events:"

#: fewer held-out samples than this are no basis for choosing a model: no validation split then
MIN_VALIDATION = 10


def augment_of(config: TrainConfig) -> Any:
    """The run's :class:`eventkit_train.augment.AugmentConfig` (None without an ``[augment]`` table)."""
    if not config.augment:
        return None
    from eventkit_train.augment import AugmentConfig

    return AugmentConfig.from_table(config.augment, source="augment")


def _event_splits(config: TrainConfig) -> list[str]:
    """The splits framed on the fly: training with event ops; val/test too when the ops evaluate."""
    from eventkit_train.augment import needs_event_store

    augment = augment_of(config)
    return [s for s in (config.train_split, config.test_split)
            if needs_event_store(augment, train=s == config.train_split)]


def prepare_data(config: TrainConfig, *, progress: ProgressMode = True) -> dict[str, str]:
    """Build (or resume, or just open) the cache stores of the train and test splits;
    returns ``{split: store URL}``, plus ``{"events:<split>": URL}`` for the splits framed
    on the fly (event augmentation)."""
    from eventkit import build as ek_build

    splits = [config.train_split, config.test_split]
    where: dict[str, Any] = dict(root=config.root, cache=config.cache,
                                 storage_options=config.storage_options or None, workers=config.build_workers,
                                 splits=splits, progress=progress)
    if dataset_spec(config).kind == "static":
        res = ek_build.encode_cache(config.dataset, T=config.T, encoder=config.encoder, seed=config.seed, **where)
    else:
        res = ek_build.build_cache(config.dataset, T=config.T, split_by=config.split_by, dtype=config.dtype,
                                   merge_polarity=config.merge_polarity, n_channels=config.n_channels, **where)
    missing = [s for s in splits if s not in res.stores]
    if missing:
        raise CacheError(f"{config.dataset}: the cache build returned no store for split(s) {missing}")
    stores = {s: str(res.stores[s]) for s in splits}
    on_the_fly = _event_splits(config)
    if on_the_fly:
        from eventkit.events_build import build_events_store

        events = build_events_store(config.dataset, root=config.root, cache=config.cache, splits=on_the_fly,
                                    workers=config.build_workers, progress=progress,
                                    storage_options=config.storage_options or None)
        stores.update({EVENTS + s: str(events.stores[s]) for s in on_the_fly})
    return stores


def _id_key(sample_id: str) -> str:
    return hashlib.sha256(sample_id.encode("utf-8", "surrogatepass")).hexdigest()


def validation_split(labels: np.ndarray, sample_ids: list[str], fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, validation indices)`` (sorted int64) of a training split.

    Per class ``c`` with ``n_c`` samples, ``floor(fraction * n_c + 1/2)`` are held out: those
    whose sample id has the smallest SHA-256. The choice depends on the ids and labels only
    — not on the seed, T, the store's order or its shards. Returns no validation indices when
    ``fraction`` is 0 or fewer than :data:`MIN_VALIDATION` samples would be held out.
    """
    labels = np.asarray(labels)
    if labels.shape != (len(sample_ids),):
        raise ParameterError(f"validation_split: {labels.shape[0]} labels but {len(sample_ids)} sample ids")
    everything = np.arange(labels.size, dtype=np.int64)
    if fraction <= 0:
        return everything, np.zeros(0, dtype=np.int64)
    held: list[int] = []
    for c in np.unique(labels):
        members = np.nonzero(labels == c)[0]
        k = int(np.floor(fraction * members.size + 0.5))
        ranked = sorted(members.tolist(), key=lambda i: _id_key(sample_ids[i]))
        held += ranked[:k]
    if len(held) < MIN_VALIDATION:
        return everything, np.zeros(0, dtype=np.int64)
    val = np.sort(np.asarray(held, dtype=np.int64))
    return np.setdiff1d(everything, val), val


def store_scale(meta: Mapping[str, Any]) -> float:
    """The store's ``value_scale`` (encoded images: 1/255), else 1."""
    for where in (meta, meta.get("params", {}) if isinstance(meta.get("params"), Mapping) else {}):
        if "value_scale" in where:
            return float(where["value_scale"])
    return 1.0


@dataclass(frozen=True)
class RunData:
    """What the loop needs to know about its data."""

    stores: dict[str, str]
    train_indices: np.ndarray
    val_indices: np.ndarray  # empty: no validation split
    input_shape: tuple[int, ...]
    scale: float
    max_label: int

    @property
    def has_validation(self) -> bool:
        return self.val_indices.size > 0


def open_data(config: TrainConfig, stores: Mapping[str, str], *, warn: bool = True) -> RunData:
    """Open the stores, check them against the config, and make the validation split."""
    from eventkit.cache import CacheStore

    missing = [s for s in (config.train_split, config.test_split) if s not in stores]
    missing += [EVENTS + s for s in _event_splits(config) if EVENTS + s not in stores]
    if missing:  # e.g. train(config, stores=...) given frame stores only: the event ops would be dropped
        raise ParameterError(f"the stores given for the run lack {missing} (event ops frame those splits from "
                             f"their event store); pass them too, or let the run build its stores")
    opened = {s: CacheStore.open(stores[s], require_complete=True, storage_options=config.storage_options or None)
              for s in (config.train_split, config.test_split)}
    train = opened[config.train_split]
    frame_shape = tuple(int(d) for d in train.frame_shape)
    if frame_shape[0] != config.T:
        raise CacheError(f"store {stores[config.train_split]} has T={frame_shape[0]} but the config asks T={config.T}")
    test_shape = tuple(int(d) for d in opened[config.test_split].frame_shape)
    if test_shape != frame_shape:
        raise CacheError(f"the test store has frames {list(test_shape)}, the training store {list(frame_shape)}")
    labels = train.labels()
    input_shape = frame_shape[1:]
    augment = augment_of(config)
    if any(k.startswith(EVENTS) for k in stores):
        input_shape = _event_input_shape(config, stores, opened, augment)
    train_idx, val_idx = validation_split(labels, train.sample_ids(), config.val_fraction)
    kept = labels >= 0  # samples a --skip-bad build left out have label -1: never trained on nor held out
    train_idx, val_idx = train_idx[kept[train_idx]], val_idx[kept[val_idx]]
    if warn and config.val_fraction > 0 and val_idx.size == 0:
        print(f"warning: the training split has {labels.size} samples, too few to hold out "
              f"{config.val_fraction:g} of each class (< {MIN_VALIDATION} samples); no validation split, "
              f"best.pt follows the last epoch", file=sys.stderr)
    if train_idx.size == 0:
        raise CacheError(f"store {stores[config.train_split]} has no training samples")
    max_label = max(int(labels.max(initial=0)), int(opened[config.test_split].labels().max(initial=0)))
    return RunData(stores={k: str(v) for k, v in stores.items()}, train_indices=train_idx, val_indices=val_idx,
                   input_shape=input_shape,
                   scale=config.input_scale if config.input_scale is not None else store_scale(train.meta),
                   max_label=max_label)


def _event_stream(config: TrainConfig, url: str, augment: Any, *, train: bool, **kwargs: Any) -> Any:
    from eventkit.event_stream import EventFrameStream

    return EventFrameStream(url, T=config.T if train else config.eval_steps, split_by=config.split_by,
                            dtype=config.dtype,
                            merge_polarity=config.merge_polarity, n_channels=config.n_channels,
                            augment=augment.event, train=train, storage_options=config.storage_options or None,
                            **kwargs)


def _event_input_shape(config: TrainConfig, stores: Mapping[str, str], opened: Mapping[str, Any],
                       augment: Any) -> tuple[int, ...]:
    """The sample shape the network sees with event ops; checks that every event store holds the
    frame store's samples in its order (indices are shared: validation split, reports)."""
    for key, url in stores.items():
        if not key.startswith(EVENTS):
            continue
        from eventkit.events_store import EventStore

        split = key[len(EVENTS):]
        if EventStore.open(url, storage_options=config.storage_options or None).sample_ids() \
                != opened[split].sample_ids():
            raise CacheError(f"event store {url} and frame store {stores[split]} hold other samples or another "
                             f"order; rebuild both (delete them and rerun)")
    shape = tuple(int(d) for d in _event_stream(config, stores[EVENTS + config.train_split], augment,
                                                train=True, shuffle=False).frame_shape[1:])
    plain = tuple(int(d) for d in opened[config.train_split].frame_shape[1:])
    if shape != plain and EVENTS + config.test_split not in stores:
        raise ParameterError(f"augment: the event ops change the frame size {list(plain)} -> {list(shape)} in "
                             f"training only; use ops whose evaluation part gives the same size (e.g. crop)")
    return shape


def per_rank_batch(config: TrainConfig, world_size: int) -> int:
    """``batch_size`` is the global batch; each of ``world_size`` ranks takes an equal share."""
    if config.batch_size % world_size:
        raise ParameterError(f"batch_size = {config.batch_size} (the global batch) is not divisible by the "
                             f"{world_size} processes; use a multiple of {world_size}")
    return config.batch_size // world_size


def split_loader(config: TrainConfig, data: RunData, split: str, *, train: bool, samples: np.ndarray | None,
                 batch_size: int, rank: int, world_size: int, pin_memory: bool, workers: int | None = None) -> Any:
    """The loader of one pass over ``split`` (``samples``: a subset of its store indices) as the run
    sees it: training shuffled with ``drop_last`` and the event ops drawn; evaluation in store order
    with the ops' deterministic part (a centre crop, a fixed time window) when they have one."""
    from eventkit.loader import make_loader
    from eventkit_train.augment import needs_event_store

    augment = augment_of(config)
    opts: dict[str, Any] = dict(shuffle=train, drop_last=train, samples=samples, seed=config.seed,
                workers=config.workers if workers is None else workers, shuffle_buffer=config.shuffle_buffer,
                pin_memory=pin_memory, rank=rank, world_size=world_size,
                storage_options=config.storage_options or None)
    if not needs_event_store(augment, train=train):
        return make_loader(data.stores[split], batch_size, **opts)
    from eventkit.event_stream import make_event_loader

    return make_event_loader(data.stores[EVENTS + split], batch_size, T=config.T if train else config.eval_steps,
                             split_by=config.split_by, dtype=config.dtype, merge_polarity=config.merge_polarity,
                             n_channels=config.n_channels, augment=augment.event if augment is not None else None,
                             train=train, **opts)


def make_loaders(config: TrainConfig, data: RunData, *, rank: int, world_size: int, pin_memory: bool) -> dict[str, Any]:
    """``{"train", "val" (when held out), "test"}`` loaders of this rank."""
    batch = per_rank_batch(config, world_size)
    if world_size > 1 and data.train_indices.size < world_size:
        raise ParameterError(f"{data.train_indices.size} training samples cannot be shared by {world_size} ranks")

    def loader(split: str, *, train: bool, samples: np.ndarray | None = None) -> Any:
        return split_loader(config, data, split, train=train, samples=samples, batch_size=batch, rank=rank,
                            world_size=world_size, pin_memory=pin_memory)

    loaders = {"train": loader(config.train_split, train=True, samples=data.train_indices)}
    if data.has_validation:
        loaders["val"] = loader(config.train_split, train=False, samples=data.val_indices)
    loaders["test"] = loader(config.test_split, train=False)
    return loaders
