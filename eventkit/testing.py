"""Writers of small datasets in the releases' exact raw layouts (tests, benchmarks, demos).

Every ``make_<name>_root(dst, ...)`` writes random but realistic samples (sorted
timestamps, events inside the sensor, labels cycling over the classes) with the
format writers of :mod:`eventkit.io` (static images with :mod:`eventkit.datasets.static`)
and returns the root, which ``get_dataset(name).samples(root, split)`` then reads.
Everything is deterministic for a given ``seed``.

:func:`make_release_archives` packs such a root the way the release's archives are packed
(for the download tests). :func:`arrange_nmnist_small` lays the 1000 real N-MNIST samples of slayerPytorch's
``NMNISTsmall`` (``../shared/data/nmnist/NMNISTsmall``) out in the N-MNIST release layout.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from eventkit.errors import DatasetNotFound, EventFileError, ParameterError
from eventkit.events import make_audio_events, make_events

__all__ = [
    "random_vision_events", "random_audio_events",
    "make_nmnist_root", "make_cifar10dvs_root", "make_dvsgesture_root", "make_shd_root", "make_ssc_root",
    "make_ntidigits18_root", "make_mnist_root", "make_fashionmnist_root", "make_cifar10_root",
    "arrange_nmnist_small", "read_nmnist_small_labels", "make_release_archives", "GESTURE_CLASS_ROWS",
]

# class column of a DVS128 Gesture labels CSV as in the real files: 1..11, arm roll (8) twice
GESTURE_CLASS_ROWS = (1, 2, 3, 5, 4, 6, 7, 8, 8, 9, 10, 11)


def random_vision_events(rng: np.random.Generator, n: int, width: int, height: int,
                         t_start: int = 0, t_stop: int = 300_000) -> np.ndarray:
    """``n`` vision events, t uniform in ``[t_start, t_stop)`` µs sorted, x < width, y < height, p in {0, 1}."""
    t = np.sort(rng.integers(t_start, t_stop, n, dtype=np.int64))
    return make_events(t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))


def random_audio_events(rng: np.random.Generator, n: int, channels: int, t_stop: int) -> np.ndarray:
    """``n`` audio events, t uniform in ``[0, t_stop)`` µs sorted, x < channels, p = 0."""
    t = np.sort(rng.integers(0, t_stop, n, dtype=np.int64))
    return make_audio_events(t, rng.integers(0, channels, n), 0)


def _spec(name: str):
    from eventkit.datasets import get_dataset

    return get_dataset(name)


def make_nmnist_root(dst: str | PathLike, *, per_class_train: int = 2, per_class_test: int = 1,
                     seed: int = 0, events: tuple[int, int] = (50, 200)) -> Path:
    """N-MNIST layout ``Train/<digit>/<id:05d>.bin`` / ``Test/<digit>/<id:05d>.bin`` (ATIS 40-bit files).

    ``per_class_*`` files per digit, ``events`` = (min, max) events per file, t < 300 ms.
    """
    from eventkit.io.nmnist import write_nmnist

    rng = np.random.default_rng(seed)
    root = Path(dst)
    W, H, _ = _spec("nmnist").sensor_size
    for folder, per_class in (("Train", per_class_train), ("Test", per_class_test)):
        next_id = 1
        for digit in range(10):
            d = root / folder / str(digit)
            d.mkdir(parents=True, exist_ok=True)
            for _ in range(per_class):
                n = int(rng.integers(events[0], events[1] + 1))
                write_nmnist(d / f"{next_id:05d}.bin", random_vision_events(rng, n, W, H))
                next_id += 1
    return root


def make_cifar10dvs_root(dst: str | PathLike, *, per_class_train: int = 2, per_class_test: int = 1,
                         seed: int = 0, events: tuple[int, int] = (100, 300)) -> Path:
    """CIFAR10-DVS original layout ``<class>/cifar10_<class>_<i>.aedat`` (AEDAT 2.0, raw DVS128 addresses).

    Test files get indices ``0..per_class_test-1`` (< 100), train files ``100, 101, ...``,
    so the dataset's index rule puts them in the intended split.
    """
    from eventkit.io.aedat2 import write_aedat2

    if not 0 <= per_class_test <= 100 or not 0 <= per_class_train <= 900:
        raise ParameterError(f"per_class_test must be in 0..100 and per_class_train in 0..900, "
                             f"got {per_class_test}, {per_class_train}")
    rng = np.random.default_rng(seed)
    root = Path(dst)
    spec = _spec("cifar10dvs")
    for cls in spec.classes:
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in list(range(per_class_test)) + list(range(100, 100 + per_class_train)):
            n = int(rng.integers(events[0], events[1] + 1))
            t0 = int(rng.integers(0, 5_000_000))
            write_aedat2(d / f"cifar10_{cls}_{i}.aedat", random_vision_events(rng, n, 128, 128, t0, t0 + 1_300_000))
    return root


def make_dvsgesture_root(dst: str | PathLike, *, train_trials: Sequence[str] = ("user01_natural", "user02_led"),
                         test_trials: Sequence[str] = ("user24_lab",), events_per_gesture: int = 30,
                         seed: int = 0) -> Path:
    """DVS128 Gesture layout: ``DvsGesture/<trial>.aedat`` (AEDAT 3.1) + ``<trial>_labels.csv``
    + ``trials_to_train.txt`` / ``trials_to_test.txt``.

    Each recording holds 12 labelled windows (classes :data:`GESTURE_CLASS_ROWS`, arm roll
    twice) with absolute times starting after a few seconds, ``events_per_gesture`` events
    inside each window and a few events between windows (outside every sample).
    """
    from eventkit.io.aedat31 import write_aedat31, write_gesture_labels

    rng = np.random.default_rng(seed)
    folder = Path(dst) / "DvsGesture"
    folder.mkdir(parents=True, exist_ok=True)
    for trials, list_name in ((train_trials, "trials_to_train.txt"), (test_trials, "trials_to_test.txt")):
        for trial in trials:
            start = int(rng.integers(2_000_000, 6_000_000))
            starts, ends, parts = [], [], []
            for _ in GESTURE_CLASS_ROWS:
                length = int(rng.integers(1_500_000, 3_000_000))
                starts.append(start)
                ends.append(start + length)
                parts.append(random_vision_events(rng, events_per_gesture, 128, 128, start, start + length))
                gap = int(rng.integers(200_000, 1_000_000))
                parts.append(random_vision_events(rng, 3, 128, 128, start + length, start + length + gap))
                start += length + gap
            ev = np.concatenate(parts)
            ev = ev[np.argsort(ev["t"], kind="stable")]
            write_aedat31(folder / f"{trial}.aedat", ev)
            write_gesture_labels(folder / f"{trial}_labels.csv", GESTURE_CLASS_ROWS, starts, ends)
        (folder / list_name).write_text("".join(f"{t}.aedat\n" for t in trials))
    return Path(dst)


def _hdf5_rows_root(name: str, dst: str | PathLike, n_per_split: dict[str, int], seed: int,
                    events: tuple[int, int]) -> Path:
    from eventkit.io.shd import write_shd

    rng = np.random.default_rng(seed)
    spec = _spec(name)
    root = Path(dst)
    root.mkdir(parents=True, exist_ok=True)
    C = spec.sensor_size[0]
    for split, n in n_per_split.items():
        samples = [random_audio_events(rng, int(rng.integers(events[0], events[1] + 1)), C, spec.duration_us)
                   for _ in range(n)]
        labels = [(i * 7 + len(split)) % len(spec.classes) for i in range(n)]
        write_shd(root / spec.layout.params["files"][split], samples, labels, keys=list(spec.classes))
    return root


def make_shd_root(dst: str | PathLike, *, n_train: int = 6, n_test: int = 4, seed: int = 0,
                  events: tuple[int, int] = (50, 300)) -> Path:
    """SHD layout: ``shd_train.h5`` / ``shd_test.h5`` (700 channels, t < 1.4 s, labels 0..19)."""
    return _hdf5_rows_root("shd", dst, {"train": n_train, "test": n_test}, seed, events)


def make_ssc_root(dst: str | PathLike, *, n_train: int = 6, n_valid: int = 3, n_test: int = 4, seed: int = 0,
                  events: tuple[int, int] = (50, 300)) -> Path:
    """SSC layout: ``ssc_train.h5`` / ``ssc_valid.h5`` / ``ssc_test.h5`` (700 channels, t < 1 s, labels 0..34)."""
    return _hdf5_rows_root("ssc", dst, {"train": n_train, "valid": n_valid, "test": n_test}, seed, events)


def make_ntidigits18_root(dst: str | PathLike, *, per_class_train: int = 1, per_class_test: int = 1,
                          n_sequences: int = 2, seed: int = 0, events: tuple[int, int] = (30, 200)) -> Path:
    """N-TIDIGITS18 layout: ``n-tidigits.hdf5`` with ``<split>_labels`` / ``_addresses`` / ``_timestamps``.

    Keys look like ``man-s03-<digits>``: ``per_class_*`` isolated digits per class and split
    plus ``n_sequences`` multi-digit utterances per split (which the dataset skips).
    """
    from eventkit.io.ntidigits import write_ntidigits_h5

    rng = np.random.default_rng(seed)
    spec = _spec("ntidigits18")
    root = Path(dst)
    root.mkdir(parents=True, exist_ok=True)
    C = spec.sensor_size[0]
    items: dict[str, list[tuple[str, np.ndarray]]] = {}
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        keys = [f"man-s{r:02d}-{c}" for r in range(per_class) for c in spec.classes]
        symbols = "".join(spec.classes)
        keys += [f"woman-q{j:02d}-" + "".join(rng.choice(list(symbols), 3)) for j in range(n_sequences)]
        order = rng.permutation(len(keys))  # interleave isolated digits and sequences
        items[split] = [(keys[i], random_audio_events(rng, int(rng.integers(events[0], events[1] + 1)), C, 1_200_000))
                        for i in order]
    write_ntidigits_h5(root / spec.layout.params["file"], train=items["train"], test=items["test"])
    return root


def _idx_root(name: str, dst: str | PathLike, n_train: int, n_test: int, seed: int, gz: bool) -> Path:
    from eventkit.datasets.static import write_idx

    rng = np.random.default_rng(seed)
    spec = _spec(name)
    root = Path(dst)
    W, H, _ = spec.sensor_size
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, H, W), dtype=np.uint8)
        labels = (np.arange(n) % len(spec.classes)).astype(np.uint8)
        write_idx(root / (spec.layout.params["images"][split] + suffix), images)
        write_idx(root / (spec.layout.params["labels"][split] + suffix), labels)
    return root


def make_mnist_root(dst: str | PathLike, *, n_train: int = 20, n_test: int = 10, seed: int = 0,
                    gz: bool = True) -> Path:
    """MNIST layout: ``train-images-idx3-ubyte[.gz]`` ... ``t10k-labels-idx1-ubyte[.gz]`` (labels i % 10)."""
    return _idx_root("mnist", dst, n_train, n_test, seed, gz)


def make_fashionmnist_root(dst: str | PathLike, *, n_train: int = 20, n_test: int = 10, seed: int = 0,
                           gz: bool = True) -> Path:
    """Fashion-MNIST layout (the same IDX file names as MNIST)."""
    return _idx_root("fashionmnist", dst, n_train, n_test, seed, gz)


def make_cifar10_root(dst: str | PathLike, *, per_batch: int = 4, n_test: int = 10, seed: int = 0) -> Path:
    """CIFAR-10 binary layout: ``cifar-10-batches-bin/data_batch_{1..5}.bin``, ``test_batch.bin``,
    ``batches.meta.txt``; ``per_batch`` records per train batch file."""
    from eventkit.datasets.static import write_cifar10_bin

    rng = np.random.default_rng(seed)
    spec = _spec("cifar10")
    folder = Path(dst) / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        for k, fname in enumerate(spec.layout.params["files"][split]):
            n = per_batch if split == "train" else n_test
            images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
            labels = (np.arange(n) + k) % 10
            write_cifar10_bin(folder / fname, images, labels)
    (folder / "batches.meta.txt").write_text("\n".join(spec.classes) + "\n\n")
    return Path(dst)


def read_nmnist_small_labels(labels_file: str | PathLike) -> list[tuple[int, int]]:
    """``[(sample id, class), ...]`` of slayerPytorch's ``train1K.txt``.

    Format: a ``#sample #class`` header line, then ``<id>\\t<class>`` lines (CRLF).
    """
    path = Path(labels_file)
    if not path.is_file():
        raise DatasetNotFound(f"N-MNIST small labels file {path} not found")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            sid, cls = int(parts[0]), int(parts[1])
        except (ValueError, IndexError):
            raise EventFileError(path, f"line {lineno}: expected '<id>\\t<class>', got {line!r}") from None
        if not 0 <= cls <= 9:
            raise EventFileError(path, f"line {lineno}: class {cls} outside 0..9")
        rows.append((sid, cls))
    return rows


def arrange_nmnist_small(src_dir: str | PathLike, labels_file: str | PathLike, dst: str | PathLike,
                         n_train: int = 900, link: bool = True) -> Path:
    """Lay NMNISTsmall (``<id>.bs2``, ids 1..1000, labels in ``train1K.txt``) out in the N-MNIST layout.

    Ids ``<= n_train`` go to ``dst/Train/<digit>/<id:05d>.bin``, the others to
    ``dst/Test/<digit>/<id:05d>.bin``. With ``link=True`` each file is a symbolic link to
    the absolute source path (a copy where the file system refuses links); ``link=False``
    copies. The ``.bs2`` files have the N-MNIST 40-bit layout, so the links read as ``.bin``.
    Note: all 1000 are MNIST *training* digits; the 900/100 split is a demo split.
    Re-running replaces earlier links/copies. Returns ``dst``.
    """
    src_dir = Path(src_dir).absolute()
    dst = Path(dst)
    rows = read_nmnist_small_labels(labels_file)
    for sid, cls in rows:
        src = src_dir / f"{sid}.bs2"
        if not src.is_file():
            raise DatasetNotFound(f"N-MNIST small sample {src} listed in {labels_file} not found")
        split = "Train" if sid <= n_train else "Test"
        target = dst / split / str(cls) / f"{sid:05d}.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        for old in (target, dst / ("Test" if split == "Train" else "Train") / str(cls) / f"{sid:05d}.bin"):
            if old.exists() or old.is_symlink():  # a rerun with another n_train moves a sample across
                old.unlink()
        if link:
            try:
                os.symlink(src, target)
                continue
            except OSError:
                pass
        shutil.copyfile(src, target)
    return dst


_MAKERS: dict[str, Callable[..., Path]] = {
    "nmnist": make_nmnist_root, "cifar10dvs": make_cifar10dvs_root, "shd": make_shd_root, "ssc": make_ssc_root,
    "mnist": make_mnist_root, "fashionmnist": make_fashionmnist_root, "cifar10": make_cifar10_root,
}


def make_release_archives(name: str, dst: str | PathLike, *, seed: int = 0, **maker_kwargs) -> dict[str, Path]:
    """The needed archives of ``name`` (file name -> path under ``dst``), packed like the release's.

    A fixture root is written by ``make_<name>_root(**maker_kwargs)`` and packed: N-MNIST
    ``Train.zip``/``Test.zip`` hold ``Train/...``/``Test/...``; CIFAR10-DVS ``<class>.zip``
    holds ``<class>/...``; SHD/SSC ``<file>.h5.zip`` holds ``<file>.h5``; CIFAR-10
    ``cifar-10-binary.tar.gz`` holds ``cifar-10-batches-bin/``; MNIST-like files are copied as
    they are (``.gz``). The bytes differ from the release's: their digests are not the manifest's.
    """
    import tarfile
    import zipfile

    if name not in _MAKERS:
        raise ParameterError(f"make_release_archives knows {', '.join(sorted(_MAKERS))}, not {name!r}")
    dst = Path(dst)
    root = _MAKERS[name](dst / "_root", seed=seed, **maker_kwargs)
    spec = _spec(name)
    out: dict[str, Path] = {}
    for a in spec.needed_archives():
        target = dst / a.file
        if not a.unpack:
            shutil.copyfile(root / a.file, target)
        elif a.file.endswith(".tar.gz"):
            with tarfile.open(target, "w:gz") as tf:
                tf.add(root / spec.layout.params["folder"], arcname=spec.layout.params["folder"])
        else:
            inner = a.file[:-len(".zip")]
            if spec.layout.family == "nmnist":  # Train.zip -> Train/<digit>/<id>.bin
                inner = spec.layout.params["split_dirs"][a.splits[0]]
            with zipfile.ZipFile(target, "w") as zf:
                base = root / inner
                for f in sorted(base.rglob("*")) if base.is_dir() else [base]:
                    zf.write(f, f.relative_to(root).as_posix())
        out[a.file] = target
    shutil.rmtree(dst / "_root")
    return out
