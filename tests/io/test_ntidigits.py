"""N-TIDIGITS18 HDF5 reader and writer (spec-faithful fixtures: no real file is available)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.errors import EventFileError, ParameterError
from eventkit.events import AUDIO_DTYPE, make_audio_events
from eventkit.io import NTidigitsFile, list_ntidigits_h5, read_events, read_ntidigits_h5, write_ntidigits_h5
from tests.io._strategies import audio_events

KEYS = st.from_regex(r"\A(man|woman|boy|girl)-[a-z]{2}-[1-9oz]{1,7}[ab]?\Z")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(KEYS, audio_events(max_n=60, max_x=63, max_t=4_000_000, p_values=(0,))),
                min_size=1, max_size=4, unique_by=lambda kv: kv[0]),
       st.lists(st.tuples(KEYS, audio_events(max_n=30, max_x=63, max_t=4_000_000, p_values=(0,))),
                max_size=3, unique_by=lambda kv: kv[0]))
def test_roundtrip(tmp_path_factory, train, test):
    f = tmp_path_factory.mktemp("nt") / "n-tidigits.hdf5"
    write_ntidigits_h5(f, train=train, test=test)
    assert list_ntidigits_h5(f, "train") == [(k, k.rsplit("-", 1)[-1]) for k, _ in train]
    assert [k for k, _ in list_ntidigits_h5(f, "test")] == [k for k, _ in test]
    with NTidigitsFile(f) as nf:
        for split, items in (("train", train), ("test", test)):
            for key, ev in items:
                got = nf.read(split, key)
                assert got.dtype == AUDIO_DTYPE
                np.testing.assert_array_equal(got, ev)


def test_tonic_style_layout_by_hand(tmp_path):
    """The layout tonic's NTIDIGITS18 reads: labels = keys, addresses/timestamps groups per split."""
    f = tmp_path / "n-tidigits.hdf5"
    with h5py.File(f, "w") as h:
        h.create_dataset("train_labels", data=np.array([b"man-ae-1", b"woman-ba-23z"]))
        h.create_dataset("test_labels", data=np.array([b"boy-cc-o"]))
        for split, key, ts, ad in [("train", "man-ae-1", [0.5, 0.000256, 1.07904], [3, 63, 0]),
                                   ("train", "woman-ba-23z", [0.1], [7]), ("test", "boy-cc-o", [], [])]:
            h.create_dataset(f"{split}_timestamps/{key}", data=np.array(ts, dtype=np.float32))
            h.create_dataset(f"{split}_addresses/{key}", data=np.array(ad, dtype=np.uint8))
    assert list_ntidigits_h5(f, "train") == [("man-ae-1", "1"), ("woman-ba-23z", "23z")]
    ev = read_ntidigits_h5(f, "train", "man-ae-1")
    assert ev["t"].tolist() == [256, 500_000, 1_079_040]  # sorted
    assert ev["x"].tolist() == [63, 3, 0] and np.all(ev["p"] == 0)
    assert read_ntidigits_h5(f, "test", "boy-cc-o").shape == (0,)
    np.testing.assert_array_equal(read_events(f, split="train", key="man-ae-1"), ev)


def test_bad_input(tmp_path):
    f = tmp_path / "n.hdf5"
    write_ntidigits_h5(f, train=[("man-ae-1", make_audio_events([1], [2], [0]))])
    with pytest.raises(ParameterError, match="split must be one of"):
        list_ntidigits_h5(f, "valid")
    with pytest.raises(ParameterError, match="no utterance 'nope'"):
        read_ntidigits_h5(f, "train", "nope")
    g = tmp_path / "g.hdf5"
    g.write_bytes(b"")
    with pytest.raises(EventFileError, match="empty"):
        list_ntidigits_h5(g, "train")
    h = tmp_path / "h.hdf5"
    with h5py.File(h, "w") as hh:
        hh.create_dataset("train_labels", data=np.array([b"a-b-1"]))
        hh.create_dataset("train_timestamps/a-b-1", data=np.array([0.1, 0.2], dtype=np.float32))
        hh.create_dataset("train_addresses/a-b-1", data=np.array([1], dtype=np.uint8))
    with pytest.raises(EventFileError, match="1 addresses but 2 timestamps"):
        read_ntidigits_h5(h, "train", "a-b-1")
    with pytest.raises(ParameterError, match="duplicate keys"):
        write_ntidigits_h5(tmp_path / "d.hdf5", train=[("a-b-1", make_audio_events([1], [2], [0]))] * 2)
    far = tmp_path / "far.hdf5"  # a time that does not fit in int64 µs: refused, never a wrapped cast
    with h5py.File(far, "w") as hh:
        hh.create_dataset("train_labels", data=np.array([b"a-b-1", b"a-b-2"]))
        hh.create_dataset("train_timestamps/a-b-1", data=np.array([0.1, 1e15]))
        hh.create_dataset("train_addresses/a-b-1", data=np.array([1, 2], dtype=np.uint8))
    with pytest.raises(EventFileError, match="below 9e\\+12 seconds"):
        read_ntidigits_h5(far, "train", "a-b-1")
    with pytest.raises(EventFileError, match="listed in /train_labels but has no"):
        read_ntidigits_h5(far, "train", "a-b-2")


def test_damaged_group_metadata_is_an_event_file_error_and_the_file_is_closed(tmp_path):
    """Damaged B-tree nodes make h5py raise RuntimeError after a successful open: EventFileError instead."""
    import h5py

    ev = make_audio_events(np.arange(0, 40_000, 1000), np.arange(40) % 64, 0)
    f = tmp_path / "n-tidigits.hdf5"
    write_ntidigits_h5(f, train=[("man-a-1", ev), ("man-b-2", ev)], test=[("woman-c-o", ev)])
    bad = tmp_path / "damaged.hdf5"
    bad.write_bytes(f.read_bytes().replace(b"TREE", b"XXXX"))
    with pytest.raises(EventFileError, match=r"damaged\.hdf5"):
        list_ntidigits_h5(bad, "train")
    with pytest.raises(EventFileError, match=r"damaged\.hdf5"):
        read_ntidigits_h5(bad, "train", "man-a-1")
    open_files = [i.name for i in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)]
    assert str(bad).encode() not in open_files


def test_byte_flips_anywhere_give_event_file_errors_only(tmp_path):
    """Seeded byte flips over a whole file: every read either succeeds or raises EventFileError
    (h5py's KeyError/TypeError/UnicodeDecodeError on damaged objects included), never anything else."""
    rng = np.random.default_rng(4)
    utterances = [(f"man-a{i}-{'o123456789z'[i % 11]}",
                   make_audio_events(np.sort(rng.integers(0, 10**6, n)), rng.integers(0, 64, n), 0))
                  for i, n in enumerate(rng.integers(1, 400, 8))]
    src = tmp_path / "n-tidigits.hdf5"
    write_ntidigits_h5(src, train=utterances[:5], test=utterances[5:])
    data = src.read_bytes()
    outcomes = {"ok": 0, "EventFileError": 0}
    for k in range(120):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            damaged[int(rng.integers(0, len(damaged)))] = int(rng.integers(0, 256))
        bad = tmp_path / f"flip{k}.hdf5"
        bad.write_bytes(bytes(damaged))
        try:
            for split in ("train", "test"):
                for key, _ in list_ntidigits_h5(bad, split):
                    read_ntidigits_h5(bad, split, key)
            outcomes["ok"] += 1
        except EventFileError as exc:
            assert bad.name in str(exc)
            outcomes["EventFileError"] += 1
    assert outcomes["EventFileError"] > 0  # the flips did damage something
