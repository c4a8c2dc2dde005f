"""to_frames, to_frames_by_duration, to_frames_by_event_count and ToFrames against the slow references."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import AUDIO_DTYPE, VISION_DTYPE, make_events
from eventkit.frames import ToFrames, to_frames, to_frames_by_duration, to_frames_by_event_count
from tests.frames import naive
from tests.frames._strategies import OUT_DTYPES, build_events, sensor_and_events

SETTINGS = settings(max_examples=50, deadline=None)


def _cap(dtype) -> int:
    return int(np.iinfo(dtype).max)


# ----------------------------------------------------------------- properties


@SETTINGS
@given(
    se=sensor_and_events(),
    T=st.integers(1, 25),
    split_by=st.sampled_from(["count", "time"]),
    merge=st.booleans(),
    dtype=st.sampled_from(OUT_DTYPES),
)
def test_to_frames_equals_per_event_loop(se, T, split_by, merge, dtype):
    sensor, ev = se
    got = to_frames(ev, sensor, T=T, split_by=split_by, dtype=dtype, merge_polarity=merge)
    W, H, P = sensor
    assert got.shape == (T, 1 if merge else P, H, W)
    assert got.dtype == np.dtype(dtype)
    want = naive.frames(ev, T, sensor, split_by, merge_polarity=merge, cap=_cap(dtype))
    np.testing.assert_array_equal(got.astype(np.int64), want)


@SETTINGS
@given(se=sensor_and_events(), T=st.integers(1, 25), split_by=st.sampled_from(["count", "time"]))
def test_uint32_frames_keep_every_event(se, T, split_by):
    sensor, ev = se
    got = to_frames(ev, sensor, T=T, split_by=split_by, dtype=np.uint32)
    assert int(got.sum()) == len(ev)
    want = naive.frames_numpy(ev["t"], ev["x"], ev["y"], ev["p"], T, sensor, split_by)
    np.testing.assert_array_equal(got.astype(np.int64), want)


@SETTINGS
@given(
    se=sensor_and_events(),
    d=st.integers(1, 3000),
    start_shift=st.one_of(st.none(), st.integers(-500, 2000)),
    incomplete=st.booleans(),
    merge=st.booleans(),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int32]),
)
def test_by_duration_equals_per_event_loop(se, d, start_shift, incomplete, merge, dtype):
    sensor, ev = se
    start = None
    if start_shift is not None and len(ev):
        start = max(int(ev["t"][0]) + start_shift, 0 if ev.dtype["t"].kind == "u" else -(10**7))
    got = to_frames_by_duration(ev, sensor, duration_us=d, start_us=start, dtype=dtype, merge_polarity=merge,
                                include_incomplete=incomplete)
    want = naive.frames_by_duration(ev, d, sensor, start_us=start, include_incomplete=incomplete,
                                    merge_polarity=merge, cap=_cap(dtype))
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.astype(np.int64), want)


@SETTINGS
@given(
    se=sensor_and_events(),
    c=st.integers(1, 700),
    overlap_frac=st.floats(0, 0.95),
    incomplete=st.booleans(),
    merge=st.booleans(),
    dtype=st.sampled_from([np.uint8, np.uint16]),
)
def test_by_event_count_equals_per_event_loop(se, c, overlap_frac, incomplete, merge, dtype):
    sensor, ev = se
    overlap = min(int(c * overlap_frac), c - 1)
    got = to_frames_by_event_count(ev, sensor, event_count=c, overlap=overlap, dtype=dtype, merge_polarity=merge,
                                   include_incomplete=incomplete)
    want = naive.frames_by_event_count(ev, c, sensor, overlap=overlap, include_incomplete=incomplete,
                                       merge_polarity=merge, cap=_cap(dtype))
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.astype(np.int64), want)


@settings(max_examples=25, deadline=None)
@given(se=sensor_and_events(max_n=600, dtype=VISION_DTYPE), c=st.integers(8, 300), overlap=st.integers(0, 299),
       incomplete=st.booleans())
def test_by_event_count_matches_tonic(se, c, overlap, incomplete):
    tonic_fn = pytest.importorskip("tonic.functional")
    sensor, ev = se
    overlap = min(overlap, c - 1)
    if len(ev) == 0:
        return  # tonic returns one empty frame here, eventkit none (documented)
    got = to_frames_by_event_count(ev, sensor, event_count=c, overlap=overlap, include_incomplete=incomplete)
    want = tonic_fn.to_frame_numpy(ev.copy(), sensor, event_count=c, overlap=overlap, include_incomplete=incomplete)
    np.testing.assert_array_equal(got.astype(np.int64), want.astype(np.int64))


@settings(max_examples=30, deadline=None)
@given(se=sensor_and_events(max_n=800, dtype=VISION_DTYPE), T=st.integers(1, 20))
def test_count_mode_matches_tonic_when_T_divides_N(se, T):
    """tonic's n_event_bins drops the N mod T last events; with T | N both follow Eq. 22."""
    tonic_fn = pytest.importorskip("tonic.functional")
    sensor, ev = se
    ev = ev[: len(ev) - len(ev) % T]
    if len(ev) == 0:
        return
    got = to_frames(ev, sensor, T=T)
    want = tonic_fn.to_frame_numpy(ev.copy(), sensor, n_event_bins=T)
    np.testing.assert_array_equal(got.astype(np.int64), want.astype(np.int64))


