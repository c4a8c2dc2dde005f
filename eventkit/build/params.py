"""Build parameters, validated once: :class:`FrameParams` (event datasets), :class:`EncodeParams` (static).

Each is a frozen dataclass built from a dataset spec and the user's options; it knows the
parameter dict hashed into the store path (:meth:`to_dict`, the same dict as before typed
parameters existed, so store paths did not change), the frame shape of one sample (computed
from the parameters, no kernel runs), the hash and the store location.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

__all__ = ["RETRIES", "SHARD_TARGET_BYTES", "ENCODERS", "SPLIT_BY", "DTYPES", "FrameParams", "EncodeParams",
           "cache_root", "frames_params", "encode_params", "frames_store_url", "encode_store_url",
           "default_shard_size", "params_from_dict", "store_order"]

#: retries of a shard task that failed for a reason other than a bad sample (e.g. a network error)
RETRIES = 2
#: target uncompressed frame bytes per shard
SHARD_TARGET_BYTES = 16 * 2**20
#: encoders of ``eventkit encode``
ENCODERS = ("rate", "poisson", "direct", "latency")
#: encoders whose spikes depend on ``seed`` (the others are deterministic: their stores ignore it)
STOCHASTIC_ENCODERS = ("rate", "poisson")
SPLIT_BY = ("count", "time")
# how samples are ordered in an event store (hashed with the parameters); see store_order
SAMPLE_ORDER = "shuffled-files-v1"
DTYPES = ("uint8", "uint16")


def cache_root(cache: str | os.PathLike | None = None) -> str:
    """``cache``, else ``$EVENTKIT_CACHE``, else ``~/.cache/eventkit`` (URLs kept as given)."""
    if cache is not None and str(cache):
        value = str(cache)
    else:
        value = os.environ.get("EVENTKIT_CACHE") or str(Path("~/.cache/eventkit").expanduser())
    if "://" in value and not value.startswith("file://"):
        return value.rstrip("/")
    return str(Path(value.removeprefix("file://")).expanduser().absolute())


def _check_T(T: Any) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or int(T) < 1:
        raise ParameterError(f"T must be an integer >= 1 (number of time steps), got {T!r}")
    return int(T)


def _spec(name: str):
    from eventkit.datasets import get_dataset

    return get_dataset(name)


def _check_split(spec, split: str) -> None:
    if split not in spec.splits:
        raise ParameterError(f"{spec.name} has no split {split!r}; splits: {', '.join(spec.splits)}")


def _store_url(params: FrameParams | EncodeParams, cache) -> str:
    from eventkit.cache import store_path

    return store_path(cache_root(cache), params.dataset, params.split, params.representation, params.to_dict())



def _three_ints(values: Sequence[int]) -> tuple[int, int, int]:
    """``image_shape`` as three Python ints ``(C, H, W)``."""
    vals = tuple(int(v) for v in values)
    if len(vals) != 3:
        raise ParameterError(f"image_shape must be (C, H, W), got {tuple(values)!r}")
    return vals[0], vals[1], vals[2]

@dataclass(frozen=True)
class FrameParams:
    """Parameters of an event dataset's ``frames`` store (vision ``[T, P, H, W]``, audio ``[T, P, C']``).

    Build with :meth:`for_split`, which validates every value. Audio with ``split_by="time"``:
    every sample shares the bins ``dt_us = ceil(duration_us / T)`` over ``[0, T * dt_us)``.
    """

    dataset: str
    split: str
    kind: str
    T: int
    split_by: str
    dtype: str
    merge_polarity: bool
    sensor_size: tuple[int, int, int]
    manifest_sha256: str
    n_channels: int | None = None
    duration_us: int | None = None
    dt_us: int | None = None
    representation: str = "frames"

    @classmethod
    def for_split(cls, spec, split: str, *, T: int, split_by: str = "count", dtype: str = "uint16",
                  merge_polarity: bool = False, n_channels: int | None = None) -> FrameParams:
        T = _check_T(T)
        if split_by not in SPLIT_BY:
            raise ParameterError(f"split_by must be one of {SPLIT_BY}, got {split_by!r}")
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            dtype = str(dtype)
        if dtype not in DTYPES:
            raise ParameterError(f"dtype must be one of {DTYPES} (frames are integer counts), got {dtype!r}")
        if spec.kind == "static":
            raise ParameterError(
                f"{spec.name} is a static image dataset: build its spike cache with "
                f"`eventkit encode --T {T} --encoder rate {spec.name}` (encode_cache), not `eventkit frames`")
        _check_split(spec, split)
        W, H, P = (int(v) for v in spec.sensor_size)
        sensor = (W, H, P)
        # one polarity (the audio datasets): merging changes no byte, so it changes no hash either
        merge = bool(merge_polarity) and sensor[-1] > 1
        extra: dict[str, Any] = {}
        if spec.kind == "audio":
            n_in = sensor[0]
            if n_channels is not None and (int(n_channels) < 1 or n_in % int(n_channels)):
                raise ParameterError(f"n_channels (--channels) must divide the {n_in} channels of {spec.name} "
                                     f"(e.g. {n_in // 5 if n_in % 5 == 0 else n_in}), got {n_channels}")
            if split_by == "time" and spec.duration_us is None:
                raise ParameterError(f"split_by='time' needs the fixed sample duration of {spec.name}, which its "
                                     "manifest does not give; use split_by='count'")
            duration = None if spec.duration_us is None else int(spec.duration_us)
            extra = {"n_channels": n_in if n_channels is None else int(n_channels), "duration_us": duration,
                     "dt_us": math.ceil(duration / T) if split_by == "time" and duration is not None else None}
        elif n_channels is not None:
            raise ParameterError(f"n_channels (--channels) applies to audio datasets only; {spec.name} is {spec.kind}")
        return cls(dataset=spec.name, split=split, kind=spec.kind, T=T, split_by=split_by, dtype=dtype,
                   merge_polarity=merge, sensor_size=sensor, manifest_sha256=spec.manifest_sha256, **extra)

    def to_dict(self) -> dict[str, Any]:
        """The parameter dict hashed into the store path (and stored in its attributes)."""
        out: dict[str, Any] = {
            "dataset": self.dataset, "split": self.split, "representation": "frames", "kind": self.kind,
            "T": self.T, "split_by": self.split_by, "dtype": self.dtype, "merge_polarity": self.merge_polarity,
            "sensor_size": list(self.sensor_size), "sample_order": SAMPLE_ORDER,
            "manifest_sha256": self.manifest_sha256,
        }
        if self.kind == "audio":
            out.update(n_channels=self.n_channels, duration_us=self.duration_us, dt_us=self.dt_us)
        return out

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """One sample's shape: ``(T, P', H, W)`` vision, ``(T, P', C')`` audio (``P' = 1`` when merged)."""
        P = 1 if self.merge_polarity else self.sensor_size[2]
        if self.kind == "audio":
            assert self.n_channels is not None  # from_spec sets it for audio datasets
            return (self.T, P, self.n_channels)
        W, H = self.sensor_size[0], self.sensor_size[1]
        return (self.T, P, H, W)

    @property
    def hash(self) -> str:
        from eventkit.cache import params_hash

        return params_hash(self.to_dict())

    def store_url(self, cache=None) -> str:
        """Location of the store for these parameters under the cache root ``cache`` (nothing is read)."""
        return _store_url(self, cache)


@dataclass(frozen=True)
class EncodeParams:
    """Parameters of a static image dataset's encoded store (representation = encoder).

    Stored values are uint8: spikes (0/1; Poisson counts clipped at 255) for
    rate/poisson/latency, raw intensities 0..255 repeated T times for ``direct``
    (``value_scale = 1/255``). ``seed`` is kept for rate/poisson only (None otherwise).
    """

    dataset: str
    split: str
    T: int
    encoder: str
    seed: int | None
    image_shape: tuple[int, int, int]
    manifest_sha256: str
    kind: str = "static"
    dtype: str = "uint8"

    @classmethod
    def for_split(cls, spec, split: str, *, T: int, encoder: str, seed: int = 0,
                  image_shape: Sequence[int] | None = None) -> EncodeParams:
        T = _check_T(T)
        if encoder not in ENCODERS:
            raise ParameterError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        if spec.kind != "static":
            raise ParameterError(
                f"{spec.name} is an event dataset ({spec.kind}): build its frames with "
                f"`eventkit frames --T {T} {spec.name}` (build_cache), not `eventkit encode`")
        _check_split(spec, split)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
            raise ParameterError(f"seed must be an integer >= 0, got {seed!r}")
        if image_shape is None:
            W, H, C = (int(v) for v in spec.sensor_size)  # static sensor_size is (W, H, C)
            image_shape = (C, H, W)
        return cls(dataset=spec.name, split=split, T=T, encoder=encoder,
                   seed=int(seed) if encoder in STOCHASTIC_ENCODERS else None,
                   image_shape=_three_ints(image_shape), manifest_sha256=spec.manifest_sha256)

    @property
    def representation(self) -> str:
        return self.encoder

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "split": self.split, "representation": self.encoder, "kind": "static",
                "T": self.T, "encoder": self.encoder, "seed": self.seed, "dtype": "uint8",
                "image_shape": list(self.image_shape),
                "value_scale": (1.0 / 255.0) if self.encoder == "direct" else 1.0,
                "manifest_sha256": self.manifest_sha256}

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """One sample's shape ``(T, C, H, W)``."""
        return (self.T, *self.image_shape)

    @property
    def hash(self) -> str:
        from eventkit.cache import params_hash

        return params_hash(self.to_dict())

    def store_url(self, cache=None) -> str:
        return _store_url(self, cache)


