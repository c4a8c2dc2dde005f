"""SHD / SSC HDF5 reader and writer (spec-faithful fixtures: no real file is available)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.errors import EventFileError, ParameterError
from eventkit.events import AUDIO_DTYPE, make_audio_events
from eventkit.io import ShdFile, count_shd, read_events, read_shd, read_shd_labels, write_shd
from tests.io._strategies import audio_events


@settings(max_examples=25, deadline=None)
@given(st.lists(audio_events(max_n=60, max_x=699, max_t=4_000_000, p_values=(0,)), min_size=1, max_size=5))
def test_roundtrip(tmp_path_factory, samples):
    f = tmp_path_factory.mktemp("shd") / "shd_train.h5"
    labels = list(range(len(samples)))
    write_shd(f, samples, labels, speakers=[1] * len(samples), keys=[f"c{i}" for i in range(20)])
    assert count_shd(f) == len(samples)
    np.testing.assert_array_equal(read_shd_labels(f), labels)
    with ShdFile(f) as sf:
        for i, s in enumerate(samples):
            got = sf.read(i)
            assert got.dtype == AUDIO_DTYPE
            np.testing.assert_array_equal(got, s)


def test_published_layout_and_time_conversion(tmp_path):
    """Write the layout by hand with h5py (float32 seconds, vlen), as the release does."""
    f = tmp_path / "shd_test.h5"
    times = [np.array([0.000654, 0.5, 1.23456], dtype=np.float32), np.array([], dtype=np.float32)]
    units = [np.array([699, 0, 13], dtype=np.uint16), np.array([], dtype=np.uint16)]
    with h5py.File(f, "w") as h:
        dt = h.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float32))
        du = h.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(2):
            dt[i], du[i] = times[i], units[i]
        h.create_dataset("labels", data=np.array([7, 19], dtype=np.uint16))
    ev = read_shd(f, 0)
    assert ev["t"].tolist() == [654, 500_000, 1_234_560]
    assert ev["x"].tolist() == [699, 0, 13] and ev["p"].tolist() == [0, 0, 0]
    assert read_shd(f, 1).shape == (0,)
    assert read_shd(f, -1).shape == (0,)
    assert read_shd_labels(f).tolist() == [7, 19]
    np.testing.assert_array_equal(read_events(f, index=0), ev)


def test_unsorted_sample_is_stably_sorted(tmp_path):
    f = tmp_path / "u.h5"
    s = make_audio_events([30, 10, 10], [1, 2, 3], [0, 0, 0])
    write_shd(f, [s], [0])
    assert read_shd(f, 0)["x"].tolist() == [2, 3, 1]


def test_bad_input(tmp_path):
    f = tmp_path / "x.h5"
    write_shd(f, [make_audio_events([1], [1], [0])], [0])
    with pytest.raises(ParameterError, match="out of range"):
        read_shd(f, 5)
    g = tmp_path / "empty.h5"
    g.write_bytes(b"")
    with pytest.raises(EventFileError, match="empty"):
        read_shd(g, 0)
    r = tmp_path / "rand.h5"
    r.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(EventFileError, match="not an HDF5 file"):
        count_shd(r)
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(f.read_bytes()[:1500])
    with pytest.raises(EventFileError, match="trunc.h5"):
        with ShdFile(trunc) as sf:
            sf.read(0)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h:
        h.create_dataset("labels", data=np.zeros(2, dtype=np.uint16))
    with pytest.raises(EventFileError, match="no dataset '/spikes/times'"):
        read_shd(other, 0)
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as h:
        h.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(np.float32))[0] = np.array([0.1, 0.2], np.float32)
        h.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.uint16))[0] = np.array([1], np.uint16)
        h.create_dataset("labels", data=np.zeros(1, dtype=np.uint16))
    with pytest.raises(EventFileError, match="sample 0: /spikes/times has 2 spikes"):
        read_shd(bad, 0)
    far = tmp_path / "far.h5"  # a time that does not fit in int64 µs: refused, never a wrapped cast
    with h5py.File(far, "w") as h:
        h.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(np.float64))[0] = np.array([0.1, 1e15])
        h.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.uint16))[0] = np.array([1, 2], np.uint16)
        h.create_dataset("labels", data=np.zeros(1, dtype=np.uint16))
    with pytest.raises(EventFileError, match="sample 0: spike times must be finite, >= 0 and below"):
        read_shd(far, 0)


def test_damaged_data_is_an_event_file_error_and_the_file_is_closed(tmp_path):
    """A file that opens but whose vlen heap is damaged: h5py's OSError becomes EventFileError
    naming the file and sample; no HDF5 handle stays open afterwards."""
    rng = np.random.default_rng(0)
    samples = [make_audio_events(np.sort(rng.integers(0, 10**6, 40)), rng.integers(0, 700, 40), 0) for _ in range(3)]
    f = tmp_path / "shd_train.h5"
    write_shd(f, samples, [0, 1, 2])
    raw = f.read_bytes()
    assert raw.count(b"GCOL") >= 1  # the global heap collection that holds the vlen spikes
    bad = tmp_path / "damaged.h5"
    bad.write_bytes(raw.replace(b"GCOL", b"XXXX"))
    with pytest.raises(EventFileError, match=r"damaged\.h5.*sample 1"):
        read_shd(bad, 1)
    with pytest.raises(EventFileError, match=r"damaged\.h5"):
        read_events(bad, index=1)
    open_files = [i.name for i in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)]
    assert str(bad).encode() not in open_files
