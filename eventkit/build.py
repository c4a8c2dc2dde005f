"""Distributed cache builder: raw dataset -> one sharded Zarr store per split.

``build_cache`` (event datasets, representation ``"frames"``) and ``encode_cache``
(static image datasets, representation = encoder name) share one plan:

1. resolve the raw root (``eventkit.datasets.resolve_root``) and list the split's
   samples (``spec.samples(root, split)``), put for event datasets in the fixed shuffled
   :func:`store_order` so every shard mixes classes;
2. build the full parameter dict (dataset, split, representation, T, split_by, dtype,
   polarity merge, sensor size, channels, audio time base, manifest sha256 — never the
   eventkit version, which only goes to the attrs) and the store URL
   ``<cache>/<name>/<split>/<repr>-<hash12>.zarr`` (``eventkit.cache.store_path``);
3. ``CacheStore.create`` (re-opens a store with identical attrs: resume);
4. one task per *missing* shard reads its samples (``spec.iter_events``), frames them
   (``eventkit.frames.to_frames`` / ``eventkit.audio.to_audio_frames`` /
   ``eventkit.encode.encode``) and writes the shard itself (``store.write_shard``: the
   completion marker is written after the data are flushed);
5. ``mark_complete()`` once every shard has its marker.

A task's output depends only on its shard index and the parameters, so the store is
byte-identical whatever the number of workers, the completion order, or how often
the build was interrupted and resumed.

Execution (Dask): ``workers=1`` runs the tasks in-process on Dask's synchronous
scheduler; ``workers=N>1`` starts an embedded ``distributed.LocalCluster`` of N
single-threaded processes; ``scheduler="tcp://host:port"`` submits to a running
scheduler (e.g. the one of ``eventkit.cluster.make_cluster("slurm", ...)``). Failing
tasks are retried (:data:`RETRIES`); a persistent failure raises :class:`BuildError`
naming the sample id and raw file.

Default shard size: ``max(1, 16 MiB // bytes_per_sample)`` samples (capped at the
number of samples), so a shard holds about 16 MiB of uncompressed frames (between 8
and 64 MiB whenever one sample is below 8 MiB; a larger sample is a shard of its own).
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import CacheError, EventkitError, ParameterError

__all__ = [
    "RETRIES", "SHARD_TARGET_BYTES", "BuildError", "BuildResult", "VerifyReport",
    "build_cache", "encode_cache", "verify_store", "default_shard_size", "frames_params",
    "encode_params", "frames_store_url", "encode_store_url", "cache_root",
]

#: retries of a failed shard task before the build fails
RETRIES = 2
#: seconds between two health checks of a Dask cluster while a build waits on it (eventkit.cluster.ClusterHealth)
HEALTH_POLL_S = 5.0
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


class BuildError(EventkitError, RuntimeError):
    """A shard could not be built; the message names the dataset, split, shard, sample id and raw file."""

    def __init__(self, message: str, sample_id: str | None = None, path: str | None = None):
        super().__init__(message)
        self.sample_id = sample_id
        self.path = path

    def __reduce__(self):  # keep the attributes when the error crosses a process boundary
        return (type(self), (str(self), self.sample_id, self.path))


@dataclass(frozen=True)
class BuildResult:
    """What a build produced.

    ``stores``: split -> store URL; ``samples``/``events``: totals over those stores
    (whole stores, resumed shards included; ``events`` of an encoded store = nonzero
    entries); ``seconds``: wall time of this call; ``built_samples``/``built_events``:
    what this call computed (0 when the stores were already complete); ``store_bytes``:
    split -> bytes on disk.
    """

    dataset: str
    T: int
    split_by: str | None
    stores: dict[str, str]
    samples: int
    events: int
    seconds: float
    representation: str = "frames"
    built_samples: int = 0
    built_events: int = 0
    store_bytes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of ``eventkit frames`` / ``eventkit encode``."""
        return {"dataset": self.dataset, "T": self.T, "split_by": self.split_by, "stores": dict(self.stores),
                "samples": self.samples, "events": self.events, "seconds": round(self.seconds, 3)}


