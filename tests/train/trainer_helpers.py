"""A tiny synthetic N-MNIST cache and a matching config, shared by the trainer tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_ARCH = "APk2s2-c4k3s1-BN-PLIF-MPk2s2-DP-FC20-PLIF-APk2s2"


def tiny_nmnist(base: Path, *, per_class_train: int = 3, per_class_test: int = 1) -> dict[str, Any]:
    """``{"root", "cache", "stores"}`` of a synthetic N-MNIST root built at T = 4 under ``base``."""
    from eventkit.build import build_cache
    from eventkit.testing import make_nmnist_root

    root = make_nmnist_root(base / "raw", per_class_train=per_class_train, per_class_test=per_class_test)
    res = build_cache("nmnist", T=4, root=root, cache=base / "cache", progress=False)
    return {"root": str(root), "cache": str(base / "cache"), "stores": {k: str(v) for k, v in res.stores.items()}}


def tiny_config(fake: dict[str, Any], out: Path, **kw: Any):
    """A quick CPU config over :func:`tiny_nmnist` (half of each class held out for validation)."""
    from eventkit_train.trainer import TrainConfig

    base = dict(dataset="nmnist", T=4, arch=TINY_ARCH, epochs=3, batch_size=10, lr=1e-2, root=fake["root"],
                cache=fake["cache"], out=str(out), device="cpu", seed=3, threads=1, val_fraction=0.5)
    base.update(kw)
    return TrainConfig(**base)
