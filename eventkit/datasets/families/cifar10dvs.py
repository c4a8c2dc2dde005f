"""``cifar10dvs`` family: ``<class>/cifar10_<class>_<i>.aedat[4]``; label = class folder.

Split by the number ``i`` ending the file name: ``i < test_index_below`` (100) is test,
else train. Conventions: AEDAT 2.0 (DVS128 addresses) ``x' = 127 - y``, ``y' = 127 - x``,
``p' = 1 - p`` (SpikingJelly's convention; without it the image is rotated and
mirrored), then stably sorted by ``t``. AEDAT 4 re-release: ``t - t0`` (timestamps are
absolute epoch µs), no flip.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eventkit.datasets.family import Family, Sample, checked_events, relative_id, trailing_index
from eventkit.events import sort_events, validate_events

if TYPE_CHECKING:
    from eventkit.datasets.spec import DatasetSpec

__all__ = ["FAMILY", "split_of_index", "cifar10dvs_flip"]


def split_of_index(i: int, test_index_below: int) -> str:
    """CIFAR10-DVS rule: file index ``i < test_index_below`` is test, else train."""
    return "test" if i < test_index_below else "train"


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


def discover(spec: DatasetSpec, root: Path, split: str) -> list[Sample]:
    params = spec.layout.params
    suffixes = tuple(params.get("suffixes", (".aedat",)))
    below = int(params.get("test_index_below", 100))
    out: list[Sample] = []
    any_folder = False
    for label, cls in enumerate(spec.classes):
        d = root / cls
        if not d.is_dir():
            continue
        any_folder = True
        found = []
        for f in d.iterdir():
            if f.suffix not in suffixes or not f.is_file():
                continue
            i = trailing_index(f.stem)
            if i is None or split_of_index(i, below) != split:
                continue
            found.append((i, f.suffix, f.name, f))
        found.sort(key=lambda r: r[:3])  # the name breaks ties: never the directory's listing order
        out += [Sample(relative_id(root, f), f, label) for *_, f in found]
    if not any_folder:
        raise spec.not_found(root, f"none of the class folders {', '.join(spec.classes)} is under {root}")
    if not out:
        raise spec.not_found(root, f"no {split} files (<class>/cifar10_<class>_<i>{suffixes[0]}) under {root}")
    return out


def iter_events(spec: DatasetSpec, samples: Sequence[Sample]) -> Iterator[np.ndarray]:
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
            yield checked_events(spec, ev, s)
            continue
        ev = cifar10dvs_flip(read_aedat2(s.path), size, name=f"{spec.name} sample {s.sample_id}")
        yield ev if flip_checks_sensor else checked_events(spec, ev, s)


FAMILY = Family("cifar10dvs", discover, iter_events=iter_events)
