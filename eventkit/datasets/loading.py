"""Reading samples: events with each dataset's conventions applied, and static images.

Conventions (the dataset layer owns them; readers return the files' raw content):

* CIFAR10-DVS, AEDAT 2.0 (DVS128 addresses): ``x' = 127 - y``, ``y' = 127 - x``,
  ``p' = 1 - p`` (SpikingJelly's convention; without it the image is rotated and
  mirrored), then stably sorted by ``t``. AEDAT 4 re-release: ``t - t0`` (timestamps
  are absolute epoch µs), no flip.
* DVS128 Gesture: row ``k`` of the labels CSV, events ``start <= t < end`` cut by
  :func:`eventkit.io.aedat31.cut_gesture_samples` (only the rows asked for are copied);
  timestamps stay absolute µs.
* SHD / SSC: row ``k``: ``t = round(times[k] * 1e6)`` µs, ``x = units[k]``, ``p = 0``.
* N-TIDIGITS18: key ``k`` of ``/<split>_labels``: ``t = round(timestamps * 1e6)`` µs,
  ``x = addresses`` (channel), ``p = 0``.

Every sample's events are sorted by ``t`` (the readers return them sorted and the
conventions keep the order) and validated against the sensor exactly once, here, where
the sample id is known: an out-of-range or unsorted event raises
:class:`InvalidEventsError` naming the dataset and sample id. The framing functions check
their input again (for vision inside the counting kernel, at no extra pass), since they
are public and take events from anywhere.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from eventkit.errors import EventFileError, ParameterError
from eventkit.events import sort_events, validate_events

if TYPE_CHECKING:
    from eventkit.datasets.discovery import Sample
    from eventkit.datasets.spec import DatasetSpec

__all__ = ["iter_events", "load_images", "cifar10dvs_flip"]


def cifar10dvs_flip(events: np.ndarray, size: int = 128, *, name: str = "events") -> np.ndarray:
    """CIFAR10-DVS AEDAT 2.0 convention: ``x' = size-1-y``, ``y' = size-1-x``, ``p' = 1-p``, sorted by t.

    Returns a new array; raw ``x``/``y`` must be ``< size`` and ``p`` in {0, 1}
    (:class:`InvalidEventsError` naming ``name`` otherwise).
    """
    validate_events(events, (size, size, 2), name=f"{name} (raw DVS128 addresses)", require_sorted=False)
    out = events.copy()
    # written straight into the output fields (no full-size int64 temporaries); the check above
    # keeps the raw values below size, so nothing wraps for the release (uint16 fields)
    np.subtract(np.int64(size - 1), events["y"], out=out["x"], casting="unsafe")
    np.subtract(np.int64(size - 1), events["x"], out=out["y"], casting="unsafe")
    np.subtract(np.int64(1), events["p"], out=out["p"], casting="unsafe")
    return sort_events(out)


def _finish(spec: "DatasetSpec", events: np.ndarray, sample: "Sample") -> np.ndarray:
    """The one validation of a sample's events (sorted, inside the sensor), naming the sample."""
    return validate_events(events, spec.sensor_size, name=f"{spec.name} sample {sample.sample_id}")


def _iter_nmnist(spec, samples):
    from eventkit.io.nmnist import read_nmnist

    for s in samples:
        yield _finish(spec, read_nmnist(s.path), s)


def _iter_cifar10dvs(spec, samples):
    from eventkit.io.aedat2 import read_aedat2
    from eventkit.io.aedat4 import read_aedat4

    size = int(spec.layout.params.get("flip_size", 128))
    # the flip validates the raw addresses against (size, size, 2) and maps them onto the same
    # square, sorted: when that is the dataset's sensor, a second check would repeat the first
    flip_checks_sensor = (size, size, 2) == tuple(spec.sensor_size)
    for s in samples:
        if s.path.suffix == ".aedat4":
            ev = read_aedat4(s.path)  # a fresh array, sorted: shift it in place
            if ev.shape[0]:
                ev["t"] -= ev["t"][0]
            yield _finish(spec, ev, s)
            continue
        ev = cifar10dvs_flip(read_aedat2(s.path), size, name=f"{spec.name} sample {s.sample_id}")
        yield ev if flip_checks_sensor else _finish(spec, ev, s)


