"""Slow references for the cochlea kernels: one Python iteration per event."""
from __future__ import annotations

import numpy as np


def frames_loop(
    events,
    C: int,
    P: int,
    *,
    split_by: str,
    T: int | None = None,
    dt_us: int | None = None,
    duration_us: int | None = None,
    start_us: int = 0,
    factor: int = 1,
    merge: bool = False,
    clip: bool = False,
    dtype=np.uint16,
) -> np.ndarray:
    """Audio frames ``[T, P', C/factor]`` by a direct loop over events (counts clipped at the dtype max)."""
    ts = [int(v) for v in events["t"]]
    xs = [int(v) for v in events["x"]]
    ps = [int(v) for v in events["p"]]
    n = len(ts)
    if split_by == "time":
        if T is None:
            if duration_us is not None:
                T = (duration_us + dt_us - 1) // dt_us
            else:
                # smallest T such that the last event lies in bin T-1
                T = 1
                if n and ts[-1] >= start_us:
                    while start_us + T * dt_us <= ts[-1]:
                        T += 1
    counts = np.zeros((T, 1 if merge else P, C // factor), dtype=np.int64)
    for i in range(n):
        if split_by == "time":
            j = (ts[i] - start_us) // dt_us  # Python floor division (also for t < start)
            if j < 0:
                if not clip:
                    continue
                j = 0
            if j >= T:
                if not clip:
                    continue
                j = T - 1
        else:
            per = n // T
            j = T - 1 if per == 0 else min(i // per, T - 1)
        counts[j, 0 if merge else ps[i], xs[i] // factor] += 1
    return np.minimum(counts, np.iinfo(dtype).max).astype(dtype)
