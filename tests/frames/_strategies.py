"""Hypothesis strategies for random vision events (duplicates, all-same t, short spans, odd dtypes)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from eventkit.events import VISION_DTYPE

#: field layouts the frame functions must accept: the contract's, narrow/signed ints,
#: big-endian (copied before the kernel), reordered with an extra float field and uint64 t.
EVENT_DTYPES = [
    VISION_DTYPE,
    np.dtype([("t", "<i4"), ("x", "<i2"), ("y", "u1"), ("p", "i1")]),
    np.dtype([("t", ">i8"), ("x", ">u2"), ("y", ">u2"), ("p", "u1")]),
    np.dtype([("p", "u1"), ("y", "<u4"), ("x", "<u4"), ("extra", "<f4"), ("t", "<u8")]),
]

OUT_DTYPES = [np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.int64]


def build_events(t, x, y, p, dtype=VISION_DTYPE) -> np.ndarray:
    ev = np.zeros(len(t), dtype=dtype)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, p
    return ev


@st.composite
def sensors(draw):
    """Small sensors, so that pixels collide often and saturation is reached."""
    return (draw(st.integers(1, 9)), draw(st.integers(1, 7)), draw(st.integers(1, 2)))


@st.composite
def events_for(draw, sensor, max_n: int = 1500, dtype=None):
    W, H, P = sensor
    n = draw(st.one_of(st.integers(0, 12), st.integers(0, max_n)))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["spread", "dups", "same", "short", "bursts"]))
    dtype = draw(st.sampled_from(EVENT_DTYPES)) if dtype is None else dtype
    rng = np.random.default_rng(seed)
    if kind == "spread":
        steps = rng.integers(0, 1000, n)
    elif kind == "dups":
        steps = rng.integers(0, 3, n)
    elif kind == "same":
        steps = np.zeros(n, dtype=np.int64)
    elif kind == "short":  # duration shorter than T µs: dt = 0 in time mode
        steps = (rng.random(n) < 0.005).astype(np.int64)
    else:  # two bursts far apart: empty windows in between
        steps = rng.integers(0, 2, n)
        if n:
            steps[n // 2] = 10**6
    signed_t = dtype["t"].kind == "i"
    t0 = draw(st.integers(-(10**6) if signed_t else 0, 10**6))
    t = t0 + np.cumsum(steps)
    return build_events(t, rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, P, n), dtype)


@st.composite
def sensor_and_events(draw, max_n: int = 1500, dtype=None):
    sensor = draw(sensors())
    return sensor, draw(events_for(sensor, max_n=max_n, dtype=dtype))
