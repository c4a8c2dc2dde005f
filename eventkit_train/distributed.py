"""Several processes training one model (``torch.distributed``), set up from the launcher's environment.

Launchers: ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and SLURM's ``srun`` (``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS`` — set by
``srun`` only, so a batch script that runs ``eventkit train`` without ``srun`` trains as one
process —, ``SLURM_LOCALID``; ``MASTER_ADDR`` = the first host of ``SLURM_STEP_NODELIST``
unless set, ``MASTER_PORT`` = ``20000 + SLURM_JOB_ID % 20000`` unless set). Anything else is
one process and no process group.

:class:`Session` owns the process group of a run: NCCL on CUDA (rank ``r`` uses
``cuda:LOCAL_RANK``, or ``cuda:0`` when the launcher shows each task one GPU), gloo on the
CPU; sums over ranks; a run-on-rank-0 step that the others wait for (the cache build) on a
separate gloo group with its own generous timeout, whose failure reaches every rank as
one line.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from eventkit.errors import CacheError, EventkitError, ParameterError

T = TypeVar("T")

__all__ = ["LaunchEnv", "detect_launch", "first_host", "Session", "rank_seed", "DistributedError"]


class DistributedError(EventkitError, RuntimeError):
    """A rank could not join, or lost, the process group."""


@dataclass(frozen=True)
class LaunchEnv:
    """Where this process sits: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    launcher: str = "single"  # "torchrun" | "slurm" | "single"


def first_host(nodelist: str) -> str:
    """First host of a SLURM node list: ``gpu[07-09,12],cpu1`` -> ``gpu07``."""
    depth, head = 0, ""
    for ch in nodelist.strip():
        if ch == "," and depth == 0:
            break
        depth += (ch == "[") - (ch == "]")
        head += ch
    if not head:
        raise ParameterError(f"SLURM node list {nodelist!r} names no host")
    return re.sub(r"\[([^\]]*)\]", lambda m: re.split(r"[-,]", m.group(1))[0], head)


def _env_int(env: Mapping[str, str], key: str) -> int:
    try:
        return int(env[key])
    except ValueError:
        raise ParameterError(f"environment variable {key}={env[key]!r} is not an integer") from None


def detect_launch(env: Mapping[str, str] | None = None) -> LaunchEnv:
    """Read the launcher's variables (``torchrun`` first, then ``srun``)."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" in env and "RANK" in env:
        return LaunchEnv(_env_int(env, "RANK"), _env_int(env, "WORLD_SIZE"),
                         _env_int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0,
                         env.get("MASTER_ADDR"), _env_int(env, "MASTER_PORT") if env.get("MASTER_PORT") else None,
                         "torchrun")
    if "SLURM_STEP_NUM_TASKS" in env and "SLURM_PROCID" in env:
        world = _env_int(env, "SLURM_STEP_NUM_TASKS")
        nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
        addr = env.get("MASTER_ADDR") or (first_host(nodes) if nodes else None)
        if env.get("MASTER_PORT"):
            port_n: int | None = _env_int(env, "MASTER_PORT")
        else:
            port_n = 20000 + _env_int(env, "SLURM_JOB_ID") % 20000 if "SLURM_JOB_ID" in env else None
        return LaunchEnv(_env_int(env, "SLURM_PROCID"), world, _env_int(env, "SLURM_LOCALID")
                         if "SLURM_LOCALID" in env else 0, addr, port_n, "slurm")
    return LaunchEnv()


def rank_seed(seed: int, rank: int, epoch: int | None = None) -> int:
    """Seed of one rank (and epoch): ``seed`` itself for rank 0 without an epoch, else a
    64-bit mix of ``(seed, rank, epoch)`` (NumPy ``SeedSequence``)."""
    if rank == 0 and epoch is None:
        return int(seed)
    words = [int(seed), int(rank)] + ([] if epoch is None else [int(epoch)])
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> 1)


def _device_for(config_device: str, launch: LaunchEnv) -> torch.device:
    """``auto``/``cuda`` -> this rank's GPU; ``cpu`` stays; ``cuda:i`` only for one process."""
    name = config_device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ParameterError(f"device {config_device!r}: {exc}; use cpu, cuda or cuda:<index>") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(f"device {config_device!r} requested but torch sees no CUDA GPU; use --device cpu")
        if launch.world_size > 1:
            if dev.index is not None:
                raise ParameterError(f"device {config_device!r}: under {launch.launcher} every rank uses the GPU "
                                     f"of its LOCAL_RANK; give --device cuda (or auto)")
            n = torch.cuda.device_count()
            if launch.local_rank < n:
                return torch.device("cuda", launch.local_rank)
            if n == 1:  # the launcher shows each task its own GPU (CUDA_VISIBLE_DEVICES per task)
                return torch.device("cuda", 0)
            raise ParameterError(f"local rank {launch.local_rank} has no GPU of its own ({n} visible); start at "
                                 f"most {n} processes per node")
    elif dev.type != "cpu":
        raise ParameterError(f"device {config_device!r}: eventkit trains on cpu or cuda")
    return dev


