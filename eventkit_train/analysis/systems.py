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
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

__all__ = ["IZHIKEVICH_PRESETS", "SYSTEM_NAMES", "LIFSystem", "QIFSystem", "IzhikevichSystem", "CustomSystem",
           "get_system", "Trajectory"]

#: Izhikevich (2003), Fig. 2: (a, b, c, d) in mV/ms units. ``tonic`` is the setting the SIT
#: paper calls "tonic spiking" (Sect. 2.2: a = 0.02, b = 0.2, c = -65, d = 8), i.e. regular
#: spiking; Izhikevich (2004)'s tonic-spiking figure uses d = 6.
IZHIKEVICH_PRESETS: dict[str, tuple[float, float, float, float]] = {
    "tonic": (0.02, 0.2, -65.0, 8.0),
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
    "low_threshold_spiking": (0.02, 0.25, -65.0, 2.0),
    "thalamo_cortical": (0.02, 0.25, -65.0, 0.05),
    "resonator": (0.1, 0.26, -65.0, 2.0),
}

SYSTEM_NAMES = ("lif", "qif", "izhikevich[:preset]", "sit", "sit-bursting")


@dataclass(frozen=True)
class Trajectory:
    """A trajectory: times ``t [n]``, states ``[n, dim]``, spike times (same unit as ``t``)."""

    t: np.ndarray
    states: np.ndarray
    spikes: tuple[float, ...] = ()

    def to_json(self, max_points: int = 400) -> dict[str, Any]:
        step = max(1, len(self.t) // max_points)
        return {"t": self.t[::step].tolist(), "states": self.states[::step].tolist(), "spikes": list(self.spikes)}


class _System:
    """Shared machinery: hybrid (ODE + reset) integration, numeric Jacobian, parameters as JSON."""

    name: str = "system"
    dim: int = 2
    labels: tuple[str, ...] = ("U", "V")
    time_unit: str = "step"
    threshold: float | None = None

    def rhs(self, state: np.ndarray, I: float) -> np.ndarray:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must define rhs")

    def jacobian(self, state: np.ndarray, I: float) -> np.ndarray:
        """Central finite differences of :meth:`rhs` (analytic in the subclasses that can)."""
        x = np.asarray(state, dtype=np.float64)
        jac = np.empty((self.dim, self.dim))
        for j in range(self.dim):
            h = 1e-6 * max(1.0, abs(x[j]))
            e = np.zeros(self.dim)
            e[j] = h
            jac[:, j] = (self.rhs(x + e, I) - self.rhs(x - e, I)) / (2 * h)
        return jac

    def closed_form_fixed_points(self, I: float) -> list[np.ndarray] | None:
        """Fixed points from a formula, ascending in U; ``None``: no closed form (use the numeric solver)."""
        return None

    def nullclines(self, I: float, u: np.ndarray) -> dict[str, np.ndarray]:
        """``{"U": V on the U-nullcline, "V": V on the V-nullcline}`` over ``u`` (2-D systems)."""
        return {}

    def reset(self, state: np.ndarray) -> np.ndarray:
        return state

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if not callable(getattr(self, f.name))}

    def rk4_step(self, x: np.ndarray, I: float, dt: float) -> np.ndarray:
        """One classic Runge-Kutta step of the sub-threshold ODE (no reset)."""
        k1 = self.rhs(x, I)
        k2 = self.rhs(x + 0.5 * dt * k1, I)
        k3 = self.rhs(x + 0.5 * dt * k2, I)
        k4 = self.rhs(x + dt * k3, I)
        return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

    def integrate(self, init: Any, I: float, t_max: float, dt: float, *, spikes: bool = True) -> Trajectory:
        """Classic RK4 with step ``dt`` from ``init`` for ``t_max``; with ``spikes`` the reset
        rule is applied whenever U reaches the threshold. Stops early if the state diverges."""
        return self.integrate_many([init], I, t_max, dt, spikes=spikes)[0]

    def integrate_many(self, inits: Any, I: float, t_max: float, dt: float, *,
                       spikes: bool = True) -> list[Trajectory]:
        """:meth:`integrate` for several initial states at once (one RK4 over a ``[n, dim]`` batch)."""
        x = np.asarray(inits, dtype=np.float64).reshape(-1, self.dim)
        n_steps = int(math.ceil(t_max / dt))
        points: list[list[tuple[float, np.ndarray]]] = [[(0.0, row.copy())] for row in x]
        fired: list[list[float]] = [[] for _ in x]
        alive = np.ones(len(x), dtype=bool)
        for i in range(n_steps):
            x = self.rk4_step(x, I, dt)
            t = (i + 1) * dt
            with np.errstate(invalid="ignore"):
                alive &= np.all(np.isfinite(x), axis=1) & (np.max(np.abs(x), axis=1) <= 1e6)
            if not alive.any():
                break
            for j in np.nonzero(alive)[0]:
                if spikes and self.threshold is not None and x[j, 0] >= self.threshold:
                    points[j].append((t, x[j].copy()))
                    fired[j].append(t)
                    x[j] = self.reset(x[j])
                points[j].append((t, x[j].copy()))
        return [Trajectory(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]), tuple(f))
                for pts, f in zip(points, fired)]

    def discrete_trajectory(self, init: Any, I: float, steps: int, dt: float = 1.0) -> Trajectory:
        """Forward-Euler map ``x ← x + dt·rhs(x)`` with the reset rule (overridden by LIF and SIT)."""
        x = np.asarray(init, dtype=np.float64).reshape(self.dim)
        xs, ts, spk = [x.copy()], [0.0], []
        for i in range(steps):
            x = x + dt * self.rhs(x, I)
            if self.threshold is not None and x[0] >= self.threshold:
                spk.append((i + 1) * dt)
                xs.append(x.copy())
                ts.append((i + 1) * dt)
                x = self.reset(x)
            xs.append(x.copy())
            ts.append((i + 1) * dt)
        return Trajectory(np.asarray(ts), np.asarray(xs), tuple(spk))


