"""Optimisers and learning-rate schedules in closed form.

The rate of epoch ``e`` is a pure function of the config and ``e`` (:func:`lr_at`), set on
the optimiser's parameter groups before the epoch (:func:`apply_lr`). No scheduler object
keeps state, so a resume (with the same or another ``epochs``/``t_max``) just evaluates the
formula at the next epoch, and a checkpoint holds no scheduler state.

``cosine``: ``lr(e) = lr0 (1 + cos(pi e / T_max)) / 2`` with ``T_max = t_max`` or
``epochs`` — the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR``
(``eta_min = 0``), periodic beyond ``T_max`` exactly as torch's (period ``2 T_max``).
``none``: ``lr0``. ``lr0`` is the recipe's ``lr`` for the *global* batch (``docs/training.md``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from .config import TrainConfig

__all__ = ["make_optimizer", "lr_at", "apply_lr", "schedule_period"]


def make_optimizer(config: TrainConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam / AdamW / Adamax / SGD (momentum) with the config's lr and weight decay."""
    name = config.optimizer
    if name == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}[name]
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def schedule_period(config: TrainConfig) -> int:
    """``T_max`` of the cosine schedule, in epochs."""
    return max(1, config.t_max or config.epochs)


def lr_at(config: TrainConfig, epoch: int) -> float:
    """Learning rate of epoch ``epoch`` (0-based)."""
    if config.scheduler == "cosine":
        return config.lr * (1.0 + math.cos(math.pi * epoch / schedule_period(config))) / 2.0
    return config.lr


def apply_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set ``lr`` on every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
