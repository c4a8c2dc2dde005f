"""Numba kernel of the tonic -> eventkit hand-off (private; arrays and scalars only)."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def pack_inside(t, x, y, p, W, H, P, t_offset, out_t, out_x, out_y, out_p):  # pragma: no cover - compiled
    """Copy the events inside ``[0, W) x [0, H) x [0, P)`` into the ``out_*`` columns, ``t + t_offset``.

    Returns ``(n_kept, sorted)``, or ``(-1, False)`` at the first negative polarity (the caller
    then maps a signed polarity with NumPy).
    """
    n = 0
    ordered = True
    last = np.int64(-(2**63))
    for i in range(t.shape[0]):
        pi = np.int64(p[i])
        if pi < 0:
            return -1, False
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= W or yi < 0 or yi >= H or pi >= P:
            continue
        ti = np.int64(t[i]) + t_offset
        if ti < last:
            ordered = False
        last = ti
        out_t[n] = ti
        out_x[n] = xi
        out_y[n] = yi
        out_p[n] = pi
        n += 1
    return n, ordered
