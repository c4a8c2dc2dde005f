"""Per-shard computation, shared by the build tasks and :func:`eventkit.build.verify_store`."""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eventkit.build.params import _spec
from eventkit.build.result import BuildError
from eventkit.errors import EventkitError

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

