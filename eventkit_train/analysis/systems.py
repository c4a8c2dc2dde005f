"""Continuous-time neuron models for phase-plane analysis (SIT paper, Jin et al., Eqs. 1, 2, 4, 5, 18).

A *system* is the sub-threshold ODE of a neuron plus its spike rule. State arrays are
float64 ``[..., dim]`` (``dim`` 1: ``U``; 2: ``(U, V)``); ``I`` is a constant input.

* :class:`LIFSystem` (Eq. 1 / 23): ``τ dU/dt = -(U - U_r) + I``.
* :class:`QIFSystem` (Eq. 4): ``τ dU/dt = k(U - U_r)(U - U_c) + I``.
* :class:`IzhikevichSystem`, the quadratic family with a recovery variable::

      τ dU/dt = p2·U² + p1·U + p0 - V + I
      τ dV/dt = a(b(U - u_b) - V)                  spike: U >= threshold -> U = c, V = V + d

  - ``vanilla`` (Izhikevich 2003, mV and ms): p2 = 0.04, p1 = 5, p0 = 140, u_b = 0, τ = 1,
    threshold 30 mV; presets :data:`IZHIKEVICH_PRESETS`. (The SIT paper's Eq. 2 as extracted
    reads ``0.04U² + 5V + 140 - U``: the standard form ``0.04U² + 5U + 140 - V`` is used.)
  - ``standardized`` (SIT, Eq. 5): p2 = k, p1 = -k(U_r + U_c), p0 = k·U_r·U_c, u_b = U_r,
    threshold U_th = 1, reset c = 0; presets ``sit`` and ``sit-bursting`` (Table 2), τ in steps.

* :class:`CustomSystem`: any ``rhs(state, I)``; fixed points and Jacobians numerically.

Each system gives ``rhs``, ``jacobian``, closed-form fixed points where one exists
(``closed_form_fixed_points``), ``nullclines`` and a discrete trajectory
(``discrete_trajectory``): Eq. 18 through the package's own :func:`sit_step_full` for SIT,
Eq. 24 through :func:`lif_step_full` for LIF, forward Euler with ``dt`` for the others.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

from .izhikevich import IZHIKEVICH_PRESETS, IzhikevichSystem
from .system_base import NeuronSystem, Trajectory, check_positive, quadratic_roots

__all__ = ["IZHIKEVICH_PRESETS", "SYSTEM_NAMES", "LIFSystem", "QIFSystem", "IzhikevichSystem", "CustomSystem",
           "get_system", "Trajectory", "NeuronSystem"]

SYSTEM_NAMES = ("lif", "qif", "izhikevich[:preset]", "sit", "sit-bursting")


@dataclass(frozen=True)
class LIFSystem(NeuronSystem):
    """LIF, ``τ dU/dt = -(U - U_r) + I`` (Eq. 1); spike at ``U >= u_th``, reset to ``u_reset``. τ in steps."""

    tau: float = 2.0
    u_r: float = 0.0
    u_th: float = 1.0
    u_reset: float = 0.0
    name: str = "lif"
    dim = 1
    labels = ("U",)

    def __post_init__(self) -> None:
        check_positive(self.name, tau=self.tau)

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.u_th

    def rhs(self, state: np.ndarray, I: float) -> np.ndarray:
        return (-(np.asarray(state) - self.u_r) + I) / self.tau

    def jacobian(self, state: np.ndarray, I: float) -> np.ndarray:
        return np.array([[-1.0 / self.tau]])

    def closed_form_fixed_points(self, I: float) -> list[np.ndarray]:
        return [np.array([self.u_r + I])]

    def reset(self, state: np.ndarray) -> np.ndarray:
        return np.array([self.u_reset])

    def discrete_trajectory(self, init: Any, I: float, steps: int, dt: float = 1.0) -> Trajectory:
        """Eq. 24 of the SIT paper, computed by the package's own :func:`lif_step_full` (float64)."""
        if self.u_r != self.u_reset:
            return super().discrete_trajectory(init, I, steps, dt)
        import torch

        from eventkit_train.neurons.lif import LIFParams, LIFState, lif_step_full
        from eventkit_train.surrogate import get_surrogate

        p = LIFParams(1.0 / self.tau, self.u_th, self.u_reset, False, False, get_surrogate("arctan"))
        state = LIFState(torch.tensor([float(np.ravel(init)[0])], dtype=torch.float64))
        x = torch.tensor([float(I)], dtype=torch.float64)
        xs, ts, spk = [[float(state.v)]], [0.0], []
        for i in range(steps):
            s, h, state = lif_step_full(x, state, p)
            if float(s) > 0:  # keep the H that crossed the threshold as a point before the reset
                spk.append(float(i + 1))
                xs.append([float(h)])
                ts.append(float(i + 1))
            xs.append([float(state.v)])
            ts.append(float(i + 1))
        return Trajectory(np.asarray(ts), np.asarray(xs), tuple(spk))