@dataclass(frozen=True)
class LIFSystem(_System):
    """LIF, ``τ dU/dt = -(U - U_r) + I`` (Eq. 1); spike at ``U >= u_th``, reset to ``u_reset``. τ in steps."""

    tau: float = 2.0
    u_r: float = 0.0
    u_th: float = 1.0
    u_reset: float = 0.0
    name: str = "lif"
    dim = 1
    labels = ("U",)

    def __post_init__(self) -> None:
        _check_positive(self.name, tau=self.tau)

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
class QIFSystem(_System):
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
        _check_positive(self.name, tau=self.tau, k=self.k)

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
        roots = _quadratic_roots(self.k, -self.k * (self.u_r + self.u_c), self.k * self.u_r * self.u_c + I)
        return [np.array([r]) for r in roots]

    def reset(self, state: np.ndarray) -> np.ndarray:
        return np.array([self.u_reset])


@dataclass(frozen=True)
class IzhikevichSystem(_System):
    """The Izhikevich family (module docstring); build it with :meth:`vanilla` or :meth:`standardized`."""

    p2: float
    p1: float
    p0: float
    a: float
    b: float
    c: float
    d: float
    u_b: float = 0.0
    tau: float = 1.0
    u_th: float = 30.0
    name: str = "izhikevich"
    form: str = "vanilla"
    standardized_params: Mapping[str, float] | None = field(default=None, compare=False)
    dim = 2
    labels = ("U", "V")

    def __post_init__(self) -> None:
        _check_positive(self.name, tau=self.tau, p2=self.p2)
        for key in ("p1", "p0", "a", "b", "c", "d", "u_b", "u_th"):
            if not math.isfinite(float(getattr(self, key))):
                raise ParameterError(f"{self.name}: {key} must be finite, got {getattr(self, key)}")

    @classmethod
    def vanilla(cls, preset: str | None = "tonic", **params: float) -> "IzhikevichSystem":
        """Izhikevich (2003) in mV/ms: ``dv/dt = 0.04v² + 5v + 140 - u + I``, ``du/dt = a(bv - u)``,
        spike at 30 mV: ``v = c``, ``u = u + d``. ``preset`` from :data:`IZHIKEVICH_PRESETS`;
        ``a, b, c, d`` (and ``u_th``) override it."""
        values: dict[str, float] = {}
        if preset is not None:
            key = preset.strip().lower().replace("-", "_").replace(" ", "_")
            if key not in IZHIKEVICH_PRESETS:
                raise ParameterError(f"unknown Izhikevich preset {preset!r}; one of {sorted(IZHIKEVICH_PRESETS)}")
            values = dict(zip("abcd", IZHIKEVICH_PRESETS[key]))
        unknown = set(params) - {"a", "b", "c", "d", "u_th"}
        if unknown:
            raise ParameterError(f"izhikevich: unknown parameter(s) {sorted(unknown)}; use a, b, c, d, u_th")
        values.update({k: float(v) for k, v in params.items()})
        missing = [k for k in "abcd" if k not in values]
        if missing:
            raise ParameterError(f"izhikevich: give a preset or all of a, b, c, d (missing {missing})")
        name = "izhikevich" if preset is None else f"izhikevich:{preset}"
        return cls(p2=0.04, p1=5.0, p0=140.0, u_b=0.0, tau=1.0, name=name, form="vanilla",
                   u_th=values.pop("u_th", 30.0), **values)

    @classmethod
    def standardized(cls, *, k: float, a: float, b: float, c: float, d: float, u_r: float, u_c: float,
                     tau: float = 2.0, u_th: float = 1.0, name: str = "sit") -> "IzhikevichSystem":
        """The standardized form of Eq. 5 (SIT), τ in time steps, spike at ``u_th``."""
        std = dict(k=float(k), a=float(a), b=float(b), c=float(c), d=float(d), u_r=float(u_r), u_c=float(u_c),
                   tau=float(tau), u_th=float(u_th))
        return cls(p2=k, p1=-k * (u_r + u_c), p0=k * u_r * u_c, a=a, b=b, c=c, d=d, u_b=u_r, tau=tau,
                   u_th=u_th, name=name, form="standardized", standardized_params=std)

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.u_th

    def params(self) -> dict[str, Any]:
        if self.standardized_params is not None:
            return {"form": "standardized", **self.standardized_params}
        return {"form": self.form, "a": self.a, "b": self.b, "c": self.c, "d": self.d, "u_th": self.u_th,
                "dv/dt": f"{self.p2}v^2 + {self.p1}v + {self.p0} - u + I", "du/dt": "a(bv - u)"}

    def rhs(self, state: np.ndarray, I: float) -> np.ndarray:
        x = np.asarray(state, dtype=np.float64)
        u, v = x[..., 0], x[..., 1]
        du = (self.p2 * u * u + self.p1 * u + self.p0 - v + I) / self.tau
        dv = self.a * (self.b * (u - self.u_b) - v) / self.tau
        out = np.empty(x.shape)
        out[..., 0], out[..., 1] = du, dv
        return out

    def jacobian(self, state: np.ndarray, I: float) -> np.ndarray:
        u = float(np.ravel(state)[0])
        return np.array([[(2 * self.p2 * u + self.p1) / self.tau, -1.0 / self.tau],
                         [self.a * self.b / self.tau, -self.a / self.tau]])

    def closed_form_fixed_points(self, I: float) -> list[np.ndarray]:
        """V = b(U - u_b) into the U equation: ``p2·U² + (p1 - b)·U + (p0 + b·u_b + I) = 0``."""
        roots = _quadratic_roots(self.p2, self.p1 - self.b, self.p0 + self.b * self.u_b + I)
        return [np.array([u, self.b * (u - self.u_b)]) for u in roots]

    def saddle_node_input(self) -> float:
        """The input at which the two fixed points merge (discriminant 0) and disappear."""
        return (self.p1 - self.b) ** 2 / (4 * self.p2) - self.p0 - self.b * self.u_b

    def hopf_input(self) -> float | None:
        """The input at which the lower fixed point's trace crosses 0 with det > 0 (only when b > a > 0)."""
        if not (self.b > self.a > 0):
            return None
        u = (self.a - self.p1) / (2 * self.p2)
        return -(self.p2 * u * u + (self.p1 - self.b) * u + self.p0 + self.b * self.u_b)

    def nullclines(self, I: float, u: np.ndarray) -> dict[str, np.ndarray]:
        u = np.asarray(u, dtype=np.float64)
        return {"U": self.p2 * u * u + self.p1 * u + self.p0 + I, "V": self.b * (u - self.u_b)}

    def reset(self, state: np.ndarray) -> np.ndarray:
        return np.array([self.c, float(state[1]) + self.d])

    def discrete_trajectory(self, init: Any, I: float, steps: int, dt: float | None = None) -> Trajectory:
        """SIT: Eq. 18 by the package's :func:`sit_step_full` (float64, hard reset, the Y that
        crosses the threshold is kept as an extra point before the reset). Vanilla: Euler, ``dt`` ms."""
        if self.standardized_params is None:
            return super().discrete_trajectory(init, I, steps, 0.5 if dt is None else dt)
        import torch

        from eventkit_train.neurons.sit import SITParams, SITState, sit_step_full
        from eventkit_train.surrogate import get_surrogate

        s = self.standardized_params
        p = SITParams(s["k"], s["a"], s["b"], s["c"], s["d"], s["u_r"], s["u_c"], s["u_th"], s["tau"],
                      surrogate=get_surrogate("arctan"))
        x0 = np.asarray(init, dtype=np.float64).reshape(2)
        state = SITState(torch.tensor([x0[0]], dtype=torch.float64), torch.tensor([x0[1]], dtype=torch.float64))
        x = torch.tensor([float(I)], dtype=torch.float64)
        xs, ts, spk = [x0.tolist()], [0.0], []
        for i in range(steps):
            spike, y, state = sit_step_full(x, state, p)
            if float(spike) > 0:
                spk.append(float(i + 1))
                xs.append([float(y), float(state.v) - s["d"]])
                ts.append(float(i + 1))
            xs.append([float(state.u), float(state.v)])
            ts.append(float(i + 1))
        return Trajectory(np.asarray(ts), np.asarray(xs), tuple(spk))


