"""Layers of the spiking networks, all time-first (``[T, B, ...]``).

Stateless layers (conv, BN, pooling, linear, flatten) run once on ``[T·B, ...]``
(time folded into the batch, :class:`TimeFolded`); neurons, spiking dropout and the
readout see the full ``[T, B, ...]`` sequence.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eventkit.errors import ParameterError

# the readout is a neuron-like layer and lives with the neurons; re-exported here
from eventkit_train.neurons.readout import LeakyReadout as LeakyReadout
from eventkit_train.neurons.readout import ReadoutParams as ReadoutParams
from eventkit_train.neurons.readout import ReadoutState as ReadoutState
from eventkit_train.neurons.readout import readout_step as readout_step


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
    """Spike max-pooling (PLIF, Fang et al. 2021, Sect. 3): max over each ``k×k`` window of the
    binary spike map, per time step. ``[T, B, C, H, W] -> [T, B, C, H', W']``."""

    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__(nn.MaxPool2d(kernel_size, stride if stride is not None else kernel_size))


class AvgPool2d(TimeFolded):
    """Average pooling of ``[T, B, C, H, W]`` maps per time step."""

    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__(nn.AvgPool2d(kernel_size, stride if stride is not None else kernel_size))


class _SumPool(nn.Module):
    def __init__(self, kernel_size: int, weight: float):
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = weight

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.kernel_size) * (self.weight * self.kernel_size ** 2)

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        return f"kernel_size={self.kernel_size}, weight={self.weight:g}"


class SumPool2d(TimeFolded):
    """SLAYER's aggregate pooling ``<N>a``: ``weight`` times the sum of each ``N×N`` window
    (stride N, rows/columns that do not fill a window dropped), per time step:
    ``[T, B, C, H, W] -> [T, B, C, H // N, W // N]``.

    ``weight`` is one fixed (not trained) number shared by every window. SLAYER
    (Shrestha & Orchard, "SLAYER: Spike Layer Error Reassignment in Time", 2018) sets it to
    ``1.1·ϑ`` of the spiking layer that follows, so that one input spike in a window makes
    that layer fire (:func:`eventkit_train.models.slayer.apply_slayer_conventions` does
    this); the plain sum (``weight=1``) is the default."""

    module: _SumPool

    def __init__(self, kernel_size: int, weight: float = 1.0):
        weight = float(weight)
        if not math.isfinite(weight):
            raise ParameterError(f"SumPool2d: weight must be a finite number, got {weight}")
        super().__init__(_SumPool(int(kernel_size), weight))

    @property
    def weight(self) -> float:
        """The fixed window weight (1 = plain sum; SLAYER: 1.1·ϑ)."""
        return self.module.weight

    @weight.setter
    def weight(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(f"SumPool2d: weight must be a finite number, got {value}")
        self.module.weight = value


class SpikingDropout(nn.Module):
    """Dropout with one Bernoulli mask per sample and neuron, shared by all time steps
    (Jin et al. 2022, Sect. 4.2, after Lee et al.). Kept units are scaled by ``1/(1-p)``.

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
    """Average pooling over groups of output neurons (the voting layer of Fang et al. 2021
    Sect. 4.1 and ``APk10s10`` of Jin et al. 2022, Table 1): ``[T, B, N] -> [T, B, N'']`` with
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
