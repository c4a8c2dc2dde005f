"""What the fuzzer mutates and how each mutated file is read.

One target per format: the real sample from ``../shared/data`` where one exists (see its
MANIFEST.md), else a fixture written to the published layout from real events (AEDAT 3.1,
SHD, N-TIDIGITS18 HDF5) or from fixed bytes (IDX, CIFAR-10, archives). ``read`` reads *all*
of a mutated file (every row of an HDF5 file, every member of an archive) and returns what
the reader returned; ``check`` says what is wrong with that result (None: fine).
"""
from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("EVENTKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


@dataclass(frozen=True)
class Target:
    """``name``: format; ``suffix`` of the file written; ``source``: real file it comes from
    (relative to the shared data folder) or what it is built from; ``build(folder) -> bytes``."""

    name: str
    suffix: str
    source: str
    build: Callable[[Path], bytes]
    read: Callable[[Path, Path], Any]
    check: Callable[[Any, Path], str | None]


def _real(rel: str) -> Callable[[Path], bytes]:
    def build(_: Path) -> bytes:
        path = SHARED_DATA / rel
        if not path.is_file():
            raise FileNotFoundError(f"real sample {rel} not found under {SHARED_DATA} (set EVENTKIT_SHARED_DATA)")
        return path.read_bytes()

    return build


def _events_ok(events: Any, _: Path) -> str | None:
    from eventkit.events import AUDIO_DTYPE, VISION_DTYPE

    arrays = events if isinstance(events, list) else [events]
    for ev in arrays:
        if not isinstance(ev, np.ndarray) or ev.dtype not in (VISION_DTYPE, AUDIO_DTYPE):
            return f"returned {type(ev).__name__} {getattr(ev, 'dtype', '')}, not an event array"
        t = ev["t"]
        if t.size and (bool(np.any(t[1:] < t[:-1])) or int(t.min()) < 0):
            return "returned events not sorted by t, or with t < 0"
    return None


def _any_ok(_: Any, __: Path) -> str | None:
    return None


def _read_format(fmt: str, **kwargs) -> Callable[[Path, Path], Any]:
    def read(path: Path, _: Path) -> Any:
        from eventkit.io import read_events

        return read_events(path, format=fmt, **kwargs)

    return read


def _read_shd(path: Path, _: Path) -> list:
    from eventkit.io import ShdFile, detect_format

    detect_format(path)
    with ShdFile(path) as f:
        _ = f.labels  # the property reads and checks the label array
        return [f.read(i) for i in range(len(f))]


def _read_ntidigits(path: Path, _: Path) -> list:
    from eventkit.io import NTidigitsFile
    from eventkit.io.ntidigits import SPLITS

    out = []
    with NTidigitsFile(path) as f:
        for split in SPLITS:
            out += [f.read(split, k) for k in dict.fromkeys(f.keys(split))]
    return out


def _read_gesture_csv(path: Path, _: Path) -> Any:
    from eventkit.io import read_gesture_labels

    return read_gesture_labels(path)


def _read_idx(path: Path, _: Path) -> Any:
    from eventkit.datasets.static import read_idx

    return read_idx(path)


def _read_cifar(path: Path, _: Path) -> Any:
    from eventkit.datasets.static import read_cifar10_bin

    return read_cifar10_bin([path])


def _extract(path: Path, scratch: Path) -> Path:
    import shutil

    from eventkit.datasets.extract import safe_extract

    dest = scratch / "extracted"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    safe_extract(path, dest)
    return dest


def _nothing_outside(dest: Path, _: Path) -> str | None:
    root = dest.resolve()
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            real = p.resolve()
            if real != root and root not in real.parents:
                return f"extracted {p} resolves to {real}, outside {root}"
    return None


# --- fixtures written to the published layouts from real events ------------------------------


def _real_bs1_events():
    from eventkit.io import read_bs1

    path = SHARED_DATA / "ntidigits/slayer_NTIDIGITS_1.bs1"
    if not path.is_file():
        raise FileNotFoundError(f"real sample ntidigits/slayer_NTIDIGITS_1.bs1 not found under {SHARED_DATA}")
    return read_bs1(path)


def _build_aedat31(folder: Path) -> bytes:
    from eventkit.io import read_aedat2, write_aedat31

    src = SHARED_DATA / "aedat/jaer_DVS128-2017-03-21-short.aedat"
    if not src.is_file():
        raise FileNotFoundError(f"real sample aedat/jaer_DVS128-2017-03-21-short.aedat not found under {SHARED_DATA}")
    f = folder / "fixture.aedat"
    write_aedat31(f, read_aedat2(src)[:12000], packet_size=2048, special_packet=True)
    return f.read_bytes()


def _build_shd(folder: Path) -> bytes:
    from eventkit.io import write_shd

    ev = _real_bs1_events()
    ev = ev[np.argsort(ev["t"], kind="stable")]
    parts = np.array_split(ev, 4)
    f = folder / "fixture.h5"
    write_shd(f, parts, [3, 1, 4, 1], speakers=[0, 1, 2, 3], keys=[f"class{i}" for i in range(20)])
    return f.read_bytes()


def _build_ntidigits(folder: Path) -> bytes:
    from eventkit.io import write_ntidigits_h5

    parts = np.array_split(_real_bs1_events(), 5)
    f = folder / "fixture.hdf5"
    write_ntidigits_h5(f, train=[("man-ae-1", parts[0]), ("woman-bc-z", parts[1]), ("man-cd-o", parts[2])],
                       test=[("boy-de-5", parts[3]), ("girl-ef-9", parts[4])])
    return f.read_bytes()


def _build_idx(folder: Path, gz: bool) -> bytes:
    from eventkit.datasets.static import write_idx

    images = (np.arange(4 * 28 * 28, dtype=np.int64) * 37 % 251).astype(np.uint8).reshape(4, 28, 28)
    f = write_idx(folder / ("fixture-idx3-ubyte.gz" if gz else "fixture-idx3-ubyte"), images)
    return f.read_bytes()


def _build_cifar(folder: Path) -> bytes:
    from eventkit.datasets.static import write_cifar10_bin

    images = (np.arange(3 * 3 * 32 * 32, dtype=np.int64) % 256).astype(np.uint8).reshape(3, 3, 32, 32)
    f = write_cifar10_bin(folder / "fixture.bin", images, np.array([0, 5, 9]))
    return f.read_bytes()


def _build_zip(_: Path) -> bytes:
    sample = _real("nmnist/sample_nmnist.bin")(_)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Train/", b"")
        zf.writestr("Train/0/00001.bin", sample)
        zf.writestr("Train/1/00002.bin", sample[:500])
    return buf.getvalue()


def _build_targz(_: Path) -> bytes:
    sample = _real("nmnist/sample_nmnist.bin")(_)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, kind, data in (("Train", "dir", b""), ("Train/0", "dir", b""), ("Train/0/1.bin", "file", sample),
                                 ("Train/0/link.bin", "sym", "1.bin"), ("Train/0/copy.bin", "hard", "Train/0/1.bin")):
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind]
            info.linkname = data if isinstance(data, str) else ""
            tf.addfile(info)
    return buf.getvalue()


