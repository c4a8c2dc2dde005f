"""Spike Response Model as in SLAYER (Shrestha et al. 2022, Sect. II-A, eqs. 1–2), computed in O(T).

Continuous model (Shrestha et al. 2022)::

    u(t) = (ε * x)(t) + (ν * s)(t),  s(t) = f_s(u(t))  (spike where u(t) >= ϑ)
    ε(t) = t/τ_s · exp(1 - t/τ_s) · Θ(t)               spike-response (alpha) kernel
    ν(t) = -2ϑ · t/τ_r · exp(1 - t/τ_r) · Θ(t)          refractory kernel

``x`` is the weighted input ``W s^{(l-1)}`` of eq. 1 (the layer input). Discretised at step
``dt`` (kernels sampled at ``n·dt``, ε(0) = ν(0) = 0, so an input or a spike at step n acts
from step n+1 on, as in SLAYER)::

    u_n = Σ_{k>=1} ε(k·dt)·x_{n-k} + Σ_{k>=1} ν(k·dt)·s_{n-k},   s_n = Θ(u_n - ϑ)

The sampled alpha kernel is ``ε(k·dt) = c_s · k·a_s^k`` with ``a_s = exp(-dt/τ_s)`` and
``c_s = e·dt/τ_s``; ``k·a^k`` is the impulse response of two cascaded first-order filters,
so the convolution runs as an exact recursion (no truncation)::

    q_n = a·(q_{n-1} + p_{n-1})      # Σ_k k·a^k x_{n-k}
    p_n = a·p_{n-1} + x_n            # Σ_k a^k x_{n-k}
    u_n = c_s·q_n^{(x)} + c_r·q_n^{(s)}

(impulse: p = 1, a, a², …; q = 0, a, 2a², 3a³, … = k·a^k). The refractory term uses the
same recursion on the output spikes with ``a_r = exp(-dt/τ_r)``, ``c_r = -2ϑ·e·dt/τ_r``.

Surrogate: SLAYER's spike-escape density ``ρ(u) = (scale_ρ/τ_ρϑ)·exp(-|u - ϑ|/(τ_ρϑ))``,
i.e. :class:`~eventkit_train.surrogate.Exponential` with ``alpha = scale_rho`` and
``tau = tau_rho * theta`` (the default when ``surrogate`` is None or ``"exponential"``).
Spikes are 0/1 (SLAYER scales them by 1/Ts; with dt = 1 that is the same). The spikes
feed the refractory filter inside the graph; ``detach_reset=True`` detaches them there.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from torch import Tensor

from eventkit.errors import ParameterError
from eventkit_train.surrogate import Exponential, get_surrogate

from .module import NeuronModule

__all__ = ["SRMParams", "SRMState", "srm_step", "srm_step_full", "SRM", "srm_kernels"]


class SRMParams(NamedTuple):
    """Filter poles ``a_s``, ``a_r``, gains ``c_s``, ``c_r`` (see module docstring), threshold ϑ."""

    a_s: float
    c_s: float
    a_r: float
    c_r: float
    theta: float
    detach_reset: bool = False
    surrogate: Callable[[Tensor], Tensor] | None = None


class SRMState(NamedTuple):
    """Two-stage filter states of the input (``p``, ``q``) and of the output spikes (``pr``, ``qr``)."""

    p: Tensor
    q: Tensor
    pr: Tensor
    qr: Tensor


def srm_kernels(n: int, tau_s: float, tau_r: float, theta: float, dt: float = 1.0) -> tuple[list[float], list[float]]:
    """The sampled kernels ``ε(k·dt)`` and ``ν(k·dt)`` for k = 0..n-1 (plain floats, for plots and checks)."""
    eps = [(k * dt / tau_s) * math.exp(1.0 - k * dt / tau_s) for k in range(n)]
    nu = [-2.0 * theta * (k * dt / tau_r) * math.exp(1.0 - k * dt / tau_r) for k in range(n)]
    return eps, nu


def srm_step_full(x: Tensor, state: SRMState, p: SRMParams) -> tuple[Tensor, Tensor, SRMState]:
    """One step; returns (s_n, u_n, new state)."""
    q = p.a_s * (state.q + state.p)
    qr = p.a_r * (state.qr + state.pr)
    u = p.c_s * q + p.c_r * qr
    s = p.surrogate(u - p.theta)  # type: ignore[misc]
    sr = s.detach() if p.detach_reset else s
    return s, u, SRMState(p.a_s * state.p + x, q, p.a_r * state.pr + sr, qr)


def srm_step(x: Tensor, state: SRMState, p: SRMParams) -> tuple[Tensor, SRMState]:
    """Pure functional step ``(x_n [B, ...], state, params) -> (spike_n, new_state)``."""
    s, _, new = srm_step_full(x, state, p)
    return s, new


class SRM(NeuronModule):
    """SLAYER spike-response-model neuron (Shrestha et al. 2022, Sect. II-A); τ_s, τ_r and dt in the same unit.

    ``x [T, B, ...]`` → spikes ``[T, B, ...]`` (and ``u`` ``[T, B, ...]`` with ``return_membrane``).
    """

    def __init__(self, tau_s: float = 1.0, tau_r: float = 1.0, theta: float = 1.0, dt: float = 1.0,
                 tau_rho: float = 1.0, scale_rho: float = 1.0, detach_reset: bool = False,
                 surrogate: Any = None, return_membrane: bool = False) -> None:
        for name, val in (("tau_s", tau_s), ("tau_r", tau_r), ("theta", theta), ("dt", dt)):
            if not math.isfinite(float(val)) or float(val) <= 0:
                raise ParameterError(f"SRM: {name} must be a finite number > 0, got {val}")
        if surrogate is None or (isinstance(surrogate, str) and surrogate.lower() == "exponential"):
            surrogate = Exponential(alpha=scale_rho, tau=tau_rho * float(theta))
        super().__init__(get_surrogate(surrogate), return_membrane)
        self.tau_s, self.tau_r, self.theta, self.dt = float(tau_s), float(tau_r), float(theta), float(dt)
        self.detach_reset = bool(detach_reset)

    step_fn = staticmethod(srm_step_full)
    definition = "srm"

    def fused_args(self, x: Tensor) -> tuple[list, list[bool]]:
        p = self.make_params(x)
        return [p.a_s, p.c_s, p.a_r, p.c_r, p.theta], [self.detach_reset]

    def make_params(self, x: Tensor) -> SRMParams:
        a_s = math.exp(-self.dt / self.tau_s)
        a_r = math.exp(-self.dt / self.tau_r)
        c_s = math.e * self.dt / self.tau_s
        c_r = -2.0 * self.theta * math.e * self.dt / self.tau_r
        return SRMParams(a_s, c_s, a_r, c_r, self.theta, self.detach_reset, self.surrogate)

    def initial_state(self, x: Tensor) -> SRMState:
        z = self._zeros(x)
        return SRMState(z, z, z, z)

    def extra_repr(self) -> str:
        return (f"tau_s={self.tau_s}, tau_r={self.tau_r}, theta={self.theta}, dt={self.dt}, "
                f"detach_reset={self.detach_reset}, surrogate={self.surrogate!r}")
