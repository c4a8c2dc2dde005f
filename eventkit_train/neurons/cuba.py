"""Current-based LIF (CUBA-LIF) with optional explicit recurrence (Bouanane et al. 2023, eqs. 3–6).

Discrete dynamics as implemented (``X_t`` the feed-forward current entering at step t,
i.e. ``Σ_j W_ij S_j^{(l-1)}`` of eq. 3 — any synaptic delay is the network's business)::

    I_t = α·I_{t-1} + X_t + V·S_{t-1}                         (eq. 3/5; V only with recurrent=True)
    U_t = (β·U_{t-1} + I_t)·(1 - S_{t-1}) + V_reset·S_{t-1}   (eq. 4/6, hard reset, V_reset = 0 in the paper)
    U_t = β·U_{t-1} + I_t - ϑ·S_{t-1}                         (soft reset variant)
    S_t = Θ(U_t - ϑ)

The reset follows the paper as written: a spike at step t-1 clears the membrane at step
t (the input of step t included), so a neuron never fires on two consecutive steps under
the hard reset. ``detach_reset`` detaches the ``S_{t-1}`` of the reset factor (not the
recurrent term). Initial state ``I_0 = 0``, ``U_0 = V_reset``, ``S_0 = 0``.

Decays: ``alpha``/``beta`` directly, or ``tau_syn``/``tau_mem`` with ``α = exp(-dt/τ_syn)``,
``β = exp(-dt/τ_mem)`` (τ and dt in the same unit; Bouanane et al. 2023 uses dt = 14 ms,
τ_syn = 28 ms → α ≈ 0.6, τ_mem = 140 ms → β ≈ 0.9, the defaults). ``learnable=True`` trains
them through the logit (float32 parameters ``alpha_logit``, ``beta_logit``): ``α = sigmoid(ρ_α)``,
``β = sigmoid(ρ_β)``, which keeps both in (0, 1) whatever the optimiser does (τ = -dt/log α stays positive and finite).
``heterogeneous=True`` gives every neuron its own α, β (vectors ``[n_features]`` broadcast
over dimension 2 of ``x [T, B, N, ...]``, i.e. the feature / channel axis).
``recurrent=True`` adds an ``n_features × n_features`` learnable matrix V (``V_ij`` weights
the spike of neuron j onto neuron i; nn.Linear-style uniform init ±1/sqrt(N)); the input
must then be ``[T, B, n_features]``.

A non-spiking readout (Bouanane et al. 2023: "the readout layer consists of neurons that do not
spike") is ``CUBALIF(v_threshold=math.inf, return_membrane=True)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from eventkit.errors import ParameterError
from eventkit_train.kernels.recurrent import recurrent_sequence

from .base import check_sequence, compute_dtype, parse_reset
from .module import NeuronModule

__all__ = ["CUBALIFParams", "CUBALIFState", "cubalif_step", "cubalif_step_full", "CUBALIF"]


class CUBALIFParams(NamedTuple):
    """α, β (floats or tensors broadcastable to ``x_t [B, ...]``), threshold ϑ, reset, recurrent V ``[N, N]``."""

    alpha: float | Tensor
    beta: float | Tensor
    v_threshold: float = 1.0
    v_reset: float = 0.0
    soft: bool = False
    detach_reset: bool = False
    surrogate: Callable[[Tensor], Tensor] | None = None
    recurrent: Tensor | None = None


class CUBALIFState(NamedTuple):
    """Synaptic current ``i``, membrane ``u`` and previous spikes ``s`` (all ``[B, ...]``)."""

    i: Tensor
    u: Tensor
    s: Tensor


def cubalif_step_full(x: Tensor, state: CUBALIFState, p: CUBALIFParams) -> tuple[Tensor, Tensor, CUBALIFState]:
    """One step; returns (S_t, U_t, new state). Equations in the module docstring."""
    s_prev = state.s
    i = p.alpha * state.i + x
    if p.recurrent is not None:
        i = i + s_prev @ p.recurrent.t()
    sr = s_prev.detach() if p.detach_reset else s_prev
    pre = p.beta * state.u + i
    if p.soft:
        u = pre - p.v_threshold * sr
    else:
        u = pre * (1.0 - sr) + p.v_reset * sr
    s = p.surrogate(u - p.v_threshold)  # type: ignore[misc]
    return s, u, CUBALIFState(i, u, s)


def cubalif_step(x: Tensor, state: CUBALIFState, p: CUBALIFParams) -> tuple[Tensor, CUBALIFState]:
    """Pure functional step ``(x_t [B, ...], state, params) -> (spike_t, new_state)``."""
    s, _, new = cubalif_step_full(x, state, p)
    return s, new


def _decay(value: Any, tau: Any, dt: float, name: str, tau_name: str, default: float) -> Tensor:
    if value is not None and tau is not None:
        raise ParameterError(f"CUBALIF: give either {name} or {tau_name}, not both")
    if value is None and tau is None:
        out = torch.tensor(default, dtype=torch.float64)
    elif value is not None:
        out = torch.as_tensor(value, dtype=torch.float64).detach().clone()
    else:
        t = torch.as_tensor(tau, dtype=torch.float64)
        if not bool(torch.all(torch.isfinite(t) & (t > 0))):
            raise ParameterError(f"CUBALIF: {tau_name} must be finite and > 0 (same unit as dt), got {tau}")
        out = torch.exp(-dt / t)
    if out.dim() > 1:
        raise ParameterError(f"CUBALIF: {name} must be a scalar or a vector [n_features], got shape {tuple(out.shape)}")
    # [0, 1]: α = 0 is a plain LIF synapse and β = 1 an IF membrane (Bouanane et al. 2023 Tables II/III)
    if not bool(torch.all((out >= 0) & (out <= 1))):
        raise ParameterError(f"CUBALIF: {name} must lie in [0, 1], got {out.tolist()}")
    return out


class CUBALIF(NeuronModule):
    """CUBA-LIF neuron (Bouanane et al. 2023, eqs. 3–6), optionally recurrent and with learnable, per-neuron decays.

    ``x [T, B, ...]`` → spikes ``[T, B, ...]`` (and ``U`` ``[T, B, ...]`` with ``return_membrane``).
    """

    def __init__(self, alpha: float | Sequence[float] | Tensor | None = None,
                 beta: float | Sequence[float] | Tensor | None = None,
                 tau_syn: float | Sequence[float] | Tensor | None = None,
                 tau_mem: float | Sequence[float] | Tensor | None = None, dt: float = 1.0,
                 learnable: bool = False, heterogeneous: bool = False, n_features: int | None = None,
                 recurrent: bool = False, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 reset: str = "hard", detach_reset: bool = False, surrogate: Any = "fast_sigmoid",
                 return_membrane: bool = False) -> None:
        super().__init__(surrogate, return_membrane)
        dt = float(dt)
        if not math.isfinite(dt) or dt <= 0:
            raise ParameterError(f"CUBALIF: dt must be > 0, got {dt}")
        a = _decay(alpha, tau_syn, dt, "alpha", "tau_syn", 0.6)
        b = _decay(beta, tau_mem, dt, "beta", "tau_mem", 0.9)
        if a.dim() == 1 or b.dim() == 1:
            heterogeneous = True
        if n_features is not None and (int(n_features) != n_features or n_features < 1):
            raise ParameterError(f"CUBALIF: n_features must be a positive integer, got {n_features}")
        if (heterogeneous or recurrent) and n_features is None:
            lens = {int(v.shape[0]) for v in (a, b) if v.dim() == 1}
            if len(lens) == 1:
                n_features = lens.pop()
            else:
                raise ParameterError(
                    "CUBALIF: heterogeneous=True / recurrent=True need n_features (the size of dimension 2 of x)"
                )
        self.n_features = None if n_features is None else int(n_features)
        self.heterogeneous = bool(heterogeneous)
        if self.heterogeneous:
            assert self.n_features is not None  # checked above
            shape = (self.n_features,)
            for name, v in (("alpha", a), ("beta", b)):
                if v.dim() == 1 and v.shape[0] != self.n_features:
                    raise ParameterError(f"CUBALIF: {name} has {v.shape[0]} values but n_features = {self.n_features}")
            a, b = a.expand(shape).clone(), b.expand(shape).clone()
        self.learnable = bool(learnable)
        self.dt = dt
        if self.learnable:
            if not bool(torch.all((a > 0) & (a < 1) & (b > 0) & (b < 1))):
                raise ParameterError("CUBALIF: learnable decays are stored as logits and must lie in (0, 1), "
                                     f"got alpha={a.tolist()}, beta={b.tolist()}")
            self.alpha_logit = nn.Parameter(torch.logit(a).float())
            self.beta_logit = nn.Parameter(torch.logit(b).float())
            self._fixed: tuple[float, float] | None = None
        elif self.heterogeneous:
            self.register_buffer("alpha_value", a.float())
            self.register_buffer("beta_value", b.float())
            self._fixed = None
        else:  # fixed scalars stay exact python floats (bit-exact in float64)
            self._fixed = (float(a), float(b))
        self.soft, self.v_reset = parse_reset(reset, v_reset, "CUBALIF")
        self.v_threshold = float(v_threshold)
        self.detach_reset = bool(detach_reset)
        if recurrent:
            n = self.n_features
            w = torch.empty(n, n)  # type: ignore[arg-type]
            bound = 1.0 / math.sqrt(n)  # type: ignore[arg-type]
            nn.init.uniform_(w, -bound, bound)
            self.recurrent_weight: nn.Parameter | None = nn.Parameter(w)
        else:
            self.recurrent_weight = None

    step_fn = staticmethod(cubalif_step_full)
    definition = "cubalif"

    def fused_args(self, x: Tensor) -> tuple[list, list[bool]]:
        a, b = self._decay_values(compute_dtype(x))
        return [a, b, self.v_threshold, self.v_reset], [self.soft, self.detach_reset]

    def run_fused(self, x: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        if self.recurrent_weight is None:
            return super().run_fused(x, state)
        x = x.to(compute_dtype(x))
        params, flags = self.fused_args(x)
        return recurrent_sequence("cubalif", x, self.recurrent_weight, state, params, flags, self.surrogate,
                                  spike_state=2)

    alpha_value: Tensor  # buffers of fixed heterogeneous decays
    beta_value: Tensor

    def _decay_values(self, dtype: torch.dtype) -> tuple[Tensor | float, Tensor | float]:
        if self.learnable:
            return torch.sigmoid(self.alpha_logit.to(dtype)), torch.sigmoid(self.beta_logit.to(dtype))
        if self._fixed is None:
            return self.alpha_value.to(dtype), self.beta_value.to(dtype)
        return self._fixed

    @property
    def alpha(self) -> Tensor:
        """Current synaptic decay α ∈ [0, 1] (0-d tensor or ``[n_features]``; float64 for fixed scalars)."""
        a = self._decay_values(torch.float64)[0]
        return a.detach() if isinstance(a, Tensor) else torch.tensor(a, dtype=torch.float64)

    @property
    def beta(self) -> Tensor:
        """Current membrane decay β ∈ [0, 1] (0-d tensor or ``[n_features]``; float64 for fixed scalars)."""
        b = self._decay_values(torch.float64)[1]
        return b.detach() if isinstance(b, Tensor) else torch.tensor(b, dtype=torch.float64)

    @property
    def tau_syn(self) -> Tensor:
        """``τ_syn = -dt / log α`` (unit of dt)."""
        return -self.dt / torch.log(self.alpha)

    @property
    def tau_mem(self) -> Tensor:
        """``τ_mem = -dt / log β`` (unit of dt)."""
        return -self.dt / torch.log(self.beta)

    def check_input(self, x: Tensor) -> None:
        check_sequence(x, "CUBALIF", 3 if (self.heterogeneous or self.recurrent_weight is not None) else 2)
        if self.recurrent_weight is not None and (x.dim() != 3 or x.shape[2] != self.n_features):
            raise ParameterError(
                f"CUBALIF(recurrent=True): input must be [T, B, {self.n_features}], got {tuple(x.shape)}"
            )
        if self.heterogeneous and x.shape[2] != self.n_features:
            raise ParameterError(
                f"CUBALIF(heterogeneous): dimension 2 of x must be n_features = {self.n_features}, "
                f"got shape {tuple(x.shape)}"
            )

    @staticmethod
    def _shaped(v: Tensor | float, x: Tensor) -> Tensor | float:
        if isinstance(v, Tensor) and v.dim() == 1:
            v = v.reshape((v.shape[0],) + (1,) * (x.dim() - 3))
        return v

    def make_params(self, x: Tensor) -> CUBALIFParams:
        cd = compute_dtype(x)
        a, b = self._decay_values(cd)
        rec = None if self.recurrent_weight is None else self.recurrent_weight.to(cd)
        return CUBALIFParams(self._shaped(a, x), self._shaped(b, x), self.v_threshold,
                             self.v_reset, self.soft, self.detach_reset, self.surrogate, rec)

    def initial_state(self, x: Tensor) -> CUBALIFState:
        return CUBALIFState(self._zeros(x), self._zeros(x, self.v_reset), self._zeros(x))

    def extra_repr(self) -> str:
        a, b = self.alpha, self.beta
        fa = f"{a.item():.4g}" if a.dim() == 0 else f"[{a.shape[0]}]"
        fb = f"{b.item():.4g}" if b.dim() == 0 else f"[{b.shape[0]}]"
        return (f"alpha={fa}, beta={fb}, learnable={self.learnable}, heterogeneous={self.heterogeneous}, "
                f"recurrent={self.recurrent_weight is not None}, n_features={self.n_features}, "
                f"v_threshold={self.v_threshold}, reset={'soft' if self.soft else 'hard'}, "
                f"surrogate={self.surrogate!r}")
