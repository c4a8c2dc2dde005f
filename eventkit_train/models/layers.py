"""Layers of the spiking networks, all time-first (``[T, B, ...]``).

Stateless layers (conv, BN, pooling, linear, flatten) run once on ``[T·B, ...]``
(time folded into the batch, :class:`TimeFolded`); neurons, spiking dropout and the
readout see the full ``[T, B, ...]`` sequence.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eventkit.errors import ParameterError
# the readout is a neuron-like layer and lives with the neurons; re-exported here
from eventkit_train.neurons.readout import LeakyReadout, ReadoutParams, ReadoutState, readout_step


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
