"""PNG figures of the dynamics: phase planes (with bifurcation diagram) and the ``b`` range.

matplotlib (the ``plot`` extra) is imported when a figure is drawn, with the Agg backend.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

__all__ = ["pyplot", "save_figure", "plot_phase_plane", "plot_b_range"]

STABLE, UNSTABLE, SADDLE = "#1a7f37", "#cf222e", "#8250df"


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend, or a ParameterError naming the extra to install."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ParameterError("plots need matplotlib: pip install 'eventkit-snn[plot]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, *, dpi: int = 80) -> Path:
    """Save ``fig`` as a compact PNG (a 256-colour palette when Pillow is there) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return path
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    small.save(path, optimize=True)
    return path


def _discrete_label(system: Any) -> str:
    form = getattr(system, "form", "")
    if form == "standardized":
        return "network steps (Eq. 18)"
    if form == "vanilla":
        return "Euler steps (0.5 ms)"
    return "network steps (Eq. 24)" if system.name == "lif" else "Euler steps (1 step)"


def _annotate(ax, text: str, x: float, y: float, x0: float, x1: float) -> None:
    """Label a point, to its left when it sits in the right quarter of the axis."""
    left = x > x0 + 0.75 * (x1 - x0)
    ax.annotate(text, (x, y), textcoords="offset points", xytext=(-6 if left else 6, 6), fontsize=8,
                ha="right" if left else "left")


def _marker(point) -> tuple[str, str, str]:
    if point.kind == "saddle":
        return "X", SADDLE, SADDLE
    return ("o", STABLE, STABLE) if point.stable else ("o", UNSTABLE, "white")


def plot_phase_plane(pp: Any, path: str | Path) -> Path:
    """Phase plane (1-D: dU/dt against U), the trajectories in time, and the bifurcation diagram."""
    plt = pyplot()
    s = pp.system
    unit = "ms" if getattr(s, "form", "") == "vanilla" else "time steps"
    n = 3 if pp.bifurcation is not None else 2
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.4))
    ax = axes[0]
    if s.dim == 1:
        _line_field(ax, pp)
    else:
        _plane(ax, pp)
    title = f"{s.name}, I = {pp.I:g}"
    ax.set_title(title)
    _time_course(axes[1], pp, unit)
    if pp.bifurcation is not None:
        _bifurcation(axes[2], pp)
    return save_figure(fig, path)


def _plane(ax, pp: Any) -> None:
    u0, u1, v0, v1 = pp.window
    du, dv = pp.field_du, pp.field_dv
    # arrows of equal length in window units: the direction of the flow, not its speed
    nu, nv = du / (u1 - u0), dv / (v1 - v0)
    norm = np.hypot(nu, nv)
    norm[norm == 0] = 1.0
    ax.quiver(pp.field_u, pp.field_v, nu / norm * (u1 - u0), nv / norm * (v1 - v0), color="0.6",
              angles="xy", scale_units="xy", scale=len(pp.field_u[0]) * 1.6, width=0.003)
    styles = {"U": ("tab:blue", "U-nullcline (dU/dt = 0)"), "V": ("tab:orange", "V-nullcline (dV/dt = 0)")}
    for key, (u, v) in pp.nullclines.items():
        ax.plot(u, v, color=styles[key][0], lw=1.8, label=styles[key][1])
    if pp.contour_grid is not None:
        cu, cv, cdu, cdv = pp.contour_grid
        for key, values in (("U", cdu), ("V", cdv)):
            ax.contour(cu, cv, values, levels=[0.0], colors=[styles[key][0]], linewidths=1.8)
            ax.plot([], [], color=styles[key][0], lw=1.8, label=styles[key][1])
    for tr in pp.trajectories:
        ax.plot(tr.states[:, 0], tr.states[:, 1], color="0.35", lw=0.9)
        ax.plot(tr.states[0, 0], tr.states[0, 1], ".", color="0.35")
    if pp.discrete is not None:
        d = pp.discrete.states
        ax.plot(d[:, 0], d[:, 1], "-", color="tab:red", lw=0.8, alpha=0.8)
        ax.plot(d[:, 0], d[:, 1], ".", color="tab:red", ms=4, label=_discrete_label(pp.system))
    th = getattr(pp.system, "threshold", None)
    if th is not None and u0 <= th <= u1:
        ax.axvline(th, color="k", ls=":", lw=1, label=f"threshold U = {th:g}")
    for p in pp.fixed_points:
        m, edge, face = _marker(p)
        ax.plot(p.state[0], p.state[1], m, ms=10, mec=edge, mfc=face, mew=2, zorder=5)
        _annotate(ax, f"({p.state[0]:.3g}, {p.state[1]:.3g})\n{p.kind}", p.state[0], p.state[1], u0, u1)
    ax.set_xlim(u0, u1)
    ax.set_ylim(v0, v1)
    ax.set_xlabel("U (membrane)")
    ax.set_ylabel("V (recovery)")
    ax.legend(fontsize=7, loc="lower right")


