"""The event store: every sample round-trips exactly; resume, reuse, refusal, concurrent builds."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import zarr

from eventkit import events_build
from eventkit.build import store_order
from eventkit.datasets import get_dataset
from eventkit.errors import CacheError
from eventkit.events_build import build_events_store, events_store_url
from eventkit.events_store import EventStore
from eventkit.testing import arrange_nmnist_small, make_dvsgesture_root, make_nmnist_root, make_shd_root
from tests.conftest import shared_file


def assert_round_trip(name: str, root: Path, url: str, split: str) -> None:
    """Every sample of the store equals the dataset reader's events, label and id, in store order."""
    spec = get_dataset(name)
    samples = store_order(spec.samples(root, split))
    store = EventStore.open(url)
    assert store.n_samples == len(samples)
    ids, labels = store.sample_ids(), store.labels()
    expected = list(spec.iter_events(samples))
    for lo, hi in store.shard_ranges:  # every sample, read shard by shard as the loader does
        many, offsets = store.read_range(lo, hi)
        for j, i in enumerate(range(lo, hi)):
            got = many[offsets[j]:offsets[j + 1]]
            assert got.dtype == expected[i].dtype and np.array_equal(got, expected[i]), samples[i].sample_id
            assert labels[i] == samples[i].label and ids[i] == samples[i].sample_id
    for i in (0, len(samples) - 1):
        got, label = store.read_sample(i)
        assert np.array_equal(got, expected[i]) and label == samples[i].label
    assert store.n_events == sum(e.shape[0] for e in expected)
    group = zarr.open_group(url, mode="r")  # plain zarr reads it too
    i = len(samples) // 2
    a, b = group["offsets"][i], group["offsets"][i + 1]
    assert np.array_equal(group["t"][a:b], expected[i]["t"])


@pytest.mark.parametrize("name, make", [("nmnist", lambda d: make_nmnist_root(d, per_class_train=2)),
                                        ("dvsgesture", make_dvsgesture_root),
                                        ("shd", make_shd_root)])
def test_round_trip_every_sample(tmp_path, name, make):
    root = make(tmp_path / "raw")
    result = build_events_store(name, root=root, cache=tmp_path / "cache", shard_size=3, progress=False)
    assert set(result.stores) == set(get_dataset(name).splits)
    for split, url in result.stores.items():
        assert url == events_store_url(name, split, cache=tmp_path / "cache")
        assert_round_trip(name, root, url, split)
        meta = EventStore.open(url).meta
        assert meta["raw_files"]["n_files"] >= 1 and len(meta["raw_files"]["listing_sha256"]) == 64
        assert meta["sensor_size"] == list(get_dataset(name).sensor_size) and meta["complete"]
        assert not Path(f"{url}.staging").exists()


def test_real_nmnist_samples_round_trip(tmp_path):
    src = shared_file("nmnist/NMNISTsmall")
    root = arrange_nmnist_small(src, src / "train1K.txt", tmp_path / "nmnist", n_train=900)
    result = build_events_store("nmnist", root=root, cache=tmp_path / "cache", progress=False)
    for split in ("train", "test"):
        assert_round_trip("nmnist", root, result.stores[split], split)
    store = EventStore.open(result.stores["train"])
    assert store.n_samples == 900 and store.meta["raw_files"]["n_files"] == 900


def test_resume_stages_only_missing_shards(tmp_path, monkeypatch):
    root = make_nmnist_root(tmp_path / "raw", per_class_train=2)
    staged = []
    real = events_build._stage_task

    def failing(staging, name, split, k, samples):
        if k == 3:
            raise RuntimeError("killed")
        staged.append(k)
        return real(staging, name, split, k, samples)

    monkeypatch.setattr(events_build, "_stage_task", failing)
    with pytest.raises(RuntimeError, match="killed"):
        build_events_store("nmnist", root=root, cache=tmp_path / "c", splits=["train"], shard_size=4, progress=False)
    url = events_store_url("nmnist", "train", cache=tmp_path / "c")
    assert staged == [0, 1, 2] and not Path(url).exists() and Path(f"{url}.staging", "2.json").is_file()
    staged.clear()
    monkeypatch.setattr(events_build, "_stage_task", lambda *a: (staged.append(a[3]), real(*a))[1])
    result = build_events_store("nmnist", root=root, cache=tmp_path / "c", splits=["train"], progress=False)
    assert staged == [3, 4] and result.built_samples == 8  # shards 3 and 4 of 4 samples (shard size kept)
    assert_round_trip("nmnist", root, result.stores["train"], "train")
    again = build_events_store("nmnist", root=root, cache=tmp_path / "c", splits=["train"], progress=False)
    assert again.built_samples == 0


