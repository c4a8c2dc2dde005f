"""What every dataset family module provides (:class:`Family`) and what it returns (:class:`Sample`).

A *family* is one raw layout shared by one or more datasets (``hdf5_rows``: SHD and SSC).
Its module in :mod:`eventkit.datasets.families` defines ``FAMILY = Family(...)`` with:

* ``discover(spec, root, split) -> list[Sample]``: the samples of a split in a
  deterministic order, ``sample_id`` = the raw file's path relative to ``root`` (POSIX),
  plus ``#<k>`` when one file holds several samples; :class:`DatasetNotFound` (with the
  download instructions, ``spec.not_found``) when nothing is found;
* ``iter_events(spec, samples)`` (event datasets): each sample's events, sorted by ``t``,
  dataset conventions applied, validated once by :func:`checked_events`;
* ``load_images(spec, root, split)`` (static datasets): uint8 ``[N, C, H, W]``, int64 ``[N]``;
* ``required_params``: the ``[layout]`` keys the family reads (checked when a manifest is parsed).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eventkit.events import validate_events

if TYPE_CHECKING:
    from eventkit.datasets.spec import DatasetSpec

__all__ = ["Sample", "Family", "checked_events", "relative_id", "trailing_index", "numeric_order"]


@dataclass(frozen=True)
class Sample:
    """One sample of a dataset split.

    ``sample_id``: raw file path relative to the dataset root (POSIX), plus ``#<k>``
    where one file holds several samples; ``path``: absolute path of the raw file;
    ``label``: 0-based class index; ``index``: sample index inside the file (-1: whole file).
    """

    sample_id: str
    path: Path
    label: int
    index: int = -1


Discover = Callable[["DatasetSpec", Path, str], list[Sample]]
IterEvents = Callable[["DatasetSpec", Sequence[Sample]], Iterator[np.ndarray]]
LoadImages = Callable[["DatasetSpec", Path, str], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Family:
    """One raw layout: how to find a split's samples and how to read them (see the module docstring)."""

    name: str
    discover: Discover
    iter_events: IterEvents | None = None
    load_images: LoadImages | None = None
    required_params: tuple[str, ...] = ()


def checked_events(spec: DatasetSpec, events: np.ndarray, sample: Sample) -> np.ndarray:
    """The one validation of a sample's events (sorted, inside the sensor), naming the sample."""
    return validate_events(events, spec.sensor_size, name=f"{spec.name} sample {sample.sample_id}")


def relative_id(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (the start of every ``sample_id``)."""
    return path.relative_to(root).as_posix()


_TRAILING_INT = re.compile(r"(\d+)$")


def trailing_index(stem: str) -> int | None:
    """The integer ending a file stem (``cifar10_cat_17`` -> 17), or None."""
    m = _TRAILING_INT.search(stem)
    return int(m.group(1)) if m else None


def numeric_order(p: Path) -> tuple[int, int, str]:
    """Sort key: all-digit stems by their number (``9.bin`` before ``10.bin``), then the rest by name."""
    i = trailing_index(p.stem)
    return (0, i, p.name) if i is not None and p.stem.isdigit() else (1, 0, p.name)
