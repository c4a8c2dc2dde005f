"""Free functions to find and read a dataset: the API over specs, families and data folders.

>>> spec = get_dataset("nmnist")
>>> root = resolve_root("nmnist")                  # --root, else $EVENTKIT_DATA/nmnist
>>> samples = list_samples(spec, root, "train")    # deterministic, ids relative to root
>>> for events in iter_events(spec, samples): ...

:func:`get_dataset` returns a :class:`Dataset`: the :class:`DatasetSpec` with these
functions as methods too (``spec.samples(root, split)``, ``spec.iter_events(samples)``,
``spec.load_events(sample)``, ``spec.load_images(root, split)``), for code written
against the earlier API.

A data folder that holds a ``SYNTHETIC.txt`` file (written by
:func:`eventkit.datasets.synthetic.make_synthetic_nmnist_root`) holds generated data, not
recordings: :func:`list_samples` says so once per folder and process, in one log line
(logger ``eventkit.datasets``, level WARNING).
"""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from eventkit.datasets.family import Sample
from eventkit.datasets.manifest import manifest_names, read_manifest
from eventkit.datasets.registry import get_family
from eventkit.datasets.spec import ENV_DATA, DatasetSpec
from eventkit.datasets.synthetic import SYNTHETIC_MARKER
from eventkit.errors import ParameterError

__all__ = [
    "Dataset", "get_dataset", "list_datasets", "resolve_root", "list_samples", "iter_events", "load_events",
    "load_images", "synthetic_note", "SYNTHETIC_MARKER",
]

_log = logging.getLogger("eventkit.datasets")
_said_synthetic: set[str] = set()  # data folders already announced as synthetic in this process


def list_datasets() -> list[str]:
    """Names of the datasets with a manifest, sorted."""
    return manifest_names()


@functools.cache
def get_dataset(name: str) -> Dataset:
    """The spec of ``name`` (e.g. ``"nmnist"``) read from its manifest; ParameterError for an unknown name."""
    return _dataset(read_manifest(name))


def _dataset(spec: DatasetSpec) -> Dataset:
    if isinstance(spec, Dataset):
        return spec
    return Dataset(**{f.name: getattr(spec, f.name) for f in fields(spec)})


def resolve_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """Raw-data folder of ``name``: ``root`` when given, else ``$EVENTKIT_DATA/<name>``.

    Raises :class:`DatasetNotFound` with the download instructions when the folder is
    absent (or neither ``root`` nor ``$EVENTKIT_DATA`` is set). Contents are checked by
    :func:`list_samples` and ``eventkit data verify``.
    """
    spec = read_manifest(name)
    if root is None:
        env = os.environ.get(ENV_DATA)
        if not env:
            raise spec.not_found(
                None,
                f"no data folder given: pass --root DIR or set {ENV_DATA} so that ${ENV_DATA}/{name} holds the data")
        path = Path(env).expanduser() / name
        how = f"${ENV_DATA}/{name}"
    else:
        path = Path(root).expanduser()
        how = "--root"
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise spec.not_found(path, f"data folder {path} ({how}) {what}")
    return path.absolute()


def synthetic_note(root: str | os.PathLike) -> str | None:
    """The first line of ``root/SYNTHETIC.txt`` when the folder holds generated data, else None."""
    marker = Path(root) / SYNTHETIC_MARKER
    if not marker.is_file():
        return None
    lines = marker.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[0] if lines else "generated data, not recordings"


def list_samples(spec: DatasetSpec, root: str | os.PathLike, split: str) -> list[Sample]:
    """Samples of ``split`` under ``root`` in a deterministic order (ids relative to ``root``).

    Raises :class:`DatasetNotFound` (with download instructions) when nothing is found.
    """
    spec.check_split(split)
    path = Path(root).expanduser()
    if not path.is_dir():
        raise spec.not_found(path, f"data folder {path} does not exist")
    path = path.absolute()
    note = synthetic_note(path)
    if note is not None and str(path) not in _said_synthetic:
        _said_synthetic.add(str(path))
        _log.warning("synthetic data: %s (%s)", path, note)
    return get_family(spec.layout.family).discover(spec, path, split)


def iter_events(spec: DatasetSpec, samples: Sequence[Sample]) -> Iterator[np.ndarray]:
    """Events of each sample in order: sorted by t, validated against ``sensor_size``, dataset
    conventions applied (see the family modules); files are kept open across consecutive
    samples of one file. An invalid event raises :class:`InvalidEventsError` naming the sample."""
    family = get_family(spec.layout.family)
    if family.iter_events is None:
        raise ParameterError(f"{spec.name} is a static image dataset: it has no events; use load_images / encode")
    return family.iter_events(spec, list(samples))


def load_events(spec: DatasetSpec, sample: Sample) -> np.ndarray:
    """Events of one sample (see :func:`iter_events`)."""
    return next(iter(iter_events(spec, [sample])))


def load_images(spec: DatasetSpec, root: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Static datasets: (uint8 images ``[N, C, H, W]``, int64 labels ``[N]``) of ``split``."""
    family = get_family(spec.layout.family)
    if family.load_images is None:
        raise ParameterError(f"{spec.name} is an event dataset; load_images is for static datasets (mnist, ...)")
    spec.check_split(split)
    path = Path(root).expanduser()
    if not path.is_dir():
        raise spec.not_found(path, f"data folder {path} does not exist")
    images, labels = family.load_images(spec, path, split)
    return np.ascontiguousarray(images), labels


@dataclass(frozen=True)
class Dataset(DatasetSpec):
    """A :class:`DatasetSpec` (what :func:`get_dataset` returns) with the access functions as methods."""

    def samples(self, root: str | os.PathLike, split: str) -> list[Sample]:
        """:func:`list_samples` of this dataset."""
        return list_samples(self, root, split)

    def iter_events(self, samples: Sequence[Sample]) -> Iterator[np.ndarray]:
        """:func:`iter_events` of this dataset."""
        return iter_events(self, samples)

    def load_events(self, sample: Sample) -> np.ndarray:
        """:func:`load_events` of this dataset."""
        return load_events(self, sample)

    def load_images(self, root: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
        """:func:`load_images` of this dataset."""
        return load_images(self, root, split)
