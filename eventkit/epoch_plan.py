"""The epoch plan of :class:`eventkit.loader.FrameStream`: pure functions of integers.

An epoch is split as follows (:func:`partition`): the shards are permuted by
``(seed, epoch)`` and concatenated into one sequence of N samples; rank ``r`` of ``W``
takes the contiguous slice ``[r*N//W, (r+1)*N//W)`` (``drop_last``: ``[r*q, (r+1)*q)``,
``q = N//W``, the last ``N - W*q`` samples of the epoch's sequence are dropped); worker
``w`` of ``K`` takes the same kind of contiguous slice of its rank's slice. A worker thus
reads about ``1/(W*K)`` of the shards, each once, in whole contiguous pieces. With
``batch_size=B`` (worker-count-independent order) the rank's sequence is instead built as
for one worker (shard pieces, within-piece permutation, shuffle buffer) and worker ``w``
takes its batches ``w, w+K, ...``: the DataLoader's in-order round-robin over workers
yields exactly the one-worker sequence. :func:`epoch_order` gives either order.

"Samples" here are positions ``0..N-1`` of the sequence being split: the store's indices,
or positions in a subset of them (``FrameStream(..., samples=)`` maps them back).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

__all__ = ["Segment", "rank_bounds", "partition", "epoch_order"]

Segment = tuple[int, int, int]  # (shard k, first sample, stop sample)


# ---------------------------------------------------------------------------------------
# the epoch plan: pure functions of integers
# ---------------------------------------------------------------------------------------

def _check_split(name: str, index: int, count: int) -> None:
    if not isinstance(count, (int, np.integer)) or count < 1:
        raise ParameterError(f"{name} count must be an integer >= 1, got {count!r}")
    if not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        raise ParameterError(f"{name} index {index!r} must be in [0, {count})")


def _check_ranges(n_samples: int, shard_ranges: Sequence[tuple[int, int]]) -> None:
    expected = 0
    for k, (start, stop) in enumerate(shard_ranges):
        if start != expected or stop < start:
            raise ParameterError(f"shard_ranges must tile [0, n_samples) in order; shard {k} is "
                                 f"[{start}, {stop}) but should start at {expected}")
        expected = stop
    if expected != n_samples:
        raise ParameterError(f"shard_ranges cover {expected} samples, n_samples is {n_samples}")


def rank_bounds(n_samples: int, rank: int, world_size: int, drop_last: bool = False) -> tuple[int, int]:
    """Positions ``[lo, hi)`` of rank ``rank``'s slice of an epoch's sample sequence."""
    _check_split("rank", rank, world_size)
    if drop_last:
        per = n_samples // world_size
        return rank * per, (rank + 1) * per
    return rank * n_samples // world_size, (rank + 1) * n_samples // world_size


def partition(n_samples: int, shard_ranges: Sequence[tuple[int, int]], rank: int, world_size: int,
              worker: int, n_workers: int, seed: int, epoch: int, *, shuffle: bool = True,
              drop_last: bool = False) -> list[Segment]:
    """The contiguous pieces of shards that (rank, worker) reads in an epoch, in read order.

    ``shard_ranges[k] = (start, stop)`` tile ``[0, n_samples)``. Returns ``(k, start, stop)``
    segments; over all ranks and workers they cover every sample exactly once (with
    ``drop_last`` every rank gets ``n_samples // world_size`` samples and the rest of the
    epoch's sequence is dropped). The shard order depends only on ``(seed, epoch)``.
    """
    _check_ranges(n_samples, shard_ranges)
    _check_split("worker", worker, n_workers)
    lo, hi = rank_bounds(n_samples, rank, world_size, drop_last)
    m = hi - lo
    wlo, whi = lo + worker * m // n_workers, lo + (worker + 1) * m // n_workers
    if shuffle:
        order = np.random.default_rng([int(seed), int(epoch), 0]).permutation(len(shard_ranges))
    else:
        order = np.arange(len(shard_ranges))
    segments: list[Segment] = []
    pos = 0  # position of the current shard's first sample in the epoch's sequence
    for k in order:
        start, stop = shard_ranges[int(k)]
        size = stop - start
        a, b = max(wlo, pos), min(whi, pos + size)
        if a < b:
            segments.append((int(k), start + (a - pos), start + (b - pos)))
        pos += size
        if pos >= whi:
            break
    return segments


def _worker_rng(seed: int, epoch: int, rank: int, world_size: int, worker: int, n_workers: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), 1, rank, world_size, worker, n_workers])


def _ordered(segments: Sequence[Segment], read: Callable[[int, int], Any], rng: np.random.Generator,
             shuffle: bool, buffer_size: int) -> Iterator[tuple[int, Any, int]]:
    """Yield ``(index, payload_j, j)`` for every sample of ``segments`` in epoch order.

    ``read(start, stop)`` returns the segment's payload (read once per segment); items are
    permuted within a segment and then pass a shuffle buffer of ``buffer_size`` items.
    """
    def items() -> Iterator[tuple[int, Any, int]]:
        for _, start, stop in segments:
            payload = read(start, stop)
            local = rng.permutation(stop - start) if shuffle else range(stop - start)
            for j in local:
                yield start + int(j), payload, int(j)

    if not shuffle or buffer_size <= 1:
        yield from items()
        return
    buf: list[tuple[int, Any, int]] = []
    for item in items():
        if len(buf) < buffer_size:
            buf.append(item)
            continue
        j = int(rng.integers(buffer_size))
        out, buf[j] = buf[j], item
        yield out
    for j in rng.permutation(len(buf)):
        yield buf[int(j)]


def epoch_order(n_samples: int, shard_ranges: Sequence[tuple[int, int]], rank: int, world_size: int,
                worker: int, n_workers: int, seed: int, epoch: int, *, shuffle: bool = True,
                shuffle_buffer: int = 256, drop_last: bool = False, batch_size: int | None = None) -> np.ndarray:
    """Sample indices in the order :class:`FrameStream` yields them for (rank, worker), int64 ``[n]``.

    ``batch_size=None``: the worker's contiguous slice of its rank's sequence (see
    :func:`partition`), shuffled by its own generator. ``batch_size=B``: the rank's
    sequence is built as for one worker, and worker ``w`` of ``K`` takes its batches
    ``w, w + K, w + 2K, ...`` — the DataLoader's round-robin over workers then restores
    the one-worker order exactly, whatever ``K``.
    """
    if batch_size is not None and int(batch_size) < 1:
        raise ParameterError(f"batch_size={batch_size} must be >= 1 (or None)")
    _check_split("worker", worker, n_workers)
    if batch_size is not None:
        order = epoch_order(n_samples, shard_ranges, rank, world_size, 0, 1, seed, epoch, shuffle=shuffle,
                            shuffle_buffer=shuffle_buffer, drop_last=drop_last)
        return order[(np.arange(order.size) // int(batch_size)) % n_workers == worker]
    segments = partition(n_samples, shard_ranges, rank, world_size, worker, n_workers, seed, epoch,
                         shuffle=shuffle, drop_last=drop_last)
    rng = _worker_rng(seed, epoch, rank, world_size, worker, n_workers)
    picked = [i for i, _, _ in _ordered(segments, lambda a, b: None, rng, shuffle, shuffle_buffer)]
    return np.asarray(picked, dtype=np.int64)
