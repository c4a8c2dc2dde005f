#!/usr/bin/env python
"""Prepare the small N-MNIST root of the README demo (900 train / 100 test) and print its path.

Where the samples come from, in this order (stderr says which, in one line):

1. real recordings in ``$EVENTKIT_DATA/nmnist`` (the full release, e.g. from
   ``eventkit data fetch nmnist``): the first 90 train and 10 test samples of each digit
   are linked (copied where links are refused, or with ``--copy``);
2. the 1000 real NMNISTsmall samples (``../shared/data/nmnist/NMNISTsmall`` next to the
   repository, or ``$EVENTKIT_SHARED_DATA/nmnist/NMNISTsmall``): ids 1..900 ->
   ``Train/<digit>/``, 901..1000 -> ``Test/<digit>/``;
3. otherwise a SYNTHETIC but learnable N-MNIST in the same raw format
   (:mod:`eventkit.datasets.synthetic`: digit-like glyphs under simulated saccades), with a
   ``SYNTHETIC.txt`` marker that makes every later eventkit command on it say so.

    python scripts/prepare_demo_data.py [--dst DIR] [--synthetic] [--copy]   # default DIR: ./.data/nmnist
    eventkit data verify nmnist --root DIR                                    # a partial root (exit 0)

A folder this script prepared before is refreshed; any other non-empty folder is refused.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAMP = ".eventkit-demo"  # marks a folder this script may replace
PER_CLASS = (90, 10)      # train, test samples per digit


def _shared_data() -> Path:
    env = os.environ.get("EVENTKIT_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _real_release() -> Path | None:
    """``$EVENTKIT_DATA/nmnist`` when it holds real N-MNIST recordings in both splits."""
    from eventkit.datasets import get_dataset, list_samples, synthetic_note
    from eventkit.errors import DatasetNotFound

    env = os.environ.get("EVENTKIT_DATA")
    root = Path(env).expanduser() / "nmnist" if env else None
    if root is None or not root.is_dir() or synthetic_note(root) is not None:
        return None
    try:
        spec = get_dataset("nmnist")
        list_samples(spec, root, "train"), list_samples(spec, root, "test")
    except DatasetNotFound:
        return None
    return root


def _link_subset(src_root: Path, dst: Path, copy: bool) -> int:
    """Link the first PER_CLASS samples of each digit of ``src_root`` into ``dst`` (same layout)."""
    from eventkit.datasets import get_dataset, list_samples

    spec = get_dataset("nmnist")
    n = 0
    for split, per_class in zip(("train", "test"), PER_CLASS, strict=True):
        taken: dict[int, int] = {}
        for s in list_samples(spec, src_root, split):
            if taken.get(s.label, 0) >= per_class:
                continue
            taken[s.label] = taken.get(s.label, 0) + 1
            target = dst / s.sample_id
            target.parent.mkdir(parents=True, exist_ok=True)
            if copy:
                shutil.copyfile(s.path, target)
            else:
                try:
                    os.symlink(s.path, target)
                except OSError:
                    shutil.copyfile(s.path, target)
            n += 1
    return n


def _clear(dst: Path) -> None:
    """Empty a folder this script prepared before; refuse any other non-empty folder."""
    if not dst.exists():
        return
    if not (dst / STAMP).is_file() and any(dst.iterdir()):
        sys.exit(f"error: {dst} is not empty and was not prepared by this script; pass another --dst")
    for name in ("Train", "Test"):
        if (dst / name).is_dir():
            shutil.rmtree(dst / name)
    for name in ("SYNTHETIC.txt", STAMP):
        (dst / name).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dst", type=Path, default=REPO / ".data" / "nmnist",
                        help="folder to create (default: ./.data/nmnist)")
    parser.add_argument("--copy", action="store_true", help="copy the real files instead of linking them")
    parser.add_argument("--synthetic", action="store_true", help="write the synthetic dataset even if real data exist")
    args = parser.parse_args(argv)

    from eventkit.datasets.synthetic import make_synthetic_nmnist_root
    from eventkit.testing import arrange_nmnist_small

    dst = args.dst
    small = _shared_data() / "nmnist" / "NMNISTsmall"
    release = None if args.synthetic else _real_release()
    if release is not None:
        source = f"real N-MNIST recordings from {release} ({PER_CLASS[0]} train / {PER_CLASS[1]} test per digit)"
    elif not args.synthetic and (small / "train1K.txt").is_file():
        source = f"the 1000 real NMNISTsmall recordings from {small} (900 train / 100 test)"
    else:
        source = "SYNTHETIC"
    _clear(dst)
    dst.mkdir(parents=True, exist_ok=True)
    if release is not None:
        _link_subset(release, dst, args.copy)
    elif source != "SYNTHETIC":
        arrange_nmnist_small(small, small / "train1K.txt", dst, n_train=900, link=not args.copy)
    else:
        make_synthetic_nmnist_root(dst, per_class_train=PER_CLASS[0], per_class_test=PER_CLASS[1], seed=0)
        why = "--synthetic" if args.synthetic else f"no real recordings in $EVENTKIT_DATA/nmnist or {small}"
        source = (f"SYNTHETIC N-MNIST ({why}): "
                  f"digit-like glyphs under simulated saccades, {10 * PER_CLASS[0]} train / {10 * PER_CLASS[1]} test, "
                  f"learnable but not real data")
    (dst / STAMP).write_text(source + "\n", encoding="utf-8")
    print(f"demo data: {source}", file=sys.stderr)
    print(dst.absolute())
    return 0


if __name__ == "__main__":
    sys.exit(main())
