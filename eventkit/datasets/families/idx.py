"""``idx`` family (MNIST, Fashion-MNIST; static images): one sample per image, id ``<file>#<i>``.

Layout parameters: ``images`` and ``labels`` (split -> IDX file name; the ``.gz`` as
downloaded or the unpacked file). Images: uint8 ``[N, 1, H, W]``; labels int64 ``[N]``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eventkit.datasets.family import Family, Sample, relative_id
from eventkit.errors import ImageFileError

if TYPE_CHECKING:
    from eventkit.datasets.spec import DatasetSpec


def idx_files(spec: DatasetSpec, root: Path, split: str) -> tuple[Path, Path]:
    """The (images, labels) IDX files of a split (``.gz`` or not), or the dataset's not-found error."""
    from eventkit.datasets.static import find_idx_file

    params = spec.layout.params
    images = find_idx_file(root, params["images"][split])
    labels = find_idx_file(root, params["labels"][split])
    if images is None or labels is None:
        missing = params["images"][split] if images is None else params["labels"][split]
        raise spec.not_found(root, f"{root / missing}[.gz] is missing")
    return images, labels


def discover(spec: DatasetSpec, root: Path, split: str) -> list[Sample]:
    from eventkit.datasets.static import read_idx

    images, labels = idx_files(spec, root, split)
    lab = read_idx(labels, expect_ndim=1)
    if lab.shape[0] == 0:
        raise spec.not_found(root, f"{labels} holds no labels")
    rel = relative_id(root, images)
    return [Sample(f"{rel}#{i}", images, int(v), i) for i, v in enumerate(lab)]


def load_images(spec: DatasetSpec, root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    from eventkit.datasets.static import read_idx

    W, H, _ = spec.sensor_size
    ip, lp = idx_files(spec, root, split)
    images = read_idx(ip, expect_ndim=3)
    labels = read_idx(lp, expect_ndim=1).astype(np.int64)
    if images.dtype != np.uint8 or images.shape[1:] != (H, W):
        raise ImageFileError(ip, f"expected uint8 images of {H}x{W}, got {images.dtype} {images.shape[1:]}")
    if images.shape[0] != labels.shape[0]:
        raise ImageFileError(lp, f"{labels.shape[0]} labels for {images.shape[0]} images in {ip.name}")
    bad = np.flatnonzero((labels < 0) | (labels >= len(spec.classes)))
    if bad.size:
        i = int(bad[0])
        raise ImageFileError(lp, f"label {int(labels[i])} of image {i} outside 0..{len(spec.classes) - 1}", 8 + i)
    return images[:, None, :, :], labels


FAMILY = Family("idx", discover, load_images=load_images, required_params=("images", "labels"))
