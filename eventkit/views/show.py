"""``eventkit show``'s work as a function: draw a loaded sample as a grid, strip, GIF or raster."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import ParameterError
from eventkit.frames import to_frames
from eventkit.views.audio import audio_raster_data, plot_audio_raster
from eventkit.views.events import event_grid_data, plot_event_grid
from eventkit.views.frames import plot_frame_strip, write_frames_gif
from eventkit.views.render import save_figure
from eventkit.views.source import LoadedSample

__all__ = ["KINDS", "default_kind", "render_sample"]

#: what ``eventkit show --kind`` draws
KINDS = ("grid", "strip", "gif", "raster")


def default_kind(sample: LoadedSample) -> str:
    """``raster`` for cochlea (audio) events, ``grid`` for vision events."""
    return "raster" if sample.audio else "grid"


def render_sample(sample: LoadedSample, *, kind: str | None = None, T: int = 8, out: str | Path | None = None,
                  sort: bool = False) -> dict[str, Any]:
    """Draw ``sample`` and write the picture; returns a summary (file, kind, sensor, events,
    counts per slice/frame/bin) for ``--json``. ``out`` defaults to ``<title>-<kind>.png``
    (``.gif`` for ``gif``) in the working directory."""
    kind = kind or default_kind(sample)
    if kind not in KINDS:
        raise ParameterError(f"kind must be one of {KINDS}, got {kind!r}")
    if sample.audio != (kind == "raster"):
        what = ("audio (cochlea) events: use --kind raster" if sample.audio
                else "vision events: --kind raster is for audio")
        raise ParameterError(f"{sample.title}: {what}")
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in sample.title.split(" · ")[0]).strip("_")
    path = Path(out) if out is not None else Path(f"{stem}-{kind}.{'gif' if kind == 'gif' else 'png'}")
    summary: dict[str, Any] = {"source": sample.title, "kind": kind, "sensor_size": list(sample.sensor_size),
                               "n_events": int(sample.events.shape[0]), "file": str(path)}
    if kind == "raster":
        raster = audio_raster_data(sample.events, sample.sensor_size, n_bins=max(T, 1), sort=sort)
        save_figure(plot_audio_raster(raster, title=sample.title), path)
        summary.update(dt_us=raster.dt_us, counts_per_bin=raster.counts.sum(axis=1).tolist())
    elif kind == "grid":
        grid = event_grid_data(sample.events, sample.sensor_size, n_slices=T, sort=sort)
        save_figure(plot_event_grid(grid, title=sample.title), path)
        summary.update(t_edges_us=grid.t_edges_us.tolist(), counts_per_slice=grid.counts.sum(axis=(1, 2, 3)).tolist())
    else:
        frames = to_frames(sample.events, sample.sensor_size, T=T, sort=sort)
        if kind == "strip":
            save_figure(plot_frame_strip(frames, title=sample.title), path)
        else:
            write_frames_gif(frames, path)
        summary["counts_per_frame"] = frames.reshape(T, -1).sum(axis=1, dtype=np.int64).tolist()
    return summary
