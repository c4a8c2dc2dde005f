"""The Izhikevich family for phase-plane analysis: vanilla (Izhikevich 2003, mV/ms) and the SIT
paper's standardized form (Eq. 5, SIT and SIT-Bursting of Table 2); equations in
:mod:`eventkit_train.analysis.systems`."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

from .system_base import NeuronSystem, Trajectory, check_positive, quadratic_roots

__all__ = ["IZHIKEVICH_PRESETS", "IzhikevichSystem"]

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


@dataclass(frozen=True)
class IzhikevichSystem(NeuronSystem):
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
        check_positive(self.name, tau=self.tau, p2=self.p2)
        for key in ("p1", "p0", "a", "b", "c", "d", "u_b", "u_th"):
            if not math.isfinite(float(getattr(self, key))):
                raise ParameterError(f"{self.name}: {key} must be finite, got {getattr(self, key)}")

    @classmethod
    def vanilla(cls, preset: str | None = "tonic", **params: float) -> IzhikevichSystem:
        """Izhikevich (2003) in mV/ms: ``dv/dt = 0.04v² + 5v + 140 - u + I``, ``du/dt = a(bv - u)``,
        spike at 30 mV: ``v = c``, ``u = u + d``. ``preset`` from :data:`IZHIKEVICH_PRESETS`;
        ``a, b, c, d`` (and ``u_th``) override it."""
        values: dict[str, float] = {}
        if preset is not None:
            key = preset.strip().lower().replace("-", "_").replace(" ", "_")
            if key not in IZHIKEVICH_PRESETS:
                raise ParameterError(f"unknown Izhikevich preset {preset!r}; one of {sorted(IZHIKEVICH_PRESETS)}")
            values = dict(zip("abcd", IZHIKEVICH_PRESETS[key], strict=True))
        unknown = set(params) - {"a", "b", "c", "d", "u_th"}
        if unknown:
            raise ParameterError(f"izhikevich: unknown parameter(s) {sorted(unknown)}; use a, b, c, d, u_th")
        values.update({k: float(v) for k, v in params.items()})
        missing = [k for k in "abcd" if k not in values]
        if missing:
            raise ParameterError(f"izhikevich: give a preset or all of a, b, c, d (missing {missing})")
        name = "izhikevich" if preset is None else f"izhikevich:{preset}"
        return cls(p2=0.04, p1=5.0, p0=140.0, u_b=0.0, tau=1.0, name=name, form="vanilla",
                   u_th=values.get("u_th", 30.0), a=values["a"], b=values["b"], c=values["c"], d=values["d"])

    @classmethod
    def standardized(cls, *, k: float, a: float, b: float, c: float, d: float, u_r: float, u_c: float,
                     tau: float = 2.0, u_th: float = 1.0, name: str = "sit") -> IzhikevichSystem:
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
        roots = quadratic_roots(self.p2, self.p1 - self.b, self.p0 + self.b * self.u_b + I)
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
