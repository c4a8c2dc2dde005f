"""Numba kernels behind :mod:`eventkit.frames` (private: arrays and scalars only).

Every kernel accumulates event counts into a *flat* output laid out as
``[n_windows, P_out, H, W]`` (C order): event ``i`` of window ``j`` adds one at
``j*P_out*H*W + p_i*pstride + y_i*W + x_i`` where ``pstride = H*W`` (``0`` when the
polarities are merged). Windows are index ranges ``[lo[j], hi[j])`` into the events,
computed once per window (no per-event division), so the hot loop is one load of the
event, one bounds/sortedness test and one increment.

The same loop validates: an event with ``x >= W``, ``y >= H``, ``p >= P`` (or a
negative coordinate) or with ``t`` smaller than the previous event's makes the kernel
stop *before* writing it and return its index; ``-1`` means every event was valid.
The caller turns the index into a typed error. Each frame is zeroed by the kernel just
before its window is counted (outputs come from ``np.empty``): the scattered increments
then hit cache lines that are already hot, which matters for batches larger than the cache.

Saturation: when a window holds more events than ``cap`` (the largest value of the
output dtype), the window is counted with a saturating increment
(``v + (v < cap)``); otherwise no count can overflow and the plain increment is used.

Two event layouts are supported:

* ``*_records``: the structured event array itself (``VISION_DTYPE``, or int64 records
  for any other layout), read in place (no column copies);
* ``*_columns``: four 1-D columns, used by the ragged batch kernel.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

# --------------------------------------------------------------------------- bounds


@njit(cache=True, nogil=True)
def lower_bound_offset(t, start, stop, t0, offset):
    """First index ``i`` in ``[start, stop)`` with ``t[i] >= t0 + offset`` (``stop`` if none).

    ``offset`` is a uint64 and the test is made on ``t[i] - t0`` as a uint64, which is
    exact for ``t[i] >= t0`` whatever the values: no int64 overflow near the limits
    (recordings with absolute or very large timestamps). ``t`` sorted.
    """
    lo = start
    hi = stop
    t0u = np.uint64(t0)
    while lo < hi:
        mid = (lo + hi) >> 1
        tm = t[mid]
        if (tm < t0) or (np.uint64(tm) - t0u < offset):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def count_bounds(start, n, T, bounds):
    """Eq. 22: ``bounds[j] = start + floor(n/T)*j`` for ``j < T``, ``bounds[T] = start + n``."""
    di = n // T
    for j in range(T):
        bounds[j] = start + di * j
    bounds[T] = start + n


@njit(cache=True, nogil=True)
def time_bounds(t, start, n, T, bounds):
    """SpikingJelly's ``split_by='time'`` edges over ``t[start:start+n]`` (``n >= 1``).

    ``dt = floor((t_last - t_first) / T)``; window ``j`` is ``[t_first + j*dt,
    t_first + (j+1)*dt)`` and the last one runs to the end, so ``bounds[j]`` is the
    first index with ``t >= t_first + j*dt`` (``bounds[0] = start``, ``bounds[T] =
    start + n``). The span and the edges are computed as uint64 offsets from
    ``t_first`` (exact for any int64 timestamps). Bounds are forced non-decreasing so
    that unsorted input still partitions ``[start, start+n)`` (the accumulation kernel
    then reports it).
    """
    stop = start + n
    t0 = t[start]
    span = np.uint64(t[stop - 1]) - np.uint64(t0) if t[stop - 1] >= t0 else np.uint64(0)
    dt = span // np.uint64(T)
    bounds[0] = start
    for j in range(1, T):
        b = lower_bound_offset(t, start, stop, t0, dt * np.uint64(j))
        if b < bounds[j - 1]:
            b = bounds[j - 1]
        bounds[j] = b
    bounds[T] = stop


@njit(cache=True, nogil=True)
def edge_bounds(t, t0, d, n_windows, bounds):
    """``bounds[j]`` = first index with ``t >= t0 + j*d`` for ``j = 0..n_windows`` (non-decreasing).

    Edges are uint64 offsets from ``t0``; an edge past every representable offset
    (``j*d >= 2**64``) is past every event.
    """
    n = t.shape[0]
    du = np.uint64(d)
    limit = np.uint64(0xFFFFFFFFFFFFFFFF) // du  # largest j whose offset j*d fits in uint64
    prev = 0
    for j in range(n_windows + 1):
        if np.uint64(j) > limit:
            b = n
        else:
            b = lower_bound_offset(t, 0, n, t0, np.uint64(j) * du)
        if b < prev:
            b = prev
        bounds[j] = b
        prev = b


# --------------------------------------------------------------- record kernels


@njit(cache=True, nogil=True)
def zero_plane(out, base, size):
    """``out[base:base+size] = 0``: each frame is cleared right before its events are counted,
    so its cache lines are hot for the scattered increments (``out`` comes from ``np.empty``)."""
    for k in range(base, base + size):
        out[k] = 0


@njit(cache=True, nogil=True)
def accumulate_records(ev, lo, hi, out, W, H, P, pstride, cap):
    """Count events ``ev[lo[j]:hi[j]]`` into frame ``j`` of the flat ``out``.

    ``ev``: structured events (fields t, x, y, p); ``out``: flat ``[n, P_out, H, W]``
    (any content: each frame is zeroed first); ``P``: polarities of the sensor (the
    bound of ``p``); ``pstride``: ``H*W``, or 0 for merged polarities; ``cap``: largest
    value of ``out``'s dtype. Windows may overlap (event-count windows). Returns the
    index of the first invalid event (outside the sensor, or ``t`` decreasing) or ``-1``.
    """
    Wu = np.uint64(W)
    Hu = np.uint64(H)
    Pu = np.uint64(P)
    pst = np.uint64(pstride)
    plane = np.uint64(P if pstride != 0 else 1) * Hu * Wu
    for j in range(lo.shape[0]):
        base = np.uint64(j) * plane
        zero_plane(out, base, plane)
        a = np.int64(lo[j])
        b = np.int64(hi[j])
        if b <= a:
            continue
        prev = ev[a - 1].t if a > 0 else ev[a].t
        i = np.uint64(a)  # unsigned indices: no negative-index wraparound test per access
        ub = np.uint64(b)
        if b - a <= cap:  # no count can overflow: plain increments
            while i < ub:
                e = ev[i]
                ti = e.t
                xi = np.uint64(e.x)
                yi = np.uint64(e.y)
                pi = np.uint64(e.p)
                if (ti < prev) | (xi >= Wu) | (yi >= Hu) | (pi >= Pu):
                    return np.int64(i)
                prev = ti
                out[base + pi * pst + yi * Wu + xi] += np.uint8(1)
                i += np.uint64(1)
        else:  # saturating increments
            while i < ub:
                e = ev[i]
                ti = e.t
                xi = np.uint64(e.x)
                yi = np.uint64(e.y)
                pi = np.uint64(e.p)
                if (ti < prev) | (xi >= Wu) | (yi >= Hu) | (pi >= Pu):
                    return np.int64(i)
                prev = ti
                k = base + pi * pst + yi * Wu + xi
                v = out[k]
                out[k] = v + np.uint8(v < cap)
                i += np.uint64(1)
    return -1


# --------------------------------------------------------------- column kernels


@njit(cache=True, nogil=True)
def accumulate_columns(t, x, y, p, lo, hi, out, out_base, W, H, P, pstride, cap):
    """Column twin of :func:`accumulate_records`, writing frames from ``out[out_base]`` on.

    Sortedness is checked inside each window and against the event just before it,
    but never across ``lo[0]`` (the previous sample of a ragged batch).
    """
    Wu = np.uint64(W)
    Hu = np.uint64(H)
    Pu = np.uint64(P)
    pst = np.uint64(pstride)
    plane = np.uint64(P if pstride != 0 else 1) * Hu * Wu
    first = np.int64(lo[0]) if lo.shape[0] > 0 else 0
    for j in range(lo.shape[0]):
        base = np.uint64(out_base) + np.uint64(j) * plane
        zero_plane(out, base, plane)
        a = np.int64(lo[j])
        b = np.int64(hi[j])
        if b <= a:
            continue
        prev = t[a - 1] if a > first else t[a]
        i = np.uint64(a)
        ub = np.uint64(b)
        if b - a <= cap:
            while i < ub:
                ti = t[i]
                xi = np.uint64(x[i])
                yi = np.uint64(y[i])
                pi = np.uint64(p[i])
                if (ti < prev) | (xi >= Wu) | (yi >= Hu) | (pi >= Pu):
                    return np.int64(i)
                prev = ti
                out[base + pi * pst + yi * Wu + xi] += np.uint8(1)
                i += np.uint64(1)
        else:
            while i < ub:
                ti = t[i]
                xi = np.uint64(x[i])
                yi = np.uint64(y[i])
                pi = np.uint64(p[i])
                if (ti < prev) | (xi >= Wu) | (yi >= Hu) | (pi >= Pu):
                    return np.int64(i)
                prev = ti
                k = base + pi * pst + yi * Wu + xi
                v = out[k]
                out[k] = v + np.uint8(v < cap)
                i += np.uint64(1)
    return -1


@njit(cache=True, nogil=True, parallel=True)
def frames_batch(t, x, y, p, offsets, T, by_time, out, W, H, P, pstride, cap, err):
    """Ragged batch: sample ``b`` is ``[offsets[b], offsets[b+1])``; frames ``[B, T, P_out, H, W]`` flat.

    ``by_time``: SpikingJelly's time edges (else Eq. 22 counts). Samples run in
    parallel (``prange``); ``err[b]`` receives the first invalid event index of sample
    ``b`` or ``-1``.
    """
    B = offsets.shape[0] - 1
    sample = np.int64(T) * np.int64(P if pstride != 0 else 1) * np.int64(H) * np.int64(W)
    for b in prange(B):
        start = np.int64(offsets[b])
        n = np.int64(offsets[b + 1]) - start
        err[b] = -1
        if n <= 0:  # an empty sample: all-zero frames
            zero_plane(out, np.uint64(b * sample), np.uint64(sample))
            continue
        bounds = np.empty(T + 1, dtype=np.int64)
        if by_time:
            time_bounds(t, start, n, T, bounds)
        else:
            count_bounds(start, n, T, bounds)
        err[b] = accumulate_columns(
            t, x, y, p, bounds[:T], bounds[1:], out, b * sample, W, H, P, pstride, cap
        )
