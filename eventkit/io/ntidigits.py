"""N-TIDIGITS18 HDF5 release (``n-tidigits.hdf5``).

Layout (Anumula, Neil, Delbruck & Liu 2018, "Feature Representations for Neuromorphic Audio
Spike Streams", Front. Neurosci. 12:23; the layout read by tonic's
``tonic/datasets/ntidigits18.py`` and torchneuromorphic's ``ntidigits``)::

    /train_labels              [N] byte strings: the utterance keys ('<...>-<...>-<digits>');
                               the label string is the part after the last '-'
                               (one character for single digits: 'o', 'z', '1'..'9')
    /train_addresses/<key>     [n] integer cochlea channel of each spike (0..63)
    /train_timestamps/<key>    [n] float spike times, seconds
    /test_labels, /test_addresses/<key>, /test_timestamps/<key>   the same for the test split

One utterance -> audio events (``AUDIO_DTYPE``): ``t = round(timestamps * 1e6)`` µs,
``x`` = the stored address (the channel as released; decoding a raw CochleaAMS address into
channel/ear/neuron type is ``eventkit.audio``'s job), ``p = 0`` (one polarity, sensor size
``(64, 1, 1)``; tonic uses ``p = 1``). Events are sorted by ``t`` (stably, only if needed).
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

SPLITS = ("train", "test")
N_CHANNELS = 64
_WHAT = "an N-TIDIGITS18 HDF5 file (<split>_labels, <split>_addresses/<key>, <split>_timestamps/<key>)"


def _check_split(path, split: str) -> str:
    if split not in SPLITS:
        raise ParameterError(f"{as_path(path)}: split must be one of {SPLITS}, got {split!r}")
    return split


def label_of_key(key: str) -> str:
    """The label string of an utterance key: the part after the last ``-`` (tonic's rule)."""
    return key.rsplit("-", 1)[-1]


class NTidigitsFile(H5Reader):
    """An open N-TIDIGITS18 HDF5 file for reading many utterances (context manager)."""

    def __init__(self, path: PathType):
        self.path = as_path(path)
        self._file, self._verdict = open_h5(self.path, _WHAT)

    def keys(self, split: str) -> list[str]:
        """Utterance keys of ``split`` in file order (from ``/<split>_labels``)."""
        _check_split(self.path, split)
        self._verdict.raise_if_bad(self.path, split)
        with h5_errors(self.path, _WHAT):
            ds = h5_dataset(self._file, f"{split}_labels", self.path, _WHAT)
            check_rows(ds, None, self.path, f"{split}_labels")
            stored = ds[()]
            out = []
            for i, k in enumerate(np.asarray(stored).reshape(-1)):
                if isinstance(k, bytes):
                    k = k.decode("utf-8", errors="strict")  # a damaged key: UnicodeDecodeError -> EventFileError
                elif not isinstance(k, str):
                    raise EventFileError(self.path,
                                         f"/{split}_labels[{i}] is {type(k).__name__}, expected a string key")
                out.append(k)
        return out

    def read(self, split: str, key: str) -> np.ndarray:
        """Utterance ``key`` of ``split`` as audio events (t µs int64, x = channel, p = 0), sorted by ``t``."""
        import h5py

        _check_split(self.path, split)
        where = f"{split}/{key}"
        self._verdict.raise_if_bad(self.path, where)
        with h5_errors(self.path, f"{_WHAT}, utterance {where}"):
            grp_a = self._file.get(f"{split}_addresses")
            grp_t = self._file.get(f"{split}_timestamps")
            if grp_a is None or grp_t is None:
                raise EventFileError(
                    self.path, f"no '/{split}_addresses' or '/{split}_timestamps' group (expected {_WHAT})"
                )
            if key not in grp_a or key not in grp_t:
                if key in self.keys(split):  # listed by the file itself: the file is inconsistent
                    raise EventFileError(self.path, f"utterance {where} is listed in /{split}_labels but has no "
                                                    f"/{split}_addresses or /{split}_timestamps dataset")
                raise ParameterError(
                    f"{self.path}: no utterance {key!r} in split {split!r} (see list_ntidigits_h5 for the keys)"
                )
            data = []
            for group, name in ((grp_a, "addresses"), (grp_t, "timestamps")):
                obj = group[key]
                if not isinstance(obj, h5py.Dataset):
                    raise EventFileError(self.path, f"/{split}_{name}/{key} is a {type(obj).__name__}, "
                                                    f"expected a dataset ({_WHAT})")
                check_rows(obj, None, self.path, f"{split}_{name}/{key}", flat=True)
                data.append(np.asarray(obj[()]).reshape(-1))
            addr, ts = data
        if addr.shape != ts.shape:
            raise EventFileError(
                self.path, f"utterance {where}: {addr.shape[0]} addresses but {ts.shape[0]} timestamps"
            )
        if ts.dtype.kind != "f":
            raise EventFileError(self.path,
                                 f"utterance {where}: timestamps have dtype {ts.dtype}, expected float seconds")
        if not seconds_in_range(ts):
            raise EventFileError(self.path, f"utterance {where}: timestamps must be finite, >= 0 and below "
                                            f"{MAX_SECONDS:.0e} seconds (int64 µs)")
        if addr.dtype.kind == "f":
            if addr.size and not np.array_equal(addr, np.rint(addr)):
                raise EventFileError(self.path, f"utterance {where}: non-integer addresses")
        elif addr.dtype.kind not in "iu":
            raise EventFileError(self.path, f"utterance {where}: addresses have dtype {addr.dtype}, expected integers")
        if addr.size and (addr.min() < 0 or addr.max() > 0xFFFF):
            raise EventFileError(self.path, f"utterance {where}: addresses outside 0..65535")
        out = np.empty(ts.shape[0], dtype=AUDIO_DTYPE)
        out["t"] = seconds_to_us(ts)
        out["x"] = addr.astype(np.uint16)
        out["p"] = 0
        return sorted_by_t(out)


def list_ntidigits_h5(path: PathType, split: str) -> list[tuple[str, str]]:
    """``[(key, label_string), ...]`` of a split, in file order; label = key after the last ``-``."""
    with NTidigitsFile(path) as f:
        return [(k, label_of_key(k)) for k in f.keys(split)]


def read_ntidigits_h5(path: PathType, split: str, key: str) -> np.ndarray:
    """One utterance of the N-TIDIGITS18 HDF5 release as audio events (t µs, x = channel, p = 0)."""
    with NTidigitsFile(path) as f:
        return f.read(split, key)


def write_ntidigits_h5(
    path: PathType,
    train: Sequence[tuple[str, np.ndarray]] = (),
    test: Sequence[tuple[str, np.ndarray]] = (),
    *,
    time_dtype=np.float32,
    address_dtype=np.uint8,
) -> None:
    """Write utterances ``(key, audio events)`` per split in the N-TIDIGITS18 HDF5 layout.

    Keys are stored in ``/<split>_labels`` (in the order given) and name the datasets in
    ``/<split>_addresses`` (``address_dtype``) and ``/<split>_timestamps`` (seconds,
    ``time_dtype``; float32 keeps µs exact to about 8 s).
    """
    import h5py

    p = as_path(path)
    info = np.iinfo(address_dtype)
    with h5py.File(p, "w") as f:
        for split, items in (("train", train), ("test", test)):
            keys = [k for k, _ in items]
            if len(set(keys)) != len(keys):
                raise ParameterError(f"write_ntidigits_h5({p}): duplicate keys in split {split!r}")
            ga = f.create_group(f"{split}_addresses")
            gt = f.create_group(f"{split}_timestamps")
            for key, ev in items:
                if "/" in key or not key:
                    raise ParameterError(f"write_ntidigits_h5({p}): key {key!r} must be non-empty without '/'")
                if not isinstance(ev, np.ndarray) or ev.dtype.names is None or not {"t", "x"} <= set(ev.dtype.names):
                    raise InvalidEventsError(f"write_ntidigits_h5({p}): {split}/{key} is not an event array with t, x")
                x_out = ev.size and (int(ev["x"].min()) < info.min or int(ev["x"].max()) > info.max)
                if x_out or (ev.size and int(ev["t"].min()) < 0):
                    raise InvalidEventsError(
                        f"write_ntidigits_h5({p}): {split}/{key} has t < 0 or x outside {np.dtype(address_dtype)}"
                    )
                ga.create_dataset(key, data=np.asarray(ev["x"]).astype(address_dtype))
                gt.create_dataset(key, data=us_to_seconds(ev["t"], time_dtype))
            f.create_dataset(f"{split}_labels", data=np.array([k.encode("utf-8") for k in keys], dtype="S"))