def _real_target(name: str, suffix: str, rel: str, fmt: str, read=None, check=_events_ok) -> Target:
    """A target made of the real sample ``rel``, read with ``read_events(format=fmt)`` by default."""
    return Target(name, suffix, rel, _real(rel), read or _read_format(fmt), check)


TARGETS: dict[str, Target] = {t.name: t for t in [
    _real_target("nmnist", ".bin", "nmnist/sample_nmnist.bin", "nmnist"),
    _real_target("bs2", ".bs2", "dvsgesture/slayer_bs2_1450ms_1.bs2", "bs2"),
    _real_target("bs1", ".bs1", "ntidigits/slayer_NTIDIGITS_1.bs1", "bs1"),
    _real_target("aedat2", ".aedat", "aedat/jaer_DVS128-2017-03-21-short.aedat", "aedat2"),
    _real_target("aedat2_header", ".aedat", "aedat/tonic_sample_aedat_header.aedat", "aedat2"),
    Target("aedat31", ".aedat", "write_aedat31 of 12000 real DVS128 events", _build_aedat31,
           _read_format("aedat31"), _events_ok),
    _real_target("gesture_csv", ".csv", "dvsgesture/user01_natural_labels.csv", "", _read_gesture_csv, _any_ok),
    _real_target("aedat4", ".aedat4", "aedat/tonic_sample.aedat4", "aedat4"),
    _real_target("prophesee_dat", ".dat", "prophesee/tonic_sample_ncars.dat", "prophesee_dat"),
    _real_target("evt2", ".raw", "prophesee/expelliarmus_sparklers_evt2.raw", "evt2"),
    _real_target("evt3", ".raw", "prophesee/expelliarmus_evt3_sample.raw", "evt3"),
    Target("shd", ".h5", "write_shd of the real N-TIDIGITS .bs1 events (4 rows)", _build_shd, _read_shd, _events_ok),
    Target("ntidigits_h5", ".hdf5", "write_ntidigits_h5 of the real .bs1 events (5 utterances)", _build_ntidigits,
           _read_ntidigits, _events_ok),
    Target("idx", "", "write_idx of 4 fixed 28x28 images", lambda f: _build_idx(f, False), _read_idx, _any_ok),
    Target("idx_gz", ".gz", "write_idx (.gz) of 4 fixed 28x28 images", lambda f: _build_idx(f, True), _read_idx,
           _any_ok),
    Target("cifar10_bin", ".bin", "write_cifar10_bin of 3 fixed images", _build_cifar, _read_cifar, _any_ok),
    Target("zip", ".zip", "zip of the real N-MNIST sample", _build_zip, _extract, _nothing_outside),
    Target("tar_gz", ".tar.gz", "tar.gz of the real N-MNIST sample, a symlink and a hard link", _build_targz,
           _extract, _nothing_outside),
]}


if os.environ.get("EVENTKIT_FUZZ_SELFTEST") == "1":  # readers that misbehave on purpose: the harness must count them
    import signal
    import time

    def _misbehave(how: str) -> Callable[[Path, Path], Any]:
        def read(path: Path, _: Path) -> Any:
            if how == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            if how == "abort":
                os.abort()
            if how == "hang":
                while True:
                    time.sleep(1)
            if how == "oom":
                return bytearray(3 << 30)  # more than the 2 GiB address-space cap
            if how == "valueerror":
                raise ValueError("a decoder's own exception")
            if how == "unsorted":
                from eventkit.events import make_events

                return make_events([5, 1], [0, 0], [0, 0], [0, 0])
            raise AssertionError(how)

        return read

    for _how in ("segv", "abort", "hang", "oom", "valueerror", "unsorted"):
        TARGETS[f"selftest_{_how}"] = Target(f"selftest_{_how}", ".bin", "-", lambda _: b"\x00" * 16,
                                             _misbehave(_how), _events_ok)