@SETTINGS
@given(se=sensor_and_events(dtype=VISION_DTYPE), T=st.integers(1, 25), split_by=st.sampled_from(["count", "time"]))
def test_matches_spikingjelly_semantics(se, T, split_by):
    sensor, ev = se
    W, H, P = sensor
    if P != 2:
        return
    got = to_frames(ev, sensor, T=T, split_by=split_by, dtype=np.uint32)
    if len(ev) == 0:
        assert not got.any()
        return
    want = naive.spikingjelly_like(ev["t"], ev["x"], ev["y"], ev["p"], T, H, W,
                                   "number" if split_by == "count" else "time")
    np.testing.assert_array_equal(got.astype(np.int64), want)


@SETTINGS
@given(se=sensor_and_events(), T=st.integers(1, 10))
def test_transform_class_equals_function(se, T):
    sensor, ev = se
    tr = ToFrames(sensor, T=T, split_by="time", dtype=np.uint8, merge_polarity=True)
    want = to_frames(ev, sensor, T=T, split_by="time", dtype=np.uint8, merge_polarity=True)
    np.testing.assert_array_equal(tr(ev), want)


# ----------------------------------------------------------------- worked examples and edges


def _ev(t, x=None, y=None, p=None):
    n = len(t)
    z = np.zeros(n, dtype=np.int64)
    return make_events(np.asarray(t), z if x is None else x, z if y is None else y, z if p is None else p)


def test_eq22_worked_example():
    ev = _ev(np.arange(10))  # N = 10, T = 3: floor(10/3) = 3 -> [0,3), [3,6), [6,10)
    f = to_frames(ev, (1, 1, 1), T=3)
    assert f[:, 0, 0, 0].tolist() == [3, 3, 4]


def test_fewer_events_than_frames_all_in_last_slice():
    ev = _ev([5, 6, 7], x=[0, 1, 2])
    f = to_frames(ev, (3, 1, 1), T=5)
    assert not f[:4].any()
    assert f[4, 0, 0].tolist() == [1, 1, 1]


def test_time_mode_worked_example_and_last_window_includes_end():
    # t0 = 0, t_last = 100, T = 4 -> dt = 25: [0,25) [25,50) [50,75) [75, end]
    ev = _ev([0, 24, 25, 49, 50, 74, 75, 99, 100])
    f = to_frames(ev, (1, 1, 1), T=4, split_by="time")
    assert f[:, 0, 0, 0].tolist() == [2, 2, 2, 3]


def test_time_mode_empty_windows_are_zero_frames():
    ev = _ev([0, 1, 2, 1000, 1001])
    f = to_frames(ev, (1, 1, 1), T=10, split_by="time")  # dt = 100
    assert f[:, 0, 0, 0].tolist() == [3, 0, 0, 0, 0, 0, 0, 0, 0, 2]


