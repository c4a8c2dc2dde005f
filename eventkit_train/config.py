"""What a training run depends on: :class:`TrainConfig`, TOML recipes, whole-config checks.

A recipe (``configs/*.toml``) holds a ``[train]`` table (the fields below) and optionally an
``[augment]`` table. Every value is checked when the config is made: types strictly
(``amp = "false"`` is an error, not "on"; ``epochs = 2.5`` is not an integer), numbers
finite and in range, names from their lists. :func:`check_buildable` then checks what
needs the dataset's manifest and the network code (architecture string, neuron map,
neuron options, loss/readout pairing, output size) on the meta device, so that a bad
recipe fails in a second, before any cache is built or run folder made.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventkit.errors import EventkitError, ParameterError

#: the network of ``configs/nmnist-small.toml``, used by ``eventkit train nmnist`` without --arch
NMNIST_SMALL_ARCH = "APk2s2-c32k3s1-BN-PLIF-MPk2s2-c64k3s1-BN-PLIF-MPk2s2-DP-FC100-PLIF-APk10s10"
DEFAULT_ARCH: dict[str, str] = {"nmnist": NMNIST_SMALL_ARCH}

OPTIMIZERS = ("adam", "adamw", "adamax", "sgd")
SCHEDULERS = ("cosine", "none")
SPLIT_BY = ("count", "time")
FRAME_DTYPES = ("uint8", "uint16")
ENCODERS = ("rate", "poisson", "direct", "latency")
READOUTS = ("spikes", "membrane")

# field -> (lowest, highest, lowest allowed itself?) ; None = unbounded
_INTS: dict[str, tuple[int, int | None]] = {
    "T": (1, 1_000_000), "epochs": (0, None), "batch_size": (1, None), "workers": (0, 1024),
    # seeds enter SeedSequence words: >= 2**32 could alias (seed, epoch) pairs
    "shuffle_buffer": (0, None), "seed": (0, 2**32 - 1)}
_OPT_INTS: dict[str, tuple[int, int | None]] = {
    "n_channels": (1, None), "build_workers": (1, None), "t_max": (1, None), "threads": (1, 4096),
    "eval_T": (1, 1_000_000)}
_FLOATS: dict[str, tuple[float, float, bool, bool]] = {  # (lo, hi, lo included, hi included)
    "lr": (0.0, math.inf, False, False), "weight_decay": (0.0, math.inf, True, False),
    "momentum": (0.0, 1.0, True, False), "width": (0.0, math.inf, False, False),
    "val_fraction": (0.0, 0.5, True, True), "dist_timeout_s": (0.0, math.inf, False, False),
    "cache_wait_s": (0.0, math.inf, False, False)}
_OPT_FLOATS = {"input_scale": (0.0, math.inf, False, False), "grad_clip": (0.0, math.inf, False, False)}
_BOOLS = ("merge_polarity", "bias")
_OPT_BOOLS = ("amp", "sync_bn")
_CHOICES: dict[str, tuple[str, ...]] = {"split_by": SPLIT_BY, "dtype": FRAME_DTYPES, "encoder": ENCODERS,
                                        "optimizer": OPTIMIZERS, "scheduler": SCHEDULERS}
_STRS = ("dataset", "train_split", "test_split", "neuron", "loss", "device")
_OPT_STRS = ("root", "cache", "out", "arch", "readout")
_DICTS = ("neuron_kwargs", "neuron_map", "readout_kwargs", "loss_kwargs", "augment", "storage_options")
#: storage option keys whose values are never written to a run folder (credentials)
_SECRET = re.compile(r"key|secret|token|password|credential", re.I)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on (written to ``config.json`` and into checkpoints).

    Data: ``dataset``, ``T`` (time steps = frames per sample), ``eval_T`` (time steps of the
    validation and test passes when event ops frame them on the fly, e.g. a 1.5 s evaluation
    window at 1 ms per step while training sees 300 ms; ``None``: ``T``), ``split_by`` (``count`` /
    ``time``), ``dtype`` (store counts: uint8/uint16), ``merge_polarity``, ``n_channels``
    (audio pooling), ``encoder`` (static datasets), ``root``, ``cache``, ``storage_options``
    (the cache URL's fsspec filesystem arguments, e.g. ``endpoint_url``; credentials belong in
    the environment, and values of keys such as ``key``/``secret``/``token`` are never written
    to the run folder),
    ``train_split``/``test_split``, ``val_fraction`` (share of each class of the training
    split held out for model selection; 0: none), ``workers`` (DataLoader processes),
    ``build_workers`` (cache build), ``shuffle_buffer``, ``input_scale`` (multiplies the
    float frames; ``None``: the store's ``value_scale``), ``augment`` (the ``[augment]``
    table). Network: ``arch`` (notation string, ``None``: the dataset default), ``neuron``,
    ``neuron_kwargs``, ``neuron_map``, ``readout`` (``None``: from the loss),
    ``readout_kwargs``, ``width``, ``bias``. Loss/optimisation: ``loss``, ``loss_kwargs``,
    ``optimizer`` (adam/adamw/adamax/sgd), ``lr`` (for the global batch), ``weight_decay``,
    ``momentum`` (SGD), ``scheduler`` (cosine/none), ``t_max`` (cosine period in epochs,
    ``None``: ``epochs``), ``epochs``, ``batch_size`` (global: split over DDP ranks),
    ``grad_clip`` (max grad norm, ``None``: off), ``amp`` (bf16 autocast; ``None``: on for
    CUDA only), ``device`` (``auto``/``cpu``/``cuda[:i]``), ``seed``, ``threads`` (torch CPU
    threads per process). DDP: ``sync_bn`` (``None``: on for CUDA), ``dist_timeout_s``
    (collectives), ``cache_wait_s`` (ranks waiting for rank 0's cache build). Output:
    ``out`` (run directory; ``None``: ``runs/<dataset>-<UTC time>``).
    """

    dataset: str = "nmnist"
    T: int = 10
    eval_T: int | None = None
    split_by: str = "count"
    dtype: str = "uint16"
    merge_polarity: bool = False
    n_channels: int | None = None
    encoder: str = "direct"
    root: str | None = None
    cache: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    train_split: str = "train"
    test_split: str = "test"
    val_fraction: float = 0.1
    workers: int = 0
    build_workers: int | None = None
    shuffle_buffer: int = 1024
    input_scale: float | None = None
    augment: dict[str, Any] = field(default_factory=dict)
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
    sync_bn: bool | None = None
    dist_timeout_s: float = 1800.0
    cache_wait_s: float = 21600.0
    out: str | None = None

    def __post_init__(self) -> None:
        for name, value in _normalized(self).items():
            object.__setattr__(self, name, value)

    @property
    def eval_steps(self) -> int:
        """Time steps of an evaluation pass: ``eval_T``, else ``T``."""
        return self.T if self.eval_T is None else self.eval_T

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (``None`` values are ignored: 'not given')."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ParameterError(f"TrainConfig has no field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (``from_dict(c.to_dict()) == c``)."""
        return dataclasses.asdict(self)

    def to_record(self) -> dict[str, Any]:
        """:meth:`to_dict` with credential-like storage options redacted: what ``config.json``
        and checkpoints store."""
        out = self.to_dict()
        out["storage_options"] = {k: ("<redacted>" if _SECRET.search(k) else v)
                                  for k, v in out["storage_options"].items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a mapping: a recipe's ``[train]`` table (+ an ``[augment]`` table beside
        it), or the fields at the top level. Errors name ``source`` and the key."""
        if not isinstance(data, Mapping):
            raise ParameterError(f"{source}: expected a table of settings, got {type(data).__name__}")
        data = dict(data)
        if "train" in data and isinstance(data["train"], Mapping):
            top = data
            data = dict(top["train"])
            extra = set(top) - {"train", "augment"}
            if extra:
                raise ParameterError(f"{source}: keys {sorted(extra)} outside [train]; put them inside it")
            if "augment" in top:
                if "augment" in data:
                    raise ParameterError(f"{source}: give the augmentation once, as [augment] or [train.augment]")
                data["augment"] = top["augment"]
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ParameterError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(names)}")
        try:
            return cls(**data)
        except ParameterError as exc:
            raise ParameterError(f"{source}: {str(exc).removeprefix('TrainConfig: ')}") from None


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a TOML recipe (``configs/*.toml``) into a :class:`TrainConfig` (all values checked)."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"recipe {p} not found; see configs/ for the shipped recipes")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ParameterError(f"recipe {p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"recipe {p}: invalid TOML ({exc})") from None
    return TrainConfig.from_dict(data, source=str(p))


# ---------------------------------------------------------------------------------------
# value checks
# ---------------------------------------------------------------------------------------

def _bad(name: str, value: Any, expected: str) -> ParameterError:
    return ParameterError(f"TrainConfig: {name} = {value!r} ({type(value).__name__}) is not allowed; "
                          f"expected {expected}")


def _int(name: str, value: Any, lo: int, hi: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, value, f"an integer >= {lo}")
    if value < lo or (hi is not None and value > hi):
        raise _bad(name, value, f"an integer in [{lo}, {hi if hi is not None else 'inf'}]")
    return value


def _float(name: str, value: Any, lo: float, hi: float, lo_in: bool, hi_in: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(name, value, "a number")
    v = float(value)
    ok = math.isfinite(v) and (v >= lo if lo_in else v > lo) and (v <= hi if hi_in else v < hi)
    if not ok:
        span = f"{'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"
        raise _bad(name, value, f"a finite number in {span}")
    return v


def _finite_leaves(name: str, value: Any) -> None:
    """Numbers inside option tables must be finite (``tau = nan`` is refused)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _bad(f"{name} key", k, "a string")
            _finite_leaves(f"{name}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite_leaves(f"{name}[{i}]", v)
    elif isinstance(value, float) and not math.isfinite(value):
        raise _bad(name, value, "a finite number")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise _bad(name, value, "a string, number, boolean, list or table")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _normalized(cfg: TrainConfig) -> dict[str, Any]:
    """Checked (and canonical: floats as float, names lower-case, tables as dicts) values."""
    out: dict[str, Any] = {}

    def get(name: str) -> Any:
        return getattr(cfg, name)

    for name, (lo, hi) in _INTS.items():
        out[name] = _int(name, get(name), lo, hi)
    for name, (lo, hi) in _OPT_INTS.items():
        out[name] = None if get(name) is None else _int(name, get(name), lo, hi)
    for name, spec in _FLOATS.items():
        out[name] = _float(name, get(name), *spec)
    for name, spec in _OPT_FLOATS.items():
        out[name] = None if get(name) is None else _float(name, get(name), *spec)
    for name in _BOOLS + _OPT_BOOLS:
        v = get(name)
        if not isinstance(v, bool) and not (v is None and name in _OPT_BOOLS):
            raise _bad(name, v, "true or false" + (" (or unset)" if name in _OPT_BOOLS else ""))
    for name in _STRS + _OPT_STRS + tuple(_CHOICES):
        v = get(name)
        if v is None and name in _OPT_STRS:
            continue
        if not isinstance(v, str) or not v.strip():
            raise _bad(name, v, "a non-empty string")
    for name, choices in _CHOICES.items():
        v = get(name).lower()
        if v not in choices:
            raise _bad(name, get(name), f"one of {', '.join(choices)}")
        out[name] = v
    if cfg.readout is not None and cfg.readout.lower() not in READOUTS:
        raise _bad("readout", cfg.readout, f"one of {', '.join(READOUTS)} (or unset: from the loss)")
    if cfg.train_split == cfg.test_split:
        raise ParameterError(f"TrainConfig: train_split and test_split are both {cfg.train_split!r}; "
                             f"the test split must be held out")
    for name in _DICTS:
        v = get(name)
        if not isinstance(v, Mapping):
            raise _bad(name, v, "a table (dict)")
        _finite_leaves(name, v)
        out[name] = _plain(v)
    for k, v in cfg.neuron_map.items():
        if not isinstance(v, str):
            raise _bad(f"neuron_map.{k}", v, "a neuron name")
    if "reduction" in cfg.loss_kwargs:  # the trainer averages over samples itself (and logs that mean)
        raise ParameterError("TrainConfig: loss_kwargs may not set 'reduction'; training uses the batch mean "
                             "and the logged loss is the mean per sample")
    out["augment"] = _checked_augment(out["augment"])
    return out


def _checked_augment(table: dict[str, Any]) -> dict[str, Any]:
    """The ``[augment]`` table, validated by :mod:`eventkit_train.augment` when present."""
    if not table:
        return table
    try:
        from eventkit_train.augment import AugmentConfig
    except ImportError:
        raise ParameterError("TrainConfig: augment is set but this eventkit has no augmentation module "
                             "(eventkit_train.augment); remove the [augment] table") from None
    AugmentConfig.from_table(table, source="augment")
    return table


# ---------------------------------------------------------------------------------------
# checks that need the manifest and the network code (no data, no cache)
# ---------------------------------------------------------------------------------------

def dataset_spec(config: TrainConfig):
    """The dataset's manifest (:class:`eventkit.datasets.DatasetSpec`); unknown names are errors."""
    from eventkit.datasets import get_dataset

    return get_dataset(config.dataset)


def expected_input_shape(config: TrainConfig, spec=None) -> tuple[int, ...]:
    """One sample per time step, channels first, as the cache will deliver it:
    vision ``(P, H, W)`` (``P = 1`` with ``merge_polarity``), audio ``(P, C')``, static ``(C, H, W)``."""
    spec = dataset_spec(config) if spec is None else spec
    a, b, c = (int(v) for v in spec.sensor_size)
    if spec.kind == "static":  # (W, H, C)
        return (c, b, a)
    if spec.kind == "audio":  # (C, 1, P)
        return (1 if config.merge_polarity else c, config.n_channels or a)
    return (1 if config.merge_polarity else c, b, a)  # vision (W, H, P)


def loss_input(loss: str) -> str:
    """``"spikes"`` or ``"membrane"``: what the loss consumes (``losses.LOSS_INPUT``); the
    name is read as :func:`~eventkit_train.losses.get_loss` reads it."""
    from eventkit_train.losses import LOSS_INPUT, loss_key

    return LOSS_INPUT[loss_key(loss)]


def resolve_arch(config: TrainConfig) -> str:
    """The config's network string (or the dataset's default)."""
    arch = config.arch or DEFAULT_ARCH.get(config.dataset.lower())
    if arch is None:
        raise ParameterError(f"no default network for dataset {config.dataset!r}: give --arch SPEC or "
                             f"--config configs/<recipe>.toml")
    return arch


def _check_eval_framing(config: TrainConfig) -> None:
    """``eval_T`` differs from ``T``: only evaluation passes framed on the fly from the event
    store can have another number of steps (the frame stores hold ``T`` frames per sample)."""
    from eventkit_train.augment import AugmentConfig, needs_event_store

    augment = AugmentConfig.from_table(config.augment, source="augment") if config.augment else None
    if not needs_event_store(augment, train=False):
        raise ParameterError(f"eval_T = {config.eval_T} differs from T = {config.T}, but the evaluation passes read "
                             f"the frame store, which holds T = {config.T} frames per sample; eval_T needs event ops "
                             f"with an evaluation part that frame validation and test on the fly (e.g. time_crop "
                             f"with eval_duration_us), or leave eval_T unset")


def check_buildable(config: TrainConfig) -> tuple[int, ...]:
    """Check what the values alone cannot: the dataset exists (and, with its kind, the data
    options fit), the network builds for the dataset's sample shape on the meta device (no
    memory), the loss exists and consumes what the network outputs, and the network has
    enough outputs for the dataset's classes. Returns the expected input shape."""
    from eventkit_train.models import build

    spec = dataset_spec(config)
    for split in (config.train_split, config.test_split):
        if split not in spec.splits:
            raise ParameterError(f"{spec.name} has no split {split!r}; splits: {', '.join(spec.splits)}")
    if spec.kind != "audio" and config.n_channels is not None:
        raise ParameterError(f"n_channels applies to audio datasets only; {spec.name} is {spec.kind}")
    if config.eval_steps != config.T:
        _check_eval_framing(config)
    shape = expected_input_shape(config, spec)
    wants = loss_input(config.loss)
    readout = config.readout or ("membrane" if wants == "membrane" else "spikes")
    kw = dict(readout=readout, neuron_map=config.neuron_map or None, readout_kwargs=config.readout_kwargs or None,
              bias=config.bias, width=config.width, **config.neuron_kwargs)
    import torch

    try:
        with torch.device("meta"):
            net = build(resolve_arch(config), shape, config.neuron, **kw)
    except EventkitError:
        raise
    except (NotImplementedError, RuntimeError):  # a layer that cannot be made on the meta device
        net = build(resolve_arch(config), shape, config.neuron, **kw)
    kind = getattr(net, "output", "spikes")
    if wants != kind:
        raise ParameterError(f"loss {config.loss!r} consumes {wants} but the network outputs {kind}; "
                             f"set readout = '{wants}' or pick another loss")
    n_out = getattr(net, "n_classes", None)
    if n_out is not None and spec.classes and n_out < len(spec.classes):
        raise ParameterError(f"the network has {n_out} outputs but {spec.name} has {len(spec.classes)} classes; "
                             f"fix the arch's last layer")
    return shape


__all__ = ["TrainConfig", "load_config", "check_buildable", "expected_input_shape", "loss_input", "resolve_arch",
           "dataset_spec", "DEFAULT_ARCH", "NMNIST_SMALL_ARCH", "OPTIMIZERS", "SCHEDULERS"]
