"""Numba kernels for 1-D (cochlea) event addresses: audio frames ``[T, P, C']``.

Private and dumb: contiguous arrays and scalars in, counts written into a
preallocated output. :mod:`eventkit.audio` validates the inputs, picks the output
dtype, allocates ``out`` and calls these kernels.

Shared arguments
----------------
``x``, ``p``     : int64 ``[N]`` channel and polarity of each event.
``factor``       : channel pooling factor; event channel ``c`` lands in ``c // factor``.
``merge``        : when true every event goes to polarity row 0.
``out``          : ``[T, P', C']`` integer counts, zero-initialised by the caller.
``maxval``       : saturation value of ``out``'s dtype (a count never wraps around).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def audio_frames_by_time(t, x, p, start, dt, factor, merge, clip, out, maxval):
    """Bin events into ``out[j]`` for ``start + j*dt <= t < start + (j+1)*dt``.

    ``t`` int64 ``[N]`` µs, sorted. Events outside ``[start, start + T*dt)`` are
    skipped (``clip=False``) or put into the first / last bin (``clip=True``).
    Returns the number of events that were dropped.
    """
    n = t.shape[0]
    T = out.shape[0]
    Tu = np.uint64(T)
    dtu = np.uint64(dt)
    startu = np.uint64(start)
    dropped = 0
    for i in range(n):
        ti = t[i]
        if ti < start:
            if not clip:
                dropped += 1
                continue
            j = np.int64(0)
        else:
            # the offset from start as a uint64: exact for ti >= start whatever the values
            # (int64 ti - start can overflow when start is far below ti)
            ju = (np.uint64(ti) - startu) // dtu
            if ju >= Tu:
                if not clip:
                    # t is sorted: every later event is past the end as well
                    dropped += n - i
                    break
                ju = Tu - np.uint64(1)
            j = np.int64(ju)
        c = x[i] // factor
        q = 0 if merge else p[i]
        if out[j, q, c] < maxval:
            out[j, q, c] += 1
    return dropped


@njit(cache=True)
def audio_frames_by_count(x, p, factor, merge, out, maxval):
    """Eq. 22 split: slice ``j`` holds events ``[j*floor(N/T), (j+1)*floor(N/T))``; the last slice runs to N."""
    n = x.shape[0]
    T = out.shape[0]
    per = n // T
    for i in range(n):
        if per == 0:
            j = T - 1
        else:
            j = i // per
            if j >= T:
                j = T - 1
        c = x[i] // factor
        q = 0 if merge else p[i]
        if out[j, q, c] < maxval:
            out[j, q, c] += 1

