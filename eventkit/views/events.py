"""Event grid: events counted per time slice and pixel, one x–y panel per slice."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from eventkit.errors import InvalidEventsError
from eventkit.frames import to_frames
from eventkit.views.render import _vmax, ms, new_figure, polarity_rgb

__all__ = ["EventGrid", "event_grid_data", "plot_event_grid"]


class EventGrid(NamedTuple):
    """``counts [n, P, H, W]`` (events per slice and pixel, uint32) and ``t_edges_us [n + 1]``:
    slice ``j`` covers ``[t_edges_us[j], t_edges_us[j+1])`` µs (the last one includes its end)."""

    counts: np.ndarray
    t_edges_us: np.ndarray


def event_grid_data(events: np.ndarray, sensor_size: Sequence[int], *, n_slices: int = 8,
                    sort: bool = False) -> EventGrid:
    """Count vision events into ``n_slices`` equal time windows: :func:`eventkit.frames.to_frames`
    with ``split_by="time"`` (SpikingJelly's edges: ``dt = floor((t_last - t_0)/n)`` µs, the
    last window runs to the last event), plus the window edges for the panel titles."""
    if events.dtype.names is None or "y" not in events.dtype.names:
        raise InvalidEventsError("event grid: needs vision events (fields t, x, y, p); use the audio raster for "
                                 "cochlea events")
    counts = to_frames(events, sensor_size, T=n_slices, split_by="time", dtype=np.uint32, sort=sort)
    t = np.sort(events["t"].astype(np.int64)) if sort else events["t"].astype(np.int64)
    if t.shape[0]:
        t0, t1 = int(t[0]), int(t[-1])
        step = (t1 - t0) // n_slices
        edges = t0 + step * np.arange(n_slices + 1, dtype=np.int64)
        edges[-1] = t1 + 1
    else:
        edges = np.zeros(n_slices + 1, dtype=np.int64)
    return EventGrid(counts, edges)


def plot_event_grid(grid: EventGrid, *, title: str | None = None, cols: int | None = None,
                    panel_in: float = 1.9) -> Any:
    """One panel per slice: ON events red, OFF blue (one shared colour scale), the slice's
    time span (ms from the first event) and its event count above it. Returns the Figure."""
    n, P, H, W = grid.counts.shape
    cols = cols or min(n, 4 if n > 4 else n)
    rows = math.ceil(n / cols)
    fig = new_figure(panel_in * cols * max(W / H, 0.6), panel_in * rows + 0.5)
    vmax = _vmax(grid.counts)
    t0 = int(grid.t_edges_us[0])
    axes = fig.subplots(rows, cols, squeeze=False)
    for j, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if j >= n:
            ax.set_axis_off()
            continue
        ax.imshow(polarity_rgb(grid.counts[j], vmax), interpolation="nearest", origin="upper")
        lo, hi = int(grid.t_edges_us[j]) - t0, int(grid.t_edges_us[j + 1]) - t0
        ax.set_title(f"{ms(lo)}–{ms(hi)} ms · {int(grid.counts[j].sum())} ev", fontsize=8)
    legend = "red: ON (p=1), blue: OFF (p=0)" if P > 1 else "black: events"
    fig.suptitle(f"{title + ' · ' if title else ''}{W}×{H} px, {legend}", fontsize=9)
    return fig
