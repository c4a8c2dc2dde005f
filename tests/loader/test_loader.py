"""FrameDataset / FrameStream / to_device / make_loader over real (tiny) stores."""
from __future__ import annotations

import pickle
import types

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import eventkit.loader as loader_mod
from eventkit.errors import CacheError, ParameterError
from eventkit.loader import FrameDataset, FrameStream, epoch_order, make_loader, to_device
from tests.cache.helpers import FRAME_SHAPE, toy_data, write_store

N, SHARD = 20, 3  # 7 shards, the last one of 2 samples


@pytest.fixture(scope="module")
def store_url(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("loader") / "toy.zarr")
    write_store(url, N, SHARD)
    return url


@pytest.fixture(scope="module")
def data():
    return toy_data(N)


def _ranges():
    return [(a, min(a + SHARD, N)) for a in range(0, N, SHARD)]


def test_frame_dataset_items(store_url, data):
    frames, labels, _, _ = data
    ds = FrameDataset(store_url)
    assert len(ds) == N
    for i in (0, 7, 19):
        x, y = ds[i]
        assert x.dtype == torch.uint16 and tuple(x.shape) == FRAME_SHAPE
        assert np.array_equal(x.numpy(), frames[i]) and y == labels[i] and isinstance(y, int)
    state = pickle.dumps(ds)  # only the path travels into workers
    assert b"zarr" not in state.replace(b".zarr", b"")
    assert np.array_equal(pickle.loads(state)[3][0].numpy(), frames[3])


def test_incomplete_store_refused(tmp_path):
    url = str(tmp_path / "half.zarr")
    write_store(url, N, SHARD, order=[0, 1], complete=False)
    with pytest.raises(CacheError, match="rerun `eventkit frames toy"):
        FrameStream(url)
    with pytest.raises(CacheError, match="incomplete"):
        FrameDataset(url)


def _iterate(ds, monkeypatch=None, worker=None, n_workers=None):
    if worker is not None:
        info = types.SimpleNamespace(id=worker, num_workers=n_workers)
        monkeypatch.setattr(loader_mod, "get_worker_info", lambda: info)
    return list(ds)


def test_stream_matches_plan_for_simulated_workers(store_url, data, monkeypatch):
    frames, labels, _, _ = data
    for world in range(1, 5):
        for n_workers in range(1, 5):
            seen = []
            for rank in range(world):
                ds = FrameStream(store_url, seed=7, rank=rank, world_size=world, shuffle_buffer=5, return_index=True)
                ds.set_epoch(2)
                for w in range(n_workers):
                    items = _iterate(ds, monkeypatch, w, n_workers)
                    idx = [i for _, _, i in items]
                    assert idx == epoch_order(N, _ranges(), rank, world, w, n_workers, 7, 2,
                                              shuffle_buffer=5).tolist()
                    for x, y, i in items:
                        assert x.dtype == torch.uint16 and np.array_equal(x.numpy(), frames[i]) and y == labels[i]
                    seen += idx
            assert sorted(seen) == list(range(N))


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("world,workers", [(1, 0), (1, 2), (3, 2), (2, 3)])
def test_real_dataloader_exactly_once(store_url, data, world, workers):
    frames, labels, _, _ = data
    seen = []
    for rank in range(world):
        ds = FrameStream(store_url, seed=1, rank=rank, world_size=world, shuffle_buffer=4, return_index=True)
        ds.set_epoch(1)
        dl = DataLoader(ds, batch_size=4, num_workers=workers)
        rank_seen = []
        for x, y, i in dl:
            assert x.dtype == torch.uint16 and x.shape[1:] == FRAME_SHAPE and y.dtype == torch.int64
            assert np.array_equal(x.numpy(), frames[i.numpy()]) and y.tolist() == labels[i.numpy()].tolist()
            rank_seen += i.tolist()
        assert len(rank_seen) == len(ds)
        if workers == 0:
            assert rank_seen == epoch_order(N, _ranges(), rank, world, 0, 1, 1, 1, shuffle_buffer=4).tolist()
        seen += rank_seen
    assert sorted(seen) == list(range(N))


def test_drop_last_equal_counts(store_url):
    counts, seen = [], []
    for rank in range(3):
        ds = FrameStream(store_url, rank=rank, world_size=3, drop_last=True, return_index=True)
        got = [i for _, _, i in ds]
        counts.append((len(got), len(ds)))
        seen += got
    assert counts == [(6, 6)] * 3 and len(set(seen)) == 18


def test_epochs_and_seeds(store_url):
    def order(seed, epoch):
        ds = FrameStream(store_url, seed=seed, return_index=True)
        ds.set_epoch(epoch)
        return [i for _, _, i in ds]

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1) and order(0, 0) != order(1, 0)
    assert sorted(order(0, 3)) == list(range(N))
    plain = FrameStream(store_url, shuffle=False, return_index=True)
    assert [i for _, _, i in plain] == list(range(N))


