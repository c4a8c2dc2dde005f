"""Frame sequences ``[T, P, H, W]``: a PNG strip of panels and a GIF animation."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import ParameterError
from eventkit.views.render import _vmax, new_figure, polarity_rgb

__all__ = ["frames_rgb", "plot_frame_strip", "write_frames_gif"]


def _check_frames(frames: Any) -> np.ndarray:
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[0] < 1:
        raise ParameterError(f"frames must be [T, P, H, W] with T >= 1, got shape {f.shape}")
    return f


def frames_rgb(frames: np.ndarray, *, scale: int = 1) -> np.ndarray:
    """``[T, P, H, W]`` counts -> ``[T, H·scale, W·scale, 3]`` uint8 images (one colour scale for
    all frames; ON red, OFF blue, see :func:`~eventkit.views.render.polarity_rgb`)."""
    f = _check_frames(frames)
    if int(scale) < 1:
        raise ParameterError(f"scale must be an integer >= 1, got {scale}")
    vmax = _vmax(f)
    imgs = np.stack([polarity_rgb(fr, vmax) for fr in f])
    imgs = np.repeat(np.repeat(imgs, int(scale), axis=1), int(scale), axis=2)
    return np.round(imgs * 255).astype(np.uint8)


def plot_frame_strip(frames: np.ndarray, *, title: str | None = None, max_cols: int = 10,
                     panel_in: float = 1.4) -> Any:
    """The frames side by side (wrapped after ``max_cols``), each titled with its index and
    event count. Returns the Figure."""
    f = _check_frames(frames)
    T, P, H, W = f.shape
    cols = min(T, max_cols)
    rows = math.ceil(T / cols)
    fig = new_figure(panel_in * cols * max(W / H, 0.6), panel_in * rows + 0.45)
    imgs = frames_rgb(f)
    for j, ax in enumerate(fig.subplots(rows, cols, squeeze=False).flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if j >= T:
            ax.set_axis_off()
            continue
        ax.imshow(imgs[j], interpolation="nearest")
        ax.set_title(f"t={j} · {int(f[j].sum())}", fontsize=7)
    fig.suptitle(f"{title + ' · ' if title else ''}{T} frames [T, P, H, W] = {list(f.shape)}", fontsize=9)
    return fig


def write_frames_gif(frames: np.ndarray, path: str | Path, *, fps: float = 8.0, min_size: int = 160) -> Path:
    """Write the frames as an animated GIF (Pillow, looping); pixels are enlarged by an integer
    factor so that the shorter side is at least ``min_size`` px. Returns the path."""
    f = _check_frames(frames)
    if not fps > 0:
        raise ParameterError(f"fps must be > 0, got {fps}")
    out = Path(path)
    if out.suffix.lower() != ".gif":
        raise ParameterError(f"animation file must end in .gif, got {out.name!r}")
    from PIL import Image  # a dependency of matplotlib

    scale = max(1, math.ceil(min_size / min(f.shape[2], f.shape[3])))
    images = [Image.fromarray(img) for img in frames_rgb(f, scale=scale)]
    out.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(out, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return out
