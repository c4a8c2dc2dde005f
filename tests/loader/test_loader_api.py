"""Loader features for ordinary torch code: subsets, transforms, output dtypes, epochs that
advance by themselves (in-process, worker and persistent-worker passes)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from eventkit.errors import ParameterError
from eventkit.loader import FrameDataset, FrameStream, epoch_order, make_loader
from tests.cache.helpers import FRAME_SHAPE, toy_data, write_store

N, SHARD = 20, 3
SUBSET = [19, 0, 4, 5, 6, 11, 12, 17]  # across shards 0, 1, 2, 3, 4, 5, 6 (none of shard 6's first)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("loader_api") / "toy.zarr")
    write_store(url, N, SHARD)
    return url


@pytest.fixture(scope="module")
def big_url(tmp_path_factory):
    """Counts up to 400 (uint16) to see uint8 saturation."""
    frames, labels, n_events, ids = toy_data(6)
    frames = frames.copy()
    frames.reshape(6, -1)[:, 1] = np.array([0, 255, 256, 300, 400, 7], dtype=np.uint16)
    url = str(tmp_path_factory.mktemp("loader_big") / "big.zarr")
    write_store(url, 6, 4, data=(frames, labels, n_events, ids))
    return url, frames


def double(x: torch.Tensor) -> torch.Tensor:  # module level: picklable into spawned workers
    return x.float() * 2


def plus_ten(y: int) -> int:
    return y + 10


def test_dataset_subset_transform(store_url):
    frames, labels, _, _ = toy_data(N)
    ds = FrameDataset(store_url, samples=SUBSET, transform=double, target_transform=plus_ten)
    assert len(ds) == len(SUBSET)
    for i, s in enumerate(SUBSET):  # item i is store sample SUBSET[i], in the given order
        x, y = ds[i]
        assert x.dtype == torch.float32 and np.array_equal(x.numpy(), frames[s].astype(np.float32) * 2)
        assert y == labels[s] + 10
    assert ds.labels().tolist() == labels[SUBSET].tolist()


@pytest.mark.parametrize("world,workers", [(1, 0), (2, 0), (3, 2)])
def test_stream_subset_exactly_once(store_url, world, workers):
    frames, labels, _, _ = toy_data(N)
    seen = []
    for rank in range(world):
        ds = FrameStream(store_url, seed=4, rank=rank, world_size=world, shuffle_buffer=3, return_index=True,
                         samples=SUBSET)
        ds.set_epoch(2)
        got = []
        for x, y, i in DataLoader(ds, batch_size=2, num_workers=workers):
            assert np.array_equal(x.numpy(), frames[i.numpy()]) and y.tolist() == labels[i.numpy()].tolist()
            got += i.tolist()
        assert len(got) == len(ds)
        seen += got
    assert sorted(seen) == sorted(SUBSET)
    # drop_last: equal counts, disjoint
    counts = [len(list(FrameStream(store_url, rank=r, world_size=3, drop_last=True, samples=SUBSET)))
              for r in range(3)]
    assert counts == [2, 2, 2]


def test_stream_subset_order_is_the_plan_over_positions(store_url):
    pos_ranges, sub = [], np.sort(SUBSET)
    for a, b in [(a, min(a + SHARD, N)) for a in range(0, N, SHARD)]:
        members = np.nonzero((sub >= a) & (sub < b))[0]
        start = int(members[0]) if members.size else (pos_ranges[-1][1] if pos_ranges else 0)
        pos_ranges.append((start, start + members.size))
    ds = FrameStream(store_url, seed=8, shuffle_buffer=2, return_index=True, samples=SUBSET)
    ds.set_epoch(3)
    got = [i for _, _, i in ds]
    assert got == sub[epoch_order(len(sub), pos_ranges, 0, 1, 0, 1, 8, 3, shuffle_buffer=2)].tolist()


def test_output_dtypes(big_url):
    url, frames = big_url
    x16 = FrameDataset(url)[3][0]
    x8 = FrameDataset(url, output_dtype="uint8")[3][0]
    xf = FrameDataset(url, output_dtype=torch.float32)[3][0]
    assert x16.dtype == torch.uint16 and x8.dtype == torch.uint8 and xf.dtype == torch.float32
    assert np.array_equal(x8.numpy(), np.minimum(frames[3], 255).astype(np.uint8))  # saturating, not wrapping
    assert x8.flatten()[1].item() == 255 and xf.flatten()[1].item() == 300.0
    assert np.array_equal(xf.numpy(), frames[3].astype(np.float32))
    # ordinary torch ops work on the delivered tensors (uint16 lacks most CPU kernels)
    for x in (x8, xf):
        torch.flip(x, dims=[-1]).clamp(0, 3).max()
    got = [x for x, _ in FrameStream(url, shuffle=False, output_dtype="float32")]
    assert all(x.dtype == torch.float32 for x in got)
    assert np.array_equal(torch.stack(got).numpy(), frames.astype(np.float32))


def test_bad_arguments(store_url):
    with pytest.raises(ParameterError, match="repeats"):
        FrameStream(store_url, samples=[1, 1])
    with pytest.raises(ParameterError, match=r"\[0, 20\)"):
        FrameDataset(store_url, samples=[0, 20])
    with pytest.raises(ParameterError, match="integer store indices"):
        FrameDataset(store_url, samples=[0.5])
    with pytest.raises(ParameterError, match="output_dtype"):
        FrameStream(store_url, output_dtype="int8")
    with pytest.raises(ParameterError, match="transform must be callable"):
        FrameDataset(store_url, transform="flip")


def _reference(store_url, epoch, **kw):
    ds = FrameStream(store_url, return_index=True, **kw)
    ds.set_epoch(epoch)
    return [i for _, _, i in ds]


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers,persistent", [(0, False), (2, False), (2, True)])
def test_epoch_advances_without_set_epoch(store_url, workers, persistent):
    """A plain loop that never calls set_epoch still reshuffles: pass e is epoch e."""
    ds = FrameStream(store_url, seed=5, return_index=True, batch_size=4)
    extra = {"persistent_workers": True} if persistent else {}
    dl = DataLoader(ds, batch_size=4, num_workers=workers, **extra)
    passes = [[i for _, _, b in dl for i in b.tolist()] for _ in range(3)]
    ref = [_reference(store_url, e, seed=5, batch_size=4) for e in range(3)]
    assert passes == ref
    assert passes[0] != passes[1] != passes[2]
    assert all(sorted(p) == list(range(N)) for p in passes)
    # set_epoch still wins, also in persistent workers
    ds.set_epoch(1)
    assert [i for _, _, b in dl for i in b.tolist()] == ref[1]
    assert ds.epoch == 2


def test_direct_iteration_advances(store_url):
    ds = FrameStream(store_url, seed=2, return_index=True)
    first, second = [i for _, _, i in ds], [i for _, _, i in ds]
    assert first == _reference(store_url, 0, seed=2) and second == _reference(store_url, 1, seed=2)


@pytest.mark.parametrize("stream", [True, False])
def test_make_loader_advances_without_set_epoch(store_url, stream):
    dl = make_loader(store_url, 5, stream=stream, seed=3, pin_memory=False)
    passes = [[int(v) for x, _ in dl for v in x[:, 0, 0, 0, 0]] for _ in range(2)]
    ref = make_loader(store_url, 5, stream=stream, seed=3, pin_memory=False)
    expected = []
    for e in range(2):
        ref.set_epoch(e)
        expected.append([int(v) for x, _ in ref for v in x[:, 0, 0, 0, 0]])
    assert passes == expected and passes[0] != passes[1]


def test_frames_shape_unchanged(store_url):
    x, _ = next(iter(FrameStream(store_url)))
    assert tuple(x.shape) == FRAME_SHAPE
