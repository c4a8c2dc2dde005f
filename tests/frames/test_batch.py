"""The ragged batch kernel (to_frames_batch / to_frames_many) against per-sample to_frames."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import VISION_DTYPE, make_events
from eventkit.frames import to_frames, to_frames_batch, to_frames_many
from tests.frames import naive
from tests.frames._strategies import events_for, sensors


@st.composite
def batches(draw):
    sensor = draw(sensors())
    k = draw(st.integers(0, 6))
    return sensor, [draw(events_for(sensor, max_n=800)) for _ in range(k)]


@settings(max_examples=40, deadline=None)
@given(
    sb=batches(),
    T=st.integers(1, 20),
    split_by=st.sampled_from(["count", "time"]),
    merge=st.booleans(),
    dtype=st.sampled_from([np.uint8, np.uint16]),  # each output dtype is one parallel compile (seconds)
    n_threads=st.sampled_from([None, 1, 2]),
)
def test_batch_equals_per_sample(sb, T, split_by, merge, dtype, n_threads):
    sensor, samples = sb
    n_threads = None if n_threads is None else min(n_threads, numba.config.NUMBA_NUM_THREADS)
    before = (numba.get_num_threads(), numba.get_parallel_chunksize())
    got = to_frames_many(samples, sensor, T=T, split_by=split_by, dtype=dtype, merge_polarity=merge,
                         n_threads=n_threads)
    assert (numba.get_num_threads(), numba.get_parallel_chunksize()) == before  # settings restored
    W, H, P = sensor
    assert got.shape == (len(samples), T, 1 if merge else P, H, W) and got.dtype == np.dtype(dtype)
    for b, ev in enumerate(samples):
        np.testing.assert_array_equal(
            got[b], to_frames(ev, sensor, T=T, split_by=split_by, dtype=dtype, merge_polarity=merge))
        if b == 0:
            want = naive.frames(ev, T, sensor, split_by, merge, cap=int(np.iinfo(dtype).max))
            np.testing.assert_array_equal(got[b].astype(np.int64), want)


def test_batch_one_and_two_threads_agree():
    rng = np.random.default_rng(3)
    sizes = rng.integers(0, 5000, 24)
    samples = [
        make_events(np.sort(rng.integers(0, 10**6, n)), rng.integers(0, 34, n), rng.integers(0, 34, n),
                    rng.integers(0, 2, n))
        for n in sizes
    ]
    one = to_frames_many(samples, (34, 34, 2), T=10, split_by="time", n_threads=1)
    two = to_frames_many(samples, (34, 34, 2), T=10, split_by="time", n_threads=min(2, numba.config.NUMBA_NUM_THREADS))
    np.testing.assert_array_equal(one, two)
    assert one.reshape(len(samples), -1).sum(axis=1).tolist() == sizes.tolist()


def test_batch_columns_and_empty_samples():
    a = make_events([0, 1, 2], [0, 1, 1], [0, 0, 1], [0, 1, 1])
    b = make_events([5, 9], [1, 0], [1, 1], [0, 0])
    t = np.concatenate([a["t"], b["t"]])
    x = np.concatenate([a["x"], b["x"]]).astype(np.int32)  # any integer column type
    y = np.concatenate([a["y"], b["y"]]).astype(np.uint8)
    p = np.concatenate([a["p"], b["p"]]).astype(np.int64)
    offsets = np.array([0, 0, 3, 3, 5])  # samples: empty, a, empty, b
    got = to_frames_batch(t, x, y, p, offsets, 2, (2, 2, 2))
    assert got.shape == (4, 2, 2, 2, 2)
    assert not got[0].any() and not got[2].any()
    np.testing.assert_array_equal(got[1], to_frames(a, (2, 2, 2), T=2))
    np.testing.assert_array_equal(got[3], to_frames(b, (2, 2, 2), T=2))
    # samples are sorted one by one: t may go down from one sample to the next
    t2 = np.concatenate([b["t"], a["t"]])
    got2 = to_frames_batch(t2, np.concatenate([b["x"], a["x"]]), np.concatenate([b["y"], a["y"]]),
                           np.concatenate([b["p"], a["p"]]), [0, 2, 5], 2, (2, 2, 2))
    np.testing.assert_array_equal(got2[1], to_frames(a, (2, 2, 2), T=2))


def test_empty_batch():
    assert to_frames_many([], (3, 2, 2), T=4).shape == (0, 4, 2, 2, 3)
    z = np.zeros(0, np.int64)
    assert to_frames_batch(z, z, z, z, [0], 4, (3, 2, 2), merge_polarity=True).shape == (0, 4, 1, 2, 3)


def test_batch_errors_name_the_sample():
    good = make_events([0, 1, 2], [0, 1, 1], [0, 0, 1], [0, 1, 1])
    bad = good.copy()
    bad["y"][1] = 7
    with pytest.raises(InvalidEventsError, match=r"sample 2: y\[1\]=7"):
        to_frames_many([good, good, bad, good], (2, 2, 2), T=2)
    unsorted = good.copy()
    unsorted["t"] = [0, 4, 1]
    with pytest.raises(InvalidEventsError, match=r"sample 1: timestamps are not sorted: t\[2\]=1 < t\[1\]=4"):
        to_frames_many([good, unsorted], (2, 2, 2), T=2, split_by="time")


@pytest.mark.parametrize(
    "offsets", [[0, 4], [1, 0, 3], [[0, 3]], [0.0, 3.0], [-1, 3], []],
)
def test_bad_offsets(offsets):
    ev = make_events([0, 1, 2], [0, 1, 1], [0, 0, 1], [0, 1, 1])
    with pytest.raises(ParameterError, match="offsets"):
        to_frames_batch(ev["t"], ev["x"], ev["y"], ev["p"], np.asarray(offsets), 2, (2, 2, 2))


def test_bad_columns_and_threads():
    ev = make_events([0, 1, 2], [0, 1, 1], [0, 0, 1], [0, 1, 1])
    with pytest.raises(InvalidEventsError, match="one length"):
        to_frames_batch(ev["t"], ev["x"][:2], ev["y"], ev["p"], [0, 3], 2, (2, 2, 2))
    with pytest.raises(InvalidEventsError, match="x must be a 1-D integer"):
        to_frames_batch(ev["t"], ev["x"].astype(np.float32), ev["y"], ev["p"], [0, 3], 2, (2, 2, 2))
    for n in (0, numba.config.NUMBA_NUM_THREADS + 1, 1.5):
        with pytest.raises(ParameterError, match="n_threads"):
            to_frames_batch(ev["t"], ev["x"], ev["y"], ev["p"], [0, 3], 2, (2, 2, 2), n_threads=n)
    with pytest.raises(ParameterError, match=r"\bT\b"):
        to_frames_many([ev], (2, 2, 2), T=0)
    with pytest.raises(InvalidEventsError, match="sample 0"):
        to_frames_many([np.zeros(3, dtype=[("t", "<i8"), ("x", "<u2")])], (2, 2, 2), T=2)


def test_many_accepts_mixed_field_dtypes():
    a = make_events([0, 1], [0, 1], [0, 1], [0, 1])
    b = np.zeros(2, dtype=[("t", "<i4"), ("x", "<i2"), ("y", "u1"), ("p", "i1")])
    b["t"], b["x"], b["y"], b["p"] = [3, 4], [1, 1], [0, 0], [1, 0]
    got = to_frames_many([a, b], (2, 2, 2), T=1)
    np.testing.assert_array_equal(got[0], to_frames(a, (2, 2, 2), T=1))
    np.testing.assert_array_equal(got[1], to_frames(b, (2, 2, 2), T=1))
    assert got.dtype == np.uint16 and VISION_DTYPE == a.dtype


def test_batch_out_buffer_is_filled_and_checked():
    a = make_events([0, 1, 2], [0, 1, 1], [0, 0, 1], [0, 1, 1])
    cols = [np.concatenate([a[f], a[f]]) for f in ("t", "x", "y", "p")]
    buf = np.full((2, 2, 2, 2, 2), 77, dtype=np.uint16)  # stale content is overwritten
    got = to_frames_batch(*cols, [0, 3, 6], 2, (2, 2, 2), out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf[0], to_frames(a, (2, 2, 2), T=2))
    np.testing.assert_array_equal(buf[1], buf[0])
    for bad in (np.zeros((2, 2, 2, 2, 2), np.uint8), np.zeros((1, 2, 2, 2, 2), np.uint16),
                np.zeros((2, 2, 2, 2, 4), np.uint16)[..., ::2], [[0]]):
        with pytest.raises(ParameterError, match="out must be"):
            to_frames_batch(*cols, [0, 3, 6], 2, (2, 2, 2), out=bad)