def test_rank_from_torch_distributed(store_url, monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 3)
    ds = FrameStream(store_url, return_index=True)
    assert len(ds) == 7 and sorted(i for _, _, i in ds) == sorted(
        epoch_order(N, _ranges(), 1, 3, 0, 1, 0, 0).tolist())
    with pytest.raises(ParameterError, match="both rank and world_size"):
        FrameStream(store_url, rank=0)


def test_rank_from_torch_distributed_survives_pickling(store_url, monkeypatch):
    """A spawn/forkserver DataLoader worker unpickles the stream where torch.distributed is not initialised."""
    with monkeypatch.context() as m:
        m.setattr(torch.distributed, "is_available", lambda: True)
        m.setattr(torch.distributed, "is_initialized", lambda: True)
        m.setattr(torch.distributed, "get_rank", lambda: 1)
        m.setattr(torch.distributed, "get_world_size", lambda: 3)
        blob = pickle.dumps(FrameStream(store_url, return_index=True))
    assert not torch.distributed.is_initialized()  # as in a freshly spawned worker
    ds = pickle.loads(blob)
    assert len(ds) == 7 and sorted(i for _, _, i in ds) == sorted(
        epoch_order(N, _ranges(), 1, 3, 0, 1, 0, 0).tolist())


def test_to_device_time_first_float(data):
    frames, labels, _, _ = data
    batch = (torch.from_numpy(frames[:4]), torch.tensor(labels[:4]))
    x, y = to_device(batch, "cpu")
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, 4, *FRAME_SHAPE[1:]) and x.is_contiguous()
    ref = np.transpose(frames[:4].astype(np.float64), (1, 0, 2, 3, 4))
    assert np.array_equal(x.numpy().astype(np.float64), ref)
    assert y.dtype == torch.int64 and y.tolist() == labels[:4].tolist()
    big = torch.full((2, 1, 3), 65535, dtype=torch.uint16)
    assert to_device((big, [0, 1]), "cpu", dtype=torch.bfloat16)[0].float().max().item() == 65536.0  # bf16 rounding
    assert to_device((big, [0, 1]), "cpu")[0].max().item() == 65535.0
    with pytest.raises(ParameterError):
        to_device((torch.zeros(3), [0]), "cpu")


@pytest.mark.parametrize("stream", [True, False])
def test_make_loader_set_epoch(store_url, stream):
    def labels_of(epoch):
        dl = make_loader(store_url, 8, stream=stream, workers=0, seed=3, pin_memory=False)
        dl.set_epoch(epoch)
        batches = list(dl)
        assert all(x.dtype == torch.uint16 for x, _ in batches)
        return [tuple(b[0][:, 0, 0, 0, 0].tolist()) for b in batches]  # first element encodes the index

    e0, e0b, e1 = labels_of(0), labels_of(0), labels_of(1)
    assert e0 == e0b and e0 != e1
    assert sorted(i for b in e0 for i in b) == list(range(N))


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_batch_mode_same_batches_for_any_worker_count(store_url, data):
    frames, labels, _, _ = data

    def batches(workers, rank=0, world=1):
        ds = FrameStream(store_url, seed=2, rank=rank, world_size=world, shuffle_buffer=4, batch_size=4,
                         return_index=True)
        ds.set_epoch(5)
        out = []
        for x, y, i in DataLoader(ds, batch_size=4, num_workers=workers):
            assert np.array_equal(x.numpy(), frames[i.numpy()]) and y.tolist() == labels[i.numpy()].tolist()
            out.append(i.tolist())
        return out

    ref = batches(0)
    assert sorted(i for b in ref for i in b) == list(range(N))
    assert batches(2) == ref and batches(3) == ref
    ref_rank = batches(0, rank=1, world=2)
    assert batches(2, rank=1, world=2) == ref_rank
    assert sorted(i for b in ref_rank + batches(0, rank=0, world=2) for i in b) == list(range(N))


def test_batch_mode_simulated_workers_decode(store_url, data, monkeypatch):
    frames, labels, _, _ = data
    got = []
    for w in range(3):
        ds = FrameStream(store_url, seed=0, batch_size=2, return_index=True)
        for x, y, i in _iterate(ds, monkeypatch, w, 3):
            assert np.array_equal(x.numpy(), frames[i]) and y == labels[i]
            got.append(i)
    assert sorted(got) == list(range(N))


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_make_loader_same_order_for_workers(store_url):
    def order(workers):
        dl = make_loader(store_url, 4, workers=workers, seed=9, pin_memory=False)
        dl.set_epoch(1)
        return [b[0][:, 0, 0, 0, 0].tolist() for b in dl]

    assert order(0) == order(2)
