"""The training loop behind ``eventkit train``: cache -> streaming loader -> network -> loss.

:func:`train` reads top to bottom: check the whole config (before any cache is built),
join the process group when a launcher started several processes
(:mod:`~eventkit_train.distributed`), build the cache on rank 0, split off the validation
set, build the network (``DistributedDataParallel`` across ranks), then per epoch: the
closed-form learning rate, one training pass, the validation and test passes (summed over
ranks) and one atomic commit of checkpoint, ``best.pt`` (chosen on validation) and logs by
rank 0 (:mod:`~eventkit_train.checkpoint`). Config: :mod:`~eventkit_train.config`; data:
:mod:`~eventkit_train.data`; optimiser: :mod:`~eventkit_train.optim`; files:
:mod:`~eventkit_train.runlog`.
"""
from __future__ import annotations

import random
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eventkit.errors import CacheError, ParameterError
from eventkit.progress import ProgressMode

from .checkpoint import clean_stale, commit_epoch, committed_state, load_checkpoint, load_state, load_state_dict_into
from .config import DEFAULT_ARCH, NMNIST_SMALL_ARCH, TrainConfig, check_buildable, load_config, loss_input, resolve_arch
from .data import augment_of, make_loaders, open_data, per_rank_batch, prepare_data
from .distributed import Session, rank_seed
from .epoch import TrainingDiverged, run_epoch
from .optim import apply_lr, lr_at, make_optimizer
from .runlog import RunLog, epoch_record, json_text, read_metrics, summary_fields, warn_silent_layers

__all__ = ["TrainConfig", "load_config", "train", "run_epoch", "build_model", "prepare_data", "make_optimizer",
           "seed_everything", "loss_input", "load_checkpoint", "TrainingDiverged", "DEFAULT_ARCH", "NMNIST_SMALL_ARCH",
           "RESUME_KEYS"]

#: options a resumed run must share with its checkpoint
RESUME_KEYS = ("dataset", "T", "arch", "neuron", "neuron_map", "readout", "width", "loss", "split_by", "val_fraction")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_model(config: TrainConfig, input_shape: tuple[int, ...]) -> nn.Module:
    """The network of a config for one sample shape (``[P, H, W]`` / ``[P, C]``)."""
    from eventkit_train.models import build

    readout = config.readout or ("membrane" if loss_input(config.loss) == "membrane" else "spikes")
    return build(resolve_arch(config), input_shape, config.neuron, readout=readout,
                 neuron_map=config.neuron_map or None, readout_kwargs=config.readout_kwargs or None,
                 bias=config.bias, width=config.width, **config.neuron_kwargs)


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<dataset>-<UTC yyyymmdd-hhmmss>``."""
    return Path("runs") / f"{config.dataset}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def _read_resume(run_dir: Path, config: TrainConfig) -> dict[str, Any] | None:
    """Rank 0: the committed checkpoint and metric records of ``run_dir`` (None: none yet)."""
    state = committed_state(run_dir)
    if state is None:
        print(f"--resume: no checkpoint at {run_dir / 'checkpoint.pt'}; starting a fresh run", file=sys.stderr)
        return None
    clean_stale(run_dir)
    ck = load_state(run_dir, "checkpoint")
    if ck is None:  # the committed state went away since the look above
        return None
    old = ck["config"]
    for key in RESUME_KEYS:
        if key in old and old[key] != getattr(config, key):
            raise ParameterError(f"--resume: {run_dir / 'checkpoint.pt'} was trained with {key}={old[key]!r}, "
                                 f"not {getattr(config, key)!r}; use another --out or the same options")
    records = read_metrics(state) if (state / "metrics.json").is_file() else []
    return {"ck": ck, "records": [r for r in records if r.get("epoch", 0) <= ck["epoch"]]}


def _check_weights(model: nn.Module, epoch: int) -> None:
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    if flags and not bool(torch.stack(flags).all()):
        raise TrainingDiverged(f"the weights became non-finite in epoch {epoch + 1}; nothing of this epoch was "
                               f"saved. Lower lr or set grad_clip")


def train(config: TrainConfig, *, resume: bool = False, progress: ProgressMode = True,
          stores: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Train and evaluate per ``config``; returns the summary (also ``summary.json``).

    Under ``torchrun``/``srun`` every process calls this; rank 0 builds the cache and
    writes the run folder. ``stores`` (``{split: store URL}`` as :func:`prepare_data` returns it,
with the ``events:<split>`` stores that event ops need) skips the cache build. The
    summary has ``test_accuracy``/``train_accuracy``/``val_accuracy`` (last epoch),
    ``best_epoch`` (0-based, as in ``metrics.json``) and ``best_val_accuracy`` (the model
    selection), ``test_accuracy_at_best`` (reported only), ``epochs`` (completed), ``seconds``
    (this call), ``run_dir``, ``device``, ``world_size``, ``rank``.
    """
    t0 = time.perf_counter()
    check_buildable(config)  # the values were checked when the config was made
    with Session(config.device, timeout_s=config.dist_timeout_s, wait_s=config.cache_wait_s) as session:
        per_rank_batch(config, session.world_size)
        return _train(config, session, resume=resume, progress=progress if session.is_main else False,
                      stores=stores, t0=t0)  # a mode of eventkit.progress (True, "lines", False) on rank 0


