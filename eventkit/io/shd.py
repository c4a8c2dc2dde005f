"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) HDF5 files.

Layout (Cramer, Stradmann, Schemmel & Zenke 2020, "The Heidelberg Spiking Data Sets for the
Systematic Evaluation of Spiking Neural Networks", IEEE TNNLS 33(7);
https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/)::

    /spikes/times    [N] variable-length float arrays: spike times of sample i, seconds
    /spikes/units    [N] variable-length uint16 arrays: cochlea channel (0..699) of each spike
    /labels          [N] uint16 class id
    /extra/speaker   [N] uint16 speaker id              (optional)
    /extra/keys      [C] class names                     (optional)
    /extra/meta_info/...                                 (optional, not read)

One sample -> audio events (``AUDIO_DTYPE``): ``t = round(times * 1e6)`` µs (int64),
``x = unit``, ``p = 0`` (one polarity; sensor size ``(700, 1, 1)``). tonic sets ``p = 1``
with the same sensor size; eventkit keeps ``p < P``. Events are sorted by ``t`` (stably,
only when the stored order is not already sorted).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eventkit.errors import EventFileError, InvalidEventsError, ParameterError
from eventkit.events import AUDIO_DTYPE
from eventkit.io._common import (
    MAX_SECONDS,
    H5Reader,
    PathType,
    as_path,
    check_rows,
    h5_dataset,
    h5_errors,
    open_h5,
    seconds_in_range,
    seconds_to_us,
    sorted_by_t,
    us_to_seconds,
)

N_CHANNELS = 700
_WHAT = "an SHD/SSC HDF5 file (/spikes/times, /spikes/units, /labels)"


class ShdFile(H5Reader):
    """An open SHD/SSC file for reading many samples (context manager).

    ``max_rows``: refuse a file declaring more rows (the dataset layer passes twice the
    manifest's count). The file is read once in an isolated process first
    (:mod:`eventkit.io._h5check`); rows that failed there raise their error again here.

    >>> with ShdFile("shd_train.h5") as f:          # doctest: +SKIP
    ...     events = f.read(0); label = int(f.labels[0])
    """

    def __init__(self, path: PathType, *, max_rows: int | None = None):
        self.path = as_path(path)
        self._file, self._verdict = open_h5(self.path, _WHAT)
        try:
            with h5_errors(self.path, _WHAT):
                self._times = h5_dataset(self._file, "spikes/times", self.path, _WHAT)
                self._units = h5_dataset(self._file, "spikes/units", self.path, _WHAT)
                self._labels_ds = h5_dataset(self._file, "labels", self.path, _WHAT)
                n = (check_rows(self._times, max_rows, self.path, "spikes/times"),
                     check_rows(self._units, max_rows, self.path, "spikes/units"),
                     check_rows(self._labels_ds, max_rows, self.path, "labels"))
            if len(set(n)) != 1:
                raise EventFileError(
                    self.path, f"inconsistent sample counts: /spikes/times {n[0]}, /spikes/units {n[1]}, /labels {n[2]}"
                )
            self._n = n[0]
            self._labels: np.ndarray | None = None
        except BaseException:
            self._file.close()
            raise

    def __len__(self) -> int:
        return self._n

    @property
    def labels(self) -> np.ndarray:
        """All labels, ``[N]`` int64."""
        if self._labels is None:
            with h5_errors(self.path, _WHAT):
                self._labels = np.asarray(self._labels_ds[()]).astype(np.int64)
        return self._labels

    def read(self, index: int) -> np.ndarray:
        """Sample ``index`` as audio events (t µs int64, x = channel, p = 0), sorted by ``t``."""
        i = int(index)
        if not -self._n <= i < self._n:
            raise ParameterError(f"{self.path}: sample index {index} out of range (file holds {self._n} samples)")
        i %= self._n
        self._verdict.raise_if_bad(self.path, f"row {i}")
        with h5_errors(self.path, f"{_WHAT}, sample {i}"):
            times = np.asarray(self._times[i])
            units = np.asarray(self._units[i])
        if times.shape != units.shape:
            raise EventFileError(
                self.path, f"sample {i}: /spikes/times has {times.shape[0]} spikes, /spikes/units {units.shape[0]}"
            )
        if times.dtype.kind != "f" or units.dtype.kind not in "iu":
            raise EventFileError(
                self.path, f"sample {i}: expected float times and integer units, got {times.dtype} / {units.dtype}"
            )
        if not seconds_in_range(times):
            raise EventFileError(self.path, f"sample {i}: spike times must be finite, >= 0 and below "
                                            f"{MAX_SECONDS:.0e} seconds (int64 µs)")
        if units.size and (int(units.min()) < 0 or int(units.max()) > 0xFFFF):
            raise EventFileError(self.path, f"sample {i}: unit ids outside 0..65535")
        out = np.empty(times.shape[0], dtype=AUDIO_DTYPE)
        out["t"] = seconds_to_us(times)
        out["x"] = units
        out["p"] = 0
        return sorted_by_t(out)


def read_shd(path: PathType, index: int) -> np.ndarray:
    """Sample ``index`` of an SHD/SSC file as audio events (t µs int64, x = channel, p = 0)."""
    with ShdFile(path) as f:
        return f.read(index)


def count_shd(path: PathType) -> int:
    """Number of samples in an SHD/SSC file."""
    with ShdFile(path) as f:
        return len(f)


def read_shd_labels(path: PathType) -> np.ndarray:
    """All labels of an SHD/SSC file, ``[N]`` int64."""
    with ShdFile(path) as f:
        return f.labels.copy()


def write_shd(
    path: PathType,
    samples: Sequence[np.ndarray],
    labels: Sequence[int],
    *,
    speakers: Sequence[int] | None = None,
    keys: Sequence[str] | None = None,
    time_dtype=np.float32,
) -> None:
    """Write samples (audio events, fields ``t`` µs and ``x`` channel) in the SHD/SSC layout.

    ``times`` are stored as ``t / 1e6`` seconds in ``time_dtype`` (float32 keeps µs exact
    to about 8 s), units as uint16, labels as uint16; ``speakers`` -> ``/extra/speaker``,
    ``keys`` (class names) -> ``/extra/keys`` when given.
    """
    import h5py

    p = as_path(path)
    if len(samples) != len(labels):
        raise ParameterError(f"write_shd({p}): {len(samples)} samples but {len(labels)} labels")
    for i, ev in enumerate(samples):
        if not isinstance(ev, np.ndarray) or ev.dtype.names is None or not {"t", "x"} <= set(ev.dtype.names):
            raise InvalidEventsError(f"write_shd({p}): sample {i} is not an event array with fields t, x")
        if ev.size and (int(ev["t"].min()) < 0 or int(ev["x"].min()) < 0 or int(ev["x"].max()) > 0xFFFF):
            raise InvalidEventsError(f"write_shd({p}): sample {i} has t < 0 or x outside 0..65535")
    with h5py.File(p, "w") as f:
        n = len(samples)
        times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.dtype(time_dtype)))
        units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.dtype(np.uint16)))
        for i, ev in enumerate(samples):
            times[i] = us_to_seconds(ev["t"], time_dtype)
            units[i] = np.asarray(ev["x"], dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        if speakers is not None:
            f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.uint16))
        if keys is not None:
            f.create_dataset("extra/keys", data=np.asarray([k.encode("utf-8") for k in keys], dtype=object),
                             dtype=h5py.string_dtype("utf-8"))
