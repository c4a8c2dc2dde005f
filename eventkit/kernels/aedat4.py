"""Numba kernel behind the AEDAT 4 reader (private: arrays only).

Converts the 16-byte flatbuffers ``Event`` structs of the event packets (int64 t, int16 x,
int16 y, bool on, 3 padding bytes; see :mod:`eventkit.io.aedat4`) into 13-byte event
records in one pass, and reports the first struct whose t, x or y is negative.
"""
from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def unpack_event_structs(words, halves, raw, out):
    """Fill ``out`` (records with fields ``t, x, y, p``) from ``n`` structs; returns the index of
    the first struct with a negative ``t``, ``x`` or ``y`` (``out`` then partly filled), else -1.

    ``words``/``halves``/``raw``: the same ``16 * n`` bytes viewed as int64, int16 and uint8.
    """
    for i in range(out.shape[0]):
        t = words[2 * i]
        x = halves[8 * i + 4]
        y = halves[8 * i + 5]
        if (t < 0) | (x < 0) | (y < 0):
            return i
        e = out[i]
        e.t = t
        e.x = x
        e.y = y
        e.p = 1 if raw[16 * i + 12] != 0 else 0
    return -1
