"""Datasets: specs read from ``data_manifests/*.toml`` (pure data), one module per raw layout
family (discovery, label and split rules, conventions), free functions to find and read
samples, checksums, downloads, safe extraction and static image readers.

>>> spec = get_dataset("nmnist")
>>> root = resolve_root("nmnist")                  # --root, else $EVENTKIT_DATA/nmnist
>>> samples = list_samples(spec, root, "train")    # deterministic, ids relative to root
>>> for events in iter_events(spec, samples): ...

Modules, upstream first: ``spec`` (data) ← ``family`` (Sample, Family) ← ``families/*`` ←
``registry`` ← ``manifest`` ← ``access`` (the functions) ← ``verify``, ``fetch``.
"""
from eventkit.datasets.access import (
    Dataset,
    get_dataset,
    iter_events,
    list_datasets,
    list_samples,
    load_events,
    load_images,
    resolve_root,
    synthetic_note,
)
from eventkit.datasets.extract import safe_extract
from eventkit.datasets.family import Family, Sample
from eventkit.datasets.spec import Archive, DatasetSpec, Layout
from eventkit.datasets.verify import RawDataReport, VerifyReport, verify_dataset

__all__ = [
    "Sample", "DatasetSpec", "Dataset", "Archive", "Layout", "Family",
    "get_dataset", "list_datasets", "resolve_root", "list_samples", "iter_events", "load_events", "load_images",
    "synthetic_note", "safe_extract", "verify_dataset", "RawDataReport", "VerifyReport",
]