@dataclass
class VerifyReport:
    """Result of :func:`verify_store`.

    ``checked_shards``: shards recomputed from the raw files; ``mismatches``:
    ``(shard, sample_index, sample_id)`` whose frames, label, event count or id differ;
    ``corrupt_shards``: ``(shard, problem)`` whose bytes fail their sha256 marker or do
    not decode; ``incomplete_shards``: shards without a completion marker;
    ``marked_complete``: the store's ``complete`` flag (False after a build that wrote
    every shard but stopped before marking the store; loaders refuse such a store).
    """

    url: str
    n_shards: int
    checked_shards: list[int]
    mismatches: list[tuple[int, int, str]] = field(default_factory=list)
    corrupt_shards: list[tuple[int, str]] = field(default_factory=list)
    incomplete_shards: list[int] = field(default_factory=list)
    marked_complete: bool = True

    @property
    def ok(self) -> bool:
        return self.marked_complete and not (self.mismatches or self.corrupt_shards or self.incomplete_shards)

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "n_shards": self.n_shards, "checked_shards": self.checked_shards,
                "mismatches": [list(m) for m in self.mismatches],
                "corrupt_shards": [list(c) for c in self.corrupt_shards],
                "incomplete_shards": self.incomplete_shards, "marked_complete": self.marked_complete}


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


# ---------------------------------------------------------------------------------------
# per-sample computation (shared by the build tasks and verify_store)
# ---------------------------------------------------------------------------------------

def _empty_events(kind: str) -> np.ndarray:
    from eventkit.events import AUDIO_DTYPE, VISION_DTYPE

    return np.zeros(0, dtype=AUDIO_DTYPE if kind == "audio" else VISION_DTYPE)


