"""to_audio_frames / pool_channels against a per-event loop, SHD-like shapes, saturation, errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.audio import pool_channels, to_audio_frames
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import make_audio_events, make_events
from tests.audio.naive import frames_loop

FRAME_DTYPES = [np.uint8, np.uint16, np.uint32, np.int32, np.int64]


@st.composite
def audio_samples(draw, max_events=200):
    """(events, C, P, factor): sorted random audio events, C = factor * C'."""
    n_out = draw(st.integers(1, 8))
    factor = draw(st.integers(1, 5))
    C = n_out * factor
    P = draw(st.integers(1, 3))
    n = draw(st.integers(0, max_events))
    t = np.sort(np.array(draw(st.lists(st.integers(0, 3000), min_size=n, max_size=n)), dtype=np.int64))
    x = np.array(draw(st.lists(st.integers(0, C - 1), min_size=n, max_size=n)), dtype=np.int64)
    p = np.array(draw(st.lists(st.integers(0, P - 1), min_size=n, max_size=n)), dtype=np.int64)
    return make_audio_events(t, x, p), C, P, factor


@settings(max_examples=50, deadline=None)
@given(
    sample=audio_samples(),
    dt_us=st.integers(1, 700),
    length=st.sampled_from(["auto", "T", "duration"]),
    T=st.integers(1, 12),
    duration_us=st.integers(1, 4000),
    start_us=st.integers(-200, 1500),
    merge=st.booleans(),
    pool=st.booleans(),
    clip=st.booleans(),
    dtype=st.sampled_from(FRAME_DTYPES),
)
def test_time_bins_match_loop(sample, dt_us, length, T, duration_us, start_us, merge, pool, clip, dtype):
    events, C, P, factor = sample
    kw = {"T": T} if length == "T" else {"duration_us": duration_us} if length == "duration" else {}
    got = to_audio_frames(
        events, (C, 1, P), dt_us=dt_us, start_us=start_us, merge_polarity=merge,
        n_channels=C // factor if pool else None, overflow="clip" if clip else "drop", dtype=dtype, **kw,
    )
    want = frames_loop(
        events, C, P, split_by="time", dt_us=dt_us, start_us=start_us, merge=merge,
        factor=factor if pool else 1, clip=clip, dtype=dtype,
        T=kw.get("T"), duration_us=kw.get("duration_us"),
    )
    assert got.dtype == np.dtype(dtype)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@settings(max_examples=50, deadline=None)
@given(sample=audio_samples(), T=st.integers(1, 20), merge=st.booleans(), pool=st.booleans(),
       dtype=st.sampled_from(FRAME_DTYPES))
def test_count_slices_match_loop(sample, T, merge, pool, dtype):
    events, C, P, factor = sample
    got = to_audio_frames(events, (C, 1, P), T=T, split_by="count", merge_polarity=merge,
                          n_channels=C // factor if pool else None, dtype=dtype)
    want = frames_loop(events, C, P, split_by="count", T=T, merge=merge, factor=factor if pool else 1, dtype=dtype)
    np.testing.assert_array_equal(got, want)
    # nothing is lost in count mode (uint8 may saturate)
    if dtype != np.uint8:
        assert int(got.sum()) == len(events)


def test_hand_example_time_and_count():
    ev = make_audio_events([0, 5, 10, 27], [0, 1, 3, 3], [0, 1, 0, 1])
    f = to_audio_frames(ev, (4, 1, 2), dt_us=10)
    assert f.shape == (3, 2, 4)  # ceil((27 - 0 + 1) / 10) = 3
    want = np.zeros((3, 2, 4), np.uint16)
    want[0, 0, 0] = want[0, 1, 1] = want[1, 0, 3] = want[2, 1, 3] = 1
    np.testing.assert_array_equal(f, want)
    # Eq. 22: N=4, T=3 -> floor(4/3)=1 event per slice, the last slice runs to N
    c = to_audio_frames(ev, (4, 1, 2), T=3, split_by="count", merge_polarity=True, squeeze_polarity=True)
    np.testing.assert_array_equal(c, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 2]])


