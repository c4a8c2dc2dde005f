"""CacheStore: round trips, byte determinism, resume, errors, corruption detection."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

from eventkit.cache import CacheStore, params_hash, store_path
from eventkit.errors import CacheError, ParameterError
from tests.cache.helpers import FRAME_SHAPE, META, toy_data, write_store


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_local(tmp_path):
    n, s = 20, 3
    frames, labels, n_events, ids = toy_data(n)
    url = str(tmp_path / "toy.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no zarr warnings (string dtype, sharding) on write or read
        write_store(url, n, s)
        store = CacheStore.open(url)
    assert (store.n_samples, store.shard_size, store.n_shards) == (20, 3, 7)
    assert store.frame_shape == FRAME_SHAPE and store.dtype == np.uint16
    assert [store.shard_range(k) for k in range(7)] == [(0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (15, 18), (18, 20)]
    for k in range(7):
        a, b = store.shard_range(k)
        got, lab = store.read_shard(k)
        assert got.dtype == np.uint16 and np.array_equal(got, frames[a:b])
        assert lab.dtype == np.int64 and lab.tolist() == labels[a:b].tolist()
    for i in range(n):
        f, lab = store.read_sample(i)
        assert np.array_equal(f, frames[i]) and lab == labels[i] and isinstance(lab, int)
    assert store.labels().tolist() == labels.tolist()
    assert store.n_events().tolist() == n_events.tolist()
    assert store.sample_ids() == ids
    assert store.meta["complete"] is True and store.meta["classes"] == ["a", "b", "c"]
    assert store.meta["params_hash"] == params_hash(META["params"])
    assert store.missing_shards() == [] and all(store.check_shard(k) for k in range(7))
    marker = json.loads((Path(url) / "completion" / "6.json").read_text())
    assert marker["n_samples"] == 2 and marker["n_events"] == int(n_events[18:20].sum())
    assert marker["format_version"] == 2 and store.meta["n_events_total"] == int(n_events.sum())
    assert marker["sha256"] == hashlib.sha256(frames[18:20].astype("<u2").tobytes()).hexdigest()
    assert store.disk_size() > 0
    with pytest.raises(IndexError):
        store.read_sample(20)


def test_layout_readable_with_plain_zarr(tmp_path):
    url = str(tmp_path / "toy.zarr")
    frames, labels, _, ids = toy_data(10)
    write_store(url, 10, 4)
    g = zarr.open_group(url, mode="r")
    assert g["frames"].shape == (10, *FRAME_SHAPE) and g["frames"].chunks == (1, *FRAME_SHAPE)
    assert g["frames"].shards == (4, *FRAME_SHAPE)
    assert g["label"].chunks == (4,) and g["sample_id"].chunks == (4,)
    assert np.array_equal(g["frames"][:], frames)
    assert [str(s) for s in g["sample_id"][:]] == ids
    meta = json.loads((Path(url) / "sample_id" / "zarr.json").read_text())
    assert meta["data_type"] == "string"
    attrs = g.attrs["eventkit"]
    assert attrs["format_version"] == 2 and attrs["n_shards"] == 3 and attrs["dtype"] == "<u2"
    frames_meta = json.loads((Path(url) / "frames" / "zarr.json").read_text())["codecs"][0]["configuration"]
    assert [c["name"] for c in frames_meta["codecs"]] == ["bytes", "zstd", "crc32c"]
    assert [c["name"] for c in frames_meta["index_codecs"]] == ["bytes", "crc32c"]
    for name in ("label", "n_events", "sample_id"):
        codecs = json.loads((Path(url) / name / "zarr.json").read_text())["codecs"]
        assert [c["name"] for c in codecs][-2:] == ["zstd", "crc32c"], name


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_round_trip_fsspec_urls(tmp_path, scheme):
    url = f"memory://eventkit-test-{uuid.uuid4().hex}/toy.zarr" if scheme == "memory" else f"file://{tmp_path}/toy.zarr"
    frames, labels, n_events, ids = toy_data(8)
    write_store(url, 8, 3)
    store = CacheStore.open(url)
    assert np.array_equal(store.read_shard(2)[0], frames[6:8])
    assert store.read_sample(5)[1] == labels[5] and store.sample_ids() == ids
    assert all(store.check_shard(k) for k in range(3))
    clone = pickle.loads(pickle.dumps(store))  # the URL and the metadata already read travel, no zarr object
    assert clone.meta == store.meta and np.array_equal(clone.read_sample(7)[0], frames[7])


def test_bytes_identical_for_any_shard_order_and_resume(tmp_path):
    n = 20
    frames, labels, n_events, ids = toy_data(n)
    a = tmp_path / "a.zarr"
    b = tmp_path / "b.zarr"
    write_store(str(a), n, 3)
    # other order, interrupted once: shard 4 half-written (data without marker), then resumed
    write_store(str(b), n, 3, order=[6, 2, 0], complete=False)
    half = b / "frames" / "c" / "4" / "0" / "0" / "0" / "0"  # half-written shard 4 (a killed writer), no marker
    half.parent.mkdir(parents=True)
    half.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 50)
    resumed = CacheStore.create(str(b), meta=dict(META), frame_shape=FRAME_SHAPE, dtype=np.uint16,
                                n_samples=n, shard_size=3)
    assert resumed.missing_shards() == [1, 3, 4, 5]
    for k in [5, 4, 3, 1]:
        lo, hi = resumed.shard_range(k)
        resumed.write_shard(k, frames[lo:hi], labels[lo:hi], n_events[lo:hi], ids[lo:hi])
    resumed.mark_complete()
    ta, tb = _tree(a), _tree(b)
    assert sorted(ta) == sorted(tb)
    assert [k for k in ta if ta[k] != tb[k]] == []
    assert not any(b"time" in v.lower() and k.endswith("zarr.json") for k, v in ta.items())


def test_resume_reports_missing_and_open_refuses_incomplete(tmp_path):
    url = str(tmp_path / "toy.zarr")
    write_store(url, 20, 3, order=[0, 2, 5], complete=False)
    again = CacheStore.create(url, meta=dict(META), frame_shape=FRAME_SHAPE, dtype="uint16", n_samples=20,
                              shard_size=3)
    assert again.missing_shards() == [1, 3, 4, 6]
    assert again.is_shard_complete(2) and not again.is_shard_complete(3)
    with pytest.raises(CacheError, match=r"4 of 7 shards missing \(1, 3, 4, 6\).*rerun `eventkit frames toy"):
        CacheStore.open(url)
    with pytest.raises(CacheError, match="incomplete"):
        again.mark_complete()
    partial = CacheStore.open(url, require_complete=False)
    assert partial.labels()[:3].tolist() == toy_data(20)[1][:3].tolist()
    assert partial.labels()[3] == -1  # unwritten shard: fill value
    with pytest.raises(CacheError, match="read-only"):
        partial.write_shard(1, *[None] * 4)


def test_param_mismatch_names_both_sets(tmp_path):
    url = str(tmp_path / "toy.zarr")
    write_store(url, 20, 3)
    other = dict(META, params={"T": 5, "split_by": "count", "dtype": "uint16"})
    with pytest.raises(CacheError, match=r'existing \{"T":3.*requested \{"T":5'):
        CacheStore.create(url, meta=other, frame_shape=FRAME_SHAPE, dtype="uint16", n_samples=20, shard_size=3)
    with pytest.raises(CacheError, match="shard_size: existing 3 vs requested 4"):
        CacheStore.create(url, meta=dict(META), frame_shape=FRAME_SHAPE, dtype="uint16", n_samples=20, shard_size=4)
    # identical parameters re-open the complete store without touching it
    same = CacheStore.create(url, meta=dict(META), frame_shape=FRAME_SHAPE, dtype="uint16", n_samples=20,
                             shard_size=3)
    assert same.missing_shards() == [] and same.meta["complete"] is True


def test_corrupted_shard_detected(tmp_path):
    url = tmp_path / "toy.zarr"
    write_store(str(url), 20, 3)
    store = CacheStore.open(str(url))
    shard1 = url / "frames" / "c" / "1" / "0" / "0" / "0" / "0"
    shard2 = url / "frames" / "c" / "2" / "0" / "0" / "0" / "0"
    shard1.write_bytes(shard2.read_bytes())  # valid bytes, wrong data
    assert not store.check_shard(1)
    assert store.check_shard(2) and store.check_shard(0)
    raw = bytearray(shard2.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # a flipped byte inside the compressed data
    shard2.write_bytes(bytes(raw))
    assert not store.check_shard(2)
    (url / "completion" / "3.json").write_text("{not json")
    assert not store.is_shard_complete(3) and 3 in store.missing_shards()


def test_open_errors(tmp_path):
    with pytest.raises(CacheError, match="nothing found.*eventkit frames"):
        CacheStore.open(str(tmp_path / "absent.zarr"))
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "x.txt").write_text("hello")
    with pytest.raises(CacheError, match="not a Zarr store"):
        CacheStore.open(str(folder))
    with pytest.raises(CacheError, match="not empty but is not a Zarr store"):
        CacheStore.create(str(folder), meta=dict(META), frame_shape=FRAME_SHAPE, dtype="uint16", n_samples=3,
                          shard_size=3)
    plain = tmp_path / "plain.zarr"
    zarr.open_group(str(plain), mode="w")
    with pytest.raises(CacheError, match="not an eventkit cache store"):
        CacheStore.open(str(plain))
    with pytest.raises(CacheError, match="not an eventkit cache store"):
        CacheStore.create(str(plain), meta=dict(META), frame_shape=FRAME_SHAPE, dtype="uint16", n_samples=3,
                          shard_size=3)
    future = tmp_path / "future.zarr"
    write_store(str(future), 6, 3)
    g = zarr.open_group(str(future), mode="r+")
    g.attrs.put({"eventkit": dict(g.attrs["eventkit"], format_version=3)})
    with pytest.raises(CacheError, match="format_version 3 is not supported"):
        CacheStore.open(str(future))
    g.attrs.put({"eventkit": dict(g.attrs["eventkit"], format_version=1)})  # a store of the previous format
    for call in (lambda: CacheStore.open(str(future)), lambda: CacheStore.create(
            str(future), meta=dict(META), frame_shape=FRAME_SHAPE, dtype="uint16", n_samples=6, shard_size=3)):
        with pytest.raises(CacheError, match=r"format version 1 \(no checksum per chunk\) is no longer read; remove "
                                             r"it \(`eventkit cache rm .*`\) and rerun the build command"):
            call()


def test_bad_writes_raise_parameter_error(tmp_path):
    frames, labels, n_events, ids = toy_data(6)
    store = CacheStore.create(str(tmp_path / "t.zarr"), meta=dict(META), frame_shape=FRAME_SHAPE, dtype="uint16",
                              n_samples=6, shard_size=4)
    with pytest.raises(ParameterError, match=r"shard 1 frames have shape \(4, 3, 2, 4, 5\), expected \(2,"):
        store.write_shard(1, frames[:4], labels[:4], n_events[:4], ids[:4])
    with pytest.raises(ParameterError, match="frames are int32, the store holds uint16"):
        store.write_shard(0, frames[:4].astype(np.int32), labels[:4], n_events[:4], ids[:4])
    with pytest.raises(ParameterError, match="got 3 sample_ids"):
        store.write_shard(0, frames[:4], labels[:4], n_events[:4], ids[:3])
    with pytest.raises(ParameterError, match="out of range"):
        store.write_shard(2, frames[:2], labels[:2], n_events[:2], ids[:2])
    with pytest.raises(ParameterError, match="integer dtype"):
        CacheStore.create(str(tmp_path / "f.zarr"), meta=dict(META), frame_shape=FRAME_SHAPE, dtype="float32",
                          n_samples=6, shard_size=4)
    with pytest.raises(ParameterError, match="lacks"):
        CacheStore.create(str(tmp_path / "g.zarr"), meta={"dataset": "x"}, frame_shape=FRAME_SHAPE, dtype="uint8",
                          n_samples=6, shard_size=4)
    assert store.missing_shards() == [0, 1]  # nothing was written by the failed calls


def test_store_path_is_canonical(tmp_path):
    p1 = store_path(tmp_path, "nmnist", "train", "frames", {"T": 16, "split_by": "count", "sizes": (34, 34, 2)})
    p2 = store_path(str(tmp_path), "nmnist", "train", "frames", {"sizes": [34, 34, 2], "split_by": "count", "T": 16})
    p3 = store_path(tmp_path, "nmnist", "train", "frames", {"T": 17, "split_by": "count", "sizes": (34, 34, 2)})
    assert p1 == p2 != p3
    assert Path(p1).parent == tmp_path / "nmnist" / "train"
    assert Path(p1).name.startswith("frames-") and Path(p1).name.endswith(".zarr") and len(Path(p1).name) == 7 + 12 + 5
    assert store_path("s3://bucket/c/", "shd", "test", "frames", {"T": 1}).startswith("s3://bucket/c/shd/test/frames-")
    with pytest.raises(ParameterError):
        store_path(tmp_path, "a/b", "train", "frames", {})
    with pytest.raises(ParameterError, match="not JSON data"):
        store_path(tmp_path, "a", "train", "frames", {"x": object()})


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_fast_shard_reader_matches_zarr(tmp_path, dtype):
    frames, labels, n_events, ids = toy_data(11)
    frames = frames.astype(dtype)
    url = str(tmp_path / "t.zarr")
    write_store(url, 11, 4, data=(frames, labels, n_events, ids))
    store = CacheStore.open(url)
    for start, stop in [(0, 4), (4, 8), (8, 11), (1, 3), (9, 10), (5, 5), (0, 11), (3, 9)]:
        got, lab = store.read_range(start, stop)
        ref = np.asarray(zarr.open_group(url, mode="r")["frames"][start:stop])  # zarr's own decoder
        assert got.dtype == dtype and got.shape == ref.shape and np.array_equal(got, ref)
        assert np.array_equal(got, frames[start:stop]) and lab.tolist() == labels[start:stop].tolist()
    # a corrupt shard index is reported, never decoded into garbage
    shard = Path(url) / "frames" / "c" / "1" / "0" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0x01
    shard.write_bytes(bytes(raw))
    with pytest.raises(CacheError, match="shard 1 of frames has a corrupt index"):
        CacheStore.open(url).read_shard(1)
    assert not store.check_shard(1)


def test_all_zero_sample_reads_back_as_zeros_from_both_writers(tmp_path):
    """An all-zero sample is left out of the shard (index entry absent) by zarr's writer and by eventkit's:
    the same bytes, read back as zeros by both readers."""
    import zarr

    frames = np.random.default_rng(1).integers(1, 5, size=(3, 3, 2, 5, 5)).astype(np.uint16)
    frames[1] = 0  # e.g. a recording with no events
    meta = {"dataset": "x", "split": "train", "representation": "frames", "params": {"T": 3}}
    for zarr_writes in (False, True):
        url = str(tmp_path / f"z{zarr_writes}.zarr")
        st = CacheStore.create(url, meta=meta, frame_shape=(3, 2, 5, 5), dtype=np.uint16, n_samples=3, shard_size=3)
        st.write_shard(0, frames, [0, 1, 2], [1, 0, 1], ["a", "b", "c"])
        st.mark_complete()
        frames_file = Path(url) / "frames" / "c" / "0" / "0" / "0" / "0" / "0"
        ours = frames_file.read_bytes()
        if zarr_writes:  # the same frames written by zarr's own writer: the same bytes
            frames_file.unlink()
            zarr.open_group(url, mode="r+")["frames"][:] = frames
            assert frames_file.read_bytes() == ours
            (Path(url) / "completion" / "0.json").write_text(json.dumps(dict(st.read_marker(0))))
        back = CacheStore.open(url)
        assert np.array_equal(back.read_shard(0)[0], frames) and np.array_equal(back.read_sample(1)[0], frames[1])
        assert np.array_equal(zarr.open_group(url, mode="r")["frames"][:], frames)
        assert back.check_shard(0)


def _rewrite_shard(path: Path, chunks: list[bytes], s: int) -> None:
    """Write a sharding-codec file of ``chunks`` (each given its valid crc32c, then absent entries) with a valid
    index: what a writer with a bug (not a damaged disk) could leave."""
    import google_crc32c

    from eventkit.cache.codec import encode_shard

    with_crc = [blob + google_crc32c.value(blob).to_bytes(4, "little") for blob in chunks]
    path.write_bytes(encode_shard(with_crc, s))


def test_corrupt_shard_files_raise_cache_error(tmp_path):
    """A shard whose index is valid but whose chunk is too small / missing / truncated never yields a partial array."""
    from numcodecs import Zstd

    url = tmp_path / "toy.zarr"
    write_store(str(url), 20, 3)
    store = CacheStore.open(str(url))
    frames, *_ = toy_data(20)
    shard1 = url / "frames" / "c" / "1" / "0" / "0" / "0" / "0"
    good = [bytes(Zstd(level=3).encode(np.ascontiguousarray(frames[i]))) for i in (3, 4, 5)]
    short = bytes(Zstd(level=3).encode(np.ascontiguousarray(frames[3].reshape(-1)[:10])))
    _rewrite_shard(shard1, [short, good[1], good[2]], 3)  # sample 3 decodes to 20 of 240 bytes
    for read in (lambda: store.read_sample(3), lambda: store.read_shard(1), lambda: store.read_range(2, 5)):
        with pytest.raises(CacheError,
                           match=r"shard 1 sample 3 is damaged \(zstd frame declares 20 bytes, expected 240\)"):
            read()
    assert np.array_equal(store.read_sample(4)[0], frames[4])  # the other chunks still read
    _rewrite_shard(shard1, [good[0], good[1], b"\x00" * 7], 3)  # not a zstd frame
    store = CacheStore.open(str(url))  # a new open reads the new index
    with pytest.raises(CacheError, match=r"shard 1 sample 5 is damaged \(zstd frame has no valid header"):
        store.read_shard(1)
    for data in (b"", good[0][:5]):  # empty or truncated file: the index cannot be read
        shard1.write_bytes(data)
        store = CacheStore.open(str(url))
        with pytest.raises(CacheError, match="shard 1 of frames has a corrupt index"):
            store.read_sample(4)
        with pytest.raises(CacheError, match="shard 1 of frames has a corrupt index"):
            store.read_shard(1)


def test_missing_shard_file_in_complete_store_raises(tmp_path):
    """A shard file lost from a complete store is an error, never a shard of zeros (fill value)."""
    url = tmp_path / "toy.zarr"
    write_store(str(url), 20, 3)
    store = CacheStore.open(str(url))
    (url / "frames" / "c" / "2" / "0" / "0" / "0" / "0").unlink()
    for read in (lambda: store.read_sample(7), lambda: store.read_shard(2), lambda: store.read_range(5, 9)):
        with pytest.raises(CacheError, match="shard 2 of frames is missing.*marked complete"):
            read()
    with pytest.raises(CacheError, match="shard 2 of frames is missing"):
        store.shard_blob(2)
    assert not store.check_shard(2)
    frames, *_ = toy_data(20)
    assert np.array_equal(store.read_shard(1)[0], frames[3:6])
    partial = write_store(str(tmp_path / "partial.zarr"), 20, 3, order=[0], complete=False)
    assert not partial.read_range(3, 6)[0].any()  # a store being built: unwritten shards read as fill


def test_failed_shard_write_leaves_no_temp_file_and_no_marker(tmp_path, monkeypatch):
    import eventkit.cache.objects as cache_mod

    url = tmp_path / "toy.zarr"
    store = write_store(str(url), 20, 3, order=[0], complete=False)
    frames, labels, n_events, ids = toy_data(20)

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.write_shard(1, frames[3:6], labels[3:6], n_events[3:6], ids[3:6])
    assert not list(url.rglob("*.tmp"))
    assert store.missing_shards() == [1, 2, 3, 4, 5, 6]


def test_marker_vouches_for_labels_and_sample_ids(tmp_path):
    """A label or sample id swapped behind the store's back fails check_shard, as frames do."""
    url = tmp_path / "toy.zarr"
    write_store(str(url), 20, 3)
    store = CacheStore.open(str(url))
    assert all(store.check_shard(k) for k in range(store.n_shards))
    # rewrite shard 1's label chunk and shard 2's sample-id chunk with plain zarr (valid bytes, wrong data)
    group = zarr.open_group(str(url), mode="r+")
    labels = np.asarray(group["label"][3:6])
    group["label"][3:6] = labels[::-1] if labels[0] != labels[-1] else labels + 1
    group["sample_id"][7] = "train/0/tampered.bin#0"
    fresh = CacheStore.open(str(url))
    assert not fresh.check_shard(1) and not fresh.check_shard(2)
    assert fresh.check_shard(0) and fresh.check_shard(3)