def _framer(params: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """events -> frames for a ``frames`` parameter dict (vision ``[T,P,H,W]``, audio ``[T,P,C']``)."""
    T = int(params["T"])
    dtype = np.dtype(params["dtype"])
    sensor = tuple(int(v) for v in params["sensor_size"])
    merge = bool(params["merge_polarity"])
    split_by = params["split_by"]
    if params["kind"] == "audio":
        from eventkit.audio import to_audio_frames

        n_channels = params.get("n_channels")
        if split_by == "time":
            dt_us = int(params["dt_us"])

            def frame(events: np.ndarray) -> np.ndarray:
                return to_audio_frames(events, sensor, dt_us=dt_us, T=T, split_by="time", n_channels=n_channels,
                                       merge_polarity=merge, dtype=dtype, start_us=0)
        else:
            def frame(events: np.ndarray) -> np.ndarray:
                return to_audio_frames(events, sensor, T=T, split_by=split_by, n_channels=n_channels,
                                       merge_polarity=merge, dtype=dtype)
        return frame

    from eventkit.frames import to_frames

    def frame(events: np.ndarray) -> np.ndarray:
        return to_frames(events, T, sensor, split_by=split_by, dtype=dtype, merge_polarity=merge)
    return frame


def _frame_shape(params: dict[str, Any]) -> tuple[int, ...]:
    if params["kind"] == "static":
        return (int(params["T"]), *(int(v) for v in params["image_shape"]))
    return tuple(int(v) for v in _framer(params)(_empty_events(params["kind"])).shape)


def _where(name: str, split: str, k: int, sample) -> str:
    return f"{name}/{split} shard {k}: sample {sample.sample_id!r} (file {sample.path})"


def _compute_frames_shard(name: str, split: str, k: int, samples: Sequence, params: dict[str, Any]):
    """Frames of one shard: ``(frames [n, *frame_shape], labels [n], n_events [n], sample_ids)``."""
    spec = _spec(name)
    frame = _framer(params)
    shape = _frame_shape(params)
    n = len(samples)
    frames = np.zeros((n, *shape), dtype=np.dtype(params["dtype"]))
    labels = np.fromiter((s.label for s in samples), dtype=np.int64, count=n)
    n_events = np.zeros(n, dtype=np.int64)
    it = iter(spec.iter_events(samples))
    try:  # close the reader (and any HDF5 file it holds) even when a sample fails
        for j, sample in enumerate(samples):
            try:
                events = next(it)
            except StopIteration:
                raise BuildError(f"{_where(name, split, k, sample)}: the reader yielded only {j} of {n} samples",
                                 sample.sample_id, str(sample.path)) from None
            except Exception as exc:  # noqa: BLE001 - re-raised with the sample named
                raise BuildError(f"{_where(name, split, k, sample)}: {type(exc).__name__}: {exc}",
                                 sample.sample_id, str(sample.path)) from exc
            try:
                frames[j] = frame(events)
            except Exception as exc:  # noqa: BLE001
                raise BuildError(f"{_where(name, split, k, sample)}: framing failed: {type(exc).__name__}: {exc}",
                                 sample.sample_id, str(sample.path)) from exc
            n_events[j] = len(events)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    return frames, labels, n_events, [s.sample_id for s in samples]


def _static_ids(spec, root: Path, split: str, n: int) -> list[str]:
    """Ids of a static split's images: the dataset's own (``<raw file>#<row>``) when it lists them, else
    ``<split>#<i>``."""
    try:
        ids = [s.sample_id for s in spec.samples(root, split)]
    except EventkitError:
        ids = []
    return ids if len(ids) == n else [f"{split}#{i}" for i in range(n)]


def _encode_images(images: np.ndarray, start: int, params: dict[str, Any]) -> np.ndarray:
    """uint8 images ``[n, C, H, W]`` (samples ``start..start+n``) -> uint8 ``[n, T, C, H, W]``.

    rate/poisson draw from ``sample_generator(seed, start + j, "cpu")`` per sample, so a
    sample's spikes do not depend on the shard layout or the worker; latency is
    deterministic; direct repeats the raw intensities (0..255).
    """
    T = int(params["T"])
    encoder = params["encoder"]
    n = images.shape[0]
    if encoder == "direct":
        return np.ascontiguousarray(np.broadcast_to(images[:, None], (n, T, *images.shape[1:])))
    import torch

    from eventkit.encode import encode, sample_generator

    if encoder == "latency":  # deterministic and elementwise: the whole shard in one call, [T, n, ...]
        spikes = encode(torch.from_numpy(np.ascontiguousarray(images)), T, encoder, dtype=torch.uint8)
        return np.ascontiguousarray(np.moveaxis(spikes.numpy(), 0, 1))
    out = np.zeros((n, T, *images.shape[1:]), dtype=np.uint8)
    seed = int(params["seed"])
    for j in range(n):  # one generator per sample: its spikes do not depend on the shard layout
        image = torch.from_numpy(np.ascontiguousarray(images[j]))  # uint8: the encoders scale by 1/255
        out[j] = encode(image, T, encoder, generator=sample_generator(seed, start + j, "cpu"),
                        dtype=torch.uint8).numpy()
    return out


def _pin_threads() -> None:
    """Inside a Dask worker: single-threaded Numba/torch kernels (one process per core)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # noqa: BLE001 - threading layer unavailable: nothing to pin
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _frames_task(url: str, name: str, split: str, k: int, samples: list, params: dict[str, Any]):
    """Dask task: compute and write shard ``k`` of a frames store; returns ``(k, n, events)``."""
    from eventkit.cache import CacheStore

    _pin_threads()
    frames, labels, n_events, ids = _compute_frames_shard(name, split, k, samples, params)
    CacheStore.create_resume(url).write_shard(k, frames, labels, n_events, ids)
    return k, len(ids), int(n_events.sum())


def _encode_task(url: str, k: int, start: int, images: np.ndarray, labels: np.ndarray, ids: list[str],
                 params: dict[str, Any]):
    """Dask task: encode and write shard ``k`` of an encoded store; returns ``(k, n, nonzeros)``."""
    from eventkit.cache import CacheStore

    _pin_threads()
    spikes = _encode_images(images, start, params)
    counts = np.count_nonzero(spikes.reshape(spikes.shape[0], -1), axis=1).astype(np.int64)
    CacheStore.create_resume(url).write_shard(k, spikes, np.asarray(labels, dtype=np.int64), counts, ids)
    return k, len(ids), int(counts.sum())


# ---------------------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------------------

@dataclass
class _Task:
    store: str
    k: int
    n_samples: int
    what: str                 # "<name>/<split> shard k (samples a..b)" for error messages
    fn: Callable
    args: tuple


def _fail(task: _Task, exc: BaseException) -> EventkitError:
    if isinstance(exc, EventkitError):
        return exc
    detail = " ".join(str(exc).split())  # one line: e.g. distributed's KilledWorker spans several
    return BuildError(f"{task.what} failed after {RETRIES + 1} attempts: {type(exc).__name__}: {detail}")


class _Progress:
    """Progress over samples with events/s and samples/s, on stderr.

    A terminal gets a tqdm bar redrawn in place. Anything else (a log file, a pipe, a
    batch job's output) gets plain newline-terminated lines: one every
    :attr:`LINE_EVERY_S` seconds while shards finish and one at the end — never the
    carriage-return redraws that pile up on one line there.
    """

    #: seconds between two plain progress lines (non-terminal stderr)
    LINE_EVERY_S = 30.0

    def __init__(self, total: int, initial: int, desc: str, enabled: bool, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.initial, self.desc = int(total), int(initial), desc
        self.enabled = bool(enabled)
        self.t0 = self.last_line = time.perf_counter()
        self.samples = 0
        self.events = 0
        self.closed = False
        self.bar = None
        if self.enabled and _isatty(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="sample", file=self.stream,
                            dynamic_ncols=True, leave=True)

    def _rates(self) -> str:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        return f"{self.events / dt:,.0f} ev/s, {self.samples / dt:,.1f} samples/s"

    def _line(self) -> None:
        done = self.initial + self.samples
        resumed = f" ({self.initial} already built)" if self.initial else ""
        rates = f", {self._rates()}, {time.perf_counter() - self.t0:.1f} s" if self.samples else ""
        self.stream.write(f"{self.desc}: {done}/{self.total} samples{resumed}{rates}\n")
        self.stream.flush()

    def update(self, n: int, events: int) -> None:
        self.samples += n
        self.events += events
        if self.bar is not None:
            self.bar.set_postfix_str(self._rates(), refresh=False)
            self.bar.update(n)
        elif self.enabled and time.perf_counter() - self.last_line >= self.LINE_EVERY_S:
            self.last_line = time.perf_counter()
            self._line()

    def close(self, *, failed: bool = False) -> None:
        """End the bar (a final plain line off a terminal, unless the build ``failed``)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and not failed:
            self._line()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _run_sync(tasks: list[_Task], progress: _Progress) -> None:
    import dask

    for task in tasks:
        for attempt in range(RETRIES + 1):
            try:
                # the arguments travel inside a partial: dask must not traverse the sample list
                call = dask.delayed(functools.partial(task.fn, *task.args), pure=False, traverse=False)
                _, n, events = call().compute(scheduler="sync")
                break
            except Exception as exc:  # noqa: BLE001 - retried, then reported with the sample named
                if attempt == RETRIES:
                    raise _fail(task, exc) from exc
        progress.update(n, events)


def _run_distributed(tasks: list[_Task], progress: _Progress, *, workers: int, scheduler: str | None) -> None:
    from distributed import Client, as_completed

    from eventkit.cluster import ClusterHealth, ClusterLostError, grace_from_env, local_cluster, quiet_logs

    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_logs())  # no scheduler/nanny INFO lines on start and stop
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout="30s")
            except OSError as exc:
                raise BuildError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        else:
            try:
                cluster = local_cluster(workers)
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise BuildError(f"could not start a local Dask cluster of {workers} worker processes "
                                 f"({type(exc).__name__}: {exc}); rerun with --workers 1") from exc
            stack.callback(cluster.close)  # after the client (closed first), before the logs are restored
            client = Client(cluster)
        with client:
            futures = [client.submit(task.fn, *task.args, retries=RETRIES, pure=False) for task in tasks]
            by_key = {fut.key: task for fut, task in zip(futures, tasks)}
            # --- engines hook (eventkit.cluster.ClusterHealth) -----------------------------------------
            # While waiting on the futures, poll the cluster's health (at least every HEALTH_POLL_S seconds;
            # ClusterHealth itself asks the scheduler at most once a second): ended batch jobs are replaced,
            # and a build that cannot make progress raises ClusterLostError (one line, exit 2) instead of
            # waiting forever. A finished result whose worker died is recomputed by dask: never block on it.
            health = ClusterHealth(client, grace_s=grace_from_env())

            def check_health() -> None:
                try:
                    health.poll()
                except ClusterLostError:
                    client.cancel(futures)
                    raise

            waiting = as_completed(futures)
            while not waiting.is_empty():
                batch = waiting.next_batch(block=False)
                if not batch:
                    check_health()
                    time.sleep(min(0.2, HEALTH_POLL_S))
                for fut in batch:
                    check_health()
                    task = by_key[fut.key]
                    if fut.status in ("error", "cancelled"):
                        exc = fut.exception()
                        client.cancel(futures)
                        raise _fail(task, exc) from None
                    try:
                        _, n, events = fut.result(timeout=HEALTH_POLL_S)
                    except TimeoutError:  # lost with its worker after it finished: wait for the recomputation
                        waiting.add(fut)
                        continue
                    except Exception as exc:  # noqa: BLE001 - failed meanwhile: reported like above
                        client.cancel(futures)
                        raise _fail(task, exc) from None
                    progress.update(n, events)
            # --- end of the engines hook ----------------------------------------------------------------


