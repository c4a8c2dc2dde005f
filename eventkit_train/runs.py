"""Reading a finished (or running, or killed) run folder back: :func:`load_run`, :func:`evaluate_run`.

``load_run("runs/nm")`` returns a :class:`Run` with the :class:`TrainConfig`, the network
holding ``best.pt``'s weights (or ``checkpoint.pt``'s, ``weights="last"``) in eval mode on
the CPU, the epoch records of ``metrics.json`` and ``summary.json``, all from the last
committed epoch (:mod:`eventkit_train.checkpoint`), so they agree with each other even
after a kill. :func:`evaluate_run` scores that network on a split of the cache, as
``eventkit eval RUN_DIR`` does.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eventkit.errors import CacheError, ParameterError
from eventkit.progress import ProgressMode

from .checkpoint import committed_state, load_state, load_state_dict_into
from .config import TrainConfig
from .runlog import read_metrics

__all__ = ["Run", "load_run", "evaluate_run"]


@dataclass
class Run:
    """A run folder read back."""

    run_dir: Path
    config: TrainConfig
    model: nn.Module
    epoch: int  # 0-based epoch of the loaded weights
    weights: str  # "best" or "last"
    input_shape: tuple[int, ...]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def load_run(run_dir: str | os.PathLike, *, weights: str = "best", device: str | torch.device = "cpu") -> Run:
    """The config, the network with ``best.pt``'s weights (``weights="last"``: ``checkpoint.pt``)
    and the metrics of a run folder. Errors (no completed epoch, damaged files) are one line."""
    from .trainer import build_model

    if weights not in ("best", "last"):
        raise ParameterError(f"weights={weights!r}: 'best' (chosen on validation) or 'last'")
    run = Path(run_dir)
    if not run.is_dir():
        raise ParameterError(f"run folder {run} not found")
    state = committed_state(run)
    if state is None:
        raise ParameterError(f"{run} has no completed epoch (no checkpoint); is it an `eventkit train --out` folder?")
    ck = load_state(run, "best" if weights == "best" else "checkpoint", map_location=device)
    if ck is None:
        raise ParameterError(f"{run} has no completed epoch")
    config = TrainConfig.from_dict({k: v for k, v in ck["config"].items() if k in TrainConfig.__dataclass_fields__},
                                   source=f"{run}/{weights}.pt config")
    shape = ck.get("input_shape")
    if shape is None:  # checkpoints of earlier versions: the shape is in config.json
        shape = _read_json(state / "config.json").get("input_shape")
    if not isinstance(shape, list) or not all(isinstance(v, int) for v in shape):
        raise CacheError(f"{run}: the sample shape of the network is not recorded; cannot rebuild it")
    model = build_model(config, tuple(shape)).to(device)
    load_state_dict_into(model, ck["model"], f"{run}/{'best' if weights == 'best' else 'checkpoint'}.pt")
    model.eval()
    metrics = read_metrics(state) if (state / "metrics.json").is_file() else []
    summary = _read_json(state / "summary.json") if (state / "summary.json").is_file() else {}
    return Run(run, config, model, int(ck["epoch"]), weights, tuple(shape), metrics, summary)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f"{path} cannot be read ({type(exc).__name__}); the run folder is damaged") from None
    if not isinstance(data, dict):
        raise CacheError(f"{path} is not a JSON object; the run folder is damaged")
    return data


def evaluate_run(run: Run, *, split: str = "test", device: str = "auto", batch_size: int | None = None,
                 root: str | None = None, cache: str | None = None, workers: int = 0,
                 progress: ProgressMode = False) -> dict[str, Any]:
    """Accuracy, loss, spike rates, silent layers, latency curve, synaptic operations and
    energy per sample (:mod:`eventkit_train.synops`) of ``run.model`` on ``split``: ``"test"``,
    ``"val"`` (the held-out part of the training split) or ``"train"`` (its rest). The cache is
    opened (built when missing) with the run's data options; ``root``/``cache`` override them.
    ``progress``: a mode of :func:`eventkit.progress.resolve_mode`."""
    from eventkit_train.losses import get_loss

    from .data import open_data, prepare_data, split_loader
    from .distributed import LaunchEnv, Session
    from .trainer import run_epoch

    if split not in ("test", "val", "train"):
        raise ParameterError(f"split={split!r}: test, val or train")
    config = run.config.replace(root=root, cache=cache, batch_size=batch_size)
    session = Session(device, launch=LaunchEnv())  # one process, whatever launched it
    stores = prepare_data(config, progress=progress)
    data = open_data(config, stores, warn=False)
    if split == "val" and not data.has_validation:
        raise ParameterError(f"{run.run_dir} was trained without a validation split (val_fraction = "
                             f"{config.val_fraction:g}, or too few samples)")
    store_split = config.test_split if split == "test" else config.train_split
    samples = None if split == "test" else (data.val_indices if split == "val" else data.train_indices)
    # as the trainer evaluates: the event ops' deterministic part (a centre crop, a time window) applies
    loader = split_loader(config, data, store_split, train=False, samples=samples, batch_size=config.batch_size,
                          rank=0, world_size=1, pin_memory=session.device.type == "cuda", workers=workers)
    model = run.model.to(session.device)
    amp = session.device.type == "cuda" if config.amp is None else config.amp
    res = run_epoch(model, loader, get_loss(config.loss), config, session.device, amp=amp, scale=data.scale,
                    progress=progress, desc=f"eval {split}")
    return {"run_dir": str(run.run_dir), "weights": run.weights, "epoch": run.epoch, "split": split,
            "device": str(session.device), **res}
