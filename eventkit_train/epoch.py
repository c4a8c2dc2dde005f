"""One pass of a network over a loader: training (through a DDP wrapper when there is one)
or evaluation (the bare network: no collectives in forward, so ranks may hold uneven shares),
with the sums of loss, correct predictions, latency curve, spike counts and synaptic
operations (:mod:`~eventkit_train.synops`) taken over all DDP ranks at the end. Progress:
:class:`eventkit.progress.Progress` (a bar on a terminal, rate-limited lines elsewhere).

A non-finite training loss is noted on the device (no host sync per step) and raises
:class:`TrainingDiverged` at the end of the pass, naming the epoch and the first bad step.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from eventkit.errors import CacheError, EventkitError
from eventkit.progress import Progress, ProgressMode

from .config import TrainConfig
from .distributed import Session
from .metrics import SpikeRecorder, latency_correct, predict, rates_from
from .synops import OpCounter, ops_summary

__all__ = ["run_epoch", "TrainingDiverged"]

_NO_STEP = 2**62


class TrainingDiverged(EventkitError, FloatingPointError):
    """The loss or the weights became NaN/inf; nothing of that epoch was saved."""


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def run_epoch(model: nn.Module, loader, loss_fn, config: TrainConfig, device: torch.device, *, amp: bool,
              scale: float, optimizer: torch.optim.Optimizer | None = None, progress: ProgressMode = False,
              desc: str = "", session: Session | None = None, epoch: int = 0, augment: Any = None) -> dict[str, Any]:
    """One pass over ``loader``: trains when ``optimizer`` is given (through ``model``, e.g. a
    DDP wrapper), else evaluates the unwrapped network (no grad, no collectives in forward;
    spike rates, silent layers, latency curve, synaptic operations and energy per sample
    recorded). Sums are taken over the ranks of ``session``. ``progress``: a mode of
    :func:`eventkit.progress.resolve_mode` (lines only when the pass is long).
    A non-finite training loss raises :class:`TrainingDiverged` naming the epoch and step.

    ``augment`` (an :class:`eventkit_train.augment.AugmentConfig`): its frame ops are applied
    to each training batch on the device, seeded by (seed, epoch, step, rank); mixup/cutmix
    mix the loss of the two label sets and count the larger share as the label."""
    from eventkit.loader import to_device

    train = optimizer is not None
    net = _unwrap(model)
    module = model if train else net
    module.train(train)
    kind = getattr(net, "output", "spikes")

    def zeros(*shape: int) -> Tensor:
        return torch.zeros(shape, dtype=torch.float64, device=device)

    loss_sum, n, n_correct = zeros(), zeros(), zeros()
    steps_per_sample = config.T if train else config.eval_steps
    lat = zeros(steps_per_sample)
    first_bad = torch.full((), _NO_STEP, dtype=torch.int64, device=device)  # no host sync per step
    recorder = SpikeRecorder(net) if not train else None
    counter = OpCounter(net) if not train else None
    try:
        total = len(loader)  # batches of this rank
    except TypeError:
        total = None
    bar = Progress(total, desc, progress=progress, unit="batches", leave=False, final="after-lines")

    def running_loss() -> str:  # a host sync: only when shown
        return f"loss {float(loss_sum) / max(1.0, float(n)):.4f}"

    steps = 0
    with torch.set_grad_enabled(train), bar, (recorder if recorder is not None else _Null()), \
            (counter if counter is not None else _Null()):
        for i, batch in enumerate(loader):
            x, y = to_device(batch, device, non_blocking=device.type == "cuda")
            if scale != 1.0:
                x.mul_(scale)
            target: Any = y
            if train and augment is not None:
                x, target = augment.frame_batch(x, y, seed=config.seed, epoch=epoch, step=i,
                                                rank=session.rank if session is not None else 0)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                out = module(x)
            out = out.float()
            if target is y:
                loss = loss_fn(out, y, **config.loss_kwargs)
            else:  # mixed targets (mixup / cutmix)
                loss = target.loss(lambda o, t: loss_fn(o, t, **config.loss_kwargs), out)
                y = target.hard()
            if optimizer is not None:  # training
                bad_now = ~torch.isfinite(loss.detach()) & (first_bad == _NO_STEP)
                first_bad = torch.where(bad_now, torch.full_like(first_bad, i), first_bad)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
            b = y.shape[0]
            n += b
            out = out.detach()
            loss_sum += loss.detach().double() * b
            n_correct += (predict(out, kind) == y).sum()
            if not train:
                lat += latency_correct(out, y, kind)
            steps = i + 1
            bar.update(1, postfix=running_loss)
    if train and session is not None:
        bad = session.min_int(int(first_bad))
    else:
        bad = int(first_bad)
    if bad != _NO_STEP:
        raise TrainingDiverged(f"the training loss became non-finite (nan/inf) at epoch {epoch + 1}, step {bad + 1} "
                               f"of {steps}; nothing of this epoch was saved. Lower lr, set grad_clip or check "
                               f"input_scale")
    sums = torch.cat([torch.stack([loss_sum, n, n_correct]), lat])
    if recorder is not None and counter is not None:
        rate_sums, rate_counts = recorder.totals(device)
        sums = torch.cat([sums, rate_sums, rate_counts, counter.totals(device)])
    if session is not None:
        sums = session.sum(sums)
    loss_total, count, right = (float(v) for v in sums[:3])
    if count == 0:
        raise CacheError(f"{desc or 'loader'}: the data split yielded no samples")
    res: dict[str, Any] = {"loss": loss_total / count, "accuracy": right / count, "samples": int(count)}
    if recorder is not None and counter is not None:
        k = len(recorder.sums)
        base = 3 + steps_per_sample
        spikes, elements = sums[base:base + k], sums[base + k:base + 2 * k]
        res["spike_rates"] = rates_from(recorder.sums, spikes, elements)
        per_layer = zip(recorder.sums, spikes.tolist(), elements.tolist(), strict=True)
        res["silent_layers"] = [name for name, s, c in per_layer if c > 0 and s == 0]
        res["latency_accuracy"] = (sums[3:3 + steps_per_sample] / count).tolist()
        res.update(ops_summary(counter.names, [layer.kind for layer in counter.layers], sums[base + 2 * k:], count))
    return res


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None
