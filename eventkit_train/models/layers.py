"""Layers of the spiking networks, all time-first (``[T, B, ...]``).

Stateless layers (conv, BN, pooling, linear, flatten) run once on ``[T·B, ...]``
(time folded into the batch, :class:`TimeFolded`); neurons, spiking dropout and the
readout see the full ``[T, B, ...]`` sequence.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eventkit.errors import ParameterError


class TimeFolded(nn.Module):
    """Run a stateless module on ``[T, B, ...]`` by folding time into the batch.

    ``x [T, B, *S] -> module(x.reshape(T·B, *S)) -> [T, B, *S']``.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        T, B = x.shape[:2]
        y = self.module(x.flatten(0, 1))
        return y.unflatten(0, (T, B))

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        return "time folded into batch"


class SpikeMaxPool2d(TimeFolded):
    """Spike max-pooling (PLIF, ``001_…`` Sect. 3): max over each ``k×k`` window of the
    binary spike map, per time step. ``[T, B, C, H, W] -> [T, B, C, H', W']``."""

    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__(nn.MaxPool2d(kernel_size, stride if stride is not None else kernel_size))


class AvgPool2d(TimeFolded):
    """Average pooling of ``[T, B, C, H, W]`` maps per time step."""

    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__(nn.AvgPool2d(kernel_size, stride if stride is not None else kernel_size))


class _SumPool(nn.Module):
    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.kernel_size) * float(self.kernel_size ** 2)


class SumPool2d(TimeFolded):
    """SLAYER's aggregate pooling ``<N>a``: the sum of each ``N×N`` window (stride N),
    per time step (``004_…`` Sect. IV; SLAYER weights the sum by 1.1·θ, here 1)."""

    def __init__(self, kernel_size: int):
        super().__init__(_SumPool(kernel_size))


class SpikingDropout(nn.Module):
    """Dropout with one Bernoulli mask per sample and neuron, shared by all time steps
    (``000_…`` Sect. 4.2, after Lee et al.). Kept units are scaled by ``1/(1-p)``.

    ``x [T, B, ...] -> [T, B, ...]``; identity in eval mode or when ``p == 0``.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ParameterError(f"SpikingDropout: p must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty(x.shape[1:], device=x.device, dtype=x.dtype).bernoulli_(keep) / keep
        return x * mask.unsqueeze(0)

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        return f"p={self.p}"


class VotingLayer(nn.Module):
    """Average pooling over groups of output neurons (the voting layer of ``001_…``
    Sect. 4.1 and ``APk10s10`` of ``000_…`` Table 1): ``[T, B, N] -> [T, B, N'']`` with
    ``N' = floor((N - k) / s) + 1``; with ``k == s == M`` each class is the mean of its
    ``M`` neurons. Half / bfloat16 input (AMP) is averaged in float32: bf16 would turn a
    vote of 7/10 into 0.6992 and feed that error to the rate losses."""

    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = int(stride if stride is not None else kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        T, B, N = x.shape
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        y = F.avg_pool1d(x.reshape(T * B, 1, N), self.kernel_size, self.stride)
        return y.reshape(T, B, -1)

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class ReadoutParams(NamedTuple):
    """Decays of the leaky-integrator readout: ``alpha`` (synaptic), ``beta`` (membrane)."""

    alpha: Tensor
    beta: Tensor


class ReadoutState(NamedTuple):
    """Synaptic current ``i`` and membrane ``u`` of the readout, each ``[B, N]``."""

    i: Tensor
    u: Tensor


def readout_step(x_t: Tensor, state: ReadoutState, params: ReadoutParams) -> tuple[Tensor, ReadoutState]:
    """One step of the non-spiking readout (``002_…`` Sect. III-A, Eqs. 5-6 without
    spike and reset)::

        I[t] = alpha * I[t-1] + x[t]
        U[t] = beta  * U[t-1] + I[t]
    """
    i = params.alpha * state.i + x_t
    u = params.beta * state.u + i
    return u, ReadoutState(i, u)


class LeakyReadout(nn.Module):
    """Non-spiking leaky-integrator readout layer; outputs the membrane ``U [T, B, N]``.

    ``alpha = exp(-dt/tau_syn)`` (0 when ``tau_syn`` is 0/None), ``beta = exp(-dt/tau_mem)``
    (1 when ``tau_mem`` is None: a perfect integrator). Give ``alpha``/``beta`` directly to
    override. ``learnable=True`` trains them (kept in (0, 1) through a sigmoid).
    """

    def __init__(self, alpha: float | None = None, beta: float | None = None, *,
                 tau_syn: float | None = None, tau_mem: float | None = 20.0, dt: float = 1.0,
                 learnable: bool = False):
        super().__init__()
        for name, v in (("dt", dt), ("tau_syn", tau_syn or None), ("tau_mem", tau_mem)):  # tau_syn 0: no synapse
            if v is not None and not (math.isfinite(float(v)) and float(v) > 0):
                raise ParameterError(f"LeakyReadout: {name} must be a finite number > 0 (same unit as dt), got {v}")
        if alpha is None:
            alpha = 0.0 if not tau_syn else math.exp(-dt / tau_syn)
        if beta is None:
            beta = 1.0 if tau_mem is None else math.exp(-dt / tau_mem)
        for name, v in (("alpha", alpha), ("beta", beta)):
            if not 0.0 <= v <= 1.0:
                raise ParameterError(f"LeakyReadout: {name} must be in [0, 1], got {v}")
        self.learnable = bool(learnable)
        if self.learnable:
            eps = 1e-4
            a = torch.logit(torch.tensor(min(max(alpha, eps), 1 - eps)))
            b = torch.logit(torch.tensor(min(max(beta, eps), 1 - eps)))
            self.alpha_logit = nn.Parameter(a)
            self.beta_logit = nn.Parameter(b)
        else:
            self.register_buffer("alpha", torch.tensor(float(alpha)))
            self.register_buffer("beta", torch.tensor(float(beta)))

    def params(self) -> ReadoutParams:
        """The decays as tensors."""
        if self.learnable:
            return ReadoutParams(torch.sigmoid(self.alpha_logit), torch.sigmoid(self.beta_logit))
        return ReadoutParams(self.alpha, self.beta)

    def forward(self, x: Tensor) -> Tensor:
        # integrate in float32 at least (under bf16 autocast a long sum would lose precision)
        x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        p = self.params()
        p = ReadoutParams(p.alpha.to(x.dtype), p.beta.to(x.dtype))
        zeros = torch.zeros_like(x[0])
        state = ReadoutState(zeros, zeros)
        out = []
        for t in range(x.shape[0]):
            u, state = readout_step(x[t], state, p)
            out.append(u)
        return torch.stack(out)

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        p = self.params()
        return f"alpha={float(p.alpha):.4g}, beta={float(p.beta):.4g}, learnable={self.learnable}"