@dataclass(frozen=True)
class CustomSystem(_System):
    """A user system: ``rhs(state [dim], I) -> [dim]``; numeric fixed points and Jacobian."""

    rhs_fn: Callable[[np.ndarray, float], np.ndarray]
    dim: int = 2  # type: ignore[misc]
    name: str = "custom"
    threshold: float | None = None  # type: ignore[misc]
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


def get_system(neuron: Any, **params: Any) -> _System:
    """A system from a name (``lif``, ``qif``, ``izhikevich[:preset]``, ``sit``, ``sit-bursting``),
    a system (``params`` replace fields) or an eventkit neuron module (LIF, IF-free LIF family, SIT).

    ``params`` override the preset: e.g. ``get_system("sit-bursting", d=0.6)``.
    """
    from eventkit_train.neurons.sit import SIT_BURSTING, SIT_TONIC

    if isinstance(neuron, _System):
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


def _from_module(module: Any, params: Mapping[str, Any]) -> _System:
    from eventkit_train.neurons import LIF, SIT

    if isinstance(module, SIT):
        vals = dict(k=module.k, a=module.a, b=module.b, c=module.c, d=module.d, u_r=module.u_r, u_c=module.u_c,
                    tau=module.tau, u_th=module.u_th)
        vals.update({k: float(v) for k, v in params.items()})
        return IzhikevichSystem.standardized(name="sit", **vals)
    if isinstance(module, LIF) and not module.soft:
        vals = dict(tau=module.tau, u_r=module.v_reset, u_th=module.v_threshold, u_reset=module.v_reset)
        vals.update(params)
        return LIFSystem(**vals)
    raise ParameterError(f"no phase-plane model for {type(module).__name__}; use LIF (hard reset), SIT, "
                         f"a name from {SYSTEM_NAMES} or a CustomSystem")


def _quadratic_roots(a2: float, a1: float, a0: float) -> list[float]:
    """Real roots of ``a2 x² + a1 x + a0`` (a2 != 0), ascending; a double root once."""
    disc = a1 * a1 - 4 * a2 * a0
    if disc < 0:
        return []
    if disc == 0:
        return [-a1 / (2 * a2)]
    sq = math.sqrt(disc)
    q = -0.5 * (a1 + math.copysign(sq, a1))  # the cancellation-free form
    return sorted([q / a2, a0 / q])


def _check_positive(who: str, **values: float) -> None:
    for key, val in values.items():
        if not (math.isfinite(float(val)) and float(val) > 0):
            raise ParameterError(f"{who}: {key} must be a finite number > 0, got {val}")
