"""Shared machinery of the phase-plane systems: :class:`Trajectory`, the base class (RK4 with the
reset rule, numeric Jacobian, Euler map) and small numeric helpers."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

__all__ = ["Trajectory", "NeuronSystem", "quadratic_roots", "check_positive"]


@dataclass(frozen=True)
class Trajectory:
    """A trajectory: times ``t [n]``, states ``[n, dim]``, spike times (same unit as ``t``)."""

    t: np.ndarray
    states: np.ndarray
    spikes: tuple[float, ...] = ()

    def to_json(self, max_points: int = 400) -> dict[str, Any]:
        step = max(1, len(self.t) // max_points)
        return {"t": self.t[::step].tolist(), "states": self.states[::step].tolist(), "spikes": list(self.spikes)}


class NeuronSystem:
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
                for pts, f in zip(points, fired, strict=True)]

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


def quadratic_roots(a2: float, a1: float, a0: float) -> list[float]:
    """Real roots of ``a2 x² + a1 x + a0`` (a2 != 0), ascending; a double root once."""
    disc = a1 * a1 - 4 * a2 * a0
    if disc < 0:
        return []
    if disc == 0:
        return [-a1 / (2 * a2)]
    sq = math.sqrt(disc)
    q = -0.5 * (a1 + math.copysign(sq, a1))  # the cancellation-free form
    return sorted([q / a2, a0 / q])


def check_positive(who: str, **values: float) -> None:
    for key, val in values.items():
        if not (math.isfinite(float(val)) and float(val) > 0):
            raise ParameterError(f"{who}: {key} must be a finite number > 0, got {val}")
