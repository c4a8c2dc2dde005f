"""The epoch plan (pure functions): exactly once over ranks x workers, drop_last, determinism."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.errors import ParameterError
from eventkit.loader import epoch_order, partition, rank_bounds


def ranges_of(sizes):
    out, start = [], 0
    for size in sizes:
        out.append((start, start + size))
        start += size
    return out


LAYOUTS = {
    "7x3-last2": [3] * 6 + [2],
    "one-shard": [5],
    "one-sample": [1],
    "singletons": [1] * 9,
    "uneven": [4, 4, 4, 1],
}


def samples_of(segments):
    return [i for _, a, b in segments for i in range(a, b)]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("drop_last", [False, True])
def test_every_sample_exactly_once_full_grid(layout, drop_last):
    sizes = LAYOUTS[layout]
    shard_ranges = ranges_of(sizes)
    n = sum(sizes)
    for world in range(1, 5):
        for n_workers in range(1, 5):  # DataLoader num_workers 0 behaves as one worker
            for seed, epoch in [(0, 0), (3, 1)]:
                per_rank = []
                for rank in range(world):
                    rank_samples = []
                    for worker in range(n_workers):
                        segs = partition(n, shard_ranges, rank, world, worker, n_workers, seed, epoch,
                                         drop_last=drop_last)
                        # each segment lies inside its shard; a worker reads a shard at most once
                        for k, a, b in segs:
                            assert shard_ranges[k][0] <= a < b <= shard_ranges[k][1]
                        assert len({k for k, _, _ in segs}) == len(segs)
                        order = epoch_order(n, shard_ranges, rank, world, worker, n_workers, seed, epoch,
                                            shuffle_buffer=4, drop_last=drop_last)
                        assert sorted(order.tolist()) == sorted(samples_of(segs))
                        rank_samples += order.tolist()
                    per_rank.append(rank_samples)
                    lo, hi = rank_bounds(n, rank, world, drop_last)
                    assert len(rank_samples) == hi - lo
                everything = [i for r in per_rank for i in r]
                counts = Counter(everything)
                assert max(counts.values(), default=1) == 1, "a sample was yielded twice"
                if drop_last:
                    assert len({len(r) for r in per_rank}) == 1  # equal counts on every rank
                    assert len(per_rank[0]) == n // world
                    assert n - len(everything) == n % world
                else:
                    assert sorted(everything) == list(range(n))
                    assert max(map(len, per_rank)) - min(map(len, per_rank)) <= 1


def test_rank_sample_set_does_not_depend_on_worker_count():
    shard_ranges = ranges_of(LAYOUTS["7x3-last2"])
    for world in (1, 2, 3):
        for rank in range(world):
            sets = {frozenset(i for w in range(k) for i in samples_of(
                partition(20, shard_ranges, rank, world, w, k, 5, 2))) for k in range(1, 5)}
            assert len(sets) == 1


def test_deterministic_per_seed_epoch_and_epochs_differ():
    shard_ranges = ranges_of(LAYOUTS["7x3-last2"])

    def full(seed, epoch, world=2, workers=2):
        return [epoch_order(20, shard_ranges, r, world, w, workers, seed, epoch).tolist()
                for r in range(world) for w in range(workers)]

    assert full(0, 0) == full(0, 0)
    assert full(0, 0) != full(0, 1)
    assert full(0, 0) != full(1, 0)
    # shard order itself changes with the epoch
    shard_orders = {tuple(k for k, _, _ in partition(20, shard_ranges, 0, 1, 0, 1, 0, e)) for e in range(6)}
    assert len(shard_orders) > 1


def test_no_shuffle_is_sequential():
    shard_ranges = ranges_of(LAYOUTS["7x3-last2"])
    assert epoch_order(20, shard_ranges, 0, 1, 0, 1, 0, 0, shuffle=False).tolist() == list(range(20))
    assert epoch_order(20, shard_ranges, 1, 2, 1, 2, 9, 4, shuffle=False).tolist() == list(range(15, 20))


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=12), world=st.integers(1, 5),
       n_workers=st.integers(1, 4), seed=st.integers(0, 2**31), epoch=st.integers(0, 100),
       buffer=st.integers(0, 8), drop_last=st.booleans())
def test_exactly_once_property(sizes, world, n_workers, seed, epoch, buffer, drop_last):
    shard_ranges = ranges_of(sizes)
    n = sum(sizes)
    got = [i for r in range(world) for w in range(n_workers)
           for i in epoch_order(n, shard_ranges, r, world, w, n_workers, seed, epoch, shuffle_buffer=buffer,
                                drop_last=drop_last).tolist()]
    assert len(got) == len(set(got))
    assert len(got) == (world * (n // world) if drop_last else n)


def test_bad_arguments():
    with pytest.raises(ParameterError, match="rank index 2"):
        partition(4, [(0, 4)], 2, 2, 0, 1, 0, 0)
    with pytest.raises(ParameterError, match="worker count"):
        partition(4, [(0, 4)], 0, 1, 0, 0, 0, 0)
    with pytest.raises(ParameterError, match="tile"):
        partition(4, [(0, 2), (3, 4)], 0, 1, 0, 1, 0, 0)
    assert np.asarray(epoch_order(4, [(0, 4)], 0, 1, 0, 1, 0, 0)).dtype == np.int64


def _round_robin(per_worker, batch_size):
    """What a DataLoader (in order) yields from IterableDataset workers: batch j of worker 0, 1, ..."""
    batches = [[w[i:i + batch_size] for i in range(0, len(w), batch_size)] for w in per_worker]
    out = []
    for j in range(max(map(len, batches), default=0)):
        for b in batches:
            if j < len(b):
                out += b[j]
    return out


@pytest.mark.parametrize("layout", ["7x3-last2", "singletons", "uneven"])
def test_batch_mode_order_independent_of_workers(layout):
    shard_ranges = ranges_of(LAYOUTS[layout])
    n = sum(LAYOUTS[layout])
    for world in (1, 2, 3):
        for rank in range(world):
            for drop_last in (False, True):
                ref = epoch_order(n, shard_ranges, rank, world, 0, 1, 4, 2, shuffle_buffer=3, drop_last=drop_last)
                for batch_size in (1, 3, 4, 5):
                    for k in range(1, 5):
                        per_worker = [epoch_order(n, shard_ranges, rank, world, w, k, 4, 2, shuffle_buffer=3,
                                                  drop_last=drop_last, batch_size=batch_size).tolist()
                                      for w in range(k)]
                        assert _round_robin(per_worker, batch_size) == ref.tolist()
                        # whole batches per worker except the rank's last, partial one
                        sizes = [len(w) % batch_size for w in per_worker]
                        assert sum(1 for s in sizes if s) <= 1
