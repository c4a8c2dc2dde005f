"""eventkit's own event transforms: the ones tonic lacks.

tonic (1.x) has no random time window, no translation or roll, no rotation and no
shear of events; its ``RandomDropPixel`` tests every dropped pixel against every event
(``O(pixels x events)``: 0.35 s for a 1.45 s DVS Gesture crop at p = 0.1 in
``benchmarks/bench_augment.py``, against about 1 ms here: too slow for loader workers).
These are written here, vectorised over the events (no Python loop
per event), each as ``draw`` (the random parameters, from a seeded generator) then
``apply`` (a pure function of events and parameters), so a test can replay the same
parameters in a per-event reference.

Coordinates: ``x`` right, ``y`` down (the sensor's pixel grid), centre
``c = ((W - 1) / 2, (H - 1) / 2)``. Moved coordinates are rounded half to even
(``np.rint``); events that land outside the sensor are dropped (a roll wraps instead).
Only coordinates change, so the events stay sorted by ``t``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from eventkit.augment.base import EventOp, Sensor, check_vision
from eventkit.augment.params import Params

__all__ = ["TimeCrop", "Translate", "Roll", "Rotate", "Shear", "DropPixel"]


def _moved(events: np.ndarray, x: np.ndarray, y: np.ndarray, sensor: Sensor) -> np.ndarray:
    """A copy of ``events`` with new coordinates (int64), events outside the sensor dropped."""
    W, H = sensor[0], sensor[1]
    inside = (x >= 0) & (x < W) & (y >= 0) & (y < H)
    out = events[inside] if not inside.all() else events.copy()
    out["x"] = x[inside]
    out["y"] = y[inside]
    return out


@dataclass(frozen=True)
class TimeCrop(EventOp):
    """A random window of ``duration_us`` µs (e.g. 300 ms crops of DVS Gesture for training).

    Training: start ``s`` uniform over the integers ``[t_0, max(t_0, t_{N-1} + 1 - d)]``,
    events with ``s <= t < s + d`` are kept (a sample shorter than ``d`` is kept whole).
    Evaluation: with ``eval_duration_us`` the first ``eval_duration_us`` µs of the
    sample (``t_0 <= t < t_0 + eval_duration_us``, e.g. the first 1.5 s), else unchanged.
    """

    op: ClassVar[str] = "time_crop"
    duration_us: int
    eval_duration_us: int | None = None

    @property
    def evaluates(self) -> bool:  # type: ignore[override]
        return self.eval_duration_us is not None

    @classmethod
    def from_params(cls, params: Params) -> TimeCrop:
        return cls(params.number("duration_us", minimum=1, integer=True),
                   params.number("eval_duration_us", None, minimum=1, integer=True))

    def draw(self, rng: np.random.Generator, events: np.ndarray) -> dict[str, Any]:
        t = events["t"]
        if t.shape[0] == 0:
            return {"start_us": 0}
        t0, last = int(t[0]), int(t[-1])
        return {"start_us": int(rng.integers(t0, max(t0, last + 1 - self.duration_us), endpoint=True))}

    def apply(self, events: np.ndarray, start_us: int) -> np.ndarray:
        t = events["t"]
        lo, hi = np.searchsorted(t, [start_us, start_us + self.duration_us], side="left")
        return events[lo:hi]

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        return self.apply(events, **self.draw(np.random.default_rng(seq), events))

    def evaluate(self, events: np.ndarray, sensor: Sensor) -> np.ndarray:
        if self.eval_duration_us is None or events.shape[0] == 0:
            return events
        t = events["t"]
        return events[:int(np.searchsorted(t, int(t[0]) + self.eval_duration_us, side="left"))]


@dataclass(frozen=True)
class Translate(EventOp):
    """Shift by integers ``dx ~ U{-max_x..max_x}``, ``dy ~ U{-max_y..max_y}``; events leaving the sensor
    are dropped (random crop with zero padding, as torchvision's ``RandomCrop(size, padding)``)."""

    op: ClassVar[str] = "translate"
    spatial: ClassVar[bool] = True
    max_px: tuple[int, int]

    @classmethod
    def from_params(cls, params: Params) -> Translate:
        return cls(params.pair("max_px", minimum=0))

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        mx, my = self.max_px
        return {"dx": int(rng.integers(-mx, mx, endpoint=True)), "dy": int(rng.integers(-my, my, endpoint=True))}

    def apply(self, events: np.ndarray, sensor: Sensor, dx: int, dy: int) -> np.ndarray:
        check_vision(events, self.op)
        return _moved(events, events["x"].astype(np.int64) + dx, events["y"].astype(np.int64) + dy, sensor)

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        return self.apply(events, sensor, **self.draw(np.random.default_rng(seq)))


@dataclass(frozen=True)
class Roll(Translate):
    """Shift with wrap-around: ``x' = (x + dx) mod W``, ``y' = (y + dy) mod H`` (``torch.roll`` on
    frames; the "roll" of the NDA policy, Li et al. 2022)."""

    op: ClassVar[str] = "roll"

    @classmethod
    def from_params(cls, params: Params) -> Roll:
        return cls(params.pair("max_px", minimum=0))

    def apply(self, events: np.ndarray, sensor: Sensor, dx: int, dy: int) -> np.ndarray:
        check_vision(events, self.op)
        out = events.copy()
        out["x"] = (events["x"].astype(np.int64) + dx) % sensor[0]
        out["y"] = (events["y"].astype(np.int64) + dy) % sensor[1]
        return out


@dataclass(frozen=True)
class Rotate(EventOp):
    """Rotate about the sensor centre by ``θ ~ U[-max_deg, max_deg]`` degrees:
    ``x' = rint(cx + (x-cx) cos θ - (y-cy) sin θ)``, ``y' = rint(cy + (x-cx) sin θ + (y-cy) cos θ)``
    (clockwise on screen for θ > 0, since ``y`` points down); events leaving the sensor are dropped."""

    op: ClassVar[str] = "rotate"
    spatial: ClassVar[bool] = True
    max_deg: float

    @classmethod
    def from_params(cls, params: Params) -> Rotate:
        return cls(params.number("max_deg", minimum=0.0, maximum=180.0))

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"degrees": float(rng.uniform(-self.max_deg, self.max_deg))}

    def apply(self, events: np.ndarray, sensor: Sensor, degrees: float) -> np.ndarray:
        check_vision(events, self.op)
        cx, cy = (sensor[0] - 1) / 2.0, (sensor[1] - 1) / 2.0
        c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        # transient float64 coordinates (the events stay integer): the same rounding at half-pixel
        # ties as the exact per-event reference; float32 could round the other way there
        u = events["x"].astype(np.float64) - cx
        v = events["y"].astype(np.float64) - cy
        x = np.rint(cx + u * c - v * s).astype(np.int64)
        y = np.rint(cy + u * s + v * c).astype(np.int64)
        return _moved(events, x, y, sensor)

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        return self.apply(events, sensor, **self.draw(np.random.default_rng(seq)))