@pytest.mark.parametrize("t", [[7, 7, 7, 7], [0, 1, 2, 3]])  # same t; duration 3 µs < T = 5
def test_time_mode_dt_zero_puts_everything_in_last_frame(t):
    f = to_frames(_ev(t), (1, 1, 1), T=5, split_by="time")
    assert f[:, 0, 0, 0].tolist() == [0, 0, 0, 0, 4]


@pytest.mark.parametrize("split_by", ["count", "time"])
def test_no_events_gives_zero_frames(split_by):
    ev = np.zeros(0, dtype=VISION_DTYPE)
    f = to_frames(ev, (5, 4, 2), T=7, split_by=split_by, dtype=np.uint8)
    assert f.shape == (7, 2, 4, 5) and f.dtype == np.uint8 and not f.any()
    assert to_frames_by_duration(ev, (5, 4, 2), duration_us=1000).shape == (0, 2, 4, 5)
    assert to_frames_by_event_count(ev, (5, 4, 2), event_count=10, merge_polarity=True).shape == (0, 1, 4, 5)


@pytest.mark.parametrize("split_by", ["count", "time"])
def test_uint8_saturates_at_255(split_by):
    ev = _ev(np.arange(300), x=np.full(300, 1), y=np.zeros(300, np.int64), p=np.ones(300, np.int64))
    f = to_frames(ev, (2, 1, 2), T=1, split_by=split_by, dtype=np.uint8)
    assert int(f[0, 1, 0, 1]) == 255
    assert int(f.sum()) == 255
    assert int(to_frames(ev, (2, 1, 2), T=1, dtype=np.uint16)[0, 1, 0, 1]) == 300


def test_uint16_saturates_at_65535():
    n = 70_000
    ev = _ev(np.arange(n))
    assert int(to_frames(ev, (1, 1, 1), T=1, dtype=np.uint16)[0, 0, 0, 0]) == 65535
    assert int(to_frames(ev, (1, 1, 1), T=1, dtype=np.uint32)[0, 0, 0, 0]) == n
    # two slices of 35000: no saturation needed
    assert to_frames(ev, (1, 1, 1), T=2, dtype=np.uint16)[:, 0, 0, 0].tolist() == [35000, 35000]


def test_int8_saturates_at_127_and_merge_polarity_sums():
    ev = _ev(np.arange(200), p=np.arange(200) % 2)
    f = to_frames(ev, (1, 1, 2), T=1, dtype=np.int8, merge_polarity=True)
    assert f.shape == (1, 1, 1, 1) and int(f[0, 0, 0, 0]) == 127
    g = to_frames(ev, (1, 1, 2), T=1, dtype=np.int16)
    assert g[0, :, 0, 0].tolist() == [100, 100]