def params_from_dict(params: Mapping[str, Any]) -> FrameParams | EncodeParams:
    """The typed parameters of a store's ``params`` attribute (what :func:`verify_store` recomputes with)."""
    d = dict(params)
    try:
        if d.get("kind") == "static":
            return EncodeParams(dataset=d["dataset"], split=d["split"], T=int(d["T"]), encoder=d["encoder"],
                                seed=d["seed"], image_shape=tuple(d["image_shape"]),
                                manifest_sha256=d["manifest_sha256"])
        return FrameParams(dataset=d["dataset"], split=d["split"], kind=d["kind"], T=int(d["T"]),
                           split_by=d["split_by"], dtype=d["dtype"], merge_polarity=bool(d["merge_polarity"]),
                           sensor_size=tuple(d["sensor_size"]), manifest_sha256=d["manifest_sha256"],
                           n_channels=d.get("n_channels"), duration_us=d.get("duration_us"), dt_us=d.get("dt_us"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ParameterError(f"store parameters {d!r} are incomplete ({type(exc).__name__}: {exc})") from None


def frames_params(spec, split: str, *, T: int, split_by: str = "count", dtype: str = "uint16",
                  merge_polarity: bool = False, n_channels: int | None = None) -> dict[str, Any]:
    """Full parameter dict of an event dataset's ``frames`` store (``FrameParams.for_split(...).to_dict()``)."""
    return FrameParams.for_split(spec, split, T=T, split_by=split_by, dtype=dtype, merge_polarity=merge_polarity,
                                 n_channels=n_channels).to_dict()


def encode_params(spec, split: str, *, T: int, encoder: str, seed: int = 0,
                  image_shape: Sequence[int] | None = None) -> dict[str, Any]:
    """Full parameter dict of a static dataset's encoded store (``EncodeParams.for_split(...).to_dict()``)."""
    return EncodeParams.for_split(spec, split, T=T, encoder=encoder, seed=seed, image_shape=image_shape).to_dict()


def frames_store_url(name: str, split: str, *, T: int, split_by: str = "count", dtype: str = "uint16",
                     merge_polarity: bool = False, n_channels: int | None = None, cache=None) -> str:
    """URL of the ``frames`` store ``build_cache`` writes for these parameters (nothing is read)."""
    return FrameParams.for_split(_spec(name), split, T=T, split_by=split_by, dtype=dtype,
                                 merge_polarity=merge_polarity, n_channels=n_channels).store_url(cache)


def encode_store_url(name: str, split: str, *, T: int, encoder: str, seed: int = 0, cache=None) -> str:
    """URL of the encoded store ``encode_cache`` writes for these parameters (nothing is read)."""
    return EncodeParams.for_split(_spec(name), split, T=T, encoder=encoder, seed=seed).store_url(cache)


def default_shard_size(frame_shape: Sequence[int], dtype, n_samples: int) -> int:
    """Samples per shard: about :data:`SHARD_TARGET_BYTES` of frames, >= 1, <= n_samples."""
    per_sample = max(1, int(np.prod(frame_shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return int(max(1, min(SHARD_TARGET_BYTES // per_sample, max(1, int(n_samples)))))


def store_order(samples: Sequence, *, seed: int = 0) -> list:
    """The order in which an event dataset's samples are written to its store.

    Dataset listings are grouped by class (one folder per class), so a store in that order
    has single-class shards. Instead the raw files are put in a fixed pseudo-random order
    (``numpy.random.default_rng(seed)``), the samples of one file kept together in file order,
    so every shard mixes classes while a file holding several samples (a DVS Gesture
    recording) is still read once per shard. A split stored in a single file (SHD / SSC /
    N-TIDIGITS HDF5, random access) is permuted sample by sample. ``sample_id`` in the store
    maps each row back to its raw file.
    """
    groups: dict[Any, list] = {}
    for sample in samples:
        groups.setdefault(sample.path, []).append(sample)
    rng = np.random.default_rng(seed)
    if len(groups) == 1:
        (only,) = groups.values()
        return [only[i] for i in rng.permutation(len(only))]
    files = list(groups)
    return [sample for g in rng.permutation(len(files)) for sample in groups[files[g]]]
