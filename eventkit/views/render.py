"""Colours and figure plumbing shared by the views: polarity -> RGB, a headless figure, saving.

matplotlib is imported inside the functions that draw (``pip install 'eventkit-snn[plot]'``);
figures are ``matplotlib.figure.Figure`` objects with an Agg canvas, so nothing touches
pyplot's global state or needs a display.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

#: colour of the ON (p = 1) and OFF (p = 0) polarity on a white background (RGB in [0, 1])
ON_RGB = np.array([0.84, 0.10, 0.11])
OFF_RGB = np.array([0.13, 0.40, 0.80])


def polarity_rgb(counts: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """Event counts ``[P, H, W]`` -> an RGB image ``[H, W, 3]`` (float32 in [0, 1]).

    White where nothing happened; ON events (``p = 1``) tint towards red, OFF (``p = 0``)
    towards blue, both in proportion to ``count / vmax`` (clipped at 1). With ``P = 1``
    the counts are drawn black on white. ``vmax`` defaults to the 99th percentile of the
    non-zero counts (at least 1), so one hot pixel does not wash the picture out.
    """
    c = np.asarray(counts)
    if c.ndim != 3 or c.shape[0] < 1:
        raise ParameterError(f"counts must be [P, H, W], got shape {c.shape}")
    scale = _vmax(c) if vmax is None else float(vmax)
    if scale <= 0:
        raise ParameterError(f"vmax must be > 0, got {vmax}")
    level = np.clip(c.astype(np.float32) / scale, 0.0, 1.0)
    white = np.ones(c.shape[1:] + (3,), dtype=np.float32)
    if c.shape[0] == 1:
        return white - level[0][..., None]
    off = level[0][..., None] * (1.0 - OFF_RGB)
    on = level[1:].max(axis=0)[..., None] * (1.0 - ON_RGB)
    return np.clip(white - off - on, 0.0, 1.0).astype(np.float32)


def _vmax(c: np.ndarray) -> float:
    nz = c[c > 0]
    return max(1.0, float(np.percentile(nz, 99))) if nz.size else 1.0


def new_figure(width_in: float, height_in: float) -> Any:
    """A ``matplotlib.figure.Figure`` on an Agg canvas (no pyplot, no display)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is in the dev extra
        raise ParameterError("the views need matplotlib: pip install 'eventkit-snn[plot]'") from None
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | Path, *, dpi: int = 100) -> Path:
    """Write ``fig`` (PNG, SVG or PDF by suffix) and return the path."""
    out = Path(path)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ParameterError(f"figure file must end in .png, .svg or .pdf, got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


def ms(t_us: float) -> str:
    """A time in µs as a short label in ms."""
    return f"{t_us / 1000:.0f}" if abs(t_us) >= 10_000 else f"{t_us / 1000:.1f}"