def test_duration_rules():
    ev = _ev([0, 99, 100, 250, 999])
    # span = 1000 µs, d = 100: n = 10 (complete or not)
    full = to_frames_by_duration(ev, (1, 1, 1), duration_us=100)
    assert full[:, 0, 0, 0].tolist() == [2, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    # span = 1000, d = 300: n = ceil(1000/300) = 4 (last window [900, 1200) incomplete) / floor = 3
    assert to_frames_by_duration(ev, (1, 1, 1), duration_us=300)[:, 0, 0, 0].tolist() == [4, 0, 0, 1]
    got = to_frames_by_duration(ev, (1, 1, 1), duration_us=300, include_incomplete=False)
    assert got[:, 0, 0, 0].tolist() == [4, 0, 0]
    # start_us after the first events: they are not counted
    assert to_frames_by_duration(ev, (1, 1, 1), duration_us=500, start_us=100)[:, 0, 0, 0].tolist() == [2, 1]
    # start_us after the last event: no window
    assert to_frames_by_duration(ev, (1, 1, 1), duration_us=500, start_us=5000).shape == (0, 1, 1, 1)


def test_event_count_rules():
    ev = _ev(np.arange(10))
    assert to_frames_by_event_count(ev, (1, 1, 1), event_count=4)[:, 0, 0, 0].tolist() == [4, 4]
    got = to_frames_by_event_count(ev, (1, 1, 1), event_count=4, include_incomplete=True)
    assert got[:, 0, 0, 0].tolist() == [4, 4, 2]
    assert to_frames_by_event_count(ev, (1, 1, 1), event_count=4, overlap=2)[:, 0, 0, 0].tolist() == [4, 4, 4, 4]
    assert to_frames_by_event_count(ev, (1, 1, 1), event_count=50)[:, 0, 0, 0].tolist() == [10]


def test_strided_and_readonly_events():
    rng = np.random.default_rng(1)
    n = 2000
    ev = make_events(np.sort(rng.integers(0, 10**5, n)), rng.integers(0, 8, n), rng.integers(0, 6, n),
                     rng.integers(0, 2, n))
    view = ev[::3]
    np.testing.assert_array_equal(to_frames(view, (8, 6, 2), T=6), naive.frames(view, 6, (8, 6, 2)))
    ro = ev.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(to_frames(ro, (8, 6, 2), T=6, split_by="time"),
                                  naive.frames(ro, 6, (8, 6, 2), "time"))


def test_transform_is_frozen_and_checks_at_construction():
    tr = ToFrames((4, 4, 2), T=3)
    with pytest.raises(AttributeError):
        tr.T = 5  # type: ignore[misc]
    with pytest.raises(ParameterError, match="T"):
        ToFrames((4, 4, 2), T=0)
    with pytest.raises(ParameterError, match="dtype"):
        ToFrames((4, 4, 2), T=3, dtype=np.float32)


def test_top_level_reexport():
    import eventkit

    if not hasattr(eventkit, "to_frames"):
        pytest.skip("eventkit.to_frames not re-exported yet (eventkit/__init__.py belongs to the lead)")
    assert eventkit.to_frames is to_frames


# ----------------------------------------------------------------- invalid input


GOOD = make_events(np.arange(5), [0, 1, 2, 3, 3], [0, 0, 1, 1, 2], [0, 1, 0, 1, 1])
SENSOR = (4, 3, 2)


@pytest.mark.parametrize("T", [0, -3, 2.5, True, "4", None, np.float32(3)])
def test_bad_T(T):
    with pytest.raises(ParameterError, match=r"\bT\b"):
        to_frames(GOOD, SENSOR, T=T)


def test_numpy_integer_T_is_accepted():
    assert to_frames(GOOD, SENSOR, T=np.int64(2)).shape[0] == 2


@pytest.mark.parametrize("sensor", [(4, 3), (4, 3, 2, 1), (0, 3, 2), (4.0, 3, 2), "abc", None, (4, -3, 2)])
def test_bad_sensor_size(sensor):
    with pytest.raises(ParameterError, match="sensor_size"):
        to_frames(GOOD, sensor, T=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_, "f4", "complex64", "not-a-dtype"])
def test_bad_dtype(dtype):
    with pytest.raises(ParameterError, match="dtype"):
        to_frames(GOOD, SENSOR, T=2, dtype=dtype)


@pytest.mark.parametrize("split_by", ["number", "Count", None, 3])
def test_bad_split_by(split_by):
    with pytest.raises(ParameterError, match="split_by"):
        to_frames(GOOD, SENSOR, T=2, split_by=split_by)


def test_bad_merge_polarity():
    with pytest.raises(ParameterError, match="merge_polarity"):
        to_frames(GOOD, SENSOR, T=2, merge_polarity="yes")


@pytest.mark.parametrize("split_by", ["count", "time"])
@pytest.mark.parametrize(
    "field,value,match",
    [("x", 4, r"x\[2\]=4.*W=4"), ("y", 3, r"y\[2\]=3.*H=3"), ("p", 2, r"p\[2\]=2.*P=2"), ("x", 65535, r"x\[2\]")],
)
def test_event_outside_sensor(split_by, field, value, match):
    ev = GOOD.copy()
    ev[field][2] = value
    with pytest.raises(InvalidEventsError, match=match):
        to_frames(ev, SENSOR, T=2, split_by=split_by)