def _execute(tasks: list[_Task], progress: _Progress, *, workers: int | None, scheduler: str | None) -> None:
    if not tasks:
        return
    if scheduler is None and (workers is None or int(workers) <= 1):
        _run_sync(tasks, progress)
    else:
        _run_distributed(tasks, progress, workers=int(workers or 1), scheduler=scheduler)


def _check_workers(workers: int | None, scheduler: str | None) -> None:
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ParameterError(f"workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None and "://" not in str(scheduler):
        raise ParameterError(f"scheduler must be a Dask address such as tcp://host:8786, got {scheduler!r}")


def _resolve_splits(spec, splits: Sequence[str] | None) -> list[str]:
    if splits is None or len(splits) == 0:
        return list(spec.splits)
    if isinstance(splits, str):
        splits = [splits]
    out = []
    for split in splits:
        if split not in spec.splits:
            raise ParameterError(f"{spec.name} has no split {split!r}; splits: {', '.join(spec.splits)}")
        if split not in out:
            out.append(split)
    return out


def _open_or_create(url: str, meta: dict[str, Any], frame_shape: tuple[int, ...], dtype: str, n_samples: int,
                    shard_size: int | None):
    """Create the store, or re-open it for resume; an existing store's shard size is kept when none is given.

    A *complete* store with the same parameters and sample count is reused as is (read-only),
    even when another eventkit version wrote it: the version is recorded, not hashed. A partial
    store is resumed only when every attribute matches (``CacheStore.create`` checks them).
    """
    from eventkit.cache import CacheStore

    if shard_size is not None:  # a shard never holds more samples than the split (its index has one slot per sample)
        shard_size = min(int(shard_size), max(1, int(n_samples)))
    existing = None
    try:
        existing = CacheStore.open(url, require_complete=False)
    except CacheError:
        existing = None
    if existing is not None and existing.meta.get("params") == meta["params"]:
        if shard_size is None:
            shard_size = int(existing.shard_size)
        elif int(shard_size) != int(existing.shard_size):
            raise CacheError(
                f"{url} already holds this cache with shard_size={existing.shard_size}, not {shard_size}: "
                f"rerun with --shard-size {existing.shard_size}, or delete the store to rebuild it")
        if (existing.meta.get("complete") and existing.n_samples == int(n_samples)
                and tuple(existing.frame_shape) == tuple(frame_shape) and existing.dtype == np.dtype(dtype)
                and not existing.missing_shards()):
            return existing
    if shard_size is None:
        shard_size = default_shard_size(frame_shape, dtype, n_samples)
    try:
        return CacheStore.create(url, meta=meta, frame_shape=frame_shape, dtype=np.dtype(dtype),
                                 n_samples=n_samples, shard_size=int(shard_size))
    except OSError as exc:  # e.g. --cache under a file, or a read-only folder
        raise CacheError(f"{url}: cannot create the cache store ({type(exc).__name__}: {exc}); "
                         "choose another --cache") from exc


def _finish(stores: dict[str, Any], t0: float, progress: _Progress, *, name: str, T: int,
            split_by: str | None, representation: str) -> BuildResult:
    progress.close()
    samples = events = 0
    for split, store in stores.items():
        if not store.meta.get("complete"):
            missing = store.missing_shards()
            if missing:
                raise CacheError(f"{store.url}: shards {missing[:10]} are still missing after the build; "
                                 "rerun to resume")
            store.mark_complete()
        samples += int(store.n_samples)
        events += int(np.asarray(store.n_events(), dtype=np.int64).sum())
    return BuildResult(
        dataset=name, T=int(T), split_by=split_by, stores={s: st.url for s, st in stores.items()},
        samples=samples, events=events, seconds=time.perf_counter() - t0, representation=representation,
        built_samples=progress.samples, built_events=progress.events,
        store_bytes={s: int(st.disk_size()) for s, st in stores.items()})


# ---------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------

def build_cache(name: str, *, T: int, split_by: str = "count", dtype: str = "uint16", root=None, cache=None,
                workers: int | None = None, splits: Sequence[str] | None = None, merge_polarity: bool = False,
                n_channels: int | None = None, shard_size: int | None = None, scheduler: str | None = None,
                progress: bool = True) -> BuildResult:
    """Build (or resume) the ``frames`` stores of an event dataset, one per split.

    Args:
        name: dataset name (``nmnist``, ``cifar10dvs``, ``dvsgesture``, ``shd``, ``ssc``, ``ntidigits18``).
        T: time steps per sample; frames are ``[T, P, H, W]`` (vision) or ``[T, P, C']`` (audio).
        split_by: ``"count"`` (Eq. 22: equal event counts) or ``"time"`` (equal windows; audio: fixed
            ``dt_us = ceil(duration_us / T)`` bins shared by every sample).
        dtype: ``"uint16"`` or ``"uint8"`` (saturating) counts.
        root: raw data folder (default ``$EVENTKIT_DATA/<name>``); cache: cache root folder or URL.
        workers: 1/None in-process (Dask synchronous scheduler), N > 1 a local cluster of N processes.
        splits: subset of the dataset's splits (default: all). merge_polarity: sum polarities into P=1.
        n_channels: audio channel pooling (e.g. 700 -> 140). shard_size: samples per shard/task.
        scheduler: address of a running Dask scheduler (``tcp://host:8786``); overrides ``workers``.
        progress: tqdm bar on stderr.

    Returns a :class:`BuildResult`. Raises ``DatasetNotFound`` (no raw data), ``ParameterError``
    (bad option), ``CacheError`` (a store with other parameters at the path), ``BuildError``
    (a sample failed; its id and file are named).
    """
    from eventkit.cache import store_path
    from eventkit.datasets import resolve_root

    t0 = time.perf_counter()
    _check_workers(workers, scheduler)
    spec = _spec(name)
    run_splits = _resolve_splits(spec, splits)
    params_by_split = {s: frames_params(spec, s, T=T, split_by=split_by, dtype=dtype,
                                        merge_polarity=merge_polarity, n_channels=n_channels) for s in run_splits}
    root_path = resolve_root(spec.name, root)
    croot = cache_root(cache)
    stores: dict[str, Any] = {}
    tasks: list[_Task] = []
    total = done = 0
    for split in run_splits:
        params = params_by_split[split]
        samples = store_order(spec.samples(root_path, split))
        url = store_path(croot, spec.name, split, "frames", params)
        store = _open_or_create(url, _meta(spec, params), _frame_shape(params), params["dtype"], len(samples),
                                shard_size)
        stores[split] = store
        total += len(samples)
        missing = set(store.missing_shards())
        for k in range(store.n_shards):
            lo, hi = store.shard_range(k)
            if k not in missing:
                done += hi - lo
                continue
            what = f"{spec.name}/{split} shard {k} (samples {samples[lo].sample_id!r} .. {samples[hi - 1].sample_id!r})"
            tasks.append(_Task(store.url, k, hi - lo, what, _frames_task,
                               (store.url, spec.name, split, k, samples[lo:hi], params)))
    bar = _Progress(total, done, f"{spec.name} T={int(T)}", progress)
    try:
        _execute(tasks, bar, workers=workers, scheduler=scheduler)
    except BaseException:
        bar.close(failed=True)
        raise
    return _finish(stores, t0, bar, name=spec.name, T=T, split_by=split_by, representation="frames")


def encode_cache(name: str, *, T: int, encoder: str, seed: int = 0, root=None, cache=None,
                 workers: int | None = None, splits: Sequence[str] | None = None, shard_size: int | None = None,
                 scheduler: str | None = None, progress: bool = True) -> BuildResult:
    """Build (or resume) the spike stores of a static image dataset (mnist, fashionmnist, cifar10).

    Sample i of a split is ``eventkit.encode.encode(image_i / 255, T, encoder,
    generator=sample_generator(seed, i, "cpu"))`` stored as uint8 ``[T, C, H, W]``; ``direct``
    stores the uint8 intensities repeated T times (``params["value_scale"] = 1/255``).
    Same execution options and errors as :func:`build_cache`; ``BuildResult.split_by`` is None
    and ``events`` counts nonzero entries.
    """
    from eventkit.cache import store_path
    from eventkit.datasets import resolve_root

    t0 = time.perf_counter()
    _check_workers(workers, scheduler)
    spec = _spec(name)
    run_splits = _resolve_splits(spec, splits)
    for split in run_splits:  # validate every option before touching the raw data
        encode_params(spec, split, T=T, encoder=encoder, seed=seed)
    root_path = resolve_root(spec.name, root)
    croot = cache_root(cache)
    stores: dict[str, Any] = {}
    tasks: list[_Task] = []
    total = done = 0
    for split in run_splits:
        images, labels = spec.load_images(root_path, split)
        images = np.ascontiguousarray(images)
        ids = _static_ids(spec, root_path, split, images.shape[0])
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ParameterError(f"{spec.name}/{split}: load_images returned {images.dtype} {images.shape}, "
                                 f"expected uint8 [N, C, H, W]")
        params = encode_params(spec, split, T=T, encoder=encoder, seed=seed, image_shape=images.shape[1:])
        url = store_path(croot, spec.name, split, encoder, params)
        store = _open_or_create(url, _meta(spec, params), _frame_shape(params), "uint8", images.shape[0], shard_size)
        stores[split] = store
        total += images.shape[0]
        missing = set(store.missing_shards())
        for k in range(store.n_shards):
            lo, hi = store.shard_range(k)
            if k not in missing:
                done += hi - lo
                continue
            tasks.append(_Task(store.url, k, hi - lo, f"{spec.name}/{split} shard {k} (images {lo}..{hi - 1})",
                               _encode_task, (store.url, k, lo, images[lo:hi],
                                              np.asarray(labels[lo:hi], dtype=np.int64), ids[lo:hi], params)))
    bar = _Progress(total, done, f"{spec.name} {encoder} T={int(T)}", progress)
    try:
        _execute(tasks, bar, workers=workers, scheduler=scheduler)
    except BaseException:
        bar.close(failed=True)
        raise
    return _finish(stores, t0, bar, name=spec.name, T=T, split_by=None, representation=encoder)


def _check_shard_bytes(store, k: int) -> str | None:
    """``None`` when shard k matches its sha256 marker, else the problem (decode errors included)."""
    try:
        if store.check_shard(k):
            return None
        return ("frames, n_events, labels or sample ids differ from the sha256 hashes of the completion marker, "
                "or do not decode")
    except Exception as exc:  # noqa: BLE001 - any decode failure is a corrupt shard
        return f"{type(exc).__name__}: {exc}"


def verify_store(url: str, *, root=None, n_shards: int | None = 3, seed: int = 0,
                 all_shards: bool = False) -> VerifyReport:
    """Check a store against its markers and its raw data.

    Every shard's bytes are checked against the sha256 of its completion marker; then
    ``n_shards`` shards drawn with ``numpy.random.default_rng(seed)`` (every shard when
    ``all_shards`` or ``n_shards is None``) are recomputed from the raw files with the
    store's own parameters and compared exactly (frames, labels, n_events, sample ids).
    Raises ``CacheError`` when ``url`` is not an eventkit store, ``DatasetNotFound`` when
    the raw data are absent.
    """
    from eventkit.cache import CacheStore
    from eventkit.datasets import resolve_root

    if n_shards is not None and (isinstance(n_shards, bool) or int(n_shards) < 0):
        raise ParameterError(f"n_shards (--shards) must be an integer >= 0, got {n_shards!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ParameterError(f"seed (--seed) of the shard draw must be an integer >= 0, got {seed!r}")
    store = CacheStore.open(url, require_complete=False)
    meta = store.meta
    params = meta["params"]
    spec = _spec(meta["dataset"])
    split = meta["split"]
    report = VerifyReport(url=store.url, n_shards=int(store.n_shards), checked_shards=[],
                          marked_complete=bool(meta.get("complete")))
    complete = []
    for k in range(store.n_shards):
        if not store.is_shard_complete(k):
            report.incomplete_shards.append(k)
            continue
        problem = _check_shard_bytes(store, k)
        if problem is not None:
            report.corrupt_shards.append((k, problem))
        complete.append(k)
    if all_shards or n_shards is None or int(n_shards) >= len(complete):
        chosen = complete
    else:
        rng = np.random.default_rng(seed)
        chosen = sorted(int(k) for k in rng.choice(np.asarray(complete), size=int(n_shards), replace=False))
    if not chosen:
        return report
    root_path = resolve_root(spec.name, root)
    stored_ids = list(store.sample_ids())
    stored_events = np.asarray(store.n_events(), dtype=np.int64)
    if params["kind"] == "static":
        images, all_labels = spec.load_images(root_path, split)
        if images.shape[0] != store.n_samples:
            raise CacheError(f"{url}: the store holds {store.n_samples} samples but {spec.name}/{split} under "
                             f"{root_path} has {images.shape[0]}: it was built from other raw data")
        all_ids = _static_ids(spec, root_path, split, images.shape[0])
    else:
        samples = store_order(spec.samples(root_path, split))
        if len(samples) != store.n_samples:
            raise CacheError(f"{url}: the store holds {store.n_samples} samples but {spec.name}/{split} under "
                             f"{root_path} has {len(samples)}: it was built from other raw data")
    for k in chosen:
        lo, hi = store.shard_range(k)
        if params["kind"] == "static":
            frames = _encode_images(np.ascontiguousarray(images[lo:hi]), lo, params)
            labels = np.asarray(all_labels[lo:hi], dtype=np.int64)
            n_events = np.count_nonzero(frames.reshape(frames.shape[0], -1), axis=1).astype(np.int64)
            ids = all_ids[lo:hi]
        else:
            frames, labels, n_events, ids = _compute_frames_shard(spec.name, split, k, samples[lo:hi], params)
        report.checked_shards.append(k)
        try:
            got_frames, got_labels = store.read_shard(k)
        except Exception:  # noqa: BLE001 - undecodable shard: every sample mismatches
            report.mismatches.extend((k, i, stored_ids[i] if i < len(stored_ids) else ids[i - lo])
                                     for i in range(lo, hi))
            continue
        for j, i in enumerate(range(lo, hi)):
            same = (got_frames.shape[1:] == frames.shape[1:] and got_frames.dtype == frames.dtype
                    and np.array_equal(got_frames[j], frames[j])
                    and int(got_labels[j]) == int(labels[j]) and int(stored_events[i]) == int(n_events[j])
                    and stored_ids[i] == ids[j])
            if not same:
                report.mismatches.append((k, i, ids[j]))
    return report
