"""A learnable synthetic N-MNIST in the release's raw format, for a first run without recordings.

Real N-MNIST (Orchard et al. 2015, "Converting static image datasets to spiking
neuromorphic datasets using saccades") was recorded by an ATIS sensor moved in three
saccades of about 100 ms along a triangle in front of a screen showing an MNIST digit.
This module simulates that: each sample is a digit-like glyph of its class (the strokes
of a small stroke font, with per-sample stroke width, scale, slant, rotation, position
and control-point jitter) seen by an event sensor that moves along a triangle in three
saccades (a cosine velocity profile each, jittered amplitudes). A pixel emits an event
each time its log intensity has changed by its contrast threshold since its last event
(ON, ``p = 1``, for brighter; OFF, ``p = 0``, for darker), as a DVS pixel does; a few
background noise events are added. Timestamps are µs in [0, 300 ms).

The samples are written as ``Train/<digit>/<id:05d>.bin`` / ``Test/<digit>/<id:05d>.bin``
(ATIS 40-bit files, 34×34, 2 polarities), and a ``SYNTHETIC.txt`` marker file in the root
says what they are: :func:`eventkit.datasets.list_samples` logs one line about it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eventkit.errors import ParameterError
from eventkit.events import make_events

__all__ = ["SYNTHETIC_MARKER", "GLYPHS", "synthetic_nmnist_events", "make_synthetic_nmnist_root"]

SYNTHETIC_MARKER = "SYNTHETIC.txt"
SIZE = 34           # sensor width = height (pixels)
DIGIT = 28          # glyph box (pixels), as MNIST
DURATION_US = 300_000
_STEP_US = 2_000    # simulation step; event times are spread uniformly inside it
_FINE = 4           # glyph lookup grid: 1/4 pixel
JITTER = 0.05       # control-point jitter (glyph box units, standard deviation)
STRAY = 0.5         # probability of one stray stroke

# Stroke font: polylines in a unit box (x right, y down), one list of strokes per digit.
_ARC = np.linspace(0, 2 * np.pi, 17)
GLYPHS: dict[int, list[list[tuple[float, float]]]] = {
    0: [[(0.5 + 0.27 * np.sin(a), 0.5 - 0.38 * np.cos(a)) for a in _ARC]],
    1: [[(0.38, 0.25), (0.55, 0.12), (0.55, 0.88)], [(0.38, 0.88), (0.7, 0.88)]],
    2: [[(0.25, 0.3), (0.35, 0.15), (0.55, 0.12), (0.72, 0.22), (0.72, 0.4), (0.25, 0.88), (0.78, 0.88)]],
    3: [[(0.25, 0.18), (0.5, 0.12), (0.72, 0.22), (0.7, 0.4), (0.45, 0.5), (0.72, 0.6), (0.74, 0.8),
         (0.5, 0.9), (0.25, 0.82)]],
    4: [[(0.62, 0.88), (0.62, 0.12), (0.22, 0.65), (0.8, 0.65)]],
    5: [[(0.75, 0.12), (0.3, 0.12), (0.27, 0.48), (0.55, 0.44), (0.74, 0.58), (0.72, 0.8), (0.5, 0.9),
         (0.25, 0.82)]],
    6: [[(0.7, 0.14), (0.45, 0.2), (0.28, 0.45), (0.28, 0.75), (0.45, 0.9), (0.68, 0.82), (0.72, 0.62),
         (0.5, 0.5), (0.3, 0.6)]],
    7: [[(0.22, 0.12), (0.78, 0.12), (0.45, 0.88)], [(0.35, 0.5), (0.68, 0.5)]],
    8: [[(0.5, 0.5), (0.3, 0.35), (0.32, 0.17), (0.5, 0.1), (0.68, 0.17), (0.7, 0.35), (0.5, 0.5),
         (0.27, 0.68), (0.32, 0.86), (0.5, 0.92), (0.68, 0.86), (0.73, 0.68), (0.5, 0.5)]],
    9: [[(0.7, 0.4), (0.5, 0.5), (0.3, 0.4), (0.3, 0.2), (0.5, 0.1), (0.7, 0.2), (0.7, 0.4), (0.66, 0.88)]],
}


def _segments(label: int, rng: np.random.Generator) -> np.ndarray:
    """The glyph's segments ``[S, 2, 2]`` in pixels of the 28×28 box, with this sample's distortions:
    control-point jitter, scale and aspect, slant, rotation, and now and then a stray stroke."""
    scale = rng.uniform(0.72, 1.08) * np.array([rng.uniform(0.8, 1.15), 1.0])
    slant = rng.uniform(-0.35, 0.35)
    angle = np.deg2rad(rng.uniform(-15, 15))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    segs = []
    for stroke in GLYPHS[label]:
        pts = np.asarray(stroke, float) + rng.normal(0, JITTER, (len(stroke), 2))
        pts -= 0.5
        pts[:, 0] += slant * pts[:, 1]
        pts = pts @ rot.T * scale + 0.5
        segs += [(pts[k], pts[k + 1]) for k in range(len(pts) - 1)]
    if rng.random() < STRAY:
        a = rng.uniform(0.15, 0.85, 2)
        segs.append((a, a + rng.uniform(0.1, 0.3) * np.array([np.cos(t := rng.uniform(0, 2 * np.pi)), np.sin(t)])))
    return np.asarray(segs) * DIGIT


def _glyph_image(segs: np.ndarray, width: float, extent: int) -> np.ndarray:
    """Intensity in [0, 1] of the strokes on a ``1/_FINE``-pixel grid covering ``extent`` pixels."""
    g = (np.arange(extent * _FINE, dtype=np.float32) + 0.5) / _FINE
    px, py = np.meshgrid(g, g, indexing="xy")
    d2 = np.full(px.shape, np.inf, np.float32)           # squared distance to the nearest stroke
    for (ax, ay), (bx, by) in segs.astype(np.float32):
        dx, dy = bx - ax, by - ay
        u = np.clip(((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        np.minimum(d2, (px - ax - u * dx) ** 2 + (py - ay - u * dy) ** 2, out=d2)
    return np.clip(width / 2 - np.sqrt(d2) + 0.5, 0, 1)  # one-pixel soft edge


def _sensor_path(rng: np.random.Generator, n_steps: int) -> np.ndarray:
    """Sensor offset ``[n_steps, 2]`` (pixels): three saccades along a triangle, cosine velocity profile."""
    amp = rng.uniform(0.85, 1.15, 3)
    corners = np.array([[0.0, 0.0], [3.0 * amp[0], 5.0 * amp[1]], [6.0 * amp[2], 0.0], [0.0, 0.0]])
    t = np.linspace(0, 3, n_steps, endpoint=False)
    k = t.astype(int)
    frac = (1 - np.cos(np.pi * (t - k))) / 2
    return corners[k] + frac[:, None] * (corners[k + 1] - corners[k])


def synthetic_nmnist_events(label: int, rng: np.random.Generator, *, threshold: float = 0.45,
                            noise_hz: float = 1.0) -> np.ndarray:
    """Events of one synthetic N-MNIST sample of class ``label`` (sorted, 34×34, t < 300 ms µs)."""
    if label not in GLYPHS:
        raise ParameterError(f"synthetic N-MNIST label must be 0..9, got {label!r}")
    margin = 8                                              # room for the saccades around the digit
    extent = SIZE + 2 * margin
    glyph = _glyph_image(_segments(label, rng) + margin + rng.uniform(-2.5, 2.5, 2), rng.uniform(1.5, 3.5), extent)
    log_i = np.log(0.1 + 0.9 * glyph)                       # a lit digit on a dim screen
    n_steps = DURATION_US // _STEP_US
    path = _sensor_path(rng, n_steps)
    pix = np.arange(SIZE) + 0.5
    c = rng.normal(threshold, 0.03, (SIZE, SIZE)).clip(0.15)  # per-pixel contrast threshold (mismatch)
    ts, xs, ys, ps = [], [], [], []
    ref = None
    for k in range(n_steps):
        ix = np.clip(((pix + path[k, 0]) * _FINE).astype(int), 0, extent * _FINE - 1)
        iy = np.clip(((pix + path[k, 1]) * _FINE).astype(int), 0, extent * _FINE - 1)
        now = log_i[np.ix_(iy, ix)]
        if ref is None:
            ref = now.copy()
            continue
        n = np.floor(np.abs(now - ref) / c).astype(np.int64)
        yy, xx = np.nonzero(n)
        if yy.size:
            counts = n[yy, xx]
            sign = np.sign(now - ref)[yy, xx]
            ref[yy, xx] += sign * counts * c[yy, xx]
            ys.append(np.repeat(yy, counts))
            xs.append(np.repeat(xx, counts))
            ps.append(np.repeat(sign > 0, counts).astype(np.uint8))
            ts.append(k * _STEP_US + rng.integers(0, _STEP_US, counts.sum()))
    n_noise = rng.poisson(noise_hz * SIZE * SIZE * DURATION_US / 1e6)
    ts.append(rng.integers(0, DURATION_US, n_noise))
    xs.append(rng.integers(0, SIZE, n_noise))
    ys.append(rng.integers(0, SIZE, n_noise))
    ps.append(rng.integers(0, 2, n_noise).astype(np.uint8))
    t, x, y, p = (np.concatenate(v) for v in (ts, xs, ys, ps))
    order = np.argsort(t, kind="stable")
    return make_events(t[order], x[order], y[order], p[order])


def make_synthetic_nmnist_root(dst: str | os.PathLike, *, per_class_train: int = 90, per_class_test: int = 10,
                               seed: int = 0) -> Path:
    """Write a synthetic N-MNIST root (release layout, ATIS 40-bit files) plus ``SYNTHETIC.txt``.

    Ids run 1.. over the shuffled samples (train first), as in the release's
    ``<Split>/<digit>/<id:05d>.bin``. Deterministic for a given ``seed``. Returns ``dst``.
    """
    from eventkit.io.nmnist import write_nmnist

    if per_class_train < 1 or per_class_test < 1:
        raise ParameterError(
            f"per_class_train and per_class_test must be >= 1, got {per_class_train}, {per_class_test}")
    rng = np.random.default_rng(seed)
    root = Path(dst)
    next_id = 1
    for folder, per_class in (("Train", per_class_train), ("Test", per_class_test)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class))
        for label in labels:
            d = root / folder / str(label)
            d.mkdir(parents=True, exist_ok=True)
            write_nmnist(d / f"{next_id:05d}.bin", synthetic_nmnist_events(int(label), rng))
            next_id += 1
    (root / SYNTHETIC_MARKER).write_text(
        f"synthetic N-MNIST written by eventkit (seed {seed}): digit-like glyphs under simulated saccades, "
        f"not sensor recordings\n"
        f"{per_class_train * 10} train / {per_class_test * 10} test samples, made by "
        f"eventkit.datasets.synthetic.make_synthetic_nmnist_root; see docs/datasets.md.\n", encoding="utf-8")
    return root
