"""Numba kernels behind event validation (private: arrays and scalars only).

One pass over the records, no temporaries: the fast path of
:func:`eventkit.events.validate_events` and :func:`eventkit.events.sort_events`, and the
checks of :mod:`eventkit.frames` outside the counted windows. A kernel only answers
*where* the first invalid event is; the caller builds the error message.

Fields are read as unsigned (the contract dtypes ``VISION_DTYPE`` / ``AUDIO_DTYPE`` have
unsigned ``x``, ``y``, ``p``; the int64 records of :mod:`eventkit.frames` hold values that
were range-checked, and a negative one reads as huge, hence out of the sensor). A bound
of ``NO_BOUND`` disables that check.
"""
from __future__ import annotations

import numpy as np
from numba import njit

NO_BOUND = np.iinfo(np.int64).max  # "no sensor given": every uint16/uint8 value is below it


@njit(cache=True, nogil=True)
def first_invalid_vision(ev, a, b, W, H, P, check_sorted):
    """First index ``i`` in ``[a, b)`` with ``x >= W``, ``y >= H``, ``p >= P`` or (when
    ``check_sorted``) ``t[i] < t[i-1]`` (``t[a]`` is compared with ``t[a-1]`` when ``a > 0``);
    ``-1`` when every event is valid. ``ev``: records with fields ``t, x, y, p``."""
    if b <= a:
        return -1
    Wu = np.uint64(W)
    Hu = np.uint64(H)
    Pu = np.uint64(P)
    prev = ev[a - 1].t if a > 0 else ev[a].t
    if check_sorted:
        for i in range(np.uint64(a), np.uint64(b)):
            e = ev[i]
            ti = e.t
            if (ti < prev) | (np.uint64(e.x) >= Wu) | (np.uint64(e.y) >= Hu) | (np.uint64(e.p) >= Pu):
                return np.int64(i)
            prev = ti
    else:
        for i in range(np.uint64(a), np.uint64(b)):
            e = ev[i]
            if (np.uint64(e.x) >= Wu) | (np.uint64(e.y) >= Hu) | (np.uint64(e.p) >= Pu):
                return np.int64(i)
    return -1


@njit(cache=True, nogil=True)
def first_invalid_audio(ev, a, b, C, P, check_sorted):
    """:func:`first_invalid_vision` for audio records (fields ``t, x, p``; ``x < C``)."""
    if b <= a:
        return -1
    Cu = np.uint64(C)
    Pu = np.uint64(P)
    prev = ev[a - 1].t if a > 0 else ev[a].t
    if check_sorted:
        for i in range(np.uint64(a), np.uint64(b)):
            e = ev[i]
            ti = e.t
            if (ti < prev) | (np.uint64(e.x) >= Cu) | (np.uint64(e.p) >= Pu):
                return np.int64(i)
            prev = ti
    else:
        for i in range(np.uint64(a), np.uint64(b)):
            e = ev[i]
            if (np.uint64(e.x) >= Cu) | (np.uint64(e.p) >= Pu):
                return np.int64(i)
    return -1


@njit(cache=True, nogil=True)
def is_sorted(t):
    """True when the 1-D ``t`` is non-decreasing (branch-free: no early exit)."""
    bad = False
    for i in range(1, t.shape[0]):
        bad |= t[i] < t[i - 1]
    return not bad
