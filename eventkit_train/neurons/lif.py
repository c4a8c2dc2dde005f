"""Integrate-and-fire family: IF, LIF, PLIF (Fang et al. 2021, Sect. 3.3, eqs. 2–6).

Discrete dynamics as implemented (time step t = 1..T, ``X_t`` the input current):

* charge (eq. 5 / 6 of Fang et al. 2021; the extracted text lost the minus sign of the leak,
  the standard form ``-(V - V_reset)`` of eq. 1 is used)::

      LIF :  H_t = V_{t-1} + (1/τ)·(-(V_{t-1} - V_reset) + X_t)
      PLIF:  H_t = V_{t-1} + k(a)·(-(V_{t-1} - V_reset) + X_t),   k(a) = sigmoid(a)
      IF  :  H_t = V_{t-1} + X_t

* fire (eq. 3):  ``S_t = Θ(H_t - V_th)`` (Θ(0) = 1), surrogate gradient in backward
* reset (eq. 4): hard ``V_t = H_t(1 - S_t) + V_reset·S_t``; soft ``V_t = H_t - V_th·S_t``.
  With ``detach_reset`` the ``S_t`` inside the reset is detached from the graph.

With ``v_reset=None`` the reset is soft and the leak pulls towards 0. The initial state
is ``V_0 = V_reset`` (Fang et al. 2021: "V_{t-1} = V_reset" at the first step; 0 when ``v_reset=None``).
PLIF: one learnable scalar ``a`` per layer, initialised to ``a = -log(tau_init - 1)`` so that
``k(a) = 1/tau_init``; ``τ = 1/k(a) ∈ (1, ∞)`` always.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from eventkit.errors import ParameterError

from .base import compute_dtype, hard_reset, parse_reset, soft_reset
from .module import NeuronModule

__all__ = ["LIFParams", "LIFState", "lif_step", "lif_step_full", "IF", "LIF", "PLIF"]


class LIFParams(NamedTuple):
    """``k``: 1/τ (float or 0-d tensor; None = IF, no leak), threshold, reset value, reset mode."""

    k: float | Tensor | None
    v_threshold: float = 1.0
    v_reset: float = 0.0
    soft: bool = False
    detach_reset: bool = False
    surrogate: Callable[[Tensor], Tensor] | None = None


class LIFState(NamedTuple):
    """``v``: membrane after reset ``V_{t-1}`` ``[B, ...]``."""

    v: Tensor


def lif_step_full(x: Tensor, state: LIFState, p: LIFParams) -> tuple[Tensor, Tensor, LIFState]:
    """One step; returns (S_t, H_t, new state). See the module docstring for the equations."""
    v = state.v
    if p.k is None:
        h = v + x
    else:
        # bit for bit the docstring's H_t = V + k·(-(V - V_reset) + X): -(a) + b == b - a in IEEE
        # arithmetic, and V - 0.0 == V, so the usual V_reset = 0 saves an elementwise pass
        leak = v if p.v_reset == 0.0 else v - p.v_reset
        h = v + p.k * (x - leak)
    s = p.surrogate(h - p.v_threshold)  # type: ignore[misc]
    sr = s.detach() if p.detach_reset else s
    v_new = soft_reset(h, sr, p.v_threshold) if p.soft else hard_reset(h, sr, p.v_reset)
    return s, h, LIFState(v_new)


def lif_step(x: Tensor, state: LIFState, p: LIFParams) -> tuple[Tensor, LIFState]:
    """Pure functional step ``(x_t [B, ...], state, params) -> (spike_t, new_state)``."""
    s, _, new = lif_step_full(x, state, p)
    return s, new


class _LIFBase(NeuronModule):
    step_fn = staticmethod(lif_step_full)

    def __init__(self, v_threshold: float, v_reset: float | None, reset: str, detach_reset: bool,
                 surrogate: Any, return_membrane: bool) -> None:
        super().__init__(surrogate, return_membrane)
        who = type(self).__name__
        self.soft, self.v_reset = parse_reset(reset, v_reset, who)
        self.v_threshold = float(v_threshold)
        if not math.isnan(self.v_threshold) and self.v_threshold <= self.v_reset and not self.soft:
            raise ParameterError(f"{who}: v_threshold ({v_threshold}) must be above v_reset ({v_reset})")
        self.detach_reset = bool(detach_reset)

    def _k(self, x: Tensor) -> float | Tensor | None:  # pragma: no cover - abstract
        raise TypeError

    def make_params(self, x: Tensor) -> LIFParams:
        return LIFParams(self._k(x), self.v_threshold, self.v_reset, self.soft, self.detach_reset, self.surrogate)

    def initial_state(self, x: Tensor) -> LIFState:
        return LIFState(self._zeros(x, self.v_reset))

    definition = "lif"

    def fused_args(self, x: Tensor) -> tuple[list, list[bool]]:
        k = self._k(x)
        return [1.0 if k is None else k, self.v_threshold, self.v_reset], [k is not None, self.soft, self.detach_reset]

    def extra_repr(self) -> str:
        return (f"v_threshold={self.v_threshold}, v_reset={None if self.soft and self.v_reset == 0 else self.v_reset}, "
                f"reset={'soft' if self.soft else 'hard'}, detach_reset={self.detach_reset}, "
                f"surrogate={self.surrogate!r}")


class IF(_LIFBase):
    """Integrate-and-fire: ``H_t = V_{t-1} + X_t``, ``S_t = Θ(H_t - V_th)``, hard/soft reset.

    ``x [T, B, ...]`` → spikes ``[T, B, ...]`` (and ``H`` ``[T, B, ...]`` with ``return_membrane``).
    """

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, reset: str = "hard",
                 detach_reset: bool = False, surrogate: Any = "arctan", return_membrane: bool = False) -> None:
        super().__init__(v_threshold, v_reset, reset, detach_reset, surrogate, return_membrane)

    def _k(self, x: Tensor) -> None:
        return None


class LIF(_LIFBase):
    """Leaky integrate-and-fire (Fang et al. 2021, eq. 5):
    ``H_t = V_{t-1} + (1/τ)(-(V_{t-1} - V_reset) + X_t)``, ``S_t = Θ(H_t - V_th)``,
    hard ``V_t = H_t(1 - S_t) + V_reset S_t`` or soft ``V_t = H_t - V_th S_t`` reset.

    ``tau`` in time steps (> 1 for a valid Euler step, Fang et al. 2021, Sect. 3.3; must be > 0).
    """

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0, reset: str = "hard",
                 detach_reset: bool = False, surrogate: Any = "arctan", return_membrane: bool = False) -> None:
        super().__init__(v_threshold, v_reset, reset, detach_reset, surrogate, return_membrane)
        tau = float(tau)
        if not math.isfinite(tau) or tau <= 0:
            raise ParameterError(f"LIF: tau must be a finite number > 0 (time steps), got {tau}")
        self.tau = tau

    def _k(self, x: Tensor) -> float:
        return 1.0 / self.tau

    def extra_repr(self) -> str:
        return f"tau={self.tau}, " + super().extra_repr()


class PLIF(_LIFBase):
    """Parametric LIF (Fang et al. 2021, eq. 6): ``H_t = V_{t-1} + k(a)(-(V_{t-1} - V_reset) + X_t)``,
    ``k(a) = sigmoid(a)``, one learnable scalar ``a`` per layer, ``a_0 = -log(tau_init - 1)``.
    """

    def __init__(self, tau_init: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 reset: str = "hard", detach_reset: bool = False, surrogate: Any = "arctan",
                 return_membrane: bool = False) -> None:
        super().__init__(v_threshold, v_reset, reset, detach_reset, surrogate, return_membrane)
        tau_init = float(tau_init)
        if not math.isfinite(tau_init) or tau_init <= 1.0:
            raise ParameterError(f"PLIF: tau_init must be > 1 (τ = 1/sigmoid(a) ∈ (1, ∞)), got {tau_init}")
        self.a = nn.Parameter(torch.tensor(-math.log(tau_init - 1.0), dtype=torch.float32))

    def _k(self, x: Tensor) -> Tensor:
        """``k(a) = sigmoid(a)`` in the compute dtype of ``x`` (float64 stays float64, else float32)."""
        return torch.sigmoid(self.a.to(compute_dtype(x)))

    @property
    def tau(self) -> float:
        """Current membrane time constant ``1/sigmoid(a)`` (time steps)."""
        return float(1.0 / torch.sigmoid(self.a.detach()))

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g} (learnable), " + super().extra_repr()
