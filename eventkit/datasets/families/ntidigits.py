"""``ntidigits`` family (N-TIDIGITS18): row ``k`` of ``/<split>_labels`` in ``n-tidigits.hdf5``.

Only keys whose digit part is a single class symbol (isolated digits) are samples; id
``n-tidigits.hdf5#<split>/<k>``. Events: ``t = round(timestamps * 1e6)`` µs,
``x = addresses`` (channel), ``p = 0``. Layout parameter: ``file`` (default ``n-tidigits.hdf5``).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eventkit.datasets.family import Family, Sample, checked_events, relative_id
from eventkit.errors import ParameterError, RawFileError

if TYPE_CHECKING:
    from eventkit.datasets.spec import DatasetSpec

__all__ = ["FAMILY", "ntidigits_split_and_row"]


def discover(spec: DatasetSpec, root: Path, split: str) -> list[Sample]:
    from eventkit.io.ntidigits import NTidigitsFile, label_of_key

    path = root / spec.layout.params.get("file", "n-tidigits.hdf5")
    if not path.is_file():
        raise spec.not_found(root, f"file {path} is missing")
    with NTidigitsFile(path) as f:
        keys = f.keys(split)
    index = {c: i for i, c in enumerate(spec.classes)}
    rel = relative_id(root, path)
    out = [Sample(f"{rel}#{split}/{k}", path, index[label_of_key(key)], k)
           for k, key in enumerate(keys) if label_of_key(key) in index]
    if not out:
        raise spec.not_found(root, f"{path} holds no isolated-digit {split} utterance")
    return out


def ntidigits_split_and_row(sample: Sample) -> tuple[str, int]:
    """(split, row) from an N-TIDIGITS sample id ``n-tidigits.hdf5#<split>/<row>``."""
    try:
        split, row = sample.sample_id.rsplit("#", 1)[1].split("/")
        return split, int(row)
    except (ValueError, IndexError):
        raise ParameterError(
            f"not an N-TIDIGITS sample id (want '<file>#<split>/<row>'): {sample.sample_id!r}") from None


def iter_events(spec: DatasetSpec, samples: Sequence[Sample]) -> Iterator[np.ndarray]:
    from eventkit.io.ntidigits import NTidigitsFile

    for path, group in itertools.groupby(samples, key=lambda s: s.path):
        with NTidigitsFile(path) as f:  # one open per file
            keys: dict[str, list[str]] = {}
            for s in group:
                split, row = ntidigits_split_and_row(s)
                if split not in keys:
                    keys[split] = f.keys(split)
                if not 0 <= row < len(keys[split]):
                    raise RawFileError(path, f"sample {s.sample_id}: row {row} not in /{split}_labels")
                yield checked_events(spec, f.read(split, keys[split][row]), s)


FAMILY = Family("ntidigits", discover, iter_events=iter_events)
