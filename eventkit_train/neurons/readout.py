"""Non-spiking leaky-integrator readout (Bouanane et al. 2023, Sect. III-A): the CUBA-LIF equations
without spike and reset.

``x [T, B, N] -> U [T, B, N]``; see :class:`LeakyReadout`. ``readout_step`` is the step-by-step
reference; the module runs the fused CUBA-LIF node with an infinite threshold.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from eventkit.errors import ParameterError
from eventkit_train.kernels import neuron_sequence
from eventkit_train.surrogate import ArcTan

from .base import check_sequence, compute_dtype, no_autocast

__all__ = ["ReadoutParams", "ReadoutState", "readout_step", "LeakyReadout"]


class ReadoutParams(NamedTuple):
    """Decays of the leaky-integrator readout: ``alpha`` (synaptic), ``beta`` (membrane)."""

    alpha: Tensor
    beta: Tensor


class ReadoutState(NamedTuple):
    """Synaptic current ``i`` and membrane ``u`` of the readout, each ``[B, N]``."""

    i: Tensor
    u: Tensor


def readout_step(x_t: Tensor, state: ReadoutState, params: ReadoutParams) -> tuple[Tensor, ReadoutState]:
    """One step of the non-spiking readout (Bouanane et al. 2023, Sect. III-A, Eqs. 5-6 without
    spike and reset)::

        I[t] = alpha * I[t-1] + x[t]
        U[t] = beta  * U[t-1] + I[t]
    """
    i = params.alpha * state.i + x_t
    u = params.beta * state.u + i
    return u, ReadoutState(i, u)


_NO_SPIKE = ArcTan()  # σ'(U - ∞) = 0: the surrogate never contributes


class LeakyReadout(nn.Module):
    """Non-spiking leaky-integrator readout layer; outputs the membrane ``U [T, B, N]``.

    ``alpha = exp(-dt/tau_syn)`` (0 when ``tau_syn`` is 0/None), ``beta = exp(-dt/tau_mem)``
    (1 when ``tau_mem`` is None: a perfect integrator). Give ``alpha``/``beta`` directly to
    override. ``learnable=True`` trains them (kept in (0, 1) through a sigmoid).
    ``backend`` (attribute): as for the neurons (:class:`~eventkit_train.neurons.NeuronModule`).
    """

    backend: str | None = None

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

    alpha: Tensor  # buffers of a fixed readout
    beta: Tensor

    def params(self) -> ReadoutParams:
        """The decays as tensors."""
        if self.learnable:
            return ReadoutParams(torch.sigmoid(self.alpha_logit), torch.sigmoid(self.beta_logit))
        return ReadoutParams(self.alpha, self.beta)

    def forward(self, x: Tensor) -> Tensor:
        """``x [T, B, ...]`` → ``U [T, B, ...]`` as one autograd node: the CUBA-LIF kernel definition
        with ϑ = +∞ (never fires, so no reset), in float32 at least (float64 stays float64)."""
        check_sequence(x, "LeakyReadout")
        xc = x.to(compute_dtype(x))  # under bf16 autocast a long sum would lose precision
        p = self.params()
        zeros = xc.new_zeros(xc.shape[1:])
        with no_autocast(x.device.type):
            _, saved, _ = neuron_sequence("cubalif", xc, [zeros, zeros, zeros],
                                          [p.alpha.to(xc.dtype), p.beta.to(xc.dtype), math.inf, 0.0],
                                          [False, False], _NO_SPIKE, backend=self.backend)
        return saved[0]

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        p = self.params()
        return f"alpha={float(p.alpha):.4g}, beta={float(p.beta):.4g}, learnable={self.learnable}"
