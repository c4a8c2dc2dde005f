"""``phase_plane(neuron, I)``: vector field, nullclines, fixed points, trajectories, bifurcation
(Jin et al. 2022, Sect. 2.4, 3.2).

The four steps of the SIT paper's phase-plane procedure (Sect. 2.4): the vector field, the
nullclines and their intersections, the eigenvalues at each intersection, the stability.
Fixed points come from the closed form where one exists and are cross-checked by the numeric
solver (``numeric_agreement``: the largest distance between the two, in the window). The
discrete-time trajectory that a network runs (Eq. 18 for SIT, Eq. 24 for LIF) is overlaid.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

from .fixed_points import Bifurcation, FixedPoint, bifurcation, default_window, find_fixed_points, fixed_points
from .systems import IzhikevichSystem, QIFSystem, Trajectory, get_system

__all__ = ["PhasePlane", "phase_plane"]


@dataclass
class PhasePlane:
    """Everything :func:`phase_plane` computed (arrays for the plot; :meth:`to_json` for the numbers)."""

    system: Any
    I: float
    window: tuple[float, ...]
    field_u: np.ndarray
    field_v: np.ndarray | None
    field_du: np.ndarray
    field_dv: np.ndarray | None
    nullclines: dict[str, tuple[np.ndarray, np.ndarray]]
    fixed_points: list[FixedPoint]
    numeric_points: list[tuple[float, ...]]
    numeric_agreement: float | None
    trajectories: list[Trajectory]
    discrete: Trajectory | None
    bifurcation: Bifurcation | None = None
    closed_form_bifurcations: dict[str, float | None] = field(default_factory=dict)
    contour_grid: tuple[np.ndarray, ...] | None = None  # (U, V, dU, dV) where no nullcline formula exists

    def to_json(self) -> dict[str, Any]:
        s = self.system
        return {
            "neuron": s.name, "params": _jsonable(s.params()), "dim": s.dim, "labels": list(s.labels), "I": self.I,
            "time_unit": "ms" if getattr(s, "form", "") == "vanilla" else "step", "window": list(self.window),
            "fixed_points": [p.to_json() for p in self.fixed_points],
            "numeric_fixed_points": [list(p) for p in self.numeric_points],
            "numeric_agreement": self.numeric_agreement,
            "trajectories": [t.to_json() for t in self.trajectories],
            "discrete_trajectory": None if self.discrete is None else self.discrete.to_json(),
            "bifurcation": None if self.bifurcation is None else self.bifurcation.to_json(),
            "closed_form_bifurcations": self.closed_form_bifurcations,
        }

    def save(self, out_dir: str | Path, stem: str | None = None) -> dict[str, Path]:
        """Write ``<stem>.png`` and ``<stem>.json`` into ``out_dir``; returns their paths."""
        from .plot_dynamics import plot_phase_plane

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = stem or "phase_plane_" + self.system.name.replace(":", "_")
        paths = {"png": out / f"{stem}.png", "json": out / f"{stem}.json"}
        plot_phase_plane(self, paths["png"])
        paths["json"].write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return paths


def phase_plane(neuron: Any, I: float = 0.0, *, params: Mapping[str, Any] | None = None,
                window: Sequence[float] | None = None, grid: int = 21, inits: Sequence[Sequence[float]] | None = None,
                t_max: float | None = None, dt: float | None = None, discrete_init: Sequence[float] | None = None,
                discrete_steps: int = 40, bifurcation_inputs: Sequence[float] | None = None,
                spikes: bool = True) -> PhasePlane:
    """Phase-plane analysis of ``neuron`` at constant input ``I``.

    ``neuron``: ``lif``, ``qif``, ``izhikevich[:preset]``, ``sit``, ``sit-bursting``, a system of
    :mod:`~eventkit_train.analysis.systems` or a LIF / SIT module; ``params`` override its
    parameters (``{"d": 0.6}``). ``window``: ``(u0, u1)`` or ``(u0, u1, v0, v1)`` (default: around
    the fixed points, reset and threshold). ``inits``: initial states of the continuous
    trajectories (RK4, step ``dt``, for ``t_max``; default τ/20 and 50τ, or 0.1 ms and 200 ms;
    with ``spikes`` the reset rule applies at the threshold). ``discrete_init`` /
    ``discrete_steps``: the discrete trajectory (default: the network's initial state, U = c, V = 0).
    ``bifurcation_inputs``: inputs for the bifurcation diagram of the fixed points.
    """
    system = get_system(neuron, **dict(params or {}))
    I = float(I)
    if not np.isfinite(I):
        raise ParameterError(f"phase_plane: I must be finite, got {I}")
    if int(grid) < 2:
        raise ParameterError(f"phase_plane: grid must be >= 2, got {grid}")
    points = fixed_points(system, I, window=window)
    vanilla = getattr(system, "form", "") == "vanilla"
    d_init = discrete_init if discrete_init is not None else _network_init(system)
    discrete = system.discrete_trajectory(d_init, I, int(discrete_steps))
    win = tuple(float(v) for v in window) if window is not None else default_window(
        system, I, [p.state for p in points] + [tuple(s) for s in discrete.states])
    if len(win) != 2 * system.dim or win[0] >= win[1] or (system.dim == 2 and win[2] >= win[3]):
        raise ParameterError(f"phase_plane: window must be (u0, u1{', v0, v1' if system.dim == 2 else ''}) "
                             f"with u0 < u1{' and v0 < v1' if system.dim == 2 else ''}, got {win}")
    numeric = [tuple(float(v) for v in p) for p in find_fixed_points(system, I, win)]
    agreement = _agreement(points, numeric, win) if points and points[0].source == "closed form" else None
    tau = getattr(system, "tau", 1.0)
    t_max = float(t_max) if t_max is not None else (200.0 if vanilla else 50.0 * tau)
    dt = float(dt) if dt is not None else (0.1 if vanilla else tau / 20.0)
    trajectories = system.integrate_many(inits or _default_inits(win, system), I, t_max, dt, spikes=spikes)
    us = np.linspace(win[0], win[1], int(grid))
    contour_grid = None
    if system.dim == 1:
        du = np.array([float(system.rhs(np.array([u]), I)[0]) for u in us])
        fu, fv, fdu, fdv = us, None, du, None
        nullclines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    else:
        vs = np.linspace(win[2], win[3], int(grid))
        fu, fv = np.meshgrid(us, vs)
        d = system.rhs(np.stack([fu, fv], axis=-1), I)
        fdu, fdv = d[..., 0], d[..., 1]
        fine = np.linspace(win[0], win[1], 400)
        nullclines = {k: (fine, v) for k, v in system.nullclines(I, fine).items()}
        if not nullclines:  # no formula: the zero contours of dU/dt and dV/dt on a fine grid
            cu, cv = np.meshgrid(np.linspace(win[0], win[1], 150), np.linspace(win[2], win[3], 150))
            cd = system.rhs(np.stack([cu, cv], axis=-1), I)
            contour_grid = (cu, cv, cd[..., 0], cd[..., 1])
    bif = None
    if bifurcation_inputs is not None:
        bif = bifurcation(system, bifurcation_inputs, window=win if points and points[0].source == "numeric" else None)
    closed_bif: dict[str, float | None] = {}
    if isinstance(system, IzhikevichSystem):
        closed_bif = {"saddle_node": system.saddle_node_input(), "hopf": system.hopf_input()}
    elif isinstance(system, QIFSystem):
        closed_bif = {"saddle_node": system.k * (system.u_c - system.u_r) ** 2 / 4}
    return PhasePlane(system, I, win, fu, fv, fdu, fdv, nullclines, points, numeric, agreement, trajectories,
                      discrete, bif, closed_bif, contour_grid)


def _network_init(system: Any) -> list[float]:
    """The state a network layer starts from: U = reset value (c / U_reset), V = 0; Izhikevich
    (2003) starts at v = -65 mV, u = b·v."""
    if getattr(system, "form", "") == "vanilla":
        return [-65.0, system.b * -65.0]
    if system.dim == 1:
        return [float(getattr(system, "u_reset", 0.0))]
    return [float(getattr(system, "c", 0.0)), 0.0]


def _default_inits(win: tuple[float, ...], system: Any) -> list[list[float]]:
    if system.dim == 1:
        return [[win[0] + f * (win[1] - win[0])] for f in (0.1, 0.35, 0.6)]
    return [[win[0] + fu * (win[1] - win[0]), win[2] + fv * (win[3] - win[2])]
            for fu, fv in ((0.1, 0.9), (0.1, 0.1), (0.5, 0.95), (0.5, 0.05))]


def _agreement(points: list[FixedPoint], numeric: list[tuple[float, ...]], win: tuple[float, ...]) -> float | None:
    """Largest distance from a closed-form point inside the window to the nearest numeric one
    (inf when the solver missed one); None when no closed-form point lies in the window."""
    inside = [p.state for p in points if win[0] <= p.state[0] <= win[1]
              and (len(p.state) == 1 or win[2] <= p.state[1] <= win[3])]
    if not inside:
        return None
    if len(numeric) != len(inside):
        return float("inf")
    return max(min(float(np.max(np.abs(np.subtract(p, q)))) for q in numeric) for p in inside)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj
