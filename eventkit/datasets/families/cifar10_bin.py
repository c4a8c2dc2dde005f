"""``cifar10_bin`` family (CIFAR-10 binary version; static images): one sample per record, id ``<file>#<i>``.

Layout parameters: ``files`` (split -> batch file names), ``folder`` (default
``cifar-10-batches-bin``; the root may be that folder itself). Never the pickle version.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eventkit.datasets.family import Family, Sample, relative_id
from eventkit.errors import ImageFileError

if TYPE_CHECKING:
    from eventkit.datasets.spec import DatasetSpec


def cifar10_folder(spec: DatasetSpec, root: Path) -> Path:
    """``root/cifar-10-batches-bin`` or ``root`` itself when it holds the batch files."""
    folder = root / spec.layout.params.get("folder", "cifar-10-batches-bin")
    if folder.is_dir():
        return folder
    if (root / "test_batch.bin").is_file() or (root / "data_batch_1.bin").is_file():
        return root
    return folder


def _present_files(spec: DatasetSpec, root: Path, split: str) -> list[Path]:
    folder = cifar10_folder(spec, root)
    files = [folder / n for n in spec.layout.params["files"][split]]
    present = [f for f in files if f.is_file()]
    if not present:
        raise spec.not_found(root, f"none of {', '.join(str(f) for f in files)} exists")
    return present


def discover(spec: DatasetSpec, root: Path, split: str) -> list[Sample]:
    from eventkit.datasets.static import CIFAR10_RECORD_BYTES

    out: list[Sample] = []
    for f in _present_files(spec, root, split):
        size = f.stat().st_size
        if size == 0 or size % CIFAR10_RECORD_BYTES:
            raise ImageFileError(f, f"size {size} is not a multiple of the {CIFAR10_RECORD_BYTES}-byte record")
        with open(f, "rb") as fh:
            raw = np.frombuffer(fh.read(), np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
        rel = relative_id(root, f)
        out += [Sample(f"{rel}#{i}", f, int(v), i) for i, v in enumerate(raw[:, 0])]
    return out


def load_images(spec: DatasetSpec, root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    from eventkit.datasets.static import read_cifar10_bin

    return read_cifar10_bin(_present_files(spec, root, split))


FAMILY = Family("cifar10_bin", discover, load_images=load_images, required_params=("files",))
