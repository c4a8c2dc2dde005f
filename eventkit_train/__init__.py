"""eventkit_train: the spiking-network training backend over eventkit caches.

Public API: ``build`` / ``plif_net`` / ``fsnn`` (networks from the papers' notation,
:mod:`eventkit_train.models`), ``TrainConfig`` / ``load_config`` / ``train``
(:mod:`eventkit_train.trainer`), ``load_run`` / ``evaluate_run`` (:mod:`eventkit_train.runs`)
and the metrics helpers (:mod:`eventkit_train.metrics`, :mod:`eventkit_train.runlog`).
Neurons, surrogates and losses live in :mod:`eventkit_train.neurons`,
:mod:`eventkit_train.surrogate` and :mod:`eventkit_train.losses`. Imports are lazy so that
``import eventkit_train`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "build": "eventkit_train.models",
    "plif_net": "eventkit_train.models",
    "plif_spec": "eventkit_train.models",
    "fsnn": "eventkit_train.models",
    "parse_spec": "eventkit_train.models",
    "SpikingNet": "eventkit_train.models",
    "TrainConfig": "eventkit_train.trainer",
    "load_config": "eventkit_train.trainer",
    "train": "eventkit_train.trainer",
    "SpikeRecorder": "eventkit_train.metrics",
    "load_run": "eventkit_train.runs",
    "evaluate_run": "eventkit_train.runs",
    "plot_run": "eventkit_train.runlog",
    "read_metrics": "eventkit_train.runlog",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'eventkit_train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