class Session:
    """The process group of one run (or a stand-in for one process)."""

    def __init__(self, device: str = "auto", *, timeout_s: float = 1800.0, wait_s: float = 21600.0,
                 launch: LaunchEnv | None = None):
        if launch is None:
            launch = detect_launch()
            if dist.is_available() and dist.is_initialized():  # a process group made by the caller wins
                launch = LaunchEnv(dist.get_rank(), dist.get_world_size(),
                                   launch.local_rank if launch.world_size > 1 else dist.get_rank(),
                                   launch.master_addr, launch.master_port, launch.launcher)
        self.launch = launch
        self.rank, self.world_size = self.launch.rank, self.launch.world_size
        self.device = _device_for(device, self.launch)
        self.wait_s = float(wait_s)
        self._own_group = False
        self._wait_group = None
        if self.world_size > 1:
            if not 0 <= self.rank < self.world_size:
                raise ParameterError(f"rank {self.rank} is outside world size {self.world_size}")
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                addr, port = self.launch.master_addr, self.launch.master_port
                if not addr or not port:
                    raise ParameterError(f"{self.launch.launcher}: MASTER_ADDR/MASTER_PORT unknown; export them")
                try:
                    dist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=self.rank,
                                            world_size=self.world_size, timeout=timedelta(seconds=timeout_s))
                except Exception as exc:  # noqa: BLE001 - torch raises several kinds
                    raise DistributedError(f"rank {self.rank}/{self.world_size} could not join the process group at "
                                           f"{addr}:{port} ({_first_line(exc)})") from None
                self._own_group = True
            self._wait_group = dist.new_group(backend="gloo", timeout=timedelta(seconds=self.wait_s))

    # ------------------------------------------------------------------ basics
    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def reduce_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def close(self) -> None:
        """Destroy the process group if this session made it (else only its waiting group)."""
        if self._own_group and dist.is_initialized():
            dist.destroy_process_group()
        elif self._wait_group is not None and dist.is_initialized():
            dist.destroy_process_group(self._wait_group)
        self._own_group, self._wait_group = False, None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ collectives
    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (a new tensor on ``tensor``'s device)."""
        if not self.enabled:
            return tensor
        t = tensor.detach().to(self.reduce_device).clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.to(tensor.device)

    def min_int(self, value: int) -> int:
        """Smallest of an integer over ranks."""
        if not self.enabled:
            return int(value)
        t = torch.tensor([int(value)], dtype=torch.int64, device=self.reduce_device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def broadcast(self, obj: T) -> T:
        """Rank 0's value of a small picklable object (a path, a config dict, a checkpoint dict
        that rank 0 read with ``weights_only=True``)."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self._wait_group)
        return box[0]  # type: ignore[return-value]

    def sync_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank."""
        if self.enabled:
            for buf in model.buffers():
                dist.broadcast(buf.data, src=0)

    def agree(self, ok: bool, what: str) -> None:
        """Every rank learns whether all ranks succeeded at ``what``; the failed ones re-raise
        their own error, the others raise this one-line error."""
        if self.enabled and self.min_int(1 if ok else 0) == 0 and ok:
            raise DistributedError(f"another rank failed to {what}; see its message")

    def on_rank0(self, fn: Callable[[], T], what: str) -> T:
        """Run ``fn`` on rank 0 while the others wait (up to ``wait_s``); every rank returns
        rank 0's result, or raises its error as one line."""
        if not self.enabled:
            return fn()
        result: list[Any] = [None]
        error: BaseException | None = None
        if self.is_main:
            try:
                result = [("ok", fn())]
            except Exception as exc:  # noqa: BLE001 - forwarded to the waiting ranks, then re-raised
                error = exc
                result = [("error", f"{type(exc).__name__}: {_first_line(exc)}")]
        try:
            dist.broadcast_object_list(result, src=0, group=self._wait_group)
        except Exception as exc:  # noqa: BLE001 - a timeout or a lost rank 0: torch raises several kinds
            raise CacheError(f"rank {self.rank}: waited for rank 0 to {what} and gave up after {self.wait_s:.0f} s "
                             f"or lost it ({_first_line(exc)}); if the build is just slow, raise cache_wait_s "
                             f"(--cache-wait) or build the cache first with `eventkit frames`") from None
        if error is not None:
            raise error
        status, payload = result[0]
        if status != "ok":
            raise CacheError(f"rank 0 failed to {what}: {payload}")
        return payload

    def wrap(self, model: nn.Module, *, sync_bn: bool | None) -> nn.Module:
        """``DistributedDataParallel`` around ``model`` (BatchNorm made ``SyncBatchNorm`` when
        ``sync_bn``, default on CUDA; SyncBatchNorm has no CPU kernels)."""
        if not self.enabled:
            return model
        use_sync = self.device.type == "cuda" if sync_bn is None else bool(sync_bn)
        if use_sync:
            if self.device.type != "cuda":
                raise ParameterError("sync_bn = true needs CUDA (torch's SyncBatchNorm has no CPU kernels)")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
