"""Adaptive-threshold LIF (ALIF): a LIF neuron whose threshold rises after each spike and relaxes back.

Written as one file — the kernel definition (``STATE`` … ``step_vjp``) and the module —
following ``docs/adding-a-neuron.md``. Per step::

    H_t = V_{t-1} + k·(X_t - (V_{t-1} - V_reset))        k = 1/τ
    θ_t = V_th + β_a·A_{t-1}                             adaptive threshold
    S_t = Θ(H_t - θ_t)
    V_t = H_t(1 - S_t) + V_reset·S_t                     (soft: V_t = H_t - θ_t·S_t)
    A_t = ρ·A_{t-1} + S_t                                ρ = exp(-1/τ_a): spike-triggered adaptation

Backward (``g_*`` = ∂L/∂·, ``z_t = H_t - θ_t``)::

    ∂L/∂S_t    = g_S[t] + g_A + g_V·(V_reset - H_t)      (soft: g_V·(-θ_t); the reset term 0 with detach_reset)
    ∂L/∂z_t    = ∂L/∂S_t·σ'(z_t)
    ∂L/∂H_t    = g_H[t] + g_V·(1 - S_t) + ∂L/∂z_t        (soft: g_V instead of g_V(1 - S_t))
    ∂L/∂θ_t    = -∂L/∂z_t                                (soft: also -S_t·g_V)
    ∂L/∂A_{t-1} = ρ·g_A + β_a·∂L/∂θ_t
    ∂L/∂X_t    = k·∂L/∂H_t,  ∂L/∂V_{t-1} = (1 - k)·∂L/∂H_t
    ∂L/∂k     += ∂L/∂H_t·(H_t - V_{t-1})/k

Saved per step: ``H_t`` and ``A_{t-1}`` (8 bytes per neuron-step in float32).
"""
from __future__ import annotations

import math
import sys
from typing import Any, NamedTuple

from torch import Tensor

from eventkit.errors import ParameterError
from eventkit_train.kernels import register_definition
from eventkit_train.kernels.ops import detach, heaviside, zeros_like
from eventkit_train.kernels.surrogates import surrogate_grad

from .base import parse_reset
from .module import NeuronModule

__all__ = ["ALIF", "ALIFState"]

# ----------------------------------------------------------------------------- the definition
NAME = "alif"
STATE = ("v", "a")
SAVED = ("h", "a_prev")
RESTORED = ("v",)
PARAMS = ("k", "v_threshold", "v_reset", "rho", "beta_a")
LEARNABLE = ("k",)
FLAGS = ("soft", "detach_reset")


def after_spike(h, s, theta, v_reset, soft):
    if soft:
        v = h - theta * s
    else:
        v = h * (1.0 - s) + v_reset * s
    return v


def step(x, v, a, k, v_threshold, v_reset, rho, beta_a, soft, detach_reset):
    h = v + k * (x - (v - v_reset))
    theta = v_threshold + beta_a * a
    s = heaviside(h - theta)
    if detach_reset:
        s_reset = detach(s)
    else:
        s_reset = s
    return s, h, a, after_spike(h, s_reset, theta, v_reset, soft), rho * a + s


def restore(h, a_prev, k, v_threshold, v_reset, rho, beta_a, soft, detach_reset):
    theta = v_threshold + beta_a * a_prev
    return after_spike(h, heaviside(h - theta), theta, v_reset, soft)


def step_vjp(g_spike, g_membrane, g_v, g_a, h, a_prev, v_prev, k, v_threshold, v_reset, rho, beta_a, soft,
             detach_reset, param_grads, surrogate_kind, surrogate_a, surrogate_b):
    theta = v_threshold + beta_a * a_prev
    s = heaviside(h - theta)
    if soft:
        g_h = g_membrane + g_v
        g_theta = -s * g_v
        g_s_reset = -theta * g_v
    else:
        g_h = g_membrane + g_v * (1.0 - s)
        g_theta = zeros_like(g_v)
        g_s_reset = (v_reset - h) * g_v
    g_s = g_spike + g_a
    if not detach_reset:
        g_s = g_s + g_s_reset
    g_z = g_s * surrogate_grad(h - theta, surrogate_kind, surrogate_a, surrogate_b)
    g_h = g_h + g_z
    g_theta = g_theta - g_z
    if param_grads:
        g_k = g_h * ((h - v_prev) / k)
    else:
        g_k = zeros_like(g_h)
    return g_h * k, g_h * (1.0 - k), rho * g_a + beta_a * g_theta, g_k


register_definition(sys.modules[__name__])


# ----------------------------------------------------------------------------- the module
class ALIFState(NamedTuple):
    """Membrane ``v`` after the reset and adaptation trace ``a`` (``[B, ...]``)."""

    v: Tensor
    a: Tensor


class ALIF(NeuronModule):
    """Adaptive-threshold LIF; ``x [T, B, ...]`` → spikes (and ``H`` with ``return_membrane``).

    ``tau`` membrane and ``tau_adapt`` adaptation time constants (time steps), ``beta_adapt``
    threshold increase per unit of adaptation trace. Initial state ``V_0 = V_reset``, ``A_0 = 0``.
    """

    definition = NAME
    step_fn = None  # the step path is autograd through the definition (no separate *_step)

    def __init__(self, tau: float = 2.0, tau_adapt: float = 20.0, beta_adapt: float = 0.5, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, reset: str = "hard", detach_reset: bool = False,
                 surrogate: Any = "arctan", return_membrane: bool = False) -> None:
        super().__init__(surrogate, return_membrane)
        for name, val in (("tau", tau), ("tau_adapt", tau_adapt)):
            if not math.isfinite(float(val)) or float(val) <= 0:
                raise ParameterError(f"ALIF: {name} must be a finite number > 0 (time steps), got {val}")
        if not math.isfinite(float(beta_adapt)) or float(beta_adapt) < 0:
            raise ParameterError(f"ALIF: beta_adapt must be a finite number >= 0, got {beta_adapt}")
        self.soft, self.v_reset = parse_reset(reset, v_reset, "ALIF")
        self.tau, self.tau_adapt, self.beta_adapt = float(tau), float(tau_adapt), float(beta_adapt)
        self.v_threshold, self.detach_reset = float(v_threshold), bool(detach_reset)

    def initial_state(self, x: Tensor) -> ALIFState:
        return ALIFState(self._zeros(x, self.v_reset), self._zeros(x))

    def fused_args(self, x: Tensor) -> tuple[list, list[bool]]:
        return ([1.0 / self.tau, self.v_threshold, self.v_reset, math.exp(-1.0 / self.tau_adapt), self.beta_adapt],
                [self.soft, self.detach_reset])

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, tau_adapt={self.tau_adapt}, beta_adapt={self.beta_adapt}, "
                f"v_threshold={self.v_threshold}, reset={'soft' if self.soft else 'hard'}, "
                f"surrogate={self.surrogate!r}")
