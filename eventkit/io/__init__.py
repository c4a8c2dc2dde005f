"""Raw event-file readers and writers, one module per format, and the dispatcher :func:`read_events`.

Every reader returns a NumPy structured array (``VISION_DTYPE`` or ``AUDIO_DTYPE``) sorted by
``t`` (µs, int64), and raises :class:`~eventkit.errors.EventFileError` (a ``ValueError``)
naming the file, the problem and, where it applies, the byte offset; a partial array is never
returned silently.

=================  ===========================  ==============================================
format name        suffix / header               reader (module)
=================  ===========================  ==============================================
``nmnist``         ``.bin``                      :func:`read_nmnist` (``nmnist``)
``bs2``            ``.bs2``                      :func:`read_bs2` (``nmnist``)
``bs1``            ``.bs1``                      :func:`read_bs1` (``bs1``), audio
``aedat2``         ``#!AER-DAT2.x``              :func:`read_aedat2` (``aedat2``)
``aedat31``        ``#!AER-DAT3.1``              :func:`read_aedat31` (``aedat31``)
``aedat4``         ``#!AER-DAT4.0``/``.aedat4``  :func:`read_aedat4` (``aedat4``)
``shd``            HDF5 with ``/spikes``         :func:`read_shd` (``shd``), audio, ``index=``
``ntidigits_h5``   HDF5 with ``*_labels``        :func:`read_ntidigits_h5`, audio, ``split=, key=``
``prophesee_dat``  ``.dat`` + ``%`` header       :func:`read_prophesee_dat` (``prophesee``)
``evt2``           ``%`` header ``evt 2.0``      :func:`read_evt2` (``prophesee``)
``evt3``           ``%`` header ``evt 3.0``      :func:`read_evt3` (``prophesee``)
=================  ===========================  ==============================================
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from eventkit.errors import EventFileError, ParameterError
from eventkit.io._common import HDF5_MAGIC, PathType, as_path, h5_errors, read_head
from eventkit.io.aedat2 import read_aedat2, read_aedat2_header, write_aedat2
from eventkit.io.aedat4 import read_aedat4, write_aedat4
from eventkit.io.aedat31 import (
    GestureSample,
    read_aedat31,
    read_gesture_labels,
    read_gesture_samples,
    write_aedat31,
    write_gesture_labels,
)
from eventkit.io.bs1 import read_bs1, write_bs1
from eventkit.io.nmnist import read_bs2, read_nmnist, write_bs2, write_nmnist
from eventkit.io.ntidigits import NTidigitsFile, list_ntidigits_h5, read_ntidigits_h5, write_ntidigits_h5
from eventkit.io.prophesee import read_evt2, read_evt3, read_prophesee_dat, write_evt2, write_prophesee_dat
from eventkit.io.shd import ShdFile, count_shd, read_shd, read_shd_labels, write_shd

#: format name -> reader; the names :func:`read_events` accepts as ``format=``.
READERS: dict[str, Callable[..., np.ndarray]] = {
    "nmnist": read_nmnist,
    "bs2": read_bs2,
    "bs1": read_bs1,
    "aedat2": read_aedat2,
    "aedat31": read_aedat31,
    "aedat4": read_aedat4,
    "shd": read_shd,
    "ntidigits_h5": read_ntidigits_h5,
    "prophesee_dat": read_prophesee_dat,
    "evt2": read_evt2,
    "evt3": read_evt3,
}

_ALIASES = {
    "bin": "nmnist", "atis": "nmnist", "ncaltech101": "nmnist",
    "ssc": "shd", "ntidigits": "ntidigits_h5", "ntidigits18": "ntidigits_h5",
    "dat": "prophesee_dat", "aedat3": "aedat31", "dvsgesture": "aedat31",
}

_SUFFIX = {".bin": "nmnist", ".bs2": "bs2", ".bs1": "bs1", ".aedat4": "aedat4"}

KNOWN_FORMATS: tuple[str, ...] = tuple(READERS)


def _unknown(path: PathType, why: str) -> EventFileError:
    return EventFileError(
        as_path(path),
        f"{why}; known formats: {', '.join(KNOWN_FORMATS)} (pass format=... to read_events)",
    )


def detect_format(path: PathType) -> str:
    """The format name of a file, from its header (magic bytes) first, then its suffix.

    Raises :class:`~eventkit.errors.EventFileError` listing the known formats when neither
    tells.
    """
    p = as_path(path)
    head = read_head(p, 256)
    suffix = p.suffix.lower()
    if head.startswith(b"#!AER-DAT"):
        line = head.split(b"\n", 1)[0].rstrip(b"\r")[len(b"#!AER-DAT"):]
        if line.startswith(b"2."):
            return "aedat2"
        if line == b"3.1":
            return "aedat31"
        if line.startswith(b"4."):
            return "aedat4"
        raise _unknown(p, f"AEDAT version {line.decode('ascii', 'replace')!r} is not supported")
    if head.startswith(HDF5_MAGIC) or suffix in (".h5", ".hdf5"):
        if not head:
            raise EventFileError(p, "empty file (0 bytes), expected an HDF5 file", offset=0)
        from eventkit.io._common import open_h5

        f, _ = open_h5(p, "an HDF5 file")  # read in full by an isolated process first
        with f:
            with h5_errors(p, "an HDF5 file"):
                keys = set(f.keys())
        if "spikes" in keys and "labels" in keys:
            return "shd"
        if keys & {"train_labels", "test_labels"}:
            return "ntidigits_h5"
        raise _unknown(p, f"HDF5 file with top-level entries {sorted(keys)} is neither SHD/SSC nor N-TIDIGITS18")
    if head.startswith(b"%"):
        from eventkit.io.prophesee import _header_end, raw_evt_version

        _, lines = _header_end(read_head(p, 1 << 16))
        version = raw_evt_version(lines)
        if version in ("EVT2", "EVT3"):
            return version.lower()
        if suffix == ".dat" or version is None:
            return "prophesee_dat"
        raise _unknown(p, f"Prophesee header says {version}, which is not supported")
    if suffix in _SUFFIX:
        return _SUFFIX[suffix]
    if not head:
        raise _unknown(p, "empty file (0 bytes) with an unknown suffix")
    raise _unknown(p, f"cannot tell the format from the suffix {suffix or '(none)'!r} or the first bytes {head[:8]!r}")


def read_events(path: PathType, format: str | None = None, **kwargs: Any) -> np.ndarray:
    """Read one recording (or one HDF5 sample) -> events sorted by ``t`` (µs).

    ``format``: one of :data:`KNOWN_FORMATS` (aliases: ``ssc``, ``ntidigits``, ``dat``...);
    ``None`` detects it from the header, then the suffix (:func:`detect_format`).
    ``kwargs`` go to the reader: ``index=`` for ``shd``, ``split=``/``key=`` for
    ``ntidigits_h5``, ``overflow_markers=`` for ``nmnist``, ``stream_id=`` for ``aedat4``.
    An unknown format raises :class:`~eventkit.errors.EventFileError` listing the known ones;
    missing or unexpected keyword arguments raise :class:`~eventkit.errors.ParameterError`.
    """
    if format is None:
        name = detect_format(path)
    else:
        key = str(format).lower().replace("-", "_").replace(".", "")
        name = _ALIASES.get(key, key)
        if name not in READERS:
            raise _unknown(path, f"unknown format {format!r}")
    reader = READERS[name]
    try:
        inspect.signature(reader).bind(path, **kwargs)
    except TypeError as exc:
        params = [q for q in inspect.signature(reader).parameters if q != "path"]
        raise ParameterError(
            f"read_events({as_path(path)}, format={name!r}): {exc}; this reader takes {params or 'no'} "
            f"keyword argument(s)"
        ) from None
    return reader(path, **kwargs)


__all__ = [
    "READERS", "KNOWN_FORMATS", "detect_format", "read_events",
    "read_nmnist", "write_nmnist", "read_bs2", "write_bs2", "read_bs1", "write_bs1",
    "read_aedat2", "read_aedat2_header", "write_aedat2",
    "read_aedat31", "write_aedat31", "GestureSample", "read_gesture_labels", "read_gesture_samples",
    "write_gesture_labels", "read_aedat4", "write_aedat4",
    "ShdFile", "read_shd", "count_shd", "read_shd_labels", "write_shd",
    "NTidigitsFile", "read_ntidigits_h5", "list_ntidigits_h5", "write_ntidigits_h5",
    "read_prophesee_dat", "read_evt2", "read_evt3", "write_prophesee_dat", "write_evt2",
]
