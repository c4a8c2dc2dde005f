"""``hdf5_rows`` family (SHD, SSC): one sample per row ``k`` of ``<file>.h5``; label = ``/labels[k]``.

Events of row ``k``: ``t = round(times[k] * 1e6)`` µs, ``x = units[k]``, ``p = 0``.
Layout parameter: ``files`` (split -> file name).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eventkit.datasets.family import Family, Sample, checked_events, relative_id
from eventkit.errors import RawFileError

if TYPE_CHECKING:
    from eventkit.datasets.spec import DatasetSpec


def discover(spec: DatasetSpec, root: Path, split: str) -> list[Sample]:
    from eventkit.io.shd import ShdFile

    path = root / spec.layout.params["files"][split]
    if not path.is_file():
        raise spec.not_found(root, f"file {path} is missing")
    expected = spec.expected_count(split)
    with ShdFile(path, max_rows=2 * expected if expected else None) as f:  # no more rows than the manifest allows
        labels = f.labels
    bad = np.flatnonzero((labels < 0) | (labels >= len(spec.classes)))
    if bad.size:
        k = int(bad[0])
        raise RawFileError(path, f"/labels[{k}] = {int(labels[k])} outside 0..{len(spec.classes) - 1}")
    if labels.shape[0] == 0:
        raise spec.not_found(root, f"{path} holds no samples")
    rel = relative_id(root, path)
    return [Sample(f"{rel}#{k}", path, int(labels[k]), k) for k in range(labels.shape[0])]


def iter_events(spec: DatasetSpec, samples: Sequence[Sample]) -> Iterator[np.ndarray]:
    from eventkit.io.shd import ShdFile

    for path, group in itertools.groupby(samples, key=lambda s: s.path):
        with ShdFile(path) as f:  # one open per file
            for s in group:
                if not 0 <= s.index < len(f):
                    raise RawFileError(path, f"sample {s.sample_id}: row {s.index} out of range ({len(f)} rows)")
                yield checked_events(spec, f.read(s.index), s)


FAMILY = Family("hdf5_rows", discover, iter_events=iter_events, required_params=("files",))