def _line_field(ax, pp: Any) -> None:
    u, du = pp.field_u, pp.field_du
    fine = np.linspace(pp.window[0], pp.window[1], 400)
    ax.plot(fine, [float(pp.system.rhs(np.array([x]), pp.I)[0]) for x in fine], color="tab:blue", lw=1.8,
            label="dU/dt")
    ax.axhline(0, color="k", lw=0.8)
    for x, d in zip(u, du, strict=True):
        if abs(d) > 1e-12:
            ax.annotate("", (x + 0.4 * np.sign(d) * (u[1] - u[0]), 0), (x, 0),
                        arrowprops=dict(arrowstyle="->", color="0.4"))
    for p in pp.fixed_points:
        m, edge, face = _marker(p)
        ax.plot(p.state[0], 0, m, ms=10, mec=edge, mfc=face, mew=2, zorder=5)
        _annotate(ax, f"U = {p.state[0]:.3g}\n{p.kind}", p.state[0], 0.0, pp.window[0], pp.window[1])
    ax.set_xlim(pp.window[0], pp.window[1])
    ax.set_xlabel("U (membrane)")
    ax.set_ylabel("dU/dt")
    ax.legend(fontsize=7)


def _time_course(ax, pp: Any, unit: str) -> None:
    for tr in pp.trajectories:
        ax.plot(tr.t, tr.states[:, 0], color="0.5", lw=0.9)
    if pp.discrete is not None:
        d = pp.discrete
        ax.plot(d.t, d.states[:, 0], ".-", color="tab:red", ms=4, lw=0.8, label=_discrete_label(pp.system))
        for t in d.spikes:
            ax.axvline(t, color="tab:red", lw=0.5, alpha=0.4)
    th = getattr(pp.system, "threshold", None)
    if th is not None:
        ax.axhline(th, color="k", ls=":", lw=1, label="threshold")
    ax.plot([], [], color="0.5", label="continuous (RK4)")
    if pp.discrete is not None and len(pp.discrete.t) > 1:
        ax.set_xlim(0, float(pp.discrete.t[-1]))
    ax.set_xlabel(f"t ({unit})")
    ax.set_ylabel("U")
    ax.set_title("trajectories in time")
    ax.legend(fontsize=7)


def _bifurcation(ax, pp: Any) -> None:
    rows = pp.bifurcation.rows
    for stable, color, label in ((True, STABLE, "stable"), (False, UNSTABLE, "unstable")):
        pts = [(i, s[0]) for i, s, _k, st in rows if st == stable]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, ".", color=color, ms=4, label=f"{label} fixed point")
    th = getattr(pp.system, "threshold", None)
    lo, hi = ax.get_ylim()
    if th is not None and lo <= th <= hi:
        ax.axhline(th, color="k", ls=":", lw=1)
        ax.annotate(f"threshold U = {th:g}", (rows[0][0], th),
                    textcoords="offset points", xytext=(2, 3), fontsize=7)
    events = [ev for ev in pp.bifurcation.events if ev["type"] in ("saddle-node", "hopf")]
    span = max(r[0] for r in rows) - min(r[0] for r in rows)
    groups: list[list[dict]] = []
    for ev in events:  # events closer than 2 % of the axis share one label
        if groups and ev["I"] - groups[-1][-1]["I"] < 0.02 * span:
            groups[-1].append(ev)
        else:
            groups.append([ev])
    for group in groups:
        for ev in group:
            ax.axvline(ev["I"], color="k", ls=":", lw=1)
        text = "\n".join(f"{ev['type']} I = {ev['I']:.4g}" for ev in group)
        ax.annotate(text, (group[0]["I"], lo), textcoords="offset points", xytext=(-4, 5), fontsize=7,
                    ha="right")
    ax.set_xlabel("input I")
    ax.set_ylabel("U of the fixed points")
    ax.set_title("fixed points against I")
    ax.legend(fontsize=7)


def plot_b_range(result: Any, path: str | Path) -> Path:
    """``b(I)`` over the input range, coloured by the class of the target point."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for seg in result.segments:
        color = STABLE if seg["stable"] else UNSTABLE
        ax.plot(seg["I"], seg["b"], color=color, lw=3, label=f"{seg['kind']} at U = {result.params['target']:g}: "
                f"b in [{seg['b'][0]:.4g}, {seg['b'][1]:.4g}]")
    ax.axhline(result.b_saddle, color="k", ls=":", lw=1)
    ax.annotate(f"b = {result.b_saddle:.4g} (det J = 0)", (result.inputs[0], result.b_saddle),
                textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("input I")
    ax.set_ylabel("b")
    ax.set_title(result.to_json()["equation"] + f" over I in [{result.inputs[0]:g}, {result.inputs[1]:g}]")
    ax.legend(fontsize=7, loc="upper left")
    return save_figure(fig, path)
