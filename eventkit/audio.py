"""Audio (silicon-cochlea) events → count frames ``[T, P, C']``, channel pooling, N-TIDIGITS address decoding.

Audio events are ``AUDIO_DTYPE`` rows (``t`` int64 µs, ``x`` uint16 channel, ``p``
uint8) with ``sensor_size = (C, 1, P)``: SHD/SSC have ``C = 700`` and ``P = 1``,
N-TIDIGITS18 has ``C = 64``.

Time bins (``split_by="time"``)
-------------------------------
Bin ``j`` covers ``[start_us + j*dt_us, start_us + (j+1)*dt_us)``, ``j = 0 .. T-1``.
The number of bins is

* ``T`` when given;
* else ``ceil(duration_us / dt_us)`` when ``duration_us`` is given (the same T for
  every sample of a dataset, e.g. SHD: ``dt_us=14_000``, ``duration_us=1_400_000``
  → T = 100);
* else ``ceil((t_last - start_us + 1) / dt_us)``: the smallest T whose bins hold the
  last event (``T = 1``, an all-zero frame, when there is no event at or after
  ``start_us``).

Events outside ``[start_us, start_us + T*dt_us)`` are **dropped** (``overflow="drop"``,
the default, as in SHD practice with a fixed number of steps) or put into the first
/ last bin (``overflow="clip"``).

Event-count slices (``split_by="count"``, Eq. 22 of Jin et al. 2022)
---------------------------------------------------------------------------------
Slice ``j`` holds event indices ``[j*floor(N/T), (j+1)*floor(N/T))`` and the last
slice runs to ``N`` (the rule of :func:`eventkit.frames.to_frames`); with ``N < T``
every event lands in the last slice.

Counts
------
``F[j, p, c']`` is the number of events of bin ``j`` with polarity ``p`` whose
channel ``c`` satisfies ``c // factor == c'`` (``factor = C / n_channels``: pooling
sums ``factor`` adjacent channels). Counts **saturate** at the maximum of the output
dtype (255 for ``uint8``, 65535 for ``uint16``) instead of wrapping around.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from eventkit._arrays import INT64_MAX, INT64_MIN, allocate
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import AUDIO_DTYPE, polarity_index, sort_events, validate_events
from eventkit.kernels import cochlea as _k

__all__ = [
    "to_audio_frames",
    "pool_channels",
    "CochleaAddress",
    "decode_cochlea_address",
    "encode_cochlea_address",
    "audio_events_from_addresses",
    "cochlea_sensor_size",
    "COCHLEA_CHANNELS",
    "COCHLEA_NEURON_TYPES",
]

#: Channels per ear of the CochleaAMS1b/1c chips (N-TIDIGITS18).
COCHLEA_CHANNELS = 64
#: Ganglion cells per channel and ear: 2 filter types × 4 thresholds.
COCHLEA_NEURON_TYPES = 8

_FRAME_DTYPES = tuple(np.dtype(d) for d in (np.uint8, np.uint16, np.uint32, np.int16, np.int32, np.int64))


# --------------------------------------------------------------------------- helpers

def _as_int(value, name: str, *, minimum: int | None = None) -> int:
    """``value`` as a Python int (bool and non-integral floats refused), optionally ``>= minimum``."""
    if isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise ParameterError(
            f"{name} must be an integer (µs values are whole microseconds), got {value!r} "
            f"of type {type(value).__name__}"
        ) from None
    if minimum is not None and out < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {out}")
    if not INT64_MIN <= out <= INT64_MAX:
        raise ParameterError(f"{name} must fit in a signed 64-bit integer (µs), got {out}")
    return int(out)


def _frame_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ParameterError(f"dtype: not a NumPy dtype: {dtype!r}") from None
    if dt not in _FRAME_DTYPES:
        raise ParameterError(
            f"dtype={dt} is not a count dtype; frames stay integer: use one of "
            f"{[str(d) for d in _FRAME_DTYPES]} (uint8 saturates at 255)"
        )
    return dt


def _audio_sensor(sensor_size: Sequence[int]) -> tuple[int, int, int]:
    try:
        values = tuple(sensor_size)
    except TypeError:
        values = ()
    if not values or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) for v in values):
        # a float such as 700.5 is refused, never truncated to 700
        raise ParameterError(f"sensor_size must be (C, 1, P) integers, got {sensor_size!r}")
    size = tuple(int(v) for v in values)
    if len(size) != 3 or size[0] < 1 or size[1] != 1 or size[2] < 1:
        raise ParameterError(
            f"sensor_size must be (C, 1, P) for audio events with C >= 1 channels and P >= 1 "
            f"polarities, got {sensor_size!r} (SHD: (700, 1, 1); N-TIDIGITS18: (64, 1, 1))"
        )
    return size[0], size[1], size[2]


def _pool_factor(C: int, n_channels: int | None) -> int:
    if n_channels is None:
        return 1
    n_out = _as_int(n_channels, "n_channels", minimum=1)
    if n_out > C or C % n_out != 0:
        raise ParameterError(
            f"n_channels={n_out} does not divide the {C} input channels: pooling sums C / n_channels "
            f"adjacent channels, so n_channels must be a divisor of {C}"
        )
    return C // n_out


# --------------------------------------------------------------------------- frames

def to_audio_frames(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    dt_us: int | None = None,
    T: int | None = None,
    split_by: str = "time",
    n_channels: int | None = None,
    merge_polarity: bool = False,
    squeeze_polarity: bool = False,
    dtype=np.uint16,
    duration_us: int | None = None,
    start_us: int | None = None,
    overflow: str = "drop",
    name: str = "events",
    sort: bool = False,
) -> np.ndarray:
    """Count audio events into frames ``[T, P', C']`` (or ``[T, C']`` with ``squeeze_polarity``).

    ``to_audio_frames(events, sensor_size, *, T=... | dt_us=..., ...)``: the argument order
    of :func:`eventkit.frames.to_frames`.

    Args:
        events: ``AUDIO_DTYPE`` structured array, sorted by ``t`` (µs); any integer field
            types and field order, ``p`` also ``bool`` or signed ``-1/+1`` (tonic's SHD /
            N-TIDIGITS samples: ``t, x, p`` as int64).
        sensor_size: ``(C, 1, P)``.
        dt_us: bin width in µs (``split_by="time"`` only; required there), > 0.
        T: number of frames; required for ``split_by="count"``; for ``"time"`` it fixes
            the length (exclusive with ``duration_us``).
        split_by: ``"time"`` (bins of ``dt_us``) or ``"count"`` (Eq. 22 slices).
        n_channels: pool to ``C'`` channels (a divisor of ``C``; each output channel is the
            sum of ``C / C'`` adjacent input channels, e.g. 700 → 140 sums 5). Default ``C``.
        merge_polarity: add all polarities into one row (``P' = 1``); else ``P' = P``.
        squeeze_polarity: drop the polarity axis and return ``[T, C']``; needs ``P' == 1``.
        dtype: integer count dtype (default uint16); counts saturate at its maximum.
        duration_us: fixes ``T = ceil(duration_us / dt_us)`` for every sample of a dataset.
        start_us: start of bin 0 in µs (default 0; ``split_by="time"`` only).
        overflow: ``"drop"`` events outside the T bins (default) or ``"clip"`` them into
            the first / last bin (``split_by="time"`` only).
        name: how errors refer to ``events`` (e.g. the sample's file name).
        sort: sort the events stably by ``t`` first; without it unsorted events are refused.

    Returns:
        ``ndarray[T, P', C']`` of ``dtype`` (C-contiguous).

    Raises:
        InvalidEventsError: unsorted ``t``, ``x >= C`` or ``p >= P``, not audio events.
        ParameterError: a parameter out of range; the message names it.
    """
    C, _, P = _audio_sensor(sensor_size)
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise InvalidEventsError(
            f"{name}: expected a structured array of audio events (eventkit.events.AUDIO_DTYPE), "
            f"got {type(events).__name__}"
        )
    if "y" in events.dtype.names:
        raise InvalidEventsError(
            f"{name}: these are vision events (field 'y' present); audio frames take AUDIO_DTYPE "
            f"events (t, x, p) — use eventkit.frames.to_frames for vision events"
        )
    if not isinstance(sort, (bool, np.bool_)):
        raise ParameterError(f"sort must be True or False, got {sort!r}")
    if sort:
        events = sort_events(events)
    validate_events(events, (C, 1, P), name=name)
    out_dtype = _frame_dtype(dtype)
    factor = _pool_factor(C, n_channels)
    n_out = C // factor
    P_out = 1 if merge_polarity else P
    if squeeze_polarity and P_out != 1:
        raise ParameterError(
            f"squeeze_polarity=True needs a single polarity row but sensor_size has P={P}; "
            f"pass merge_polarity=True as well"
        )
    if overflow not in ("drop", "clip"):
        raise ParameterError(f"overflow must be 'drop' or 'clip', got {overflow!r}")

    maxval = int(np.iinfo(out_dtype).max)
    x = np.ascontiguousarray(events["x"], dtype=np.int64)
    p = np.ascontiguousarray(polarity_index(events["p"], name), dtype=np.int64)

    if split_by == "time":
        if dt_us is None:
            raise ParameterError("dt_us is required for split_by='time' (bin width in µs, e.g. 14_000 for SHD)")
        dt = _as_int(dt_us, "dt_us", minimum=1)
        start = 0 if start_us is None else _as_int(start_us, "start_us")
        t = np.ascontiguousarray(events["t"], dtype=np.int64)
        if T is not None and duration_us is not None:
            raise ParameterError(
                f"give T or duration_us, not both (got T={T!r}, duration_us={duration_us!r})"
            )
        if T is not None:
            n_frames = _as_int(T, "T", minimum=1)
        elif duration_us is not None:
            dur = _as_int(duration_us, "duration_us", minimum=1)
            n_frames = -(-dur // dt)
        else:
            last = int(t[-1]) if t.shape[0] else start - 1
            n_frames = max(1, -(-(last - start + 1) // dt))
        why = (f"T={n_frames}" if T is not None else f"duration_us={duration_us}, dt_us={dt}" if duration_us
               is not None else f"from start_us={start} to the last event in bins of dt_us={dt}")
        out = allocate((n_frames, P_out, n_out), out_dtype, why, zeros=True)
        _k.audio_frames_by_time(t, x, p, start, dt, factor, bool(merge_polarity), overflow == "clip", out, maxval)
    elif split_by == "count":
        for pname, val in (("dt_us", dt_us), ("duration_us", duration_us), ("start_us", start_us)):
            if val is not None:
                raise ParameterError(f"{pname} applies to split_by='time' only; split_by='count' takes T")
        if T is None:
            raise ParameterError("T is required for split_by='count' (number of event-count slices)")
        n_frames = _as_int(T, "T", minimum=1)
        out = allocate((n_frames, P_out, n_out), out_dtype, f"T={n_frames}", zeros=True)
        _k.audio_frames_by_count(x, p, factor, bool(merge_polarity), out, maxval)
    else:
        raise ParameterError(f"split_by must be 'time' or 'count', got {split_by!r}")

    if squeeze_polarity:
        return out[:, 0, :].copy()
    return out


def pool_channels(frames: np.ndarray, n_channels: int) -> np.ndarray:
    """Sum groups of ``C / n_channels`` adjacent channels along the last axis of ``frames [..., C]``.

    Same rule as ``to_audio_frames(n_channels=...)``; integer frames keep their dtype and
    saturate at its maximum.
    """
    if not isinstance(frames, np.ndarray) or frames.ndim < 1:
        raise ParameterError(f"frames must be a NumPy array [..., C], got {type(frames).__name__}")
    C = frames.shape[-1]
    factor = _pool_factor(C, n_channels)
    out_shape = frames.shape[:-1] + (C // factor,)
    if frames.dtype.kind in "iu":
        acc = frames.reshape(frames.shape[:-1] + (C // factor, factor)).sum(axis=-1, dtype=np.int64)
        info = np.iinfo(frames.dtype)
        return np.clip(acc, info.min, info.max).astype(frames.dtype).reshape(out_shape)
    if frames.dtype.kind == "f":
        return frames.reshape(frames.shape[:-1] + (C // factor, factor)).sum(axis=-1, dtype=frames.dtype)
    raise ParameterError(f"frames must be integer or float, got dtype {frames.dtype}")


# --------------------------------------------------------------------------- N-TIDIGITS / CochleaAMS addresses

class CochleaAddress(NamedTuple):
    """Decoded CochleaAMS1b/1c addresses, one entry per event."""

    channel: np.ndarray  #: uint16, 0 (base, high frequencies) .. 63 (apex, low frequencies)
    ear: np.ndarray  #: uint8, 0 = left, 1 = right
    neuron_type: np.ndarray  #: uint8, ``4 * filter + threshold`` in 0..7 (filter 0 band-pass, 1 low-pass)


def _int_array(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] and arr.dtype.kind not in "iu":
        raise ParameterError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def decode_cochlea_address(addresses) -> CochleaAddress:
    """Split raw CochleaAMS1b / CochleaAMS1c AER addresses into (channel, ear, neuron_type).

    Bit layout (jAER ``ch.unizh.ini.jaer.chip.cochlea.CochleaAMS1c.Extractor``, SensorsINI/jaer;
    the same TX/TY layout for the AMS1b in SensorsINI/processAEDAT
    ``misc/cochlea/.../plotloadaecochams1c.m``; N-TIDIGITS18 was recorded with a
    CochleaAMS1b, Anumula et al. 2018, "Feature representations for neuromorphic audio
    spike streams", Front. Neurosci. 12:23)::

        bit  9 8 | 7 6 5 4 3 2 | 1   | 0
             TH  | channel     | EAR | LPF/BPF

    * channel (bits 2-7): 0 = base (high frequencies) … 63 = apex (low frequencies);
    * ear (bit 1): 0 left, 1 right;
    * filter (bit 0): 1 low-pass (SOS) neuron, 0 band-pass neuron;
    * threshold (bits 8-9): which of the 4 ganglion cells (Vth1..Vth4).

    ``neuron_type = 4 * filter + threshold`` (0..7: band-pass Vth1..4, then low-pass
    Vth1..4). Bits above 9 are unconnected on the chip and ignored.

    Args:
        addresses: non-negative integer array ``[N]``.

    Returns:
        :class:`CochleaAddress` of ``[N]`` arrays (``channel`` uint16, ``ear``/``neuron_type`` uint8).
    """
    a = _int_array(addresses, "addresses")
    if a.shape[0] and int(a.min()) < 0:
        i = int(np.argmin(a))
        raise InvalidEventsError(f"addresses[{i}]={int(a[i])} is negative; raw AER addresses are unsigned")
    channel = ((a >> 2) & 63).astype(np.uint16)
    ear = ((a >> 1) & 1).astype(np.uint8)
    neuron_type = ((a & 1) * 4 + ((a >> 8) & 3)).astype(np.uint8)
    return CochleaAddress(channel, ear, neuron_type)


def encode_cochlea_address(channel, ear, neuron_type) -> np.ndarray:
    """Inverse of :func:`decode_cochlea_address`: raw 10-bit addresses (uint16 ``[N]``).

    ``channel`` 0..63, ``ear`` 0..1, ``neuron_type`` 0..7 (broadcast against each other).
    """
    ch, e, nt = (np.asarray(v) for v in (channel, ear, neuron_type))
    checks = (("channel", ch, COCHLEA_CHANNELS), ("ear", e, 2), ("neuron_type", nt, COCHLEA_NEURON_TYPES))
    for label, arr, bound in checks:
        if arr.size and (arr.dtype.kind not in "iu" or int(arr.min()) < 0 or int(arr.max()) >= bound):
            raise ParameterError(f"{label} must be integers in 0..{bound - 1}, got values in "
                                 f"{arr.min()}..{arr.max()} (dtype {arr.dtype})")
    ch, e, nt = (v.astype(np.int64) for v in (ch, e, nt))
    return (((nt & 3) << 8) | (ch << 2) | (e << 1) | (nt >> 2)).astype(np.uint16)


_POLARITY_SOURCES = {None: 1, "ear": 2, "neuron_type": COCHLEA_NEURON_TYPES}


def cochlea_sensor_size(polarity_from: str | None = "ear") -> tuple[int, int, int]:
    """``sensor_size`` of the events returned by :func:`audio_events_from_addresses`:
    ``(64, 1, 2)`` for ``"ear"``, ``(64, 1, 8)`` for ``"neuron_type"``, ``(64, 1, 1)`` for ``None``."""
    if polarity_from not in _POLARITY_SOURCES:
        raise ParameterError(f"polarity_from must be 'ear', 'neuron_type' or None, got {polarity_from!r}")
    return (COCHLEA_CHANNELS, 1, _POLARITY_SOURCES[polarity_from])


def _selection(value, name: str, bound: int, aliases: dict[str, int] | None = None) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str):
        if aliases is None or value not in aliases:
            raise ParameterError(f"{name}={value!r} not understood; use integers 0..{bound - 1}"
                                 + (f" or one of {sorted(aliases)}" if aliases else ""))
        return np.array([aliases[value]])
    vals = np.atleast_1d(np.asarray(value))
    if vals.dtype.kind not in "iu" or vals.size == 0 or int(vals.min()) < 0 or int(vals.max()) >= bound:
        raise ParameterError(f"{name} must be an integer (or list of integers) in 0..{bound - 1}, got {value!r}")
    return vals.astype(np.int64)


def audio_events_from_addresses(
    timestamps_us,
    addresses,
    *,
    ear: int | str | Sequence[int] | None = None,
    neuron_type: int | Sequence[int] | None = None,
    polarity_from: str | None = "ear",
) -> np.ndarray:
    """Raw CochleaAMS1b/1c (timestamp, address) pairs → ``AUDIO_DTYPE`` events over 64 channels.

    ``x`` is the cochlea channel (0..63, :func:`decode_cochlea_address`). Optional filters
    keep one ear (``0``/``"left"``, ``1``/``"right"``) and/or some neuron types (0..7).
    ``p`` carries the ear (``polarity_from="ear"``, the default: ``sensor_size=(64, 1, 2)``,
    binaural information kept as two rows), the neuron type (``"neuron_type"``:
    ``(64, 1, 8)``) or is 0 (``None``: ``(64, 1, 1)``, every ganglion cell of a channel
    counts alike). See :func:`cochlea_sensor_size`.

    This is for raw jAER recordings. The N-TIDIGITS18 HDF5 release already stores
    channel indices 0..63 and float seconds: build those events with
    ``make_audio_events(np.round(t_s * 1e6).astype(np.int64), addresses, 0)``.

    Args:
        timestamps_us: integer µs ``[N]`` (sorted stably here when they are not).
        addresses: raw AER addresses ``[N]``.

    Returns:
        ``AUDIO_DTYPE`` ``[N']`` sorted by ``t``.
    """
    t = _int_array(timestamps_us, "timestamps_us")
    a = _int_array(addresses, "addresses")
    if t.shape[0] != a.shape[0]:
        raise ParameterError(f"timestamps_us has {t.shape[0]} entries but addresses has {a.shape[0]}")
    ear_sel = _selection(ear, "ear", 2, {"left": 0, "right": 1})
    type_sel = _selection(neuron_type, "neuron_type", COCHLEA_NEURON_TYPES)
    if polarity_from not in _POLARITY_SOURCES:
        raise ParameterError(f"polarity_from must be 'ear', 'neuron_type' or None, got {polarity_from!r}")
    dec = decode_cochlea_address(a)
    keep = np.ones(t.shape[0], dtype=bool)
    if ear_sel is not None:
        keep &= np.isin(dec.ear, ear_sel)
    if type_sel is not None:
        keep &= np.isin(dec.neuron_type, type_sel)
    out = np.empty(int(keep.sum()), dtype=AUDIO_DTYPE)
    out["t"] = t[keep]
    out["x"] = dec.channel[keep]
    if polarity_from == "ear":
        out["p"] = dec.ear[keep]
    elif polarity_from == "neuron_type":
        out["p"] = dec.neuron_type[keep]
    else:
        out["p"] = 0
    return sort_events(out)
