"""Pictures of events, frames and cochlea recordings (matplotlib, imported only when drawing).

Each view is an array you can test plus a figure drawn from it:

* :func:`event_grid_data` / :func:`plot_event_grid` -- events counted per time slice and
  pixel (``[n, P, H, W]``), one x–y panel per slice, ON polarity red, OFF blue;
* :func:`plot_frame_strip` / :func:`write_frames_gif` -- a frame sequence ``[T, P, H, W]`` as
  one row of panels (PNG) or an animation (GIF, through Pillow, which matplotlib installs);
* :func:`audio_raster_data` / :func:`plot_audio_raster` -- cochlea events (SHD, N-TIDIGITS)
  as a time × channel raster with the binned counts below;
* :func:`load_sample` / :func:`render_sample` -- ``eventkit show PATH_OR_DATASET[:index]``.

The spike raster of a network's layers is :mod:`eventkit_train.views`. Install matplotlib
with ``pip install 'eventkit-snn[plot]'``.
"""
from eventkit.views.audio import AudioRaster, audio_raster_data, plot_audio_raster
from eventkit.views.events import EventGrid, event_grid_data, plot_event_grid
from eventkit.views.frames import frames_rgb, plot_frame_strip, write_frames_gif
from eventkit.views.render import polarity_rgb, save_figure
from eventkit.views.show import KINDS, default_kind, render_sample
from eventkit.views.source import LoadedSample, load_sample

__all__ = [
    "EventGrid", "event_grid_data", "plot_event_grid", "frames_rgb", "plot_frame_strip", "write_frames_gif",
    "AudioRaster", "audio_raster_data", "plot_audio_raster", "polarity_rgb", "save_figure",
    "LoadedSample", "load_sample", "KINDS", "default_kind", "render_sample",
]