def test_bin_edges_are_half_open():
    # t = start + k*dt starts bin k; t = start + T*dt is past the end
    ev = make_audio_events([100, 109, 110, 129, 130], [0] * 5, [0] * 5)
    f = to_audio_frames(ev, (1, 1, 1), dt_us=10, start_us=100, T=3, squeeze_polarity=True)
    np.testing.assert_array_equal(f[:, 0], [2, 1, 1])
    f = to_audio_frames(ev, (1, 1, 1), dt_us=10, start_us=100, T=3, squeeze_polarity=True, overflow="clip")
    np.testing.assert_array_equal(f[:, 0], [2, 1, 2])
    # before start: dropped (or clipped into bin 0)
    f = to_audio_frames(ev, (1, 1, 1), dt_us=10, start_us=105, T=3, squeeze_polarity=True)
    np.testing.assert_array_equal(f[:, 0], [2, 0, 2])  # bins [105,115) [115,125) [125,135); t=100 dropped
    f = to_audio_frames(ev, (1, 1, 1), dt_us=10, start_us=105, T=3, squeeze_polarity=True, overflow="clip")
    np.testing.assert_array_equal(f[:, 0], [3, 0, 2])


def test_duration_fixes_T_for_every_sample():
    short = make_audio_events([0, 5_000], [1, 2], [0, 0])
    long = make_audio_events([0, 900_000, 1_399_999, 1_400_000, 2_000_000], [1, 2, 3, 3, 4], [0] * 5)
    a = to_audio_frames(short, (700, 1, 1), dt_us=14_000, duration_us=1_400_000)
    b = to_audio_frames(long, (700, 1, 1), dt_us=14_000, duration_us=1_400_000)
    assert a.shape == b.shape == (100, 1, 700)
    assert int(b.sum()) == 3  # t >= 1.4 s dropped
    assert b[99, 0, 3] == 1


def test_empty_events():
    ev = make_audio_events(np.zeros(0, np.int64), [], [])
    f = to_audio_frames(ev, (8, 1, 2), dt_us=1000)
    assert f.shape == (1, 2, 8) and not f.any()
    f = to_audio_frames(ev, (8, 1, 2), dt_us=1000, T=5)
    assert f.shape == (5, 2, 8) and not f.any()
    f = to_audio_frames(ev, (8, 1, 2), T=4, split_by="count", n_channels=2)
    assert f.shape == (4, 2, 2) and not f.any()


@pytest.mark.parametrize("split_by", ["time", "count"])
def test_uint8_saturates_at_255(split_by):
    n = 300
    ev = make_audio_events(np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64))
    kw = {"dt_us": 10} if split_by == "time" else {"T": 1}
    f8 = to_audio_frames(ev, (2, 1, 1), split_by=split_by, dtype=np.uint8, **kw)
    f16 = to_audio_frames(ev, (2, 1, 1), split_by=split_by, **kw)
    assert f8[0, 0, 0] == 255 and f16[0, 0, 0] == 300


def test_shd_like_700_to_140():
    rng = np.random.default_rng(7)
    n = 5000
    t = np.sort(rng.integers(0, 1_500_000, n))
    x = rng.integers(0, 700, n)
    ev = make_audio_events(t, x, np.zeros(n, np.int64))
    full = to_audio_frames(ev, (700, 1, 1), dt_us=14_000, duration_us=1_400_000, squeeze_polarity=True)
    pooled = to_audio_frames(ev, (700, 1, 1), dt_us=14_000, duration_us=1_400_000, n_channels=140,
                             squeeze_polarity=True)
    assert full.shape == (100, 700) and pooled.shape == (100, 140)
    np.testing.assert_array_equal(pooled, full.reshape(100, 140, 5).sum(-1))
    np.testing.assert_array_equal(pooled, pool_channels(full, 140))
    assert int(pooled.sum()) == int((t < 1_400_000).sum())
    want = frames_loop(ev, 700, 1, split_by="time", dt_us=14_000, duration_us=1_400_000, factor=5)
    np.testing.assert_array_equal(pooled, want[:, 0])


