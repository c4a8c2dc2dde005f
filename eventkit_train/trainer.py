"""The training loop behind ``eventkit train``: cache -> streaming loader -> network -> loss.

One screen of loop (:func:`train`), configured by a frozen :class:`TrainConfig` read from a
TOML recipe (``configs/*.toml``) with CLI overrides. Per epoch it logs loss, train/test
accuracy, the spike rate of every neuron layer (forward hooks) and the latency curve
(test accuracy from the outputs of steps 1..t) to ``metrics.csv`` / ``metrics.json``;
``checkpoint.pt`` (last epoch) and ``best.pt`` (best test accuracy) are one dict
``{model, optimizer, scheduler, config, epoch, best, rng}`` each (+ ``cuda_rng`` on a GPU), read back with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sys
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eventkit.errors import CacheError, ParameterError

from .metrics import RunLog, SpikeRecorder, latency_correct, predict

#: static image datasets (spike-encoded through ``eventkit.build.encode_cache``)
STATIC_DATASETS = frozenset({"mnist", "fashionmnist", "cifar10"})

#: the network of ``configs/nmnist-small.toml``, used by ``eventkit train nmnist`` without --arch
NMNIST_SMALL_ARCH = "APk2s2-c32k3s1-BN-PLIF-MPk2s2-c64k3s1-BN-PLIF-MPk2s2-DP-FC100-PLIF-APk10s10"
DEFAULT_ARCH: dict[str, str] = {"nmnist": NMNIST_SMALL_ARCH}

OPTIMIZERS = ("adam", "adamw", "adamax", "sgd")
SCHEDULERS = ("cosine", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on (written to ``config.json`` and into checkpoints).

    Data: ``dataset``, ``T`` (time steps = frames per sample), ``split_by`` (``count`` /
    ``time``), ``dtype``, ``merge_polarity``, ``n_channels`` (audio pooling), ``encoder``
    (static datasets), ``root``, ``cache``, ``train_split``/``test_split``, ``workers``
    (DataLoader processes), ``build_workers`` (cache build), ``shuffle_buffer``,
    ``input_scale`` (multiplies the float frames; ``None``: the store's ``value_scale``).
    Network: ``arch`` (notation string, ``None``: the dataset default), ``neuron``,
    ``neuron_kwargs``, ``neuron_map``, ``readout`` (``None``: from the loss),
    ``readout_kwargs``, ``width``, ``bias``. Loss/optimisation: ``loss``, ``loss_kwargs``,
    ``optimizer`` (adam/adamw/adamax/sgd), ``lr``, ``weight_decay``, ``momentum`` (SGD),
    ``scheduler`` (cosine/none), ``t_max`` (cosine period in epochs, ``None``: ``epochs``),
    ``epochs``, ``batch_size``, ``grad_clip`` (max grad norm, ``None``: off), ``amp``
    (bf16 autocast; ``None``: on for CUDA only), ``device`` (``auto``/``cpu``/``cuda[:i]``),
    ``seed``, ``threads`` (torch CPU threads, ``None``: torch's default). Output: ``out``
    (run directory; ``None``: ``runs/<dataset>-<UTC time>``).
    """

    dataset: str = "nmnist"
    T: int = 10
    split_by: str = "count"
    dtype: str = "uint16"
    merge_polarity: bool = False
    n_channels: int | None = None
    encoder: str = "direct"
    root: str | None = None
    cache: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    workers: int = 0
    build_workers: int | None = None
    shuffle_buffer: int = 1024
    input_scale: float | None = None
    arch: str | None = None
    neuron: str = "plif"
    neuron_kwargs: dict[str, Any] = field(default_factory=dict)
    neuron_map: dict[str, str] = field(default_factory=dict)
    readout: str | None = None
    readout_kwargs: dict[str, Any] = field(default_factory=dict)
    width: float = 1.0
    bias: bool = False
    loss: str = "rate_mse"
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "cosine"
    t_max: int | None = None
    epochs: int = 12
    batch_size: int = 32
    grad_clip: float | None = None
    amp: bool | None = None
    device: str = "auto"
    seed: int = 0
    threads: int | None = None
    out: str | None = None

    def __post_init__(self) -> None:
        checks = [("T", self.T >= 1), ("epochs", self.epochs >= 0), ("batch_size", self.batch_size >= 1),
                  ("lr", self.lr > 0), ("workers", self.workers >= 0), ("width", self.width > 0),
                  ("weight_decay", self.weight_decay >= 0)]
        for name, ok in checks:
            if not ok:
                raise ParameterError(f"TrainConfig: {name}={getattr(self, name)!r} is out of range")
        if self.optimizer.lower() not in OPTIMIZERS:
            raise ParameterError(f"TrainConfig: optimizer={self.optimizer!r}; one of {OPTIMIZERS}")
        if self.scheduler.lower() not in SCHEDULERS:
            raise ParameterError(f"TrainConfig: scheduler={self.scheduler!r}; one of {SCHEDULERS}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ParameterError(f"TrainConfig: grad_clip={self.grad_clip} must be > 0 (or unset)")
        if self.t_max is not None and self.t_max < 1:
            raise ParameterError(f"TrainConfig: t_max={self.t_max} must be >= 1 (or unset)")
        if "reduction" in self.loss_kwargs:  # the trainer averages over samples itself (and logs that mean)
            raise ParameterError("TrainConfig: loss_kwargs may not set 'reduction'; training uses the batch mean "
                                 "and the logged loss is the mean per sample")

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (``None`` values are ignored: 'not given')."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ParameterError(f"TrainConfig has no field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stored in ``config.json`` and in checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> "TrainConfig":
        """Build from a mapping (a TOML recipe's top level or its ``[train]`` table)."""
        if "train" in data and isinstance(data["train"], Mapping):
            extra = set(data) - {"train"}
            if extra:
                raise ParameterError(f"{source}: keys {sorted(extra)} outside [train]; put them inside it")
            data = data["train"]
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ParameterError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(names)}")
        return cls(**{k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()})


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a TOML recipe (``configs/*.toml``) into a :class:`TrainConfig`."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"recipe {p} not found; see configs/ for the shipped recipes")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"recipe {p}: invalid TOML ({exc})") from exc
    return TrainConfig.from_dict(data, source=str(p))


# ---------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------

def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ParameterError(f"device {name!r}: {exc}; use cpu, cuda or cuda:<index>") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {name!r} requested but torch sees no CUDA GPU; use --device cpu")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def loss_input(loss: str) -> str:
    """``"spikes"`` or ``"membrane"``: what the loss consumes (``losses.LOSS_INPUT``); the
    name is read as :func:`~eventkit_train.losses.get_loss` reads it."""
    from eventkit_train.losses import get_loss

    return get_loss(loss).loss_input


def prepare_data(config: TrainConfig, *, progress: bool = True) -> dict[str, str]:
    """Build (or resume, or just open) the cache stores of the train and test splits;
    returns ``{split: store URL}``."""
    from eventkit import build as ek_build

    splits = [config.train_split, config.test_split]
    if config.dataset.lower() in STATIC_DATASETS:
        res = ek_build.encode_cache(config.dataset, T=config.T, encoder=config.encoder, seed=config.seed,
                                    root=config.root, cache=config.cache, workers=config.build_workers,
                                    splits=splits, progress=progress)
    else:
        res = ek_build.build_cache(config.dataset, T=config.T, split_by=config.split_by, dtype=config.dtype,
                                   root=config.root, cache=config.cache, workers=config.build_workers,
                                   splits=splits, merge_polarity=config.merge_polarity,
                                   n_channels=config.n_channels, progress=progress)
    missing = [s for s in splits if s not in res.stores]
    if missing:
        raise CacheError(f"{config.dataset}: the cache build returned no store for split(s) {missing}")
    return dict(res.stores)


def build_model(config: TrainConfig, input_shape: tuple[int, ...]) -> nn.Module:
    """The network of a config for one sample shape (``[P, H, W]`` / ``[P, C]``)."""
    from eventkit_train.models import build

    arch = config.arch or DEFAULT_ARCH.get(config.dataset.lower())
    if arch is None:
        raise ParameterError(f"no default network for dataset {config.dataset!r}: give --arch SPEC or "
                             f"--config configs/<recipe>.toml")
    readout = config.readout or ("membrane" if loss_input(config.loss) == "membrane" else "spikes")
    return build(arch, input_shape, config.neuron, readout=readout, neuron_map=config.neuron_map or None,
                 readout_kwargs=config.readout_kwargs or None, bias=config.bias, width=config.width,
                 **config.neuron_kwargs)


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """Adam / AdamW / Adamax / SGD (momentum) with the config's lr and weight decay."""
    name = config.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}[name]
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer):
    """Cosine annealing over ``t_max`` (default ``epochs``) epochs, stepped once per epoch;
    ``none``: a constant learning rate."""
    if config.scheduler.lower() == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.t_max or config.epochs))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def replan_cosine(scheduler, config: TrainConfig) -> None:
    """After a resume with another ``epochs`` (or ``t_max``): stretch the restored cosine
    schedule to the new period, continuing from the current epoch on the closed form
    ``lr(e) = eta_min + (lr0 - eta_min) (1 + cos(pi e / T_max)) / 2`` (the restored period
    would take the rate to ``eta_min`` at the old end and then back up). No-op otherwise."""
    if not isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        return
    t_max = max(1, config.t_max or config.epochs)
    if scheduler.T_max == t_max:
        return
    scheduler.T_max = t_max
    e = min(scheduler.last_epoch, t_max)
    factor = (1 + math.cos(math.pi * e / t_max)) / 2
    for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs):
        group["lr"] = scheduler.eta_min + (base - scheduler.eta_min) * factor
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


def _store_scale(meta: Mapping[str, Any]) -> float:
    for where in (meta, meta.get("params", {}) if isinstance(meta.get("params"), Mapping) else {}):
        if "value_scale" in where:
            return float(where["value_scale"])
    return 1.0


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then atomic replace."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint dict with ``weights_only=True`` (no pickled code is executed)."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"checkpoint {p} not found")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError on damaged files
        raise CacheError(f"checkpoint {p} cannot be read ({type(exc).__name__}: {exc}); delete it or drop --resume") from exc


# ---------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------

def run_epoch(model: nn.Module, loader, loss_fn, config: TrainConfig, device: torch.device, *, amp: bool,
              scale: float, optimizer: torch.optim.Optimizer | None = None, progress: bool = False,
              desc: str = "") -> dict[str, Any]:
    """One pass over ``loader``; trains when ``optimizer`` is given, else evaluates (no grad,
    spike rates and latency curve recorded). Returns the epoch's numbers."""
    from tqdm import tqdm

    from eventkit.loader import to_device

    train = optimizer is not None
    model.train(train)
    # a DistributedDataParallel / DataParallel wrapper hides the SpikingNet's attributes
    net = model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model
    kind = getattr(net, "output", "spikes")
    n = 0
    # running sums stay on the device (no host sync per batch except for the progress bar)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    n_correct = torch.zeros((), dtype=torch.int64, device=device)
    lat = torch.zeros(config.T, dtype=torch.int64, device=device)
    recorder = SpikeRecorder(net) if not train else None
    total = None
    try:
        total = math.ceil(len(loader.dataset) / config.batch_size)
    except TypeError:
        pass
    bar = tqdm(loader, total=total, desc=desc, leave=False, disable=not progress, file=sys.stderr)
    with torch.set_grad_enabled(train), (recorder if recorder is not None else _Null()):
        for i, batch in enumerate(bar):
            x, y = to_device(batch, device, non_blocking=device.type == "cuda")
            if scale != 1.0:
                x = x * scale
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(x)
            out = out.float()
            if i == 0 and (int(y.max()) >= out.shape[-1] or int(y.min()) < 0):
                raise ParameterError(f"labels {int(y.min())}..{int(y.max())} do not fit the network's "
                                     f"{out.shape[-1]} outputs; fix the arch's last layer")
            loss = loss_fn(out, y, **config.loss_kwargs)
            if train:
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
            if progress and i % 5 == 0:
                bar.set_postfix(loss=f"{float(loss_sum) / n:.4f}", acc=f"{int(n_correct) / n:.3f}")
    bar.close()
    if n == 0:
        raise CacheError(f"{desc or 'loader'}: the data split yielded no samples")
    res: dict[str, Any] = {"loss": float(loss_sum) / n, "accuracy": int(n_correct) / n, "samples": n}
    if recorder is not None:
        res["spike_rates"] = recorder.rates()
        res["latency_accuracy"] = (lat.double().cpu() / n).tolist()
    return res


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<dataset>-<UTC yyyymmdd-hhmmss>``."""
    return Path("runs") / f"{config.dataset}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True,
          stores: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Train and evaluate per ``config``; returns the summary (also ``summary.json``).

    ``stores`` (``{split: store URL}``) skips the cache build. The summary has at least
    ``test_accuracy`` and ``train_accuracy`` (last epoch), ``best_test_accuracy``, ``epochs``
    (completed), ``seconds`` (this call), ``run_dir``, ``device``.
    """
    from eventkit.loader import FrameDataset, make_loader
    from eventkit_train.losses import get_loss

    t0 = time.perf_counter()
    if config.threads is not None:
        torch.set_num_threads(int(config.threads))
    device = resolve_device(config.device)
    amp = device.type == "cuda" if config.amp is None else bool(config.amp)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest convs
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    ckpt_path = run_dir / "checkpoint.pt"
    log = RunLog(run_dir)

    seed_everything(config.seed)
    stores = dict(stores) if stores is not None else prepare_data(config, progress=progress)
    train_ds = FrameDataset(stores[config.train_split])
    frame_shape = tuple(int(d) for d in train_ds.frame_shape)
    if frame_shape[0] != config.T:
        raise CacheError(f"store {stores[config.train_split]} has T={frame_shape[0]} but the config asks T={config.T}")
    input_shape = frame_shape[1:]
    scale = config.input_scale if config.input_scale is not None else _store_scale(train_ds.meta)

    model = build_model(config, input_shape).to(device)
    loss_fn = get_loss(config.loss)
    kind = getattr(model, "output", "spikes")
    if loss_input(config.loss) != kind:
        raise ParameterError(f"loss {config.loss!r} consumes {loss_input(config.loss)} but the network outputs "
                             f"{kind}; set readout = '{loss_input(config.loss)}' or pick another loss")
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    start_epoch, best = 0, -1.0
    if resume and not ckpt_path.exists():  # a requeued cluster job passes --resume on its first run too
        print(f"--resume: no checkpoint at {ckpt_path}; starting a fresh run", file=sys.stderr)
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, map_location=device)
        old = ck.get("config", {})
        for key in ("dataset", "T", "arch", "neuron", "readout", "width", "loss", "split_by"):
            if old.get(key) != getattr(config, key):
                raise ParameterError(f"--resume: {ckpt_path} was trained with {key}={old.get(key)!r}, "
                                     f"not {getattr(config, key)!r}; use another --out or the same options")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        replan_cosine(scheduler, config)
        start_epoch, best = int(ck["epoch"]) + 1, float(ck["best"])
        if "rng" in ck:
            torch.set_rng_state(ck["rng"].cpu())
        if device.type == "cuda" and "cuda_rng" in ck:
            torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), device)
        log.load()
    log.write_config({**config.to_dict(), "input_shape": list(input_shape), "device": str(device), "amp": amp,
                      "output": kind, "parameters": sum(p.numel() for p in model.parameters())})

    common = dict(workers=config.workers, seed=config.seed, shuffle_buffer=config.shuffle_buffer,
                  pin_memory=device.type == "cuda")
    train_loader = make_loader(stores[config.train_split], config.batch_size, shuffle=True, **common)
    test_loader = make_loader(stores[config.test_split], config.batch_size, shuffle=False, **common)

    last: dict[str, Any] = {}
    epoch = start_epoch - 1
    for epoch in range(start_epoch, config.epochs):
        te = time.perf_counter()
        train_loader.set_epoch(epoch)
        tr = run_epoch(model, train_loader, loss_fn, config, device, amp=amp, scale=scale, optimizer=optimizer,
                       progress=progress, desc=f"epoch {epoch + 1}/{config.epochs} train")
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        ev = run_epoch(model, test_loader, loss_fn, config, device, amp=amp, scale=scale,
                       progress=progress, desc=f"epoch {epoch + 1}/{config.epochs} test")
        last = {"epoch": epoch, "lr": lr, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"],
                "test_loss": ev["loss"], "test_accuracy": ev["accuracy"], "seconds": time.perf_counter() - te,
                "spike_rates": ev["spike_rates"], "latency_accuracy": ev["latency_accuracy"]}
        log.append(last, keep_epochs_below=epoch)
        improved = ev["accuracy"] > best
        best = max(best, ev["accuracy"])
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "config": config.to_dict(), "epoch": epoch, "best": best,
                 "rng": torch.get_rng_state()}
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        save_checkpoint(ckpt_path, state)
        if improved:
            save_checkpoint(run_dir / "best.pt", state)
        if progress:
            print(f"epoch {epoch + 1}/{config.epochs}: loss {tr['loss']:.4f} train {tr['accuracy']:.4f} "
                  f"test {ev['accuracy']:.4f} ({last['seconds']:.1f} s)", file=sys.stderr)
    if not last and log.records:
        last = log.records[-1]
    summary = {
        "dataset": config.dataset, "arch": getattr(model, "spec", config.arch), "device": str(device), "amp": amp,
        "epochs": epoch + 1, "test_accuracy": last.get("test_accuracy"), "train_accuracy": last.get("train_accuracy"),
        "test_loss": last.get("test_loss"), "train_loss": last.get("train_loss"),
        "best_test_accuracy": best if best >= 0 else None, "spike_rates": last.get("spike_rates"),
        "seconds": time.perf_counter() - t0, "run_dir": str(run_dir),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


__all__ = ["TrainConfig", "load_config", "train", "run_epoch", "build_model", "prepare_data", "make_optimizer",
           "make_scheduler", "resolve_device", "seed_everything", "save_checkpoint", "load_checkpoint",
           "loss_input", "DEFAULT_ARCH", "NMNIST_SMALL_ARCH", "STATIC_DATASETS"]
