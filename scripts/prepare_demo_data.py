#!/usr/bin/env python
"""Prepare a small N-MNIST root for the README demo and prints its path.

If the real 1000-sample NMNISTsmall subset is found (``../shared/data/nmnist/NMNISTsmall``
next to the repository, or ``$EVENTKIT_SHARED_DATA/nmnist/NMNISTsmall``), its files are laid
out in the N-MNIST release layout (ids 1..900 -> ``Train/<digit>/``, 901..1000 ->
``Test/<digit>/``, symbolic links where possible, copies otherwise). Otherwise a
synthetic N-MNIST root is written with :func:`eventkit.testing.make_nmnist_root`, and the
script says so.

    python scripts/prepare_demo_data.py [--dst DIR]      # default DIR: ./demo_data/nmnist
    eventkit data verify nmnist --root DIR                # reports a partial root (exit 0)
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("EVENTKIT_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dst", type=Path, default=REPO / "demo_data" / "nmnist",
                        help="folder to create (default: ./demo_data/nmnist)")
    parser.add_argument("--copy", action="store_true", help="copy the real files instead of linking them")
    args = parser.parse_args(argv)

    from eventkit.testing import arrange_nmnist_small, make_nmnist_root

    src = _shared_data() / "nmnist" / "NMNISTsmall"
    labels = src / "train1K.txt"
    if src.is_dir() and labels.is_file():
        root = arrange_nmnist_small(src, labels, args.dst, n_train=900, link=not args.copy)
        print(f"arranged the 1000 real NMNISTsmall samples from {src} (900 train / 100 test)", file=sys.stderr)
    else:
        root = make_nmnist_root(args.dst, per_class_train=90, per_class_test=10, seed=0)
        print(f"real NMNISTsmall not found at {src}: wrote a SYNTHETIC N-MNIST root "
              f"(random events, 900 train / 100 test)", file=sys.stderr)
    print(Path(root).absolute())
    return 0


if __name__ == "__main__":
    sys.exit(main())
