"""``nmnist`` family: ``<Split>/<digit>/<id>.bin`` (ATIS 40-bit events); label = digit folder.

Order: label, then numeric id (``9.bin`` before ``10.bin``). Layout parameters:
``split_dirs`` (split -> folder), ``suffix`` (default ``.bin``).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eventkit.datasets.family import Family, Sample, checked_events, numeric_order, relative_id

if TYPE_CHECKING:
    from eventkit.datasets.spec import DatasetSpec


def discover(spec: DatasetSpec, root: Path, split: str) -> list[Sample]:
    params = spec.layout.params
    folder = root / params["split_dirs"][split]
    suffix = params.get("suffix", ".bin")
    if not folder.is_dir():
        raise spec.not_found(root, f"folder {folder} is missing (expected {spec.layout.description})")
    out: list[Sample] = []
    for label, cls in enumerate(spec.classes):
        d = folder / cls
        if not d.is_dir():
            continue
        files = sorted((f for f in d.iterdir() if f.suffix == suffix and f.is_file()), key=numeric_order)
        out += [Sample(relative_id(root, f), f, label) for f in files]
    if not out:
        raise spec.not_found(root, f"no <digit>/*{suffix} files under {folder}")
    return out


def iter_events(spec: DatasetSpec, samples: Sequence[Sample]) -> Iterator[np.ndarray]:
    from eventkit.io.nmnist import read_nmnist

    for s in samples:
        yield checked_events(spec, read_nmnist(s.path), s)


FAMILY = Family("nmnist", discover, iter_events=iter_events, required_params=("split_dirs",))
