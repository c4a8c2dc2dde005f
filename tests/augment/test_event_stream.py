"""EventFrameStream: equals the frame cache without augmentation; partition; seeded augmentation."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import eventkit.loader as loader_mod
from eventkit.augment import EventAugment
from eventkit.build import build_cache
from eventkit.errors import ParameterError
from eventkit.event_stream import EventFrameStream, make_event_loader
from eventkit.events_build import build_events_store
from eventkit.loader import FrameDataset, FrameStream
from eventkit.testing import arrange_nmnist_small, make_nmnist_root, make_shd_root
from eventkit_train.augment import AugmentConfig, make_augmented_loader
from tests.conftest import shared_file

SHARD = 4
RANDOM = [{"op": "flip_lr"}, {"op": "drop_event", "p": 0.3}, {"op": "translate", "max_px": 2}]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stream")
    root = make_nmnist_root(d / "raw", per_class_train=3)  # 30 train samples: shards of 4, the last of 2
    events = build_events_store("nmnist", root=root, cache=d / "c", shard_size=SHARD, progress=False).stores
    frames = build_cache("nmnist", T=6, root=root, cache=d / "c", shard_size=SHARD, progress=False).stores
    return {"root": root, "cache": d / "c", "events": events, "frames": frames}


def items(ds, worker=None, n_workers=None, monkeypatch=None):
    if worker is not None:
        info = types.SimpleNamespace(id=worker, num_workers=n_workers)
        monkeypatch.setattr(loader_mod, "get_worker_info", lambda: info)
    return list(ds)


def assert_same_items(a, b):
    assert [x[2] for x in a] == [y[2] for y in b]
    for x, y in zip(a, b, strict=True):
        assert x[0].dtype == y[0].dtype and torch.equal(x[0], y[0]) and x[1] == y[1]


@pytest.mark.parametrize("split_by", ["count", "time"])
def test_without_augmentation_equals_the_frame_stream(stores, split_by, tmp_path):
    frames = build_cache("nmnist", T=6, split_by=split_by, root=stores["root"], cache=tmp_path, shard_size=SHARD,
                         progress=False).stores["train"]
    for epoch in (0, 1):
        ours = EventFrameStream(stores["events"]["train"], T=6, split_by=split_by, seed=3, return_index=True)
        theirs = FrameStream(frames, seed=3, return_index=True)
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        assert_same_items(items(ours), items(theirs))
    assert ours.frame_shape == (6, 2, 34, 34) and len(ours) == len(theirs) == 30


def test_worker_and_rank_splits_match_the_frame_stream(stores, monkeypatch):
    kw = {"seed": 1, "return_index": True}
    for world, n_workers, batch, drop_last in ((1, 3, None, False), (2, 2, 4, True), (3, 2, None, False)):
        for rank in range(world):
            for w in range(n_workers):
                ours = EventFrameStream(stores["events"]["train"], T=6, rank=rank, world_size=world, batch_size=batch,
                                        drop_last=drop_last, **kw)
                theirs = FrameStream(stores["frames"]["train"], rank=rank, world_size=world, batch_size=batch,
                                     drop_last=drop_last, **kw)
                assert_same_items(items(ours, w, n_workers, monkeypatch), items(theirs, w, n_workers, monkeypatch))


def test_ranks_by_workers_partition_has_no_overlap_and_no_loss(stores, monkeypatch):
    for world, n_workers, drop_last in ((1, 1, False), (2, 3, False), (3, 2, True), (4, 1, False)):
        seen = []
        per_rank = []
        for rank in range(world):
            mine = []
            for w in range(n_workers):
                ds = EventFrameStream(stores["events"]["train"], T=6, rank=rank, world_size=world, seed=2,
                                      drop_last=drop_last, return_index=True, augment=EventAugment.from_table(
                                          RANDOM, source="t"))
                mine += [i for _, _, i in items(ds, w, n_workers, monkeypatch)]
            per_rank.append(len(mine))
            seen += mine
        assert len(seen) == len(set(seen))
        if drop_last:
            assert len(set(per_rank)) == 1 and len(seen) == 30 // world * world
        else:
            assert sorted(seen) == list(range(30))


def test_different_shard_sizes_give_the_same_frames_per_sample(stores, tmp_path):
    other = build_cache("nmnist", T=6, root=stores["root"], cache=tmp_path, shard_size=7, progress=False)
    ours = {i: f for f, _, i in EventFrameStream(stores["events"]["test"], T=6, shuffle=False, return_index=True)}
    ds = FrameDataset(other.stores["test"])
    assert sorted(ours) == list(range(len(ds)))
    for i in ours:
        assert torch.equal(ours[i], ds[i][0])


def test_augmentation_is_seeded_per_sample_and_epoch(stores):
    aug = EventAugment.from_table(RANDOM, source="t")

    def epoch_items(epoch, seed=0, order_seed=None):
        ds = EventFrameStream(stores["events"]["train"], T=6, augment=aug, seed=seed, return_index=True)
        ds.set_epoch(epoch)
        return {i: f for f, _, i in ds}

    a, b, c = epoch_items(2), epoch_items(2), epoch_items(3)
    assert all(torch.equal(a[i], b[i]) for i in a)
    assert all(not torch.equal(a[i], c[i]) for i in a)
    assert sum(int(f.sum()) for f in a.values()) < sum(int(f.sum()) for f in epoch_items(0, seed=0).values()) * 1.3


def test_dataloader_workers_give_the_same_augmented_batches(stores):
    aug = EventAugment.from_table(RANDOM, source="t")
    loaders = [make_event_loader(stores["events"]["train"], 4, T=6, augment=aug, workers=n, seed=5) for n in (0, 2)]
    for epoch in (0, 1):
        batches = []
        for loader in loaders:
            loader.set_epoch(epoch)
            batches.append(list(loader))
        assert len(batches[0]) == len(batches[1]) == 8
        for (x0, y0), (x1, y1) in zip(*batches, strict=True):
            assert torch.equal(x0, x1) and torch.equal(y0, y1)


def test_evaluation_is_never_augmented(stores):
    aug = EventAugment.from_table(RANDOM, source="t")
    ds = FrameDataset(stores["frames"]["test"])
    for epoch, seed in ((0, 0), (4, 9)):
        ev = EventFrameStream(stores["events"]["test"], T=6, augment=aug, train=False, seed=seed, return_index=True)
        ev.set_epoch(epoch)
        for frames, label, i in ev:
            assert torch.equal(frames, ds[i][0]) and label == ds[i][1]


def test_trainer_loader_function(stores):
    cfg = AugmentConfig.from_table({"event": RANDOM + [{"op": "crop", "size": [30, 28]}]}, source="t")
    kw = {"T": 6, "batch_size": 5, "root": stores["root"], "cache": stores["cache"]}
    train = make_augmented_loader("nmnist", "train", augment=cfg, **kw)
    test = make_augmented_loader("nmnist", "test", augment=cfg, train=False, **kw)
    plain = make_augmented_loader("nmnist", "test", augment=None, train=False, **kw)
    x, y = next(iter(train))
    assert x.shape == (5, 6, 2, 28, 30) and x.dtype == torch.uint16 and y.dtype == torch.int64
    assert next(iter(test))[0].shape == (5, 6, 2, 28, 30)  # evaluation: the centre crop, deterministic
    assert isinstance(plain.dataset, FrameStream)  # nothing to do on events: the frame cache
    order = [int(v) for _, labels in plain for v in labels]
    assert order == [int(v) for v in FrameDataset(stores["frames"]["test"]).labels()]  # in store order, all samples
    train.set_epoch(1)
    assert train.dataset.epoch == 1


def test_audio_stream_equals_the_frame_cache(tmp_path):
    root = make_shd_root(tmp_path / "raw")
    ev = build_events_store("shd", root=root, cache=tmp_path, splits=["train"], shard_size=2, progress=False)
    fr = build_cache("shd", T=5, split_by="time", n_channels=140, root=root, cache=tmp_path, splits=["train"],
                     shard_size=2, progress=False)
    ours = EventFrameStream(ev.stores["train"], T=5, split_by="time", n_channels=140, seed=1, return_index=True)
    assert_same_items(list(ours), list(FrameStream(fr.stores["train"], seed=1, return_index=True)))
    with pytest.raises(ParameterError, match="spatial augment ops"):
        EventFrameStream(ev.stores["train"], T=5, augment=EventAugment.from_table([{"op": "flip_lr"}], source="t"))


def test_real_nmnist_frames_equal_the_frame_cache(tmp_path):
    src = shared_file("nmnist/NMNISTsmall")
    root = arrange_nmnist_small(src, src / "train1K.txt", tmp_path / "nmnist", n_train=900)
    ev = build_events_store("nmnist", root=root, cache=tmp_path, splits=["test"], progress=False)
    fr = build_cache("nmnist", T=10, root=root, cache=tmp_path, splits=["test"], progress=False)
    ds = FrameDataset(fr.stores["test"])
    got = {i: f for f, _, i in EventFrameStream(ev.stores["test"], T=10, shuffle=False, return_index=True)}
    assert len(got) == len(ds) == 100
    assert all(torch.equal(got[i], ds[i][0]) for i in got)


def test_a_subset_frames_only_its_own_samples(stores, monkeypatch):
    """With ``samples`` (a training split without its validation samples), each pass frames
    exactly the subset's samples: the others in the shards it reads are neither framed nor augmented."""
    from eventkit.event_stream import _EventFrames

    framed = []
    real = _EventFrames.frames

    def counting(self, events, index, **kw):
        framed.append(index)
        return real(self, events, index, **kw)

    monkeypatch.setattr(_EventFrames, "frames", counting)
    subset = np.arange(0, 30, 3)
    aug = EventAugment.from_table(RANDOM, source="t")
    for shuffle in (True, False):
        framed.clear()
        ds = EventFrameStream(stores["events"]["train"], T=6, augment=aug, samples=subset, shuffle=shuffle,
                              return_index=True)
        seen = [i for _, _, i in ds]
        assert sorted(seen) == subset.tolist()
        assert sorted(framed) == subset.tolist()