def _iter_dvsgesture(spec, samples):
    from eventkit.io.aedat31 import cut_gesture_samples, read_aedat31, read_gesture_labels

    for path, group in itertools.groupby(samples, key=lambda s: s.path):
        group = list(group)
        csv_path = path.with_name(path.stem + "_labels.csv")
        labels = read_gesture_labels(csv_path)
        for s in group:  # checked before the (large) recording is read
            if not 0 <= s.index < labels.shape[0]:
                raise EventFileError(csv_path, f"sample {s.sample_id}: row {s.index} not in the CSV "
                                               f"({labels.shape[0]} rows)")
            if int(labels["label"][s.index]) != s.label:
                raise EventFileError(csv_path, f"sample {s.sample_id}: row {s.index} has class "
                                               f"{int(labels['label'][s.index]) + 1}, the sample list says "
                                               f"{s.label + 1} (file changed since discovery?)")
        # one read per recording; only this group's rows are cut out of it
        cut = cut_gesture_samples(read_aedat31(path), labels, [s.index for s in group])
        for s, row in zip(group, cut):
            yield _finish(spec, row.events, s)


def _iter_hdf5_rows(spec, samples):
    from eventkit.io.shd import ShdFile

    for path, group in itertools.groupby(samples, key=lambda s: s.path):
        with ShdFile(path) as f:  # one open per file
            for s in group:
                if not 0 <= s.index < len(f):
                    raise EventFileError(path, f"sample {s.sample_id}: row {s.index} out of range ({len(f)} rows)")
                yield _finish(spec, f.read(s.index), s)


def ntidigits_split_and_row(sample: "Sample") -> tuple[str, int]:
    """(split, row) from an N-TIDIGITS sample id ``n-tidigits.hdf5#<split>/<row>``."""
    try:
        split, row = sample.sample_id.rsplit("#", 1)[1].split("/")
        return split, int(row)
    except (ValueError, IndexError):
        raise ParameterError(f"not an N-TIDIGITS sample id (want '<file>#<split>/<row>'): {sample.sample_id!r}") from None


def _iter_ntidigits(spec, samples):
    from eventkit.io.ntidigits import NTidigitsFile

    for path, group in itertools.groupby(samples, key=lambda s: s.path):
        with NTidigitsFile(path) as f:  # one open per file
            keys: dict[str, list[str]] = {}
            for s in group:
                split, row = ntidigits_split_and_row(s)
                if split not in keys:
                    keys[split] = f.keys(split)
                if not 0 <= row < len(keys[split]):
                    raise EventFileError(path, f"sample {s.sample_id}: row {row} not in /{split}_labels")
                yield _finish(spec, f.read(split, keys[split][row]), s)


_ITERS = {
    "nmnist": _iter_nmnist,
    "cifar10dvs": _iter_cifar10dvs,
    "dvsgesture": _iter_dvsgesture,
    "hdf5_rows": _iter_hdf5_rows,
    "ntidigits": _iter_ntidigits,
}


def iter_events(spec: "DatasetSpec", samples: Sequence["Sample"]) -> Iterator[np.ndarray]:
    """Events of each of ``samples`` in order (see the module docstring for the conventions)."""
    if spec.kind == "static":
        raise ParameterError(f"{spec.name} is a static image dataset: it has no events; use load_images / encode")
    return _ITERS[spec.layout.family](spec, list(samples))


def load_images(spec: "DatasetSpec", root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``[N, C, H, W]`` and int64 labels ``[N]`` of a static dataset split."""
    from eventkit.datasets.discovery import cifar10_folder, idx_files
    from eventkit.datasets.static import read_cifar10_bin, read_idx

    if spec.kind != "static":
        raise ParameterError(f"{spec.name} is an event dataset; load_images is for static datasets (mnist, ...)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise spec.not_found(root, f"data folder {root} does not exist")
    W, H, C = spec.sensor_size
    if spec.layout.family == "idx":
        ip, lp = idx_files(spec, root, split)
        images = read_idx(ip, expect_ndim=3)
        labels = read_idx(lp, expect_ndim=1).astype(np.int64)
        if images.dtype != np.uint8 or images.shape[1:] != (H, W):
            raise EventFileError(ip, f"expected uint8 images of {H}x{W}, got {images.dtype} {images.shape[1:]}")
        if images.shape[0] != labels.shape[0]:
            raise EventFileError(lp, f"{labels.shape[0]} labels for {images.shape[0]} images in {ip.name}")
        bad = np.flatnonzero((labels < 0) | (labels >= len(spec.classes)))
        if bad.size:
            i = int(bad[0])
            raise EventFileError(lp, f"label {int(labels[i])} of image {i} outside 0..{len(spec.classes) - 1}", 8 + i)
        images = images[:, None, :, :]
    else:
        folder = cifar10_folder(spec, root)
        files = [folder / n for n in spec.layout.params["files"][split]]
        present = [f for f in files if f.is_file()]
        if not present:
            raise spec.not_found(root, f"none of {', '.join(str(f) for f in files)} exists")
        images, labels = read_cifar10_bin(present)
    return np.ascontiguousarray(images), labels
