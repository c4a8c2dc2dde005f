"""Fixed points of a neuron system: closed form or Newton, Jacobian, eigenvalues, class, bifurcations.

Classification from the eigenvalues λ of the Jacobian (2-D): complex pair → focus (stable
if Re λ < 0), real of one sign → node, real of both signs → saddle, Re λ = 0 → center
(complex) or non-hyperbolic (a zero eigenvalue: the saddle-node point itself). 1-D: λ < 0 a
stable node, λ > 0 an unstable node. The discrete map that a network actually runs (Eq. 18
for SIT, Eq. 24 for LIF, Euler otherwise) has the same fixed points; its multipliers μ (the
eigenvalues of the map's Jacobian) decide whether the *time-step* dynamics converge (|μ| < 1).
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

__all__ = ["FixedPoint", "Bifurcation", "classify", "map_jacobian", "fixed_points", "find_fixed_points",
           "analyse_point", "bifurcation", "default_window"]


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point: ``state`` (U[, V]), Jacobian, eigenvalues, ``kind``, ``stable``, how it was found,
    and the multipliers / stability of the discrete map."""

    state: tuple[float, ...]
    jacobian: tuple[tuple[float, ...], ...]
    eigenvalues: tuple[complex, ...]
    kind: str
    stable: bool
    source: str
    map_multipliers: tuple[complex, ...] = ()
    map_stable: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": list(self.state), "kind": self.kind, "stable": self.stable, "source": self.source,
                "jacobian": [list(r) for r in self.jacobian],
                "eigenvalues": [[z.real, z.imag] for z in self.eigenvalues],
                "map_multipliers": [[z.real, z.imag] for z in self.map_multipliers], "map_stable": self.map_stable}


def classify(eigenvalues: Sequence[complex], *, tol: float = 1e-12) -> tuple[str, bool]:
    """``(kind, asymptotically stable)`` from the eigenvalues of a 1×1 or 2×2 Jacobian."""
    lam = [complex(z) for z in eigenvalues]
    scale = max([1.0] + [abs(z) for z in lam])
    eps = tol * scale
    if len(lam) == 1:
        re = lam[0].real
        if abs(re) <= eps:
            return "non-hyperbolic", False
        return ("stable node", True) if re < 0 else ("unstable node", False)
    if len(lam) != 2:
        raise ParameterError(f"classify: 1 or 2 eigenvalues expected, got {len(lam)}")
    complex_pair = abs(lam[0].imag) > eps
    if any(abs(z.real) <= eps for z in lam):
        return ("center", False) if complex_pair else ("non-hyperbolic", False)
    if complex_pair:
        return ("stable focus", True) if lam[0].real < 0 else ("unstable focus", False)
    r1, r2 = lam[0].real, lam[1].real
    if r1 < 0 and r2 < 0:
        return "stable node", True
    if r1 > 0 and r2 > 0:
        return "unstable node", False
    return "saddle", False


def map_jacobian(system: Any, state: np.ndarray, I: float) -> np.ndarray:
    """Jacobian of the discrete update the network runs, at ``state``.

    SIT (Eq. 18, V updated from the new Y): ``[[1 + J11, J12], [(ab/τ)(1 + J11), 1 - a/τ + (ab/τ)J12]]``;
    LIF (Eq. 24) and every other system: the Euler map ``1 + J`` (one time step; 0.5 ms for
    vanilla Izhikevich, the step of :meth:`discrete_trajectory`).
    """
    jac = system.jacobian(state, I)
    if getattr(system, "standardized_params", None) is not None:
        g = system.a * system.b / system.tau
        return np.array([[1 + jac[0, 0], jac[0, 1]], [g * (1 + jac[0, 0]), 1 - system.a / system.tau + g * jac[0, 1]]])
    dt = 0.5 if getattr(system, "form", "") == "vanilla" else 1.0
    return np.eye(system.dim) + dt * jac


def analyse_point(system: Any, state: Sequence[float] | np.ndarray, I: float, source: str) -> FixedPoint:
    """Jacobian, eigenvalues (``numpy.linalg.eigvals``), class and map multipliers at ``state``."""
    x = np.asarray(state, dtype=np.float64).reshape(system.dim)
    jac = np.asarray(system.jacobian(x, I), dtype=np.float64)
    eig = tuple(sorted((complex(z) for z in np.linalg.eigvals(jac)), key=lambda z: (z.real, z.imag)))
    kind, stable = classify(eig)
    mult = tuple(complex(z) for z in np.linalg.eigvals(map_jacobian(system, x, I)))
    return FixedPoint(tuple(float(v) for v in x), tuple(tuple(float(v) for v in row) for row in jac), eig, kind,
                      stable, source, mult, bool(max(abs(z) for z in mult) < 1.0))