def test_pool_channels_saturates_and_checks():
    f = np.full((2, 4), 200, np.uint8)
    np.testing.assert_array_equal(pool_channels(f, 2), np.full((2, 2), 255, np.uint8))
    np.testing.assert_array_equal(pool_channels(f.astype(np.uint16), 1), np.full((2, 1), 800))
    with pytest.raises(ParameterError, match="n_channels=3.*4"):
        pool_channels(f, 3)


def test_pooling_must_divide():
    ev = make_audio_events([0], [0], [0])
    with pytest.raises(ParameterError) as exc:
        to_audio_frames(ev, (700, 1, 1), dt_us=14_000, n_channels=150)
    assert "150" in str(exc.value) and "700" in str(exc.value)
    with pytest.raises(ParameterError, match="n_channels"):
        to_audio_frames(ev, (700, 1, 1), dt_us=14_000, n_channels=1400)
    with pytest.raises(ParameterError, match="n_channels"):
        to_audio_frames(ev, (700, 1, 1), dt_us=14_000, n_channels=0)


def test_validation_errors():
    ev = make_audio_events([0, 10], [1, 2], [0, 1])
    size = (4, 1, 2)
    with pytest.raises(InvalidEventsError, match="sorted"):
        to_audio_frames(make_audio_events([10, 0], [1, 2], [0, 1]), size, dt_us=5)
    with pytest.raises(InvalidEventsError, match="x\\[1\\]"):
        to_audio_frames(make_audio_events([0, 1], [1, 4], [0, 0]), size, dt_us=5)
    with pytest.raises(InvalidEventsError, match="p\\[0\\]"):
        to_audio_frames(make_audio_events([0], [1], [2]), size, dt_us=5)
    with pytest.raises(InvalidEventsError, match="vision"):
        to_audio_frames(make_events([0], [0], [0], [0]), size, dt_us=5)
    with pytest.raises(InvalidEventsError, match="sample_7"):
        to_audio_frames(np.zeros(3), size, dt_us=5, name="sample_7")
    for kw, pname in [
        ({"dt_us": 0}, "dt_us"), ({"dt_us": -3}, "dt_us"), ({"dt_us": 2.5}, "dt_us"), ({}, "dt_us"),
        ({"dt_us": 5, "T": 0}, "T"), ({"dt_us": 5, "T": 2, "duration_us": 10}, "duration_us"),
        ({"dt_us": 5, "duration_us": 0}, "duration_us"), ({"split_by": "count"}, "T"),
        ({"split_by": "count", "T": 0}, "T"), ({"split_by": "count", "T": 2, "dt_us": 5}, "dt_us"),
        ({"split_by": "space", "T": 2}, "split_by"), ({"dt_us": 5, "dtype": np.float32}, "dtype"),
        ({"dt_us": 5, "squeeze_polarity": True}, "merge_polarity"), ({"dt_us": 5, "overflow": "wrap"}, "overflow"),
    ]:
        with pytest.raises(ParameterError, match=pname):
            to_audio_frames(ev, size, **kw)
    with pytest.raises(ParameterError, match="sensor_size"):
        to_audio_frames(ev, (4, 2, 2), dt_us=5)


def test_zero_d_audio_events_raise_invalid_events():
    from eventkit.events import AUDIO_DTYPE

    with pytest.raises(InvalidEventsError, match="expected a 1-D event array, got shape"):
        to_audio_frames(np.zeros((), dtype=AUDIO_DTYPE), (4, 1, 1), dt_us=10)


@pytest.mark.parametrize("sensor_size", [(700.5, 1, 1), (4.0, 1, 1), (True, 1, 1), "abc", None])
def test_non_integer_sensor_size_refused_not_truncated(sensor_size):
    ev = make_audio_events([1, 2], [0, 3], [0, 0])
    with pytest.raises(ParameterError, match="sensor_size must be"):
        to_audio_frames(ev, sensor_size, dt_us=10)
