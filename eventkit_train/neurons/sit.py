"""Standardized Izhikevich Tonic (SIT) and SIT-Bursting neurons (Jin et al. 2022, Eq. 18, Table 2).

Discrete dynamics as implemented (``I_t`` the input current, τ = 2 by default)::

    Y_t = U_{t-1} + (k/τ)(U_{t-1} - U_r)(U_{t-1} - U_c) - V_{t-1}/τ + I_t/τ
    H_t = V_{t-1} + (a/τ)(b(Y_t - U_r) - V_{t-1})
    S_t = Θ(Y_t - U_th)
    U_t = Y_t(1 - S_t) + c·S_t          (hard reset, U ← c;  soft: U_t = Y_t - U_th·S_t)
    V_t = H_t + d·S_t                   (V ← V + d on a spike)

Eq. 18 writes ``b(U_t - U_r)`` in the H update and then "we set V_t = H_t, U_t = Y_t":
the recovery variable is driven by the potential *before* the reset, ``Y_t``. The reset
is the Izhikevich after-spike rule (Eq. 3) with ``U_reset = c = 0`` and ``U_th = 1``
(Sect. 4.3). The paper keeps the reset inside the graph ("detaching ... is ineffective
in HNN"), hence ``detach_reset=False`` by default.

Table 2 (columns a, b, c, d, k, U_c, U_r):

============== ======= ====== === ==== === ==== =======
preset          a       b      c   d    k   U_c  U_r
============== ======= ====== === ==== === ==== =======
``tonic``       0.002   0.02   0   0.2  1   1    -0.05
``bursting``    0.35    0.6    0   0.5  1   1    -0.05
============== ======= ====== === ==== === ==== =======

(the text of Sect. 4.3 says d was raised "from 0.2 to 0.6" for bursting; Table 2 says 0.5
and b = 0.6 — we follow the table.) ``U_th = 1``, τ = 2 for both.

Initial state: the paper does not state it. We start from ``U_0 = c`` (= U_reset = 0, the
convention of the SpikingJelly-based implementations, where the membrane starts at the
reset potential) and ``V_0 = 0``; pass ``u_init=`` to start elsewhere (e.g. the resting
point ``U_r`` of Fig. 6 at I = 0), or pass a full state to ``forward``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from torch import Tensor

from eventkit.errors import ParameterError

from .base import parse_reset
from .module import NeuronModule

__all__ = ["SITParams", "SITState", "sit_step", "sit_step_full", "SIT", "SIT_TONIC", "SIT_BURSTING"]

#: Table 2 of Jin et al. 2022 (with U_th = 1 and tau = 2 from Sect. 4.3).
SIT_TONIC = dict(a=0.002, b=0.02, c=0.0, d=0.2, k=1.0, u_c=1.0, u_r=-0.05, u_th=1.0, tau=2.0)
SIT_BURSTING = dict(a=0.35, b=0.6, c=0.0, d=0.5, k=1.0, u_c=1.0, u_r=-0.05, u_th=1.0, tau=2.0)


class SITParams(NamedTuple):
    """Izhikevich parameters (Table 2), threshold, τ, reset mode, surrogate."""

    k: float
    a: float
    b: float
    c: float
    d: float
    u_r: float
    u_c: float
    u_th: float
    tau: float
    soft: bool = False
    detach_reset: bool = False
    surrogate: Callable[[Tensor], Tensor] | None = None


class SITState(NamedTuple):
    """Membrane ``u`` and recovery ``v`` after the reset (``[B, ...]``)."""

    u: Tensor
    v: Tensor


def sit_step_full(x: Tensor, state: SITState, p: SITParams) -> tuple[Tensor, Tensor, SITState]:
    """One step of Eq. 18; returns (S_t, Y_t, new state)."""
    u, v = state.u, state.v
    inv_tau = 1.0 / p.tau
    y = u + (p.k * inv_tau) * (u - p.u_r) * (u - p.u_c) - v * inv_tau + x * inv_tau
    h = v + (p.a * inv_tau) * (p.b * (y - p.u_r) - v)
    s = p.surrogate(y - p.u_th)  # type: ignore[misc]
    sr = s.detach() if p.detach_reset else s
    u_new = y - p.u_th * sr if p.soft else y * (1.0 - sr) + p.c * sr
    v_new = h + p.d * sr
    return s, y, SITState(u_new, v_new)


def sit_step(x: Tensor, state: SITState, p: SITParams) -> tuple[Tensor, SITState]:
    """Pure functional step ``(I_t [B, ...], state, params) -> (spike_t, new_state)``."""
    s, _, new = sit_step_full(x, state, p)
    return s, new


class SIT(NeuronModule):
    """SIT neuron (Jin et al. 2022, Eq. 18). Use :meth:`tonic` / :meth:`bursting` for the Table 2 presets.

    ``x [T, B, ...]`` → spikes ``[T, B, ...]`` (and ``Y`` ``[T, B, ...]`` with ``return_membrane``).
    """

    def __init__(self, k: float, a: float, b: float, c: float, d: float, u_r: float, u_c: float,
                 u_th: float = 1.0, tau: float = 2.0, reset: str = "hard", detach_reset: bool = False,
                 surrogate: Any = "arctan", return_membrane: bool = False, u_init: float | None = None) -> None:
        super().__init__(surrogate, return_membrane)
        vals = dict(k=k, a=a, b=b, c=c, d=d, u_r=u_r, u_c=u_c, u_th=u_th, tau=tau)
        for name, val in vals.items():
            if not math.isfinite(float(val)):
                raise ParameterError(f"SIT: {name} must be finite, got {val}")
        if float(tau) <= 0:
            raise ParameterError(f"SIT: tau must be > 0 (time steps), got {tau}")
        self.soft, _ = parse_reset(reset, 0.0, "SIT")
        self.k, self.a, self.b, self.c, self.d = float(k), float(a), float(b), float(c), float(d)
        self.u_r, self.u_c, self.u_th, self.tau = float(u_r), float(u_c), float(u_th), float(tau)
        self.detach_reset = bool(detach_reset)
        self.u_init = self.c if u_init is None else float(u_init)

    step_fn = staticmethod(sit_step_full)
    definition = "sit"

    def fused_args(self, x: Tensor) -> tuple[list, list[bool]]:
        inv_tau = 1.0 / self.tau  # k/τ and a/τ formed in Python floats exactly as sit_step_full does
        return ([self.k * inv_tau, self.a * inv_tau, self.b, self.c, self.d, self.u_r, self.u_c, self.u_th, inv_tau],
                [self.soft, self.detach_reset])

    @classmethod
    def tonic(cls, **kw: Any) -> SIT:
        """SIT with Table 2's tonic parameters (a=0.002, b=0.02, c=0, d=0.2, k=1, U_c=1, U_r=-0.05), τ = 2.

        What these values do (``docs/analysis.md``): at I = 0 the continuous system (Eq. 5) has a
        stable node at (U, V) = (-0.05, 0) and a saddle at (1.02, 0.0214), just above U_th = 1. A
        rest point exists only for constant I < 0.2862 (Hopf at 0.286144, saddle-node at
        0.286225); larger inputs fire repetitively. With a = 0.002, V relaxes about 500x slower
        than U and gains d = 0.2 per spike, so firing adapts: at I = 1.1 it stops after 4 spikes;
        inputs 2 and 3 give 9 and 14 spikes in 40 steps, where LIF (τ = 2) fires on every step.
        """
        return cls(**{**SIT_TONIC, **kw})

    @classmethod
    def bursting(cls, **kw: Any) -> SIT:
        """SIT-Bursting with Table 2's parameters (a=0.35, b=0.6, c=0, d=0.5, k=1, U_c=1, U_r=-0.05), τ = 2.

        Despite the name, these values (and the d = 0.6 of Sect. 4.3) do not fire in bursts
        (``docs/analysis.md``): the rest point at I = 0 is a stable focus at (-0.05, 0), and for
        constant inputs 1.05-10 the firing is tonic or briefly adapting, the inter-spike intervals
        after the first two staying within a factor of 2. SIT bursts when the reset is near the
        threshold and recovery is slow, as in Izhikevich's chattering cell, e.g.
        ``SIT(k=1, a=0.02, b=0.02, c=0.95, d=0.2, u_r=-0.05, u_c=1)`` at I = 2 fires groups of 3
        spikes about every 35 steps (``eventkit analyze scan`` maps where it bursts).
        """
        return cls(**{**SIT_BURSTING, **kw})

    def make_params(self, x: Tensor) -> SITParams:
        return SITParams(self.k, self.a, self.b, self.c, self.d, self.u_r, self.u_c, self.u_th, self.tau,
                         self.soft, self.detach_reset, self.surrogate)

    def initial_state(self, x: Tensor) -> SITState:
        return SITState(self._zeros(x, self.u_init), self._zeros(x))

    def extra_repr(self) -> str:
        return (f"k={self.k}, a={self.a}, b={self.b}, c={self.c}, d={self.d}, u_r={self.u_r}, u_c={self.u_c}, "
                f"u_th={self.u_th}, tau={self.tau}, reset={'soft' if self.soft else 'hard'}, "
                f"detach_reset={self.detach_reset}, surrogate={self.surrogate!r}")
