"""Per-shard computation, shared by the build tasks and :func:`eventkit.build.verify_store`.

``compute_frames_shard`` reads and frames one shard's samples; ``compute_encode_shard``
encodes one shard's images. Both return a :class:`ShardData`. ``sources_identity`` is what
the store records about its raw inputs to tell when they changed (staleness).
"""
from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from eventkit.build.params import EncodeParams, FrameParams, _spec
from eventkit.build.result import BuildError
from eventkit.errors import EventkitError

__all__ = ["ShardData", "compute_frames_shard", "compute_encode_shard", "static_ids", "sources_identity",
           "framer", "describe_sample"]


class ShardData(NamedTuple):
    """One shard's content: frames ``[n, *frame_shape]``, int64 labels and event counts ``[n]``, ids,
    and the samples left out by ``--skip-bad`` (``{"index", "sample_id", "error"}``, shard-relative
    ``index`` here; the store keeps absolute ones)."""

    frames: np.ndarray
    labels: np.ndarray
    n_events: np.ndarray
    sample_ids: list[str]
    skipped: list[dict]


def framer(params: FrameParams) -> Callable[[np.ndarray], np.ndarray]:
    """events -> frames for a ``frames`` store (vision ``[T, P, H, W]``, audio ``[T, P, C']``)."""
    T, dtype, sensor, merge = params.T, np.dtype(params.dtype), params.sensor_size, params.merge_polarity
    if params.kind == "audio":
        from eventkit.audio import to_audio_frames

        if params.split_by == "time":
            dt_us = params.dt_us
            assert dt_us is not None  # FrameParams.from_spec sets it for split_by="time"

            def time_frame(events: np.ndarray) -> np.ndarray:
                return to_audio_frames(events, sensor, dt_us=int(dt_us), T=T, split_by="time",
                                       n_channels=params.n_channels, merge_polarity=merge, dtype=dtype, start_us=0)
            return time_frame

        def count_frame(events: np.ndarray) -> np.ndarray:
            return to_audio_frames(events, sensor, T=T, split_by=params.split_by, n_channels=params.n_channels,
                                   merge_polarity=merge, dtype=dtype)
        return count_frame

    from eventkit.frames import to_frames

    def frame(events: np.ndarray) -> np.ndarray:
        return to_frames(events, sensor, T=T, split_by=params.split_by, dtype=dtype, merge_polarity=merge)
    return frame


def describe_sample(params: FrameParams | EncodeParams, k: int, sample) -> str:
    """``<name>/<split> shard k: sample '<id>' (file <path>)`` for error messages."""
    return f"{params.dataset}/{params.split} shard {k}: sample {sample.sample_id!r} (file {sample.path})"


def compute_frames_shard(params: FrameParams, k: int, samples: Sequence, *, skip_bad: bool = False,
                         skip: Collection[int] = (), on_sample: Callable[[int], None] | None = None) -> ShardData:
    """Frames of one shard's ``samples`` (in store order).

    A sample that fails raises a :class:`BuildError` naming it, or with ``skip_bad`` is left
    out (zero frames, label -1, 0 events) and listed in ``ShardData.skipped``; ``skip``:
    shard-relative indices to leave out without reading them (they killed or hung a worker).
    ``on_sample(j)`` is called before sample ``j`` is read.
    """
    spec = _spec(params.dataset)
    frame = framer(params)
    n = len(samples)
    frames = np.zeros((n, *params.frame_shape), dtype=np.dtype(params.dtype))
    labels = np.fromiter((s.label for s in samples), dtype=np.int64, count=n)
    n_events = np.zeros(n, dtype=np.int64)
    skipped: list[dict] = []

    def leave_out(j: int, error: str) -> None:
        labels[j] = -1
        frames[j] = 0
        skipped.append({"index": j, "sample_id": samples[j].sample_id, "error": error})

    todo = [j for j in range(n) if j not in skip]
    for j in sorted(set(range(n)) - set(todo)):
        leave_out(j, "killed or hung the builder process")
    it = iter(spec.iter_events([samples[j] for j in todo]))
    try:  # close the reader (and any HDF5 file it holds) even when a sample fails
        for j in todo:
            sample = samples[j]
            if on_sample is not None:
                on_sample(j)
            stage = ""
            try:
                events = next(it)
                stage = "framing failed: "
                frames[j] = frame(events)
                n_events[j] = len(events)
            except StopIteration:
                raise BuildError(f"{describe_sample(params, k, sample)}: the reader yielded only {j} of {n} samples",
                                 sample.sample_id, str(sample.path)) from None
            except Exception as exc:  # re-raised with the sample named, or skipped
                message = f"{stage}{type(exc).__name__}: {' '.join(str(exc).split())}"
                if not skip_bad:
                    raise BuildError(f"{describe_sample(params, k, sample)}: {message}", sample.sample_id,
                                     str(sample.path)) from exc
                leave_out(j, message)
                _close(it)
                it = iter(spec.iter_events([samples[i] for i in todo if i > j]))  # a fresh reader past it
    finally:
        _close(it)
    skipped.sort(key=lambda s: s["index"])
    return ShardData(frames, labels, n_events, [s.sample_id for s in samples], skipped)