def _train(config: TrainConfig, session: Session, *, resume: bool, progress: ProgressMode,
           stores: Mapping[str, str] | None, t0: float) -> dict[str, Any]:
    from eventkit_train.losses import get_loss

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device, main = session.device, session.is_main
    amp = device.type == "cuda" if config.amp is None else config.amp
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest convs
    run_dir = Path(session.broadcast(str(Path(config.out) if config.out else default_run_dir(config))))
    resumed = session.on_rank0(lambda: _read_resume(run_dir, config), f"read {run_dir}") if resume else None
    if stores is None:
        stores = session.on_rank0(lambda: prepare_data(config, progress=progress), "build the cache")
    data = open_data(config, stores, warn=main)

    torch.manual_seed(config.seed)  # the same initial weights on every rank (DDP also copies rank 0's)
    model = build_model(config, data.input_shape).to(device)
    n_out, kind = getattr(model, "n_classes", None), getattr(model, "output", "spikes")
    if n_out is not None and data.max_label >= n_out:
        raise ParameterError(f"labels 0..{data.max_label} do not fit the network's {n_out} outputs; "
                             f"fix the arch's last layer")
    loss_fn = get_loss(config.loss)
    optimizer = make_optimizer(config, model.parameters())
    start, best_epoch, best_score, log = 0, -1, None, RunLog()
    if resumed is not None:
        ck = resumed["ck"]
        load_state_dict_into(model, ck["model"], f"{run_dir}/checkpoint.pt")
        try:
            optimizer.load_state_dict(ck["optimizer"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CacheError(f"{run_dir}/checkpoint.pt: its optimizer state does not fit ({exc})") from None
        start, best_epoch, best_score = ck["epoch"] + 1, int(ck.get("best_epoch", -1)), ck.get("best_score")
        log = RunLog(resumed["records"])
    net = session.wrap(model, sync_bn=config.sync_bn)
    loaders = make_loaders(config, data, rank=session.rank, world_size=session.world_size,
                           pin_memory=device.type == "cuda")
    n_params = sum(p.numel() for p in model.parameters())
    config_text = json_text({**config.to_record(), "input_shape": list(data.input_shape), "device": str(device),
                             "amp": amp, "output": kind, "parameters": n_params, "world_size": session.world_size,
                             "validation_samples": int(data.val_indices.size)})
    evaluate: dict[str, Any] = dict(amp=amp, scale=data.scale, progress=progress, session=session)
    augment = augment_of(config)

    warned: set[str] = set()
    for epoch in range(start, config.epochs):
        te = time.perf_counter()
        seed_everything(rank_seed(config.seed, session.rank, epoch))  # dropout masks: per (seed, rank, epoch)
        lr = lr_at(config, epoch)
        apply_lr(optimizer, lr)
        loaders["train"].set_epoch(epoch)
        tr = run_epoch(net, loaders["train"], loss_fn, config, device, optimizer=optimizer, epoch=epoch,
                       augment=augment, desc=f"epoch {epoch + 1}/{config.epochs} train", **evaluate)
        _check_weights(model, epoch)
        session.sync_buffers(model)  # BatchNorm statistics: rank 0's, as saved
        ev: dict[str, dict[str, Any]] = {
            s: run_epoch(model, loaders[s], loss_fn, config, device, desc=f"epoch {epoch + 1} {s}", **evaluate)
            for s in ("val", "test") if s in loaders}
        record = epoch_record(epoch, lr, tr, ev, seconds=time.perf_counter() - te)
        if main:
            warn_silent_layers(record, warned)  # each silent layer named once per run
        score = ev["val"]["accuracy"] if "val" in ev else None
        improved = best_epoch < 0 or score is None or best_score is None or score > best_score
        if improved:
            best_epoch, best_score = epoch, score
        log.append(record, keep_epochs_below=epoch)
        summary = _summary(config, model, session, log.records, best_epoch, best_score, amp, run_dir, t0, n_params)
        if main:
            state = {"format": 2, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "config": config.to_record(), "epoch": epoch, "best_epoch": best_epoch, "best_score": best_score,
                     "world_size": session.world_size, "input_shape": list(data.input_shape)}
            try:
                commit_epoch(run_dir, state, improved=improved, best_epoch=best_epoch,
                             texts={"config.json": config_text, **log.texts(), "summary.json": json_text(summary)})
            except BaseException:
                session.agree(False, "write the run folder")
                raise
        session.agree(True, "write the run folder")
        if progress:
            val = f" val {ev['val']['accuracy']:.4f}" if "val" in ev else ""
            print(f"epoch {epoch + 1}/{config.epochs}: loss {tr['loss']:.4f} train {tr['accuracy']:.4f}{val} "
                  f"test {ev['test']['accuracy']:.4f} ({record['seconds']:.1f} s)", file=sys.stderr)
    return _summary(config, model, session, log.records, best_epoch, best_score, amp, run_dir, t0, n_params)


def _summary(config: TrainConfig, model: nn.Module, session: Session, records: list[dict[str, Any]],
             best_epoch: int, best_score: float | None, amp: bool, run_dir: Path, t0: float,
             n_params: int) -> dict[str, Any]:
    last = records[-1] if records else {}
    at_best = next((r for r in records if r.get("epoch") == best_epoch), {})
    return {
        "dataset": config.dataset, "arch": getattr(model, "spec", config.arch), "device": str(session.device),
        "amp": amp, "world_size": session.world_size, "rank": session.rank,
        "epochs": int(last["epoch"]) + 1 if last else 0,
        "test_accuracy": last.get("test_accuracy"), "train_accuracy": last.get("train_accuracy"),
        "val_accuracy": last.get("val_accuracy"), "test_loss": last.get("test_loss"),
        "train_loss": last.get("train_loss"), "best_epoch": best_epoch if best_epoch >= 0 else None,
        "best_val_accuracy": best_score, "test_accuracy_at_best": at_best.get("test_accuracy"),
        "spike_rates": last.get("spike_rates"), "seconds": time.perf_counter() - t0, "run_dir": str(run_dir),
        "parameters": n_params, **summary_fields(records),
    }