def default_window(system: Any, I: float = 0.0, points: Sequence[Sequence[float]] = ()) -> tuple[float, ...]:
    """A plotting / search window: ``(u0, u1)`` or ``(u0, u1, v0, v1)`` around the fixed points,
    the reset value and the threshold (or the nullcline vertex for vanilla Izhikevich)."""
    us = [p[0] for p in points]
    closed = system.closed_form_fixed_points(I)
    us += [p[0] for p in closed or []]
    if getattr(system, "form", "") == "vanilla":
        us += [system.c, (system.b - system.p1) / (2 * system.p2)]
    else:  # the reset value and the threshold, where the system has them
        us += [v for v in (getattr(system, "c", getattr(system, "u_reset", None)), system.threshold) if v is not None]
    if not us:
        us = [-1.0, 1.0]
    lo, hi = min(us), max(us)
    pad = 0.2 * (hi - lo) if hi > lo else 1.0
    u0, u1 = lo - pad, hi + pad
    if system.dim == 1:
        return (u0, u1)
    grid = np.linspace(u0, u1, 64)
    vs = list(system.nullclines(I, grid).get("V", [])) + [p[1] for p in points] + [p[1] for p in closed or []]
    vs = vs or [-1.0, 1.0]
    v_lo, v_hi = float(min(vs)), float(max(vs))
    vpad = 0.2 * (v_hi - v_lo) if v_hi > v_lo else 1.0
    return (u0, u1, v_lo - vpad, v_hi + vpad)


def find_fixed_points(system: Any, I: float, window: Sequence[float], *, seeds: int = 10) -> list[np.ndarray]:
    """Numeric fixed points inside ``window`` ``(u0, u1[, v0, v1])`` (ascending in U), from ``rhs`` alone.

    1-D: sign changes of ``rhs`` on 4001 points, refined by bisection. 2-D: Newton (with
    backtracking) from a ``seeds × seeds`` grid, kept where ``|rhs|`` is at round-off level,
    duplicates merged.
    """
    w = [float(v) for v in window]
    if system.dim == 1:
        return _roots_1d(system, I, w[0], w[1])
    if len(w) != 4:
        raise ParameterError(f"a 2-D window is (u0, u1, v0, v1), got {tuple(window)}")
    span = np.array([w[1] - w[0], w[3] - w[2]])
    found: list[np.ndarray] = []
    for su, sv in itertools.product(np.linspace(w[0], w[1], seeds), np.linspace(w[2], w[3], seeds)):
        x = _newton(system, np.array([su, sv]), I)
        tol = 1e-9 * span
        if x is None or not (w[0] - tol[0] <= x[0] <= w[1] + tol[0] and w[2] - tol[1] <= x[1] <= w[3] + tol[1]):
            continue
        if all(np.max(np.abs(x - y) / span) > 1e-7 for y in found):
            found.append(x)
    return sorted(found, key=lambda p: (p[0], p[1]))


def fixed_points(system: Any, I: float, *, window: Sequence[float] | None = None,
                 method: str = "auto") -> list[FixedPoint]:
    """Analysed fixed points: closed form (``method="closed"`` or ``"auto"`` where one exists)
    or numeric (``"numeric"``, or ``"auto"`` without a closed form; searched in ``window``)."""
    if method not in ("auto", "closed", "numeric"):
        raise ParameterError(f"method must be auto, closed or numeric, got {method!r}")
    closed = system.closed_form_fixed_points(I) if method != "numeric" else None
    if method == "closed" and closed is None:
        raise ParameterError(f"{system.name} has no closed-form fixed points; use method='numeric'")
    if closed is not None:
        return [analyse_point(system, p, I, "closed form") for p in closed]
    win = window if window is not None else default_window(system, I)
    return [analyse_point(system, p, I, "numeric") for p in find_fixed_points(system, I, win)]


@dataclass(frozen=True)
class Bifurcation:
    """Fixed points over a range of inputs: ``rows`` of (I, U, V, kind, stable) and ``events``
    (where the number or the classes of fixed points change, located by bisection in I)."""

    rows: list[tuple[float, tuple[float, ...], str, bool]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"rows": [{"I": i, "state": list(s), "kind": k, "stable": st} for i, s, k, st in self.rows],
                "events": self.events}


