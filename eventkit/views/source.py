"""What ``eventkit show`` draws: an event file, or sample ``i`` of a dataset (``nmnist:3``)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from eventkit.errors import DatasetNotFound, ParameterError
from eventkit.events import is_audio, polarity_index

__all__ = ["LoadedSample", "load_sample", "infer_sensor_size", "sorted_events"]


class LoadedSample(NamedTuple):
    """The events, their ``sensor_size``, whether they are audio, a title for the picture, and
    (dataset samples) the dataset split and the sample's id."""

    events: np.ndarray
    sensor_size: tuple[int, int, int]
    audio: bool
    title: str
    split: str | None = None
    sample_id: str | None = None


def infer_sensor_size(events: np.ndarray) -> tuple[int, int, int]:
    """The smallest sensor holding the events: ``(max x + 1, max y + 1, max(2, max p + 1))``;
    audio ``(max x + 1, 1, max p + 1)``."""
    if events.shape[0] == 0:
        raise ParameterError("no events: pass --sensor W,H,P to draw an empty recording")
    p = int(polarity_index(events["p"]).max()) + 1
    if is_audio(events):
        return int(events["x"].max()) + 1, 1, p
    return int(events["x"].max()) + 1, int(events["y"].max()) + 1, max(2, p)


def _split_ref(ref: str) -> tuple[str, int | None]:
    head, sep, tail = ref.rpartition(":")
    if sep and tail.isdigit() and not Path(ref).exists():
        return head, int(tail)
    return ref, None


def load_sample(ref: str, *, root: str | os.PathLike | None = None, split: str = "train",
                sensor_size: Sequence[int] | None = None) -> LoadedSample:
    """``ref`` is an event file (any format :func:`eventkit.read_events` reads) or a dataset
    name with an optional sample index, ``NAME[:index]`` (default 0, in ``split``, raw data
    under ``root`` or ``$EVENTKIT_DATA/NAME``). A file's sensor is ``sensor_size`` or the
    smallest one holding its events; a dataset's is its manifest's."""
    from eventkit.datasets import get_dataset, list_datasets, resolve_root

    name, index = _split_ref(str(ref))
    path = Path(name)
    if path.is_file():
        if index is not None:
            raise ParameterError(f"{ref}: an index selects a sample of a dataset, not of a file")
        from eventkit.io import read_events

        events = read_events(path)
        sensor = tuple(int(v) for v in sensor_size) if sensor_size is not None else infer_sensor_size(events)
        return LoadedSample(events, sensor, is_audio(events), path.name)  # type: ignore[arg-type]
    if name.lower() not in list_datasets():
        raise ParameterError(f"{ref}: neither an event file nor a dataset name "
                             f"(datasets: {', '.join(list_datasets())})")
    spec = get_dataset(name.lower())
    if spec.kind not in ("vision", "audio"):
        raise ParameterError(f"{name}: a {spec.kind} dataset has no events to show")
    samples = spec.samples(resolve_root(spec.name, root), split)
    i = 0 if index is None else index
    if not samples:
        raise DatasetNotFound(f"{spec.name}: no {split} samples found")
    if i >= len(samples):
        raise ParameterError(f"{ref}: index {i} is past the last {split} sample ({len(samples) - 1})")
    sample = samples[i]
    events = spec.load_events(sample)
    title = f"{spec.name} {split}[{i}] · {spec.label_name(sample.label)}"
    return LoadedSample(events, tuple(spec.sensor_size), spec.kind == "audio", title,  # type: ignore[arg-type]
                        split, sample.sample_id)


def sorted_events(sample: LoadedSample, sort: bool) -> np.ndarray:
    """The sample's events, stably sorted by ``t`` when ``sort``."""
    from eventkit.events import sort_events

    return sort_events(sample.events) if sort else sample.events