@dataclass(frozen=True)
class Shear(EventOp):
    """Horizontal shear by ``φ ~ U[-max_deg, max_deg]`` degrees about the centre row:
    ``x' = rint(x + tan φ · (y - cy))``, ``y' = y`` (torchvision's ``RandomAffine(shear=...)`` x-shear,
    as in the NDA policy); events leaving the sensor are dropped."""

    op: ClassVar[str] = "shear"
    spatial: ClassVar[bool] = True
    max_deg: float

    @classmethod
    def from_params(cls, params: Params) -> Shear:
        return cls(params.number("max_deg", minimum=0.0, maximum=89.0))

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"degrees": float(rng.uniform(-self.max_deg, self.max_deg))}

    def apply(self, events: np.ndarray, sensor: Sensor, degrees: float) -> np.ndarray:
        check_vision(events, self.op)
        cy = (sensor[1] - 1) / 2.0
        k = math.tan(math.radians(degrees))  # float64 coordinates, as in rotate
        x = np.rint(events["x"].astype(np.float64) + k * (events["y"].astype(np.float64) - cy)).astype(np.int64)
        return _moved(events, x, events["y"].astype(np.int64), sensor)

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        return self.apply(events, sensor, **self.draw(np.random.default_rng(seq)))


@dataclass(frozen=True)
class DropPixel(EventOp):
    """Drop all events of each pixel ``(x, y)`` independently with probability ``p`` (both polarities):
    tonic's ``RandomDropPixel`` in one pass over the events (a ``[H, W]`` mask looked up per event)."""

    op: ClassVar[str] = "drop_pixel"
    spatial: ClassVar[bool] = True
    p: float

    @classmethod
    def from_params(cls, params: Params) -> DropPixel:
        return cls(params.prob("p"))

    def draw(self, rng: np.random.Generator, sensor: Sensor) -> dict[str, Any]:
        return {"dropped": rng.random((sensor[1], sensor[0])) < self.p}

    def apply(self, events: np.ndarray, dropped: np.ndarray) -> np.ndarray:
        check_vision(events, self.op)
        return events[~dropped[events["y"], events["x"]]]

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        return self.apply(events, **self.draw(np.random.default_rng(seq), sensor))