def _close(it) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()


def static_ids(spec, root: Path, split: str, n: int) -> list[str]:
    """Ids of a static split's images: the dataset's own (``<raw file>#<row>``) when it lists them, else
    ``<split>#<i>``."""
    try:
        ids = [s.sample_id for s in spec.samples(root, split)]
    except EventkitError:
        ids = []
    return ids if len(ids) == n else [f"{split}#{i}" for i in range(n)]


def encode_images(images: np.ndarray, start: int, params: EncodeParams) -> np.ndarray:
    """uint8 images ``[n, C, H, W]`` (samples ``start..start+n``) -> uint8 ``[n, T, C, H, W]``.

    rate/poisson draw from ``sample_generator(seed, start + j, "cpu")`` per sample, so a
    sample's spikes do not depend on the shard layout or the worker; latency is
    deterministic; direct repeats the raw intensities (0..255).
    """
    T, encoder, n = params.T, params.encoder, images.shape[0]
    if encoder == "direct":
        return np.ascontiguousarray(np.broadcast_to(images[:, None], (n, T, *images.shape[1:])))
    import torch

    from eventkit.encode import encode, sample_generator

    if encoder == "latency":  # deterministic and elementwise: the whole shard in one call, [T, n, ...]
        spikes = encode(torch.from_numpy(np.ascontiguousarray(images)), T, encoder, dtype=torch.uint8)
        return np.ascontiguousarray(np.moveaxis(spikes.numpy(), 0, 1))
    out = np.zeros((n, T, *images.shape[1:]), dtype=np.uint8)
    seed = params.seed
    assert seed is not None  # EncodeParams.from_spec sets it for the stochastic encoders
    for j in range(n):  # one generator per sample: its spikes do not depend on the shard layout
        image = torch.from_numpy(np.ascontiguousarray(images[j]))  # uint8: the encoders scale by 1/255
        out[j] = encode(image, T, encoder, generator=sample_generator(seed, start + j, "cpu"),
                        dtype=torch.uint8).numpy()
    return out


def compute_encode_shard(params: EncodeParams, start: int, images: np.ndarray, labels: np.ndarray,
                         ids: Sequence[str]) -> ShardData:
    """Encoded spikes of one shard's images (``n_events`` = nonzero entries per sample)."""
    spikes = encode_images(np.ascontiguousarray(images), start, params)
    counts = np.count_nonzero(spikes.reshape(spikes.shape[0], -1), axis=1).astype(np.int64)
    return ShardData(spikes, np.asarray(labels, dtype=np.int64), counts, list(ids), [])


def sources_identity(samples: Sequence) -> dict[str, Any]:
    """What a store records about an event split's raw files: sha256 over every sample's id, label,
    and its file's size and modification time (ns), in store order. A raw file replaced, edited,
    moved to another class or renamed changes it; reading the files is not needed."""
    h = hashlib.sha256()
    stats: dict[Any, tuple[int, int]] = {}
    for s in samples:
        st = stats.get(s.path)
        if st is None:
            info = os.stat(s.path)
            st = stats[s.path] = (int(info.st_size), int(info.st_mtime_ns))
        h.update(f"{s.sample_id}\0{int(s.label)}\0{st[0]}\0{st[1]}\n".encode("utf-8", "surrogatepass"))
    return {"identity": "sample_id+label+size+mtime_ns", "sha256": h.hexdigest(), "files": len(stats)}


def images_identity(images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """What a static store records about its images: sha256 of the uint8 images then the int64 labels."""
    h = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return {"identity": "images+labels sha256", "sha256": h.hexdigest(), "files": None}


def pin_threads() -> None:
    """Inside a Dask worker or an isolated task: single-threaded Numba/torch kernels (one process per core)."""
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # noqa: BLE001 - threading layer unavailable: nothing to pin
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
