"""IDX and CIFAR-10 binary readers: round trips against hand-built bytes, corrupt files rejected."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.datasets import get_dataset
from eventkit.datasets.static import read_cifar10_bin, read_idx, write_cifar10_bin, write_idx
from eventkit.errors import EventFileError, ImageFileError
from eventkit.testing import make_cifar10_root, make_fashionmnist_root, make_mnist_root


def _idx_bytes(arr: np.ndarray) -> bytes:
    """Independent IDX encoder (the spec written out by hand)."""
    magic = b"\x00\x00\x08" + bytes([arr.ndim])
    return magic + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.astype(np.uint8).tobytes()


def test_read_idx_hand_built(tmp_path):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    (tmp_path / "i").write_bytes(_idx_bytes(imgs))
    (tmp_path / "i.gz").write_bytes(gzip.compress(_idx_bytes(imgs)))
    assert np.array_equal(read_idx(tmp_path / "i", expect_ndim=3), imgs)
    assert np.array_equal(read_idx(tmp_path / "i.gz"), imgs)
    assert _idx_bytes(imgs)[:4] == b"\x00\x00\x08\x03"  # 2051, the MNIST images magic


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=3), gz=st.booleans(), seed=st.integers(0, 99))
def test_idx_round_trip(tmp_path_factory, shape, gz, seed):
    arr = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    p = tmp_path_factory.mktemp("idx") / ("a.gz" if gz else "a")
    write_idx(p, arr)
    raw = gzip.decompress(p.read_bytes()) if gz else p.read_bytes()
    assert raw == _idx_bytes(arr)
    back = read_idx(p)
    assert back.shape == arr.shape and np.array_equal(back, arr)


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b"\x01\x02" + b[2:], "bad IDX magic"),
    (lambda b: b[:2] + b"\x55" + b[3:], "unsupported IDX element type"),
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\x00", "trailing bytes"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b[:3] + b"\x02" + b[4:], "dimension|data bytes"),
])
def test_idx_corrupt(tmp_path, mutate, match):
    good = _idx_bytes(np.zeros((3, 4, 4), np.uint8))
    p = tmp_path / "x"
    p.write_bytes(mutate(good))
    with pytest.raises(ImageFileError, match=match) as e:
        read_idx(p, expect_ndim=3 if "dimension" not in match else None)
    assert str(p) in str(e.value)


def test_idx_wrong_kind_and_bad_gzip(tmp_path):
    p = tmp_path / "labels"
    p.write_bytes(_idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(ImageFileError, match="1 dimension.*expected 3"):
        read_idx(p, expect_ndim=3)
    g = tmp_path / "x.gz"
    g.write_bytes(gzip.compress(_idx_bytes(np.zeros(10, np.uint8)))[:-8])
    with pytest.raises(ImageFileError, match="corrupt or truncated gzip"):
        read_idx(g)


def test_cifar_round_trip_hand_built(tmp_path):
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    labels = np.array([3, 0, 9, 5])
    raw = b"".join(bytes([int(label)]) + imgs[i].tobytes() for i, label in enumerate(labels))
    (tmp_path / "b.bin").write_bytes(raw)
    got_i, got_l = read_cifar10_bin([tmp_path / "b.bin", tmp_path / "b.bin"])
    assert got_i.shape == (8, 3, 32, 32) and got_l.dtype == np.int64
    assert np.array_equal(got_i[:4], imgs) and np.array_equal(got_l, np.r_[labels, labels])
    # red plane first, row-major: pixel (c=1, y=2, x=3) at byte 1 + 1024 + 2*32 + 3 of record 0
    assert got_i[0, 1, 2, 3] == raw[1 + 1024 + 67]
    write_cifar10_bin(tmp_path / "w.bin", imgs, labels)
    assert (tmp_path / "w.bin").read_bytes() == raw


def test_cifar_corrupt(tmp_path):
    p = tmp_path / "b.bin"
    p.write_bytes(bytes(3073 * 2 - 5))
    with pytest.raises(ImageFileError, match="not a positive multiple of the 3073-byte"):
        read_cifar10_bin([p])
    rec = bytearray(3073 * 2)
    rec[3073] = 12
    p.write_bytes(bytes(rec))
    with pytest.raises(ImageFileError, match="record 1 has label 12") as e:
        read_cifar10_bin([p])
    assert e.value.offset == 3073


@pytest.mark.parametrize("name, make, gz", [("mnist", make_mnist_root, True), ("mnist", make_mnist_root, False),
                                            ("fashionmnist", make_fashionmnist_root, True)])
def test_idx_dataset_load_images(tmp_path, name, make, gz):
    root = make(tmp_path / name, n_train=13, n_test=7, gz=gz)
    spec = get_dataset(name)
    x, y = spec.load_images(root, "train")
    assert x.shape == (13, 1, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert y.tolist() == [i % 10 for i in range(13)]
    samples = spec.samples(root, "test")
    assert [s.label for s in samples] == [i % 10 for i in range(7)]
    assert samples[3].sample_id == "t10k-images-idx3-ubyte" + (".gz" if gz else "") + "#3"


def test_cifar10_dataset_load_images(tmp_path):
    root = make_cifar10_root(tmp_path / "c", per_batch=3, n_test=5)
    spec = get_dataset("cifar10")
    x, y = spec.load_images(root, "train")
    assert x.shape == (15, 3, 32, 32) and y.tolist() == [(i % 3 + i // 3) % 10 for i in range(15)]
    s = spec.samples(root, "train")
    assert s[4].sample_id == "cifar-10-batches-bin/data_batch_2.bin#1" and s[4].label == y[4]
    # images are the bytes of the record (independent decode of the first record)
    raw = (root / "cifar-10-batches-bin/test_batch.bin").read_bytes()
    xt, _ = spec.load_images(root, "test")
    assert np.array_equal(xt[0].reshape(-1), np.frombuffer(raw[1:3073], np.uint8))
    # root may also be the cifar-10-batches-bin folder itself
    assert len(spec.samples(root / "cifar-10-batches-bin", "test")) == 5


def test_static_has_no_events(tmp_path):
    root = make_mnist_root(tmp_path / "m", n_train=2, n_test=2)
    spec = get_dataset("mnist")
    with pytest.raises(ValueError, match="no events"):
        list(spec.iter_events(spec.samples(root, "train")))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("shape", [
    (2**31 - 1, 2**31 - 1, 2**31 - 1),     # 2**93 bytes: wraps an int64 product
    (2**31 - 1,) * 4 + (16,),              # wraps to a small number in int64 arithmetic
    (1, 1 << 30, 1 << 30),                 # fits int64, not the file
])
def test_idx_header_sizes_that_overflow_or_exceed_the_file(tmp_path, gz, shape):
    header = b"\x00\x00\x08" + bytes([len(shape)]) + b"".join(struct.pack(">I", s) for s in shape)
    p = tmp_path / ("x.gz" if gz else "x")
    p.write_bytes(gzip.compress(header + bytes(64)) if gz else header + bytes(64))
    need = 1
    for s in shape:
        need *= s
    with pytest.raises(ImageFileError, match=rf"IDX sizes .* need {need} data bytes") as e:
        read_idx(p)
    assert e.value.offset in (4, len(header))


def test_idx_gzip_bomb_is_refused_before_inflating(tmp_path):
    """A small gzip file that claims (and would inflate to) far more than ~1032x its size."""
    shape = (1 << 28,)
    p = tmp_path / "bomb.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", shape[0])))  # header only: 30 bytes
    with pytest.raises(ImageFileError, match="more than ~1032x the"):
        read_idx(p)


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "data_batch_1.bin"])
def test_static_readers_refuse_a_fifo(tmp_path, name):
    import os
    import signal

    fifo = tmp_path / name
    os.mkfifo(fifo)
    signal.alarm(20)  # a blocking open would hang the test run: fail it instead (SIGALRM ends it)
    try:
        with pytest.raises(ImageFileError, match="is a FIFO"):
            read_cifar10_bin([fifo]) if name.endswith(".bin") else read_idx(fifo)
    finally:
        signal.alarm(0)


def test_image_errors_are_still_event_file_errors(tmp_path):
    """Code written before the image error had its own type (``except EventFileError``) still catches it."""
    with pytest.raises(EventFileError, match="file not found") as e:
        read_idx(tmp_path / "missing-idx3-ubyte")
    assert type(e.value) is ImageFileError
