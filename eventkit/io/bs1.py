"""SLAYER one-dimensional 40-bit spike files (``.bs1``), e.g. N-TIDIGITS18 utterances.

Byte layout (one event = 5 bytes, no header; slayerPytorch ``spikeFileIO.read1Dspikes`` /
``encode1Dspikes``, Shrestha & Orchard 2018, "SLAYER: Spike Layer Error Reassignment in
Time", NeurIPS; https://github.com/bamsumit/slayerPytorch)::

    bytes 0-1   neuron / channel id (uint16, big-endian)  -> x
    byte 2      bit 7: polarity (0 = OFF, 1 = ON); bits 6..0: t[22:16]
    bytes 3-4   t[15:0], big-endian
                -> t is a 23-bit µs counter (no overflow markers)

Checked on ``ntidigits/slayer_NTIDIGITS_1.bs1``: 898 events, channels 0..63, p all 1,
t 0..1079040 µs, every t a multiple of 256 µs. Returns audio events (``AUDIO_DTYPE``).
"""
from __future__ import annotations

import numpy as np

from eventkit.errors import InvalidEventsError
from eventkit.events import AUDIO_DTYPE
from eventkit.io._common import (
    PathType,
    as_path,
    check_range,
    check_record_size,
    read_all_bytes,
    require_fields,
    sorted_by_t,
)

RECORD_BYTES = 5
T_MAX = (1 << 23) - 1

_RECORD = np.dtype([("x", ">u2"), ("pt", "u1"), ("t16", ">u2")])


def read_bs1(path: PathType) -> np.ndarray:
    """Read a SLAYER ``.bs1`` file -> audio events (t µs int64, x = channel, p) sorted by ``t``.

    A size that is not a multiple of 5 bytes raises :class:`~eventkit.errors.EventFileError`
    naming the offset of the partial record.
    """
    what = "a SLAYER .bs1 file (40-bit 1-D events: 5 bytes per event)"
    data = read_all_bytes(path, what=what)
    n = check_record_size(path, len(data), 0, RECORD_BYTES, what)
    rec = np.frombuffer(data, dtype=_RECORD, count=n)
    out = np.empty(n, dtype=AUDIO_DTYPE)
    t = out["t"]  # ufuncs write straight into the output fields
    np.bitwise_and(rec["pt"], 0x7F, out=t)
    np.left_shift(t, 16, out=t)
    np.bitwise_or(t, rec["t16"], out=t)
    out["x"] = rec["x"]
    np.right_shift(rec["pt"], 7, out=out["p"])
    return sorted_by_t(out)


def write_bs1(path: PathType, events: np.ndarray) -> None:
    """Write audio events (fields t, x, p) as a SLAYER ``.bs1`` file, in the order given.

    ``x`` in 0..65535, ``p`` in {0, 1}, ``0 <= t < 2**23`` µs, else
    :class:`~eventkit.errors.InvalidEventsError`.
    """
    name = f"events for {as_path(path)}"
    require_fields(events, ("t", "x", "p"), name)
    check_range(events, "x", 0, 0xFFFF, name, "the channel is 16 bits")
    check_range(events, "p", 0, 1, name, "polarity is one bit")
    check_range(events, "t", 0, T_MAX, name, "t is a 23-bit µs counter")
    t = events["t"].astype(np.int64)
    rec = np.empty(t.shape[0], dtype=_RECORD)
    rec["x"] = events["x"]
    rec["pt"] = (events["p"].astype(np.uint8) << 7) | (t >> 16).astype(np.uint8)
    rec["t16"] = (t & 0xFFFF).astype(np.uint16)
    if rec.shape[0] == 0:
        raise InvalidEventsError(f"{name}: no events; a .bs1 file cannot be empty")
    with open(as_path(path), "wb") as fh:
        fh.write(rec.tobytes())
