"""Event validation: the Numba fast path of validate_events / sort_events against per-event references."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.errors import InvalidEventsError
from eventkit.events import AUDIO_DTYPE, VISION_DTYPE, sort_events, validate_events
from eventkit.kernels import events as kv

SETTINGS = settings(max_examples=60, deadline=None)
# same fields as the contract dtypes but signed and wider: validate_events checks these with NumPy only
VISION_WIDE = np.dtype([("t", "<i8"), ("x", "<i4"), ("y", "<i4"), ("p", "<i2")])
AUDIO_WIDE = np.dtype([("t", "<i8"), ("x", "<i4"), ("p", "<i2")])


@st.composite
def raw_events(draw, audio: bool = False, max_n: int = 80):
    """Events that are mostly valid for a small sensor, with some unsorted or out-of-sensor ones."""
    n = draw(st.integers(1, max_n))
    W = draw(st.integers(1, 9))
    H = 1 if audio else draw(st.integers(1, 9))
    P = draw(st.integers(1, 2))
    t = np.sort(np.asarray(draw(st.lists(st.integers(0, 50), min_size=n, max_size=n)), dtype=np.int64))
    x = np.asarray(draw(st.lists(st.integers(0, W - 1), min_size=n, max_size=n)), dtype=np.int64)
    y = np.asarray(draw(st.lists(st.integers(0, H - 1), min_size=n, max_size=n)), dtype=np.int64)
    p = np.asarray(draw(st.lists(st.integers(0, P - 1), min_size=n, max_size=n)), dtype=np.int64)
    for _ in range(draw(st.integers(0, 2))):  # corruptions at random places
        i = draw(st.integers(0, n - 1))
        what = draw(st.sampled_from(["t", "x", "y", "p"] if not audio else ["t", "x", "p"]))
        if what == "t":
            t[i] = draw(st.integers(0, 60))
        else:  # at the bound (the off-by-one case), just past it, or anywhere
            bound = {"x": W, "y": H, "p": P}[what]
            value = draw(st.one_of(st.sampled_from([bound - 1, bound, bound + 1]), st.integers(0, 255)))
            {"x": x, "y": y, "p": p}[what][i] = value
    return (W, H, P), t, x, y, p


def _pack(dtype, t, x, y, p):
    ev = np.zeros(len(t), dtype=dtype)
    ev["t"], ev["x"], ev["p"] = t, x, p
    if "y" in dtype.names:
        ev["y"] = y
    return ev


def _outcome(fn):
    try:
        fn()
    except InvalidEventsError as exc:
        return str(exc)
    return None


def _first_invalid_reference(t, x, y, p, a, b, W, H, P, check_sorted):
    """Per-event loop: the definition the kernels must meet."""
    for i in range(a, b):
        if check_sorted and i > 0 and t[i] < t[i - 1]:
            return i
        if x[i] >= W or y[i] >= H or p[i] >= P:
            return i
    return -1


@SETTINGS
@given(data=raw_events(), sorted_=st.booleans(), with_sensor=st.booleans())
def test_validate_events_vision_matches_numpy_path(data, sorted_, with_sensor):
    """Same verdict and the same message for VISION_DTYPE (Numba fast path) as for a layout checked by NumPy."""
    sensor, t, x, y, p = data
    fast = _pack(VISION_DTYPE, t, x, y, p)
    slow = _pack(VISION_WIDE, t, x, y, p)
    size = sensor if with_sensor else None
    assert _outcome(lambda: validate_events(fast, size, require_sorted=sorted_)) == _outcome(
        lambda: validate_events(slow, size, require_sorted=sorted_))


@SETTINGS
@given(data=raw_events(audio=True), sorted_=st.booleans())
def test_validate_events_audio_matches_numpy_path(data, sorted_):
    (C, _, P), t, x, _, p = data
    fast = _pack(AUDIO_DTYPE, t, x, None, p)
    slow = _pack(AUDIO_WIDE, t, x, None, p)
    assert _outcome(lambda: validate_events(fast, (C, 1, P), require_sorted=sorted_)) == _outcome(
        lambda: validate_events(slow, (C, 1, P), require_sorted=sorted_))


@SETTINGS
@given(data=raw_events(), check_sorted=st.booleans(), cut=st.tuples(st.integers(0, 80), st.integers(0, 80)))
def test_first_invalid_kernels_match_per_event_loop(data, check_sorted, cut):
    (W, H, P), t, x, y, p = data
    a, b = min(cut), min(max(cut), len(t))
    ev = _pack(VISION_DTYPE, t, x, y, p)
    want = _first_invalid_reference(t, x, y, p, a, b, W, H, P, check_sorted) if a < b else -1
    assert kv.first_invalid_vision(ev, a, b, W, H, P, check_sorted) == want
    audio = _pack(AUDIO_DTYPE, t, x, None, p)
    want_audio = _first_invalid_reference(t, x, np.zeros_like(x), p, a, b, W, 1, P, check_sorted) if a < b else -1
    assert kv.first_invalid_audio(audio, a, b, W, P, check_sorted) == want_audio


@SETTINGS
@given(t=st.lists(st.integers(-5, 5), min_size=0, max_size=40))
def test_sort_events_fast_check_matches_numpy(t):
    ev = _pack(VISION_DTYPE, np.asarray(t, dtype=np.int64), np.zeros(len(t)), np.zeros(len(t)), np.zeros(len(t)))
    out = sort_events(ev)
    assert np.array_equal(out["t"], np.sort(ev["t"], kind="stable"))
    assert (out is ev) == bool(np.all(np.diff(ev["t"]) >= 0))


def test_validate_events_no_bound_and_strided_views():
    """No sensor: only sortedness; non-contiguous views and recarrays take the fast path too."""
    ev = _pack(VISION_DTYPE, np.arange(10), np.full(10, 65535), np.full(10, 65535), np.full(10, 255))
    assert validate_events(ev) is ev
    assert validate_events(ev[::3]).shape == (4,)
    with pytest.raises(InvalidEventsError, match=r"x\[0\]=65535 outside the sensor \(W=128"):
        validate_events(ev.view(np.recarray), (128, 128, 2))
    rev = ev[::-2]
    with pytest.raises(InvalidEventsError, match="timestamps are not sorted"):
        validate_events(rev)


@pytest.mark.parametrize("check_sorted", [True, False])
@pytest.mark.parametrize("field", ["x", "y", "p"])
def test_first_invalid_at_exactly_the_bound(field, check_sorted):
    """A value equal to the sensor bound is outside it; one below is inside (both kernels, both modes)."""
    W, H, P = 5, 4, 2
    bound = {"x": W, "y": H, "p": P}[field]
    for dtype, call in ((VISION_DTYPE, lambda ev: kv.first_invalid_vision(ev, 0, 6, W, H, P, check_sorted)),
                        (AUDIO_DTYPE, lambda ev: kv.first_invalid_audio(ev, 0, 6, W, P, check_sorted))):
        if field == "y" and dtype is AUDIO_DTYPE:
            continue
        ev = np.zeros(6, dtype=dtype)
        ev["t"] = np.arange(6)
        ev[field][3] = bound - 1
        assert call(ev) == -1
        ev[field][3] = bound
        assert call(ev) == 3
        size = (W, H, P) if dtype is VISION_DTYPE else (W, 1, P)
        with pytest.raises(InvalidEventsError, match=rf"{field}\[3\]={bound} outside the sensor"):
            validate_events(ev, size, require_sorted=check_sorted)


@pytest.mark.parametrize("dtype", [VISION_DTYPE, AUDIO_DTYPE])
def test_first_invalid_unsorted_only_when_asked(dtype):
    ev = np.zeros(5, dtype=dtype)
    ev["t"] = [0, 2, 1, 3, 4]
    call = (kv.first_invalid_vision if dtype is VISION_DTYPE else
            (lambda e, a, b, W, H, P, c: kv.first_invalid_audio(e, a, b, W, P, c)))
    assert call(ev, 0, 5, 9, 9, 2, True) == 2 and call(ev, 0, 5, 9, 9, 2, False) == -1
    assert call(ev, 2, 5, 9, 9, 2, True) == 2  # compared with the event before the range
    assert call(ev, 3, 5, 9, 9, 2, True) == -1