def test_negative_coordinate_with_signed_fields():
    ev = build_events([0, 1, 2], [0, -1, 0], [0, 0, 0], [0, 0, 0],
                      np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")]))
    with pytest.raises(InvalidEventsError, match=r"x\[1\]=-1"):
        to_frames(ev, (2, 1, 1), T=1)


@pytest.mark.parametrize("split_by", ["count", "time"])
def test_unsorted_timestamps(split_by):
    ev = GOOD.copy()
    ev["t"] = [0, 5, 3, 6, 7]
    with pytest.raises(InvalidEventsError, match=r"not sorted.*t\[2\]=3 < t\[1\]=5"):
        to_frames(ev, SENSOR, T=2, split_by=split_by)


def test_unsorted_timestamps_fully_reversed_time_mode():
    ev = GOOD.copy()
    ev["t"] = ev["t"][::-1].copy()
    with pytest.raises(InvalidEventsError, match="not sorted"):
        to_frames(ev, SENSOR, T=3, split_by="time")


def test_invalid_events_outside_counted_windows_still_raise():
    ev = make_events(np.arange(10), np.zeros(10, int), np.zeros(10, int), np.zeros(10, int))
    tail = ev.copy()
    tail["x"][9] = 50  # beyond the last complete event-count window
    with pytest.raises(InvalidEventsError, match=r"x\[9\]=50"):
        to_frames_by_event_count(tail, (1, 1, 1), event_count=4)
    head = ev.copy()
    head["t"][1] = -5  # before start_us, and unsorted
    with pytest.raises(InvalidEventsError, match="not sorted"):
        to_frames_by_duration(head, (1, 1, 1), duration_us=2, start_us=5)


def test_not_vision_events():
    with pytest.raises(InvalidEventsError):
        to_frames(np.arange(5), SENSOR, T=2)
    with pytest.raises(InvalidEventsError, match="y"):
        to_frames(np.zeros(3, dtype=AUDIO_DTYPE), SENSOR, T=2)
    with pytest.raises(InvalidEventsError, match="integer"):
        to_frames(np.zeros(3, dtype=[("t", "f8"), ("x", "u2"), ("y", "u2"), ("p", "u1")]), SENSOR, T=2)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"duration_us": 0}, "duration_us"), ({"duration_us": 1.5}, "duration_us"),
     ({"duration_us": 10, "start_us": 1.0}, "start_us")],
)
def test_bad_duration_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        to_frames_by_duration(GOOD, sensor_size=SENSOR, **kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"event_count": 0}, "event_count"), ({"event_count": 3, "overlap": 3}, "overlap"),
     ({"event_count": 3, "overlap": -1}, "overlap")],
)
def test_bad_event_count_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        to_frames_by_event_count(GOOD, sensor_size=SENSOR, **kwargs)


def test_recarray_and_memmap_events(tmp_path):
    rng = np.random.default_rng(5)
    n = 500
    ev = make_events(np.sort(rng.integers(0, 10**4, n)), rng.integers(0, 5, n), rng.integers(0, 4, n),
                     rng.integers(0, 2, n))
    want = naive.frames(ev, 4, (5, 4, 2))
    np.testing.assert_array_equal(to_frames(ev.view(np.recarray), (5, 4, 2), T=4), want)
    mm = np.memmap(tmp_path / "ev.bin", dtype=ev.dtype, mode="w+", shape=ev.shape)
    mm[:] = ev
    np.testing.assert_array_equal(to_frames(mm, (5, 4, 2), T=4), want)


@pytest.mark.parametrize("shape", [(), (2, 3)])
def test_non_1d_event_arrays_raise_invalid_events(shape):
    """A 0-d or 2-D structured array is refused with InvalidEventsError (0-d used to raise IndexError)."""
    from eventkit.events import validate_events
    from eventkit.frames import to_frames_many

    ev = np.zeros(shape, dtype=VISION_DTYPE)
    for call in (lambda: to_frames(ev, (4, 4, 2), T=2), lambda: to_frames_by_duration(ev, (4, 4, 2), duration_us=10),
                 lambda: to_frames_many([ev], (4, 4, 2), T=2), lambda: validate_events(ev, (4, 4, 2))):
        with pytest.raises(InvalidEventsError, match="expected a 1-D event array, got shape") as info:
            call()
        assert str(shape) in str(info.value)