def test_store_of_other_raw_data_is_refused(tmp_path):
    root = make_nmnist_root(tmp_path / "raw", per_class_train=1)
    build_events_store("nmnist", root=root, cache=tmp_path / "c", splits=["test"], progress=False)
    extra = next((root / "Test" / "0").glob("*.bin"))
    extra.write_bytes(extra.read_bytes()[:-5])  # one event fewer: same files, other sizes
    with pytest.raises(CacheError, match=r"already holds an event store of other raw data \(raw_files: existing"):
        build_events_store("nmnist", root=root, cache=tmp_path / "c", splits=["test"], progress=False)


def test_open_refuses_other_things(tmp_path):
    with pytest.raises(CacheError, match="no event store"):
        EventStore.open(tmp_path / "nothing.zarr")
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w", attributes={"eventkit": {"representation": "frames"}})
    with pytest.raises(CacheError, match="not an eventkit event store"):
        EventStore.open(tmp_path / "other.zarr")


def _build(root: str, cache: str) -> int:
    return build_events_store("nmnist", root=root, cache=cache, splits=["train"], shard_size=2,
                              progress=False).samples


def test_two_processes_building_at_once_both_succeed(tmp_path):
    root = make_nmnist_root(tmp_path / "raw", per_class_train=3)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_build, [(str(root), str(tmp_path / "c"))] * 2)
    assert results == [30, 30]
    url = events_store_url("nmnist", "train", cache=tmp_path / "c")
    assert_round_trip("nmnist", root, url, "train")
    assert sorted(p.name for p in Path(url).parent.iterdir()) == [Path(url).name]  # no temporary folder left


def test_staging_processes_give_the_same_store(tmp_path):
    root = make_nmnist_root(tmp_path / "raw", per_class_train=2)
    one = build_events_store("nmnist", root=root, cache=tmp_path / "a", splits=["train"], shard_size=3,
                             progress=False).stores["train"]
    two = build_events_store("nmnist", root=root, cache=tmp_path / "b", splits=["train"], shard_size=3, workers=2,
                             progress=False).stores["train"]
    a, b = zarr.open_group(one, mode="r"), zarr.open_group(two, mode="r")
    for name in ("t", "x", "y", "p", "offsets", "label", "sample_id"):
        assert np.array_equal(a[name][:], b[name][:]), name
    assert a.attrs["eventkit"] == b.attrs["eventkit"]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_any_chunk_is_a_cache_error_never_other_events(tmp_path):
    """Every array's chunk files, a byte changed at many offsets: each read gives the stored
    events and labels exactly, or a CacheError naming the store; never other data."""
    import shutil

    root = make_nmnist_root(tmp_path / "raw", per_class_train=2)
    url = build_events_store("nmnist", root=root, cache=tmp_path / "cache", splits=["train"],
                             progress=False).stores["train"]
    ref = EventStore.open(url)
    expected = [ref.read_sample(i) for i in range(ref.n_samples)]
    damaged = tmp_path / "damaged.zarr"
    outcomes = {"same": 0, "CacheError": 0}
    for column in ("t", "x", "y", "p", "offsets", "label"):
        chunks = sorted(p for p in Path(url, column, "c").rglob("*") if p.is_file())
        assert chunks, column
        size = chunks[0].stat().st_size
        for offset in sorted({0, size - 1, *range(0, size, max(1, size // 12))}):
            shutil.rmtree(damaged, ignore_errors=True)
            shutil.copytree(url, damaged)
            _flip(damaged / chunks[0].relative_to(url), offset)
            try:
                store = EventStore.open(damaged)
                got = [store.read_sample(i) for i in range(store.n_samples)]
            except CacheError as exc:
                assert str(damaged) in str(exc)
                outcomes["CacheError"] += 1
                continue
            assert all(np.array_equal(g[0], e[0]) and g[1] == e[1] for g, e in zip(got, expected, strict=True)), \
                f"{column} chunk, byte {offset}: other events or labels served without an error"
            outcomes["same"] += 1
    assert outcomes["CacheError"] > 0


def _killed_while_finishing(root: str, cache: str) -> None:
    """A build killed (no handler runs) once its temporary group is complete, before the rename."""
    import os

    real = events_build._write_group

    def write_then_die(*args, **kwargs):
        real(*args, **kwargs)
        os._exit(9)

    events_build._write_group = write_then_die
    _build(root, cache)


def test_temporary_group_of_a_killed_build_is_removed_by_the_next_build(tmp_path):
    root = make_nmnist_root(tmp_path / "raw", per_class_train=2)
    child = multiprocessing.get_context("fork").Process(target=_killed_while_finishing,
                                                        args=(str(root), str(tmp_path / "c")))
    child.start()
    child.join(120)
    assert child.exitcode == 9
    url = events_store_url("nmnist", "train", cache=tmp_path / "c")
    left = [p.name for p in Path(url).parent.iterdir() if p.name.endswith(".tmp")]
    assert left, "the kill left the whole temporary group behind"
    _build(str(root), str(tmp_path / "c"))
    assert_round_trip("nmnist", root, url, "train")
    assert sorted(p.name for p in Path(url).parent.iterdir()) == [Path(url).name]