def test_marker_without_labels_hash_still_accepted(tmp_path):
    """Stores whose markers predate labels_sha256 stay readable and verifiable (frames hash only)."""
    url = tmp_path / "toy.zarr"
    write_store(str(url), 20, 3)
    path = url / "completion" / "0.json"
    marker = json.loads(path.read_text())
    del marker["labels_sha256"]
    path.write_text(json.dumps(marker))
    store = CacheStore.open(str(url))
    assert store.is_shard_complete(0) and store.check_shard(0)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names fsynced descriptors through /proc")
def test_shard_data_fsynced_before_marker(tmp_path, monkeypatch):
    """Every file of a shard (frames shard, label/n_events/sample_id chunks) is fsynced before
    its marker is written: a power loss cannot leave a marker for data not on disk."""
    import eventkit.cache.objects as cache_mod

    url = tmp_path / "toy.zarr"
    store = write_store(str(url), 20, 3, order=[], complete=False)
    frames, labels, n_events, ids = toy_data(20)
    events: list[tuple[str, str]] = []
    real_fsync, real_link = cache_mod.os.fsync, cache_mod.os.link

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def link(src, dst):  # the marker is created if absent: a hard link of its complete temporary file
        events.append(("link", str(dst)))
        return real_link(src, dst)

    monkeypatch.setattr(cache_mod.os, "fsync", fsync)
    monkeypatch.setattr(cache_mod.os, "link", link)
    store.write_shard(2, frames[6:9], labels[6:9], n_events[6:9], ids[6:9])
    marker_at = events.index(("link", str(url / "completion" / "2.json")))
    synced_before = {Path(p) for kind, p in events[:marker_at] if kind == "fsync"}
    for name in ("label", "n_events", "sample_id"):
        assert url / name / "c" / "2" in synced_before, name
    assert url / "frames" / "c" / "2" / "0" / "0" / "0" / "0" in synced_before
    assert url / "frames" / "c" / "2" / "0" / "0" / "0" in synced_before  # the rename of the shard file
    assert ("fsync", str(url / "completion")) in events[marker_at:]  # the marker's link itself


@pytest.mark.parametrize("damaged", ["zarr.json", "label/zarr.json"])
def test_cut_metadata_is_a_cache_error_for_open_create_and_loaders(tmp_path, damaged):
    """A group or array zarr.json cut short (a killed write) is a CacheError naming the store,
    never a JSONDecodeError."""
    from eventkit.loader import FrameDataset, FrameStream

    url = tmp_path / "toy.zarr"
    write_store(str(url), 20, 3)
    path = url / damaged
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    frames, *_ = toy_data(20)
    calls = [lambda: CacheStore.open(str(url)), lambda: FrameDataset(str(url)), lambda: FrameStream(str(url)),
             lambda: CacheStore.create(str(url), meta=dict(META), frame_shape=frames.shape[1:], dtype=frames.dtype,
                                       n_samples=20, shard_size=3)]
    for call in calls:
        with pytest.raises(CacheError, match="damaged|cannot open") as info:
            call()
        assert str(url) in str(info.value)
