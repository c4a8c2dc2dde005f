"""An ordered list of event transforms, seeded per (seed, epoch, sample, step).

``EventAugment.from_table(items, source=...)`` reads a recipe's ``[[augment.event]]``
array (one table per op, applied in order)::

    [[augment.event]]
    op = "time_crop"
    duration_us = 300_000
    eval_duration_us = 1_500_000
    [[augment.event]]
    op = "flip_lr"
    p = 0.5

Training applies each op's random transform with the seed sequence of
``(seed, epoch, sample index, step)``; evaluation applies only the deterministic
counterparts (``crop`` → centre crop, ``time_crop`` → first window, ``tonic`` filters
with ``eval = true``) and draws nothing.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from eventkit.augment import own_ops, tonic_ops
from eventkit.augment.base import EventOp, Sensor
from eventkit.augment.params import Params, choices_table, parse_op
from eventkit.augment.seeding import preserved_numpy_global, step_seed
from eventkit.errors import InvalidEventsError, ParameterError

__all__ = ["EventAugment", "OneOf", "EVENT_OPS"]


@dataclass(frozen=True)
class OneOf(EventOp):
    """Apply one of ``choices`` (chosen with ``weights``, uniform by default) — e.g. the NDA policy's
    "one of roll, rotate, shear" (Li et al., "Neuromorphic Data Augmentation for Training Spiking
    Neural Networks", 2022). Choices must keep the sensor size and have no evaluation behaviour."""

    op: ClassVar[str] = "one_of"
    choices: tuple[EventOp, ...]
    weights: tuple[float, ...] | None = None

    @property
    def spatial(self) -> bool:  # type: ignore[override]
        return any(c.spatial for c in self.choices)

    @property
    def uses_numpy_global(self) -> bool:  # type: ignore[override]
        return any(c.uses_numpy_global for c in self.choices)

    @classmethod
    def from_params(cls, params: Params) -> OneOf:
        choices = params.choices("choices", _parse_op)
        for i, choice in enumerate(choices):
            if choice.evaluates or isinstance(choice, tonic_ops.Crop):
                raise params.error(f"choices[{i}]", f"op {choice.op!r} changes evaluation or the sensor size; "
                                                    "it cannot be one of several choices")
        return cls(choices, params.weights("weights", len(choices)))

    def to_table(self) -> dict[str, Any]:
        return choices_table(self.op, self.choices, self.weights)

    def draw(self, rng: np.random.Generator) -> int:
        if self.weights is None:
            return int(rng.integers(len(self.choices)))
        w = np.asarray(self.weights, dtype=np.float64)
        return int(rng.choice(len(self.choices), p=w / w.sum()))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        j = self.draw(np.random.default_rng(seq))
        child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, j))
        return self.choices[j].train(events, sensor, child)


_OP_CLASSES: tuple[type[EventOp], ...] = (
    own_ops.TimeCrop, own_ops.Translate, own_ops.Roll, own_ops.Rotate, own_ops.Shear, own_ops.DropPixel,
    tonic_ops.FlipLR, tonic_ops.FlipUD, tonic_ops.FlipPolarity, tonic_ops.Crop, tonic_ops.DropEvent,
    tonic_ops.DropTime, tonic_ops.DropArea, tonic_ops.EventDrop, tonic_ops.TimeJitter, tonic_ops.TimeSkew,
    tonic_ops.Noise, tonic_ops.SpatialJitter, tonic_ops.TimeReversal, tonic_ops.TonicOp, OneOf,
)
#: op name -> class, for ``op = "..."`` in a recipe
EVENT_OPS: dict[str, type[EventOp]] = {cls.op: cls for cls in _OP_CLASSES}


def _parse_op(item: Any, where: str) -> EventOp:
    return parse_op(item, where, EVENT_OPS, "event")


@dataclass(frozen=True)
class EventAugment:
    """Event-level augmentation: ``ops`` applied in order to one sample's events.

    ``aug(events, sensor_size, seed=, epoch=, index=)`` — training (random, reproducible per
    (seed, epoch, index)); ``aug.evaluate(events, sensor_size)`` — evaluation (deterministic,
    draws nothing); ``aug.output_sensor(sensor_size)`` — the sensor after both (``crop``).
    Events in and out: eventkit's vision dtype, sorted by ``t``; any integer/bool dtype is
    accepted on input (:func:`eventkit.augment.from_tonic`).
    """

    ops: tuple[EventOp, ...] = ()

    @classmethod
    def from_table(cls, items: Sequence[Mapping[str, Any]] | None, *, source: str) -> EventAugment:
        """Read an ``[[augment.event]]`` array; ``source`` prefixes every error (e.g. the recipe path)."""
        where = f"{source}: augment.event"
        if items is None:
            return cls()
        if isinstance(items, Mapping) or not isinstance(items, (list, tuple)):
            raise ParameterError(f"{where}: must be an array of op tables ([[augment.event]] ... op = \"flip_lr\"), "
                                 f"got {type(items).__name__}")
        ops = tuple(_parse_op(item, f"{where}[{i}]") for i, item in enumerate(items))
        return cls(ops)

    def to_table(self) -> list[dict[str, Any]]:
        """The ops as recipe tables (``from_table(aug.to_table())`` gives an equal object)."""
        return [op.to_table() for op in self.ops]

    @property
    def is_empty(self) -> bool:
        return not self.ops

    @property
    def changes_evaluation(self) -> bool:
        """True when evaluation is not the plain events (a crop, a fixed time window, an eval filter)."""
        return any(op.evaluates for op in self.ops)

    @property
    def spatial(self) -> bool:
        """True when an op moves pixels (vision datasets only)."""
        return any(op.spatial for op in self.ops)

    def output_sensor(self, sensor_size: Sequence[int]) -> Sensor:
        sensor = _sensor(sensor_size)
        for op in self.ops:
            sensor = op.output_sensor(sensor)
        return sensor

    def __call__(self, events: np.ndarray, sensor_size: Sequence[int], *, seed: int, epoch: int,
                 index: int) -> np.ndarray:
        sensor = _sensor(sensor_size)
        events = _as_events(events, sensor)
        with preserved_numpy_global() if any(op.uses_numpy_global for op in self.ops) else nullcontext():
            for k, op in enumerate(self.ops):
                events = op.train(events, sensor, step_seed(seed, epoch, index, k))
                sensor = op.output_sensor(sensor)
        return events

    def evaluate(self, events: np.ndarray, sensor_size: Sequence[int]) -> np.ndarray:
        sensor = _sensor(sensor_size)
        events = _as_events(events, sensor)
        for op in self.ops:
            events = op.evaluate(events, sensor)
            sensor = op.output_sensor(sensor)
        return events


def _sensor(sensor_size: Sequence[int]) -> Sensor:
    try:
        values = tuple(int(v) for v in sensor_size)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ParameterError(f"sensor_size must be (W, H, P) with positive integers, got {sensor_size!r}")
    return values[0], values[1], values[2]


def _as_events(events: np.ndarray, sensor: Sensor) -> np.ndarray:
    """eventkit events (read in place) or any tonic-style array (converted; must be inside the sensor)."""
    from eventkit.augment.tonic_compat import from_tonic
    from eventkit.events import AUDIO_DTYPE, VISION_DTYPE, validate_events

    if isinstance(events, np.ndarray) and events.dtype in (VISION_DTYPE, AUDIO_DTYPE):
        return validate_events(events, sensor, name="events")
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise InvalidEventsError(f"events: expected a structured event array, got {type(events).__name__}")
    return from_tonic(events, sensor, drop_outside=False)