@dataclass(frozen=True)
class QIFSystem(NeuronSystem):
    """QIF, ``τ dU/dt = k(U - U_r)(U - U_c) + I`` (Eq. 4); spike at ``u_th``, reset to ``u_reset``."""

    k: float = 1.0
    u_r: float = -0.05
    u_c: float = 1.0
    tau: float = 2.0
    u_th: float = 1.0
    u_reset: float = 0.0
    name: str = "qif"
    dim = 1
    labels = ("U",)

    def __post_init__(self) -> None:
        check_positive(self.name, tau=self.tau, k=self.k)

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.u_th

    def rhs(self, state: np.ndarray, I: float) -> np.ndarray:
        u = np.asarray(state)
        return (self.k * (u - self.u_r) * (u - self.u_c) + I) / self.tau

    def jacobian(self, state: np.ndarray, I: float) -> np.ndarray:
        u = float(np.ravel(state)[0])
        return np.array([[self.k * (2 * u - self.u_r - self.u_c) / self.tau]])

    def closed_form_fixed_points(self, I: float) -> list[np.ndarray]:
        # k U^2 - k(U_r + U_c) U + k U_r U_c + I = 0
        roots = quadratic_roots(self.k, -self.k * (self.u_r + self.u_c), self.k * self.u_r * self.u_c + I)
        return [np.array([r]) for r in roots]

    def reset(self, state: np.ndarray) -> np.ndarray:
        return np.array([self.u_reset])

@dataclass(frozen=True)
class CustomSystem(NeuronSystem):
    """A user system: ``rhs(state [dim], I) -> [dim]``; numeric fixed points and Jacobian."""

    rhs_fn: Callable[[np.ndarray, float], np.ndarray]
    dim: int = 2
    name: str = "custom"
    threshold: float | None = None
    reset_fn: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.dim not in (1, 2):
            raise ParameterError(f"custom system: dim must be 1 or 2, got {self.dim}")
        object.__setattr__(self, "labels", ("U",) if self.dim == 1 else ("U", "V"))

    def rhs(self, state: np.ndarray, I: float) -> np.ndarray:
        x = np.asarray(state, dtype=np.float64)
        if x.ndim == 1:
            return np.asarray(self.rhs_fn(x, I), dtype=np.float64).reshape(self.dim)
        flat = x.reshape(-1, self.dim)
        out = np.stack([np.asarray(self.rhs_fn(row, I), dtype=np.float64).reshape(self.dim) for row in flat])
        return out.reshape(x.shape)

    def reset(self, state: np.ndarray) -> np.ndarray:
        return state if self.reset_fn is None else np.asarray(self.reset_fn(state), dtype=np.float64)

    def params(self) -> dict[str, Any]:
        return {"rhs": getattr(self.rhs_fn, "__name__", "custom"), "dim": self.dim, "threshold": self.threshold}


def get_system(neuron: Any, **params: Any) -> NeuronSystem:
    """A system from a name (``lif``, ``qif``, ``izhikevich[:preset]``, ``sit``, ``sit-bursting``),
    a system (``params`` replace fields) or an eventkit neuron module (LIF, IF-free LIF family, SIT).

    ``params`` override the preset: e.g. ``get_system("sit-bursting", d=0.6)``.
    """
    from eventkit_train.neurons.sit import SIT_BURSTING, SIT_TONIC

    if isinstance(neuron, NeuronSystem):
        try:
            return dataclasses.replace(neuron, **params) if params else neuron  # type: ignore[type-var]
        except TypeError as exc:
            raise ParameterError(f"{neuron.name}: {exc}") from None
    if isinstance(neuron, str):
        key = neuron.strip().lower().replace("_", "-")
        try:
            if key == "lif":
                return LIFSystem(**params)
            if key == "qif":
                return QIFSystem(**params)
            if key in ("sit", "sit-tonic", "sit-bursting"):
                base = dict(SIT_BURSTING if key == "sit-bursting" else SIT_TONIC)
                unknown = set(params) - set(base)
                if unknown:
                    raise ParameterError(f"{key}: unknown parameter(s) {sorted(unknown)}; one of {sorted(base)}")
                base.update({k: float(v) for k, v in params.items()})
                return IzhikevichSystem.standardized(name=key, **base)
            if key == "izhikevich" or key.startswith(("izhikevich:", "izhikevich-")):
                return IzhikevichSystem.vanilla(key[len("izhikevich") + 1:] or "tonic", **params)
        except TypeError as exc:
            raise ParameterError(f"{neuron}: bad parameter(s) {sorted(params)}: {exc}") from None
        raise ParameterError(f"unknown neuron {neuron!r}; one of {SYSTEM_NAMES} (or a system / neuron module)")
    return _from_module(neuron, params)


def _from_module(module: Any, params: Mapping[str, Any]) -> NeuronSystem:
    from eventkit_train.neurons import LIF, SIT

    if isinstance(module, SIT):
        sit_vals = dict(k=module.k, a=module.a, b=module.b, c=module.c, d=module.d, u_r=module.u_r, u_c=module.u_c,
                        tau=module.tau, u_th=module.u_th)
        sit_vals.update({k: float(v) for k, v in params.items()})
        return IzhikevichSystem.standardized(name="sit", **sit_vals)
    if isinstance(module, LIF) and not module.soft:
        vals: dict[str, Any] = dict(tau=module.tau, u_r=module.v_reset, u_th=module.v_threshold,
                                    u_reset=module.v_reset)
        vals.update(params)
        return LIFSystem(**vals)
    raise ParameterError(f"no phase-plane model for {type(module).__name__}; use LIF (hard reset), SIT, "
                         f"a name from {SYSTEM_NAMES} or a CustomSystem")
