"""Build parameters: the parameter dicts hashed into store paths, store locations, shard sizes."""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

#: retries of a failed shard task before the build fails
RETRIES = 2
#: target uncompressed frame bytes per shard (see the module docstring)
SHARD_TARGET_BYTES = 16 * 2**20
#: encoders of ``eventkit encode``
ENCODERS = ("rate", "poisson", "direct", "latency")
#: encoders whose spikes depend on ``seed`` (the others are deterministic: their stores ignore it)
STOCHASTIC_ENCODERS = ("rate", "poisson")
SPLIT_BY = ("count", "time")
# how samples are ordered in an event store (hashed with the parameters); see store_order
SAMPLE_ORDER = "shuffled-files-v1"
DTYPES = ("uint8", "uint16")


# ---------------------------------------------------------------------------------------
# parameters and store locations
# ---------------------------------------------------------------------------------------

def cache_root(cache: str | os.PathLike | None = None) -> str:
    """``cache``, else ``$EVENTKIT_CACHE``, else ``~/.cache/eventkit`` (URLs kept as given)."""
    if cache is not None and str(cache):
        value = str(cache)
    else:
        value = os.environ.get("EVENTKIT_CACHE") or str(Path("~/.cache/eventkit").expanduser())
    if "://" in value:
        return value.rstrip("/")
    return str(Path(value).expanduser().absolute())


