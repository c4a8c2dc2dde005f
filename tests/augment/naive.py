"""Per-event / per-pixel references of the augmentation ops (Python loops, no vectorisation).

Each event reference takes eventkit events and returns the expected events as a list of
``(t, x, y, p)`` tuples, replaying the op's random draws: eventkit's own ops draw from
``step_generator(seed, epoch, index, step)``; tonic-backed ops draw from NumPy's global
generator seeded with ``step_seed(...).generate_state(8)``, in the order tonic's
functions draw (documented in each reference). ``t`` is rebased to the first event for
the tonic ops, as eventkit does.
"""
from __future__ import annotations

import math

import numpy as np

from eventkit.augment import step_generator, step_seed


def rows(events: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]


def stable_by_t(items: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    return sorted(items, key=lambda e: e[0])  # Python's sort is stable


def seed_global(seed: int, epoch: int, index: int, step=0) -> None:
    np.random.seed(step_seed(seed, epoch, index, step).generate_state(8, dtype=np.uint32))


def inside(x: int, y: int, sensor) -> bool:
    return 0 <= x < sensor[0] and 0 <= y < sensor[1]


# ------------------------------------------------------------------ eventkit's own ops

def time_crop(events, duration, key):
    rng = step_generator(*key)
    t = [int(v) for v in events["t"]]
    if not t:
        return []
    start = int(rng.integers(t[0], max(t[0], t[-1] + 1 - duration), endpoint=True))
    return [e for e in rows(events) if start <= e[0] < start + duration]


def shift(events, sensor, max_px, key, wrap):
    rng = step_generator(*key)
    dx = int(rng.integers(-max_px[0], max_px[0], endpoint=True))
    dy = int(rng.integers(-max_px[1], max_px[1], endpoint=True))
    out = []
    for t, x, y, p in rows(events):
        nx, ny = x + dx, y + dy
        if wrap:
            out.append((t, nx % sensor[0], ny % sensor[1], p))
        elif inside(nx, ny, sensor):
            out.append((t, nx, ny, p))
    return out


def rotate(events, sensor, max_deg, key):
    degrees = float(step_generator(*key).uniform(-max_deg, max_deg))
    cx, cy = (sensor[0] - 1) / 2, (sensor[1] - 1) / 2
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    out = []
    for t, x, y, p in rows(events):
        nx = round(cx + (x - cx) * c - (y - cy) * s)  # round(): half to even, as np.rint
        ny = round(cy + (x - cx) * s + (y - cy) * c)
        if inside(nx, ny, sensor):
            out.append((t, nx, ny, p))
    return out


def shear(events, sensor, max_deg, key):
    degrees = float(step_generator(*key).uniform(-max_deg, max_deg))
    k, cy = math.tan(math.radians(degrees)), (sensor[1] - 1) / 2
    out = []
    for t, x, y, p in rows(events):
        nx = round(x + k * (y - cy))
        if inside(nx, y, sensor):
            out.append((t, nx, y, p))
    return out


def drop_pixel(events, sensor, p, key):
    dropped = step_generator(*key).random((sensor[1], sensor[0])) < p
    return [e for e in rows(events) if not dropped[e[2], e[1]]]


# ------------------------------------------------------------------ tonic-backed ops

def flip(events, sensor, p, key, axis):
    seed_global(*key)
    do = np.random.rand() <= p  # tonic: one draw, flip when <= p
    out = []
    for t, x, y, q in rows(events):
        if do and axis == "x":
            x = sensor[0] - 1 - x
        elif do and axis == "y":
            y = sensor[1] - 1 - y
        elif do and axis == "p":
            q = 1 - q
        out.append((t, x, y, q))
    return out


def crop(events, sensor, size, key):
    seed_global(*key)
    x0 = int(np.random.rand() * (sensor[0] - size[0]))  # tonic's corner draw: x first, then y
    y0 = int(np.random.rand() * (sensor[1] - size[1]))
    return [(t, x - x0, y - y0, p) for t, x, y, p in rows(events)
            if x0 <= x < x0 + size[0] and y0 <= y < y0 + size[1]]


def center_crop(events, sensor, size):
    x0, y0 = (sensor[0] - size[0]) // 2, (sensor[1] - size[1]) // 2
    return [(t, x - x0, y - y0, p) for t, x, y, p in rows(events)
            if x0 <= x < x0 + size[0] and y0 <= y < y0 + size[1]]


def drop_event_drawn(events, ratio):
    """Drop round(ratio N) events chosen by np.random.choice(N, k, replace=False) (global state as is)."""
    n = len(events)
    gone = set(np.random.choice(n, int(ratio * n + 0.5), replace=False).tolist())
    return [e for i, e in enumerate(rows(events)) if i not in gone]


def drop_event(events, p, key):
    seed_global(*key)
    if isinstance(p, tuple):
        p = (p[1] - p[0]) * np.random.random_sample() + p[0]
    return drop_event_drawn(events, p)


def drop_time_drawn(events, ratio):
    t0 = int(events["t"][0])
    span = int(events["t"].max()) - t0
    d = span * ratio
    start = np.random.uniform(0.0, span - d)
    return [e for e in rows(events) if not (start <= e[0] - t0 <= start + d)]


def drop_time(events, ratio, key):
    seed_global(*key)
    if isinstance(ratio, tuple):
        ratio = np.random.uniform(ratio[0], ratio[1])
    return drop_time_drawn(events, ratio)


def drop_area_drawn(events, sensor, ratio):
    cw, ch = int(sensor[0] * ratio), int(sensor[1] * ratio)
    x1 = np.random.randint(0, sensor[0] - cw)
    y1 = np.random.randint(0, sensor[1] - ch)
    return [e for e in rows(events) if not (x1 <= e[1] <= x1 + cw - 1 and y1 <= e[2] <= y1 + ch - 1)]


def drop_area(events, sensor, ratio, key):
    seed_global(*key)
    if isinstance(ratio, tuple):  # eventkit draws the ratio itself (tonic 1.x's range draw is broken)
        ratio = np.random.uniform(*ratio)
    return drop_area_drawn(events, sensor, ratio)


def event_drop(events, sensor, key):
    seed_global(*key)
    choice = np.random.randint(0, 4)
    if choice == 0:
        return rows(events)
    if choice == 1:
        return drop_time_drawn(events, np.random.randint(1, 10) / 10.0)
    if choice == 2:
        return drop_area_drawn(events, sensor, np.random.randint(1, 6) / 20.0)
    return drop_event_drawn(events, np.random.randint(1, 10) / 10.0)


def time_jitter(events, std, key):
    seed_global(*key)
    shifts = np.random.normal(0, std, len(events))
    t0 = int(events["t"][0])
    out = [(t0 + math.trunc((t - t0) + float(s)), x, y, p)
           for (t, x, y, p), s in zip(rows(events), shifts, strict=True)]
    return stable_by_t(out)


def time_skew(events, coefficient, offset, key):
    seed_global(*key)
    if isinstance(coefficient, tuple):
        coefficient = (coefficient[1] - coefficient[0]) * np.random.random_sample() + coefficient[0]
    if isinstance(offset, tuple):
        offset = (offset[1] - offset[0]) * np.random.random_sample() + offset[0]
    t0 = int(events["t"][0])
    return [(t0 + math.trunc((t - t0) * coefficient + offset), x, y, p) for t, x, y, p in rows(events)]


def noise(events, sensor, n, key):
    """The events plus tonic's uniform noise (fields drawn in the order t, x, y, p), as a sorted multiset."""
    seed_global(*key)
    if isinstance(n, tuple):
        n = int((n[1] - n[0]) * np.random.random_sample() + n[0])
    t0 = int(events["t"][0])
    t_rel = events["t"] - t0
    cols = {"t": np.random.uniform(t_rel.min(), t_rel.max(), n), "x": np.random.uniform(0, sensor[0], n),
            "y": np.random.uniform(0, sensor[1], n), "p": np.random.uniform(0, sensor[2], n)}
    added = [(t0 + math.trunc(cols["t"][i]), math.trunc(cols["x"][i]), math.trunc(cols["y"][i]),
              math.trunc(cols["p"][i])) for i in range(n)]
    return sorted(rows(events) + added)


def spatial_jitter(events, sensor, var_x, var_y, sigma_xy, key):
    seed_global(*key)
    shifts = np.random.multivariate_normal([0, 0], [[var_x, sigma_xy], [sigma_xy, var_y]], len(events))
    out = []
    for (t, x, y, p), (sx, sy) in zip(rows(events), shifts, strict=True):
        nx, ny = math.trunc(x + float(sx)), math.trunc(y + float(sy))
        if inside(nx, ny, sensor):
            out.append((t, nx, ny, p))
    return out


def time_reversal(events, p, flip_polarities, key):
    seed_global(*key)
    if not np.random.rand() < p:
        return rows(events)
    t0 = int(events["t"][0])
    t_max = int(events["t"].max()) - t0
    out = [(t0 + t_max - (t - t0), x, y, (1 - q) if flip_polarities else q) for t, x, y, q in rows(events)]
    return out[::-1]


# ------------------------------------------------------------------ frame ops (per pixel)

def frame_map(x: np.ndarray, source) -> np.ndarray:
    """``out[t, b, c, h, w] = x[t, b, c, *source(b, h, w)]`` or 0 where ``source`` returns None."""
    T, B, C, H, W = x.shape
    out = np.zeros_like(x)
    for b in range(B):
        for h in range(H):
            for w in range(W):
                src = source(b, h, w)
                if src is not None and 0 <= src[0] < H and 0 <= src[1] < W:
                    out[:, b, :, h, w] = x[:, b, :, src[0], src[1]]
    return out


def rotate_source(degrees: float, H: int, W: int):
    cx, cy = (W - 1) / 2, (H - 1) / 2
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return lambda h, w: (round(cy - (w - cx) * s + (h - cy) * c), round(cx + (w - cx) * c + (h - cy) * s))


def shear_source(degrees: float, H: int, W: int):
    k, cy = math.tan(math.radians(degrees)), (H - 1) / 2
    return lambda h, w: (h, round(w - k * (h - cy)))