def bifurcation(system: Any, inputs: Sequence[float], *, window: Sequence[float] | None = None,
                method: str = "auto") -> Bifurcation:
    """Fixed points and their classes for each input in ``inputs`` (ascending), with the inputs
    where the picture changes: ``saddle-node`` (two points appear/vanish), ``hopf`` (a focus
    changes stability), ``change`` otherwise."""
    values = sorted(float(v) for v in inputs)
    if len(values) < 2:
        raise ParameterError("bifurcation needs at least two input values")

    def signature(I: float) -> tuple[str, ...]:
        return tuple(p.kind for p in fixed_points(system, I, window=window, method=method))

    rows, events = [], []
    prev = None
    for I in values:
        pts = fixed_points(system, I, window=window, method=method)
        rows += [(I, p.state, p.kind, p.stable) for p in pts]
        sig = tuple(p.kind for p in pts)
        if prev is not None and sig != prev[1]:
            events += _locate_changes(signature, prev[0], prev[1], I, sig)
        prev = (I, sig)
    return Bifurcation(rows, _merge_events(events))


def _locate_changes(signature, lo: float, sig_lo: tuple[str, ...], hi: float, sig_hi: tuple[str, ...],
                    max_events: int = 12) -> list[tuple[float, tuple[str, ...], tuple[str, ...]]]:
    """Every change ``(I, before, after)`` of ``signature`` between ``lo`` and ``hi``, left to right, by bisection."""
    found: list[tuple[float, tuple[str, ...], tuple[str, ...]]] = []
    start, before = lo, sig_lo
    while before != sig_hi and len(found) < max_events:
        a, b = start, hi
        while b - a > 1e-9 * max(1.0, abs(a), abs(b)):
            mid = 0.5 * (a + b)
            if signature(mid) == before:
                a = mid
            else:
                b = mid
        after = signature(b)
        found.append((0.5 * (a + b), before, after))
        if b >= hi:
            break
        start, before = b, after
    return found


def _merge_events(found: list[tuple[float, tuple[str, ...], tuple[str, ...]]]) -> list[dict[str, Any]]:
    """Events as dicts; a pass through a non-generic class (center, non-hyperbolic) becomes one event."""
    merged: list[tuple[float, tuple[str, ...], tuple[str, ...]]] = []
    for I, before, after in found:
        if merged and _transient(merged[-1][2]) and abs(I - merged[-1][0]) <= 1e-6 * max(1.0, abs(I)):
            merged[-1] = (0.5 * (I + merged[-1][0]), merged[-1][1], after)
        else:
            merged.append((I, before, after))
    return [{"I": I, "type": _event_type(b, a), "before": list(b), "after": list(a)} for I, b, a in merged]


def _transient(sig: tuple[str, ...]) -> bool:
    return any(k in ("center", "non-hyperbolic") for k in sig)


def _event_type(before: tuple[str, ...], after: tuple[str, ...]) -> str:
    if len(before) != len(after):
        return "saddle-node"
    pairs = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    if any("focus" in x and "focus" in y for x, y in pairs):
        return "hopf"
    if pairs and all(x.split()[0] == y.split()[0] for x, y in pairs):
        return "node-focus"
    return "change"


def _roots_1d(system: Any, I: float, u0: float, u1: float) -> list[np.ndarray]:
    grid = np.linspace(u0, u1, 4001)
    f = np.array([float(system.rhs(np.array([u]), I)[0]) for u in grid])
    roots = []
    for i in range(len(grid) - 1):
        if f[i] == 0:
            roots.append(grid[i])
        elif f[i] * f[i + 1] < 0:
            lo, hi, flo = grid[i], grid[i + 1], f[i]
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                fm = float(system.rhs(np.array([mid]), I)[0])
                if fm == 0 or hi - lo < 1e-15 * max(1.0, abs(mid)):
                    break
                if (fm < 0) == (flo < 0):
                    lo, flo = mid, fm
                else:
                    hi = mid
            roots.append(0.5 * (lo + hi))
    return [np.array([r]) for r in roots]


def _newton(system: Any, x: np.ndarray, I: float, iters: int = 60) -> np.ndarray | None:
    f = system.rhs(x, I)
    for _ in range(iters):
        norm = float(np.max(np.abs(f)))
        if norm < 1e-13:
            return x
        try:
            step = np.linalg.solve(system.jacobian(x, I), -f)
        except np.linalg.LinAlgError:
            return None
        lam = 1.0
        while lam > 1e-6:  # backtracking: accept the first step that reduces |f|
            x_new = x + lam * step
            f_new = system.rhs(x_new, I)
            if np.all(np.isfinite(f_new)) and float(np.max(np.abs(f_new))) < norm:
                break
            lam *= 0.5
        else:
            return None
        x, f = x_new, f_new
    return x if float(np.max(np.abs(f))) < 1e-10 else None
