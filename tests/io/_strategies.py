"""Hypothesis strategies for event arrays used by the io round-trip tests."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from eventkit.events import make_audio_events, make_events


@st.composite
def vision_events(draw, max_n=200, max_xy=127, max_t=(1 << 23) - 1, sorted_t=True, min_n=0):
    """Random vision events: n in [min_n, max_n], x, y in [0, max_xy], p in {0, 1}, t in [0, max_t]."""
    n = draw(st.integers(min_n, max_n))
    t = draw(hnp.arrays(np.int64, n, elements=st.integers(0, max_t)))
    x = draw(hnp.arrays(np.int64, n, elements=st.integers(0, max_xy)))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, max_xy)))
    p = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    if sorted_t:
        t = np.sort(t)
    return make_events(t, x, y, p)


@st.composite
def audio_events(draw, max_n=200, max_x=699, max_t=(1 << 23) - 1, p_values=(0, 1), min_n=0):
    """Random audio events sorted by t."""
    n = draw(st.integers(min_n, max_n))
    t = np.sort(draw(hnp.arrays(np.int64, n, elements=st.integers(0, max_t))))
    x = draw(hnp.arrays(np.int64, n, elements=st.integers(0, max_x)))
    p = draw(hnp.arrays(np.int64, n, elements=st.sampled_from(p_values)))
    return make_audio_events(t, x, p)


def stable_sorted(events: np.ndarray) -> np.ndarray:
    """Reference: events stably sorted by t (what a reader must return for an unsorted file)."""
    return events[np.argsort(events["t"], kind="stable")]
