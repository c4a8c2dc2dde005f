"""Audio raster: cochlea events (SHD, SSC, N-TIDIGITS) as time × channel dots, binned counts below."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from eventkit.audio import to_audio_frames
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import polarity_index, sort_events

__all__ = ["AudioRaster", "audio_raster_data", "plot_audio_raster"]


class AudioRaster(NamedTuple):
    """``t_us``, ``channel``, ``polarity`` per event ``[N]``; ``counts [T, C]`` (all polarities,
    bins of ``dt_us`` from ``start_us``)."""

    t_us: np.ndarray
    channel: np.ndarray
    polarity: np.ndarray
    counts: np.ndarray
    dt_us: int
    start_us: int


def audio_raster_data(events: np.ndarray, sensor_size: Sequence[int], *, dt_us: int | None = None,
                      n_bins: int = 100, sort: bool = False) -> AudioRaster:
    """The events and their counts per time bin and channel (:func:`eventkit.audio.to_audio_frames`
    with ``merge_polarity``). ``dt_us`` defaults to the recording's span over ``n_bins``
    (rounded up to a whole µs); bins start at the first event."""
    if events.dtype.names is None or "y" in events.dtype.names:
        raise InvalidEventsError("audio raster: needs audio events (fields t, x, p); use the event grid for "
                                 "vision events")
    if sort:
        events = sort_events(events)
    t = events["t"].astype(np.int64)
    start = int(t[0]) if t.shape[0] else 0
    if dt_us is None:
        if int(n_bins) < 1:
            raise ParameterError(f"n_bins must be >= 1, got {n_bins}")
        span = int(t[-1]) - start + 1 if t.shape[0] else 1
        dt_us = max(1, -(-span // int(n_bins)))
    counts = to_audio_frames(events, sensor_size, dt_us=dt_us, start_us=start, merge_polarity=True,
                             squeeze_polarity=True, dtype=np.uint32)
    return AudioRaster(t, events["x"].astype(np.int64), polarity_index(events["p"]).astype(np.int64), counts,
                       int(dt_us), start)


def plot_audio_raster(raster: AudioRaster, *, title: str | None = None) -> Any:
    """Top: one dot per event at (time in ms from the first event, channel), coloured by
    polarity. Bottom: the counts per bin and channel (darker = more). Returns the Figure."""
    from eventkit.views.render import new_figure

    T, C = raster.counts.shape
    fig = new_figure(7.5, 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1.3, 1])
    t_ms = (raster.t_us - raster.start_us) / 1000.0
    pols = np.unique(raster.polarity)
    for p in pols:
        keep = raster.polarity == p
        top.scatter(t_ms[keep], raster.channel[keep], s=3, marker="|", linewidths=0.8,
                    label=f"p={int(p)}" if len(pols) > 1 else None)
    if len(pols) > 1:
        top.legend(fontsize=7, loc="upper right")
    top.set_ylabel("channel")
    top.set_ylim(-0.5, C - 0.5)
    top.set_title(f"{raster.t_us.shape[0]} events, {C} channels", fontsize=8)
    extent = (0.0, T * raster.dt_us / 1000.0, -0.5, C - 0.5)
    im = bottom.imshow(raster.counts.T, aspect="auto", origin="lower", cmap="Greys", extent=extent,
                       interpolation="nearest")
    fig.colorbar(im, ax=bottom, label="events / bin", shrink=0.9)
    bottom.set_xlabel("time from the first event (ms)")
    bottom.set_ylabel("channel")
    bottom.set_title(f"counts in {T} bins of {raster.dt_us / 1000:g} ms", fontsize=8)
    fig.suptitle(title or "audio raster", fontsize=9)
    return fig
