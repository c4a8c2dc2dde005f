"""Raw-file discovery, label and split rules of each dataset family.

Every function returns the samples of one split in a deterministic order, with
``sample_id`` = the raw file's path relative to the root (POSIX), plus ``#<k>`` when
one file holds several samples. Rules (see the manifests and docs/datasets.md):

* ``nmnist``: ``<Split>/<digit>/<id>.bin``; label = digit folder; order: label, numeric id.
* ``cifar10dvs``: ``<class>/cifar10_<class>_<i>.aedat[4]``; label = class folder;
  split by the number ``i`` ending the file name: ``i < 100`` test, else train.
* ``dvsgesture``: recordings listed in ``DvsGesture/trials_to_<split>.txt``; one sample
  per row ``k`` of ``<recording>_labels.csv``; label = class - 1; id ``...aedat#k``.
* ``hdf5_rows`` (SHD, SSC): one sample per row ``k`` of ``<file>.h5``; label = ``/labels[k]``.
* ``ntidigits``: row ``k`` of ``/<split>_labels`` whose digit part is a single class
  symbol; id ``n-tidigits.hdf5#<split>/<k>``.
* ``idx`` / ``cifar10_bin`` (static): one sample per image; id ``<file>#<i>``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from eventkit.errors import EventFileError

if TYPE_CHECKING:
    from eventkit.datasets.spec import DatasetSpec

__all__ = ["Sample", "discover", "split_of_index", "trailing_index"]


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


_TRAILING_INT = re.compile(r"(\d+)$")


def trailing_index(stem: str) -> int | None:
    """The integer ending a file stem (``cifar10_cat_17`` -> 17), or None."""
    m = _TRAILING_INT.search(stem)
    return int(m.group(1)) if m else None


def split_of_index(i: int, test_index_below: int) -> str:
    """CIFAR10-DVS rule: file index ``i < test_index_below`` is test, else train."""
    return "test" if i < test_index_below else "train"


def _num_key(p: Path) -> tuple[int, int, str]:
    i = trailing_index(p.stem)
    return (0, i, p.name) if i is not None and p.stem.isdigit() else (1, 0, p.name)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _nmnist(spec: "DatasetSpec", root: Path, split: str) -> list[Sample]:
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
        files = sorted((f for f in d.iterdir() if f.suffix == suffix and f.is_file()), key=_num_key)
        out += [Sample(_rel(root, f), f, label) for f in files]
    if not out:
        raise spec.not_found(root, f"no <digit>/*{suffix} files under {folder}")
    return out


def _cifar10dvs(spec: "DatasetSpec", root: Path, split: str) -> list[Sample]:
    params = spec.layout.params
    suffixes = tuple(params.get("suffixes", (".aedat",)))
    below = int(params.get("test_index_below", 100))
    out: list[Sample] = []
    any_folder = False
    for label, cls in enumerate(spec.classes):
        d = root / cls
        if not d.is_dir():
            continue
        any_folder = True
        found = []
        for f in d.iterdir():
            if f.suffix not in suffixes or not f.is_file():
                continue
            i = trailing_index(f.stem)
            if i is None or split_of_index(i, below) != split:
                continue
            found.append((i, f.suffix, f.name, f))
        found.sort(key=lambda r: r[:3])  # the name breaks ties: never the directory's listing order
        out += [Sample(_rel(root, f), f, label) for *_, f in found]
    if not any_folder:
        raise spec.not_found(root, f"none of the class folders {', '.join(spec.classes)} is under {root}")
    if not out:
        raise spec.not_found(root, f"no {split} files (<class>/cifar10_<class>_<i>{suffixes[0]}) under {root}")
    return out


def _gesture_folder(spec: "DatasetSpec", root: Path) -> Path:
    params = spec.layout.params
    folder = root / params.get("folder", "DvsGesture")
    lists = params["split_lists"]
    if (folder / lists["train"]).is_file() or (folder / lists["test"]).is_file():
        return folder
    if (root / lists["train"]).is_file() or (root / lists["test"]).is_file():
        return root  # root is the DvsGesture folder itself
    raise spec.not_found(root, f"neither {folder / lists['train']} nor {folder / lists['test']} exists")


def _dvsgesture(spec: "DatasetSpec", root: Path, split: str) -> list[Sample]:
    from eventkit.io.aedat31 import read_gesture_labels

    folder = _gesture_folder(spec, root)
    list_file = folder / spec.layout.params["split_lists"][split]
    if not list_file.is_file():
        raise spec.not_found(root, f"split list {list_file} is missing")
    try:
        text = list_file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventFileError(list_file, f"split list is not UTF-8 text ({exc.reason} at byte {exc.start})",
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
                raise EventFileError(csv_path, f"row {k}: class {label + 1} outside 1..{n_classes}")
            out.append(Sample(f"{_rel(root, aedat)}#{k}", aedat, int(label), k))
    if not out:
        raise spec.not_found(root, f"none of the recordings listed in {list_file} (with its _labels.csv) is present")
    return out


def _hdf5_rows(spec: "DatasetSpec", root: Path, split: str) -> list[Sample]:
    from eventkit.io.shd import ShdFile

    path = root / spec.layout.params["files"][split]
    if not path.is_file():
        raise spec.not_found(root, f"file {path} is missing")
    expected = spec.expected_count(split)
    with ShdFile(path, max_rows=2 * expected if expected else None) as f:  # no more rows than the manifest allows
        labels = f.labels
    bad = np.flatnonzero((labels < 0) | (labels >= len(spec.classes)))
    if bad.size:
        k = int(bad[0])
        raise EventFileError(path, f"/labels[{k}] = {int(labels[k])} outside 0..{len(spec.classes) - 1}")
    if labels.shape[0] == 0:
        raise spec.not_found(root, f"{path} holds no samples")
    rel = _rel(root, path)
    return [Sample(f"{rel}#{k}", path, int(labels[k]), k) for k in range(labels.shape[0])]


def _ntidigits(spec: "DatasetSpec", root: Path, split: str) -> list[Sample]:
    from eventkit.io.ntidigits import NTidigitsFile, label_of_key

    path = root / spec.layout.params.get("file", "n-tidigits.hdf5")
    if not path.is_file():
        raise spec.not_found(root, f"file {path} is missing")
    with NTidigitsFile(path) as f:
        keys = f.keys(split)
    index = {c: i for i, c in enumerate(spec.classes)}
    rel = _rel(root, path)
    out = [Sample(f"{rel}#{split}/{k}", path, index[label_of_key(key)], k)
           for k, key in enumerate(keys) if label_of_key(key) in index]
    if not out:
        raise spec.not_found(root, f"{path} holds no isolated-digit {split} utterance")
    return out


def idx_files(spec: "DatasetSpec", root: Path, split: str) -> tuple[Path, Path]:
    """The (images, labels) IDX files of a split (``.gz`` or not), or the dataset's not-found error."""
    from eventkit.datasets.static import find_idx_file

    params = spec.layout.params
    images = find_idx_file(root, params["images"][split])
    labels = find_idx_file(root, params["labels"][split])
    if images is None or labels is None:
        missing = params["images"][split] if images is None else params["labels"][split]
        raise spec.not_found(root, f"{root / missing}[.gz] is missing")
    return images, labels


