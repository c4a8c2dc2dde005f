"""The recovery sensitivity ``b`` that puts SIT's stable point at a target (SIT paper, Eqs. 6–8, 17).

For the standardized Izhikevich model (Eq. 5), a fixed point ``(U*, V*)`` satisfies
``V* = b(U* - U_r)`` and ``k(U* - U_r)(U* - U_c) - V* + I = 0``, so the ``b`` that puts a
fixed point at ``U* = target`` for an input ``I`` is::

    b(I) = (k(U* - U_r)(U* - U_c) + I) / (U* - U_r)          (target 0, k = 1, U_r = -0.05, U_c = 1:
                                                               b = 20·I - 1, the paper's Eq. 17)

(Eq. 7 as printed flips the signs of ``b·U_r`` and ``k·U_r·U_c``; Eq. 17 follows from the
form above.) Whether that point is *stable* depends on ``b``: the Jacobian at ``U*`` is
``[[k(2U* - U_r - U_c)/τ, -1/τ], [ab/τ, -a/τ]]``, whose determinant
``a(b - k(2U* - U_r - U_c))/τ²`` is negative, i.e. the point is a saddle, for
``b < k(2U* - U_r - U_c)`` (= -0.95 for the paper's values). :func:`b_range` maps an input
range (or samples, e.g. from :func:`~eventkit_train.analysis.network.input_distribution`)
to the ``b`` range and splits it into segments of one class.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

from .fixed_points import analyse_point
from .systems import IzhikevichSystem

__all__ = ["BRange", "b_range", "b_for_input"]


@dataclass(frozen=True)
class BRange:
    """Result of :func:`b_range`.

    ``inputs`` (I_lo, I_hi) and ``b`` (b_lo, b_hi) with ``b = slope·I + intercept``;
    ``b_saddle``: below it the target is a saddle; ``segments``: consecutive ``b`` intervals
    with their class at the target (``kind``, ``stable``, and ``map_stable`` for the Eq. 18 map);
    ``stable_fraction``: the share of the input samples (or of the range) whose ``b`` keeps the
    target stable.
    """

    inputs: tuple[float, float]
    b: tuple[float, float]
    slope: float
    intercept: float
    b_saddle: float
    segments: list[dict[str, Any]]
    stable_fraction: float
    params: dict[str, float]
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "b": list(self.b), "slope": self.slope, "intercept": self.intercept,
                "b_saddle": self.b_saddle, "segments": self.segments, "stable_fraction": self.stable_fraction,
                "params": self.params, "source": self.source,
                "equation": f"b = {self.slope:.6g}*I {'-' if self.intercept < 0 else '+'} {abs(self.intercept):.6g}"}

    def kind_at(self, b: float) -> dict[str, Any]:
        """The segment that holds ``b`` (``ParameterError`` outside the range)."""
        tol = 1e-9 * max(1.0, abs(b))
        for seg in self.segments:
            if seg["b"][0] - tol <= b <= seg["b"][1] + tol:
                return seg
        raise ParameterError(f"b = {b} is outside the range {self.b}")


def b_for_input(I: Any, *, k: float = 1.0, U_r: float = -0.05, U_c: float = 1.0, target: float = 0.0) -> Any:
    """``b`` that makes ``U = target`` a fixed point for input ``I`` (scalar or array)."""
    if target == U_r:
        raise ParameterError(f"target = U_r = {U_r}: every b puts a fixed point there only when I = "
                             f"{-k * (U_r - U_r) * (U_r - U_c)}; choose another target")
    return (k * (target - U_r) * (target - U_c) + np.asarray(I, dtype=np.float64)) / (target - U_r)


def b_range(inputs: Sequence[float] | np.ndarray | Any, *, k: float = 1.0, U_r: float = -0.05, U_c: float = 1.0,
            target: float = 0.0, a: float = 0.002, tau: float = 2.0, coverage: float = 0.9) -> BRange:
    """The ``b`` range that puts the fixed point at ``target`` for the inputs, and where it is stable.

    ``inputs``: ``[I_lo, I_hi]`` (a range), more values (samples: the central ``coverage`` of
    them, e.g. 90 % as in the paper's Fig. 7) or an object with ``values`` (an
    :class:`~eventkit_train.analysis.network.InputDistribution`). ``a`` and ``tau`` only decide
    node versus focus and the map's stability, not the saddle boundary.
    """
    values = np.asarray(getattr(inputs, "values", inputs), dtype=np.float64).ravel()
    if values.size < 2 or not np.all(np.isfinite(values)):
        raise ParameterError(f"b_range needs an input range [lo, hi] or >= 3 finite samples, got {values.size} values")
    if not 0 < coverage <= 1:
        raise ParameterError(f"coverage must be in (0, 1], got {coverage}")
    if values.size == 2:
        lo, hi, source = float(min(values)), float(max(values)), "range"
        samples = None
    else:
        q = (1 - coverage) / 2
        lo, hi = (float(v) for v in np.quantile(values, [q, 1 - q]))
        source, samples = f"{values.size} samples, central {coverage:.0%}", values
    kw = dict(k=k, U_r=U_r, U_c=U_c, target=target)
    b_lo, b_hi = sorted(float(v) for v in b_for_input(np.array([lo, hi]), **kw))
    slope = 1.0 / (target - U_r)
    intercept = k * (target - U_c)
    b_saddle = k * (2 * target - U_r - U_c)

    def classify_b(b: float) -> tuple[str, bool, bool]:
        system = IzhikevichSystem.standardized(k=k, a=a, b=b, c=0.0, d=0.0, u_r=U_r, u_c=U_c, tau=tau)
        I = (b - intercept) / slope
        point = analyse_point(system, [target, b * (target - U_r)], I, "b_range")
        return point.kind, point.stable, bool(point.map_stable)

    segments = _segments(classify_b, b_lo, b_hi, slope, intercept, b_saddle)
    if samples is not None:
        bs = b_for_input(samples, **kw)
        stable = np.array([classify_b(float(b))[1] for b in np.quantile(bs, np.linspace(0, 1, 201))])
        fraction = float(stable.mean())
    else:
        fraction = sum(s["b"][1] - s["b"][0] for s in segments if s["stable"]) / max(b_hi - b_lo, 1e-300)
    params = dict(k=k, U_r=U_r, U_c=U_c, target=target, a=a, tau=tau)
    return BRange((lo, hi), (b_lo, b_hi), slope, intercept, b_saddle, segments, fraction, params, source)


def _segments(classify_b, b_lo: float, b_hi: float, slope: float, intercept: float,
              b_saddle: float) -> list[dict[str, Any]]:
    """Split ``[b_lo, b_hi]`` into intervals of one class (grid of 2001 points, edges by bisection;
    an edge within round-off of the closed-form saddle boundary is that boundary)."""
    grid = np.linspace(b_lo, b_hi, 2001) if b_hi > b_lo else np.array([b_lo])
    labels = [classify_b(float(b)) for b in grid]
    edges = [b_lo]
    kinds = [labels[0]]
    for i in range(1, len(grid)):
        if labels[i] != labels[i - 1]:
            x0, x1 = float(grid[i - 1]), float(grid[i])
            for _ in range(60):
                mid = 0.5 * (x0 + x1)
                if classify_b(mid) == labels[i - 1]:
                    x0 = mid
                else:
                    x1 = mid
            edge = 0.5 * (x0 + x1)
            edges.append(b_saddle if abs(edge - b_saddle) <= 1e-8 * max(1.0, abs(b_saddle)) else edge)
            kinds.append(labels[i])
    edges.append(b_hi)
    out = []
    for j, (kind, stable, map_stable) in enumerate(kinds):
        b0, b1 = edges[j], edges[j + 1]
        out.append({"b": [b0, b1], "I": [(b0 - intercept) / slope, (b1 - intercept) / slope], "kind": kind,
                    "stable": stable, "map_stable": map_stable})
    return out