def _check_T(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or int(T) < 1:
        raise ParameterError(f"T must be an integer >= 1 (number of time steps), got {T!r}")
    return int(T)


def _spec(name: str):
    from eventkit.datasets import get_dataset

    return get_dataset(name)


def store_order(samples: Sequence, *, seed: int = 0) -> list:
    """The order in which an event dataset's samples are written to its store.

    Dataset listings are grouped by class (one folder per class), so a store in that order
    has single-class shards, and a streaming loader (shard shuffle + shuffle buffer) would
    serve batches of one or two classes. Instead the raw files are put in a fixed
    pseudo-random order (``numpy.random.default_rng(seed)``), the samples of one file kept
    together in file order, so every shard mixes classes while a file holding several
    samples (a DVS Gesture recording) is still read once per shard. A split stored in a
    single file (SHD / SSC / N-TIDIGITS HDF5, random access) is permuted sample by sample.
    ``sample_id`` in the store maps each row back to its raw file.
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


def frames_params(spec, split: str, *, T: int, split_by: str = "count", dtype: str = "uint16",
                  merge_polarity: bool = False, n_channels: int | None = None) -> dict[str, Any]:
    """Full parameter dict of an event dataset's ``frames`` store (hashed into its path).

    Vision: frames ``[T, P, H, W]`` by :func:`eventkit.frames.to_frames`. Audio: frames
    ``[T, P, C']`` by :func:`eventkit.audio.to_audio_frames`; with ``split_by="time"``
    every sample shares the fixed bins ``dt_us = ceil(duration_us / T)`` over
    ``[0, T * dt_us)`` (``duration_us`` from the manifest, e.g. SHD 1.4 s: T=100 -> 14 ms).
    """
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
    if split not in spec.splits:
        raise ParameterError(f"{spec.name} has no split {split!r}; splits: {', '.join(spec.splits)}")
    params: dict[str, Any] = {
        "dataset": spec.name,
        "split": split,
        "representation": "frames",
        "kind": spec.kind,
        "T": T,
        "split_by": split_by,
        "dtype": dtype,
        # one polarity (the audio datasets): merging changes no byte, so it changes no hash either
        "merge_polarity": bool(merge_polarity) and int(spec.sensor_size[-1]) > 1,
        "sensor_size": [int(v) for v in spec.sensor_size],
        "sample_order": SAMPLE_ORDER,
        "manifest_sha256": spec.manifest_sha256,
    }
    if spec.kind == "audio":
        n_in = int(spec.sensor_size[0])
        if n_channels is not None and (int(n_channels) < 1 or n_in % int(n_channels)):
            raise ParameterError(f"n_channels (--channels) must divide the {n_in} channels of {spec.name} "
                                 f"(e.g. {n_in // 5 if n_in % 5 == 0 else n_in}), got {n_channels}")
        if split_by == "time" and spec.duration_us is None:
            raise ParameterError(f"split_by='time' needs the fixed sample duration of {spec.name}, which its "
                                 "manifest does not give; use split_by='count'")
        params["n_channels"] = n_in if n_channels is None else int(n_channels)
        params["duration_us"] = None if spec.duration_us is None else int(spec.duration_us)
        params["dt_us"] = (math.ceil(int(spec.duration_us) / T)
                           if split_by == "time" and spec.duration_us is not None else None)
    elif n_channels is not None:
        raise ParameterError(f"n_channels (--channels) applies to audio datasets only; {spec.name} is {spec.kind}")
    return params


def encode_params(spec, split: str, *, T: int, encoder: str, seed: int = 0,
                  image_shape: Sequence[int] | None = None) -> dict[str, Any]:
    """Full parameter dict of a static dataset's encoded store (representation = encoder).

    Stored values are uint8: spikes (0/1; Poisson counts clipped at 255) for
    rate/poisson/latency, raw intensities 0..255 repeated T times for ``direct``
    (``value_scale = 1/255`` tells the loader how to rescale to [0, 1]). ``seed`` is kept
    for rate/poisson only (None for latency/direct, whose bytes do not depend on it), so
    the store hash covers exactly what changes the bytes.
    """
    T = _check_T(T)
    if encoder not in ENCODERS:
        raise ParameterError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    if spec.kind != "static":
        raise ParameterError(
            f"{spec.name} is an event dataset ({spec.kind}): build its frames with "
            f"`eventkit frames --T {T} {spec.name}` (build_cache), not `eventkit encode`")
    if split not in spec.splits:
        raise ParameterError(f"{spec.name} has no split {split!r}; splits: {', '.join(spec.splits)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ParameterError(f"seed must be an integer >= 0, got {seed!r}")
    return {
        "dataset": spec.name,
        "split": split,
        "representation": encoder,
        "kind": "static",
        "T": T,
        "encoder": encoder,
        # only rate/poisson draw random numbers: latency and direct bytes do not depend on the seed
        "seed": int(seed) if encoder in STOCHASTIC_ENCODERS else None,
        "dtype": "uint8",
        "image_shape": [int(v) for v in (image_shape if image_shape is not None else _static_shape(spec))],
        "value_scale": (1.0 / 255.0) if encoder == "direct" else 1.0,
        "manifest_sha256": spec.manifest_sha256,
    }


def _static_shape(spec) -> tuple[int, int, int]:
    W, H, C = (int(v) for v in spec.sensor_size)  # static sensor_size is (W, H, C)
    return (C, H, W)


def frames_store_url(name: str, split: str, *, T: int, split_by: str = "count", dtype: str = "uint16",
                     merge_polarity: bool = False, n_channels: int | None = None, cache=None) -> str:
    """URL of the ``frames`` store ``build_cache`` writes for these parameters (nothing is read)."""
    from eventkit.cache import store_path

    spec = _spec(name)
    params = frames_params(spec, split, T=T, split_by=split_by, dtype=dtype,
                           merge_polarity=merge_polarity, n_channels=n_channels)
    return store_path(cache_root(cache), spec.name, split, "frames", params)


def encode_store_url(name: str, split: str, *, T: int, encoder: str, seed: int = 0, cache=None) -> str:
    """URL of the encoded store ``encode_cache`` writes for these parameters (nothing is read)."""
    from eventkit.cache import store_path

    spec = _spec(name)
    params = encode_params(spec, split, T=T, encoder=encoder, seed=seed)
    return store_path(cache_root(cache), spec.name, split, encoder, params)


def default_shard_size(frame_shape: Sequence[int], dtype, n_samples: int) -> int:
    """Samples per shard: about :data:`SHARD_TARGET_BYTES` of frames, >= 1, <= n_samples."""
    per_sample = max(1, int(np.prod(frame_shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return int(max(1, min(SHARD_TARGET_BYTES // per_sample, max(1, int(n_samples)))))


def _meta(spec, params: dict[str, Any]) -> dict[str, Any]:
    from eventkit import __version__
    from eventkit.cache import params_hash

    return {
        "dataset": spec.name,
        "split": params["split"],
        "representation": params["representation"],
        "params": params,
        "params_hash": params_hash(params),
        "eventkit_version": __version__,
        "manifest_sha256": spec.manifest_sha256,
        "classes": list(spec.classes),
    }

