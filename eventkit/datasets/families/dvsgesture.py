"""``dvsgesture`` family (DVS128 Gesture): recordings listed in ``DvsGesture/trials_to_<split>.txt``.

One sample per row ``k`` of ``<recording>_labels.csv``; label = class - 1; id
``...aedat#k``. Events: ``start <= t < end`` of the row, cut by
:func:`eventkit.io.aedat31.cut_gesture_samples` (only the rows asked for are copied);
timestamps stay absolute µs. Layout parameters: ``split_lists`` (split -> list file),
``folder`` (default ``DvsGesture``; the root may be that folder itself).
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


def _gesture_folder(spec: DatasetSpec, root: Path) -> Path:
    params = spec.layout.params
    folder = root / params.get("folder", "DvsGesture")
    lists = params["split_lists"]
    if (folder / lists["train"]).is_file() or (folder / lists["test"]).is_file():
        return folder
    if (root / lists["train"]).is_file() or (root / lists["test"]).is_file():
        return root  # root is the DvsGesture folder itself
    raise spec.not_found(root, f"neither {folder / lists['train']} nor {folder / lists['test']} exists")


def discover(spec: DatasetSpec, root: Path, split: str) -> list[Sample]:
    from eventkit.io.aedat31 import read_gesture_labels

    folder = _gesture_folder(spec, root)
    list_file = folder / spec.layout.params["split_lists"][split]
    if not list_file.is_file():
        raise spec.not_found(root, f"split list {list_file} is missing")
    try:
        text = list_file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RawFileError(list_file, f"split list is not UTF-8 text ({exc.reason} at byte {exc.start})",
                           offset=exc.start) from None
    names = sorted({ln.strip() for ln in text.splitlines() if ln.strip()})
    n_classes = len(spec.classes)
    out: list[Sample] = []
    for name in names:
        aedat = folder / name
        csv_path = folder / (Path(name).stem + "_labels.csv")
        if not aedat.is_file() or not csv_path.is_file():
            continue  # partial root: counted by `eventkit data verify`
        for k, label in enumerate(read_gesture_labels(csv_path)["label"].tolist()):
            if not 0 <= label < n_classes:
                raise RawFileError(csv_path, f"row {k}: class {label + 1} outside 1..{n_classes}")
            out.append(Sample(f"{relative_id(root, aedat)}#{k}", aedat, int(label), k))
    if not out:
        raise spec.not_found(root, f"none of the recordings listed in {list_file} (with its _labels.csv) is present")
    return out


def iter_events(spec: DatasetSpec, samples: Sequence[Sample]) -> Iterator[np.ndarray]:
    from eventkit.io.aedat31 import cut_gesture_samples, read_aedat31, read_gesture_labels

    for path, grouped in itertools.groupby(samples, key=lambda s: s.path):
        group = list(grouped)
        csv_path = path.with_name(path.stem + "_labels.csv")
        labels = read_gesture_labels(csv_path)
        for s in group:  # checked before the (large) recording is read
            if not 0 <= s.index < labels.shape[0]:
                raise RawFileError(csv_path, f"sample {s.sample_id}: row {s.index} not in the CSV "
                                             f"({labels.shape[0]} rows)")
            if int(labels["label"][s.index]) != s.label:
                raise RawFileError(csv_path, f"sample {s.sample_id}: row {s.index} has class "
                                             f"{int(labels['label'][s.index]) + 1}, the sample list says "
                                             f"{s.label + 1} (file changed since discovery?)")
        # one read per recording; only this group's rows are cut out of it
        cut = cut_gesture_samples(read_aedat31(path), labels, [s.index for s in group])
        for s, row in zip(group, cut, strict=True):
            yield checked_events(spec, row.events, s)


FAMILY = Family("dvsgesture", discover, iter_events=iter_events, required_params=("split_lists",))
