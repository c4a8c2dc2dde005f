"""Slow, independent references for the frame kernels: one Python step per event, plain ints.

Written from the rules (Eq. 22 of Jin et al. 2022, SpikingJelly's time edges,
fixed-duration and tonic-style event-count windows), not from the kernels: the slice of an
event is found by a per-event division, where the kernels use precomputed index bounds.
"""
from __future__ import annotations

import numpy as np


def _empty(n: int, sensor_size, merge_polarity: bool) -> list:
    W, H, P = sensor_size
    Pout = 1 if merge_polarity else P
    return [[[[0] * W for _ in range(H)] for _ in range(Pout)] for _ in range(n)]


def _finish(frames: list, cap: int | None) -> np.ndarray:
    arr = np.array(frames, dtype=object)
    if cap is not None:
        arr = np.minimum(arr, cap)
    return arr.astype(np.int64) if arr.size else np.zeros(arr.shape, dtype=np.int64)


def _rows(events):
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]


def count_slice(i: int, N: int, T: int) -> int:
    """Eq. 22 read per event: slice of event i (floor(N/T) events per slice, the rest in the last)."""
    di = N // T
    if di == 0:
        return T - 1
    return min(i // di, T - 1)


def time_slice(t: int, t0: int, t_last: int, T: int) -> int:
    """SpikingJelly's time rule per event: dt = floor((t_last - t0)/T), last window runs to the end."""
    dt = (t_last - t0) // T
    if dt == 0:
        return T - 1
    return min((t - t0) // dt, T - 1)


def frames(events, T: int, sensor_size, split_by: str = "count", merge_polarity: bool = False,
           cap: int | None = None) -> np.ndarray:
    """``[T, P, H, W]`` int64 by a direct per-event loop; counts clipped at ``cap`` (saturation)."""
    rows = _rows(events)
    N = len(rows)
    out = _empty(T, sensor_size, merge_polarity)
    for i, (t, x, y, p) in enumerate(rows):
        if split_by == "count":
            j = count_slice(i, N, T)
        else:
            j = time_slice(t, rows[0][0], rows[-1][0], T)
        out[j][0 if merge_polarity else p][y][x] += 1
    return _finish(out, cap)


def frames_by_duration(events, d: int, sensor_size, start_us: int | None = None,
                       include_incomplete: bool = True, merge_polarity: bool = False,
                       cap: int | None = None) -> np.ndarray:
    """Fixed-duration windows ``[t0 + j*d, t0 + (j+1)*d)``; ``n`` found by stepping windows one by one."""
    rows = _rows(events)
    if not rows:
        return _finish(_empty(0, sensor_size, merge_polarity), cap).reshape(0, 1 if merge_polarity else sensor_size[2],
                                                                             sensor_size[1], sensor_size[0])
    t0 = rows[0][0] if start_us is None else start_us
    t_end = rows[-1][0]
    n = 0
    while True:  # a window counts if it starts by t_end (incomplete) / ends by t_end (complete only)
        w_start = t0 + n * d
        w_last = w_start + d - 1
        if (w_start <= t_end) if include_incomplete else (w_last <= t_end):
            n += 1
        else:
            break
    out = _empty(n, sensor_size, merge_polarity)
    for t, x, y, p in rows:
        if t < t0:
            continue
        j = (t - t0) // d
        if j < n:
            out[j][0 if merge_polarity else p][y][x] += 1
    res = _finish(out, cap)
    return res.reshape(n, 1 if merge_polarity else sensor_size[2], sensor_size[1], sensor_size[0])


def frames_by_event_count(events, c: int, sensor_size, overlap: int = 0, include_incomplete: bool = False,
                          merge_polarity: bool = False, cap: int | None = None) -> np.ndarray:
    """Event-count windows stepped one by one (tonic's rule: windows of min(c, N) events, stride c - overlap)."""
    rows = _rows(events)
    N = len(rows)
    Pout = 1 if merge_polarity else sensor_size[2]
    if N == 0:
        return np.zeros((0, Pout, sensor_size[1], sensor_size[0]), dtype=np.int64)
    size = min(c, N)
    stride = c - overlap
    starts = [0]
    while True:
        if include_incomplete:  # step on while the previous window stops short of the end
            ok = starts[-1] + size < N
        else:  # step on while the next window is full
            ok = starts[-1] + stride + size <= N
        if not ok:
            break
        starts.append(starts[-1] + stride)
    out = _empty(len(starts), sensor_size, merge_polarity)
    for j, s in enumerate(starts):
        for i in range(s, min(s + size, N)):
            t, x, y, p = rows[i]
            out[j][0 if merge_polarity else p][y][x] += 1
    return _finish(out, cap).reshape(len(starts), Pout, sensor_size[1], sensor_size[0])


def frames_numpy(t, x, y, p, T: int, sensor_size, split_by: str = "count") -> np.ndarray:
    """Vectorised version of :func:`frames` (same per-event slice rule), for the large real files."""
    W, H, P = sensor_size
    t = np.asarray(t, dtype=np.int64)
    N = t.shape[0]
    out = np.zeros(T * P * H * W, dtype=np.int64)
    if N == 0:
        return out.reshape(T, P, H, W)
    if split_by == "count":
        di = N // T
        j = np.full(N, T - 1, dtype=np.int64) if di == 0 else np.minimum(np.arange(N) // di, T - 1)
    else:
        dt = (int(t[-1]) - int(t[0])) // T
        j = np.full(N, T - 1, dtype=np.int64) if dt == 0 else np.minimum((t - t[0]) // dt, T - 1)
    flat = ((j * P + np.asarray(p, np.int64)) * H + np.asarray(y, np.int64)) * W + np.asarray(x, np.int64)
    np.add.at(out, flat, 1)
    return out.reshape(T, P, H, W)


def spikingjelly_like(t, x, y, p, T: int, H: int, W: int, split_by: str = "number") -> np.ndarray:
    """SpikingJelly's ``integrate_events_by_fixed_frames_number`` as documented (two polarity
    channels; slice bounds j_l/j_r from the masks of its docstring; one bincount per slice),
    except that an empty time window gives zeros instead of raising."""
    t = np.asarray(t, dtype=np.int64)
    N = t.size
    j_l = np.zeros(T, dtype=np.int64)
    j_r = np.zeros(T, dtype=np.int64)
    if split_by == "number":
        di = N // T
        j_l[:] = np.arange(T) * di
        j_r[:] = j_l + di
        j_r[-1] = N
    else:
        dt = (t[-1] - t[0]) // T
        idx = np.arange(N)
        for i in range(T):
            t_l = dt * i + t[0]
            t_r = t_l + dt
            sel = idx[(t >= t_l) & (t < t_r)]
            if i == T - 1:
                sel = idx[t >= t_l]
            if sel.size:
                j_l[i], j_r[i] = sel[0], sel[-1] + 1
        j_r[-1] = N
    frames_ = np.zeros((T, 2, H, W), dtype=np.int64)
    for i in range(T):
        xs = np.asarray(x[j_l[i]:j_r[i]], np.int64)
        ys = np.asarray(y[j_l[i]:j_r[i]], np.int64)
        ps = (np.asarray(p[j_l[i]:j_r[i]]) != 0).astype(np.int64)
        pos = ps * H * W + ys * W + xs
        frames_[i] = np.bincount(pos, minlength=2 * H * W).reshape(2, H, W)
    return frames_