def _idx(spec: "DatasetSpec", root: Path, split: str) -> list[Sample]:
    from eventkit.datasets.static import read_idx

    images, labels = idx_files(spec, root, split)
    lab = read_idx(labels, expect_ndim=1)
    if lab.shape[0] == 0:
        raise spec.not_found(root, f"{labels} holds no labels")
    rel = _rel(root, images)
    return [Sample(f"{rel}#{i}", images, int(v), i) for i, v in enumerate(lab)]


def cifar10_folder(spec: "DatasetSpec", root: Path) -> Path:
    """``root/cifar-10-batches-bin`` or ``root`` itself when it holds the batch files."""
    folder = root / spec.layout.params.get("folder", "cifar-10-batches-bin")
    if folder.is_dir():
        return folder
    if (root / "test_batch.bin").is_file() or (root / "data_batch_1.bin").is_file():
        return root
    return folder


def _cifar10_bin(spec: "DatasetSpec", root: Path, split: str) -> list[Sample]:
    from eventkit.datasets.static import CIFAR10_RECORD_BYTES

    folder = cifar10_folder(spec, root)
    files = [folder / n for n in spec.layout.params["files"][split]]
    present = [f for f in files if f.is_file()]
    if not present:
        raise spec.not_found(root, f"none of {', '.join(str(f) for f in files)} exists")
    out: list[Sample] = []
    for f in present:
        size = f.stat().st_size
        if size == 0 or size % CIFAR10_RECORD_BYTES:
            raise EventFileError(f, f"size {size} is not a multiple of the {CIFAR10_RECORD_BYTES}-byte record")
        with open(f, "rb") as fh:
            raw = np.frombuffer(fh.read(), np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
        rel = _rel(root, f)
        out += [Sample(f"{rel}#{i}", f, int(v), i) for i, v in enumerate(raw[:, 0])]
    return out


_FAMILIES: dict[str, Callable[["DatasetSpec", Path, str], list[Sample]]] = {
    "nmnist": _nmnist,
    "cifar10dvs": _cifar10dvs,
    "dvsgesture": _dvsgesture,
    "hdf5_rows": _hdf5_rows,
    "ntidigits": _ntidigits,
    "idx": _idx,
    "cifar10_bin": _cifar10_bin,
}


def discover(spec: "DatasetSpec", root: Path, split: str) -> list[Sample]:
    """Samples of ``split`` under ``root`` by the rule of ``spec.layout.family`` (deterministic order)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise spec.not_found(root, f"data folder {root} does not exist")
    return _FAMILIES[spec.layout.family](spec, root.absolute(), split)
