"""Datasets: specs read from ``data_manifests/*.toml``, raw-file discovery, split and
label rules, dataset conventions, checksums, safe extraction and static image readers.

>>> spec = get_dataset("nmnist")
>>> root = resolve_root("nmnist")            # --root, else $EVENTKIT_DATA/nmnist
>>> samples = spec.samples(root, "train")     # deterministic, ids relative to root
>>> for events in spec.iter_events(samples): ...
"""
from eventkit.datasets.discovery import Sample
from eventkit.datasets.extract import safe_extract
from eventkit.datasets.spec import Archive, DatasetSpec, Layout, get_dataset, list_datasets, resolve_root
from eventkit.datasets.verify import VerifyReport, verify_dataset

__all__ = [
    "Sample", "DatasetSpec", "Archive", "Layout", "get_dataset", "list_datasets", "resolve_root",
    "safe_extract", "verify_dataset", "VerifyReport",
]
