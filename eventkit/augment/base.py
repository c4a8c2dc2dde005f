"""The interface every event transform implements (see :mod:`eventkit.augment`).

An op is a frozen dataclass of its parameters. It takes eventkit events
(``VISION_DTYPE``, sorted by ``t``) inside ``sensor = (W, H, P)`` and returns new ones,
sorted, inside :meth:`EventOp.output_sensor`:

* :meth:`train` -- the random transform, drawing only from the seed sequence it is given
  (one per (seed, epoch, sample, step), see :mod:`eventkit.augment.seeding`);
* :meth:`evaluate` -- what evaluation applies: nothing for a random augmentation; the
  deterministic counterpart for the few ops that change what a sample is (``crop``
  center-crops, ``time_crop`` may keep a fixed first window).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from eventkit.augment.params import Params
from eventkit.errors import InvalidEventsError

__all__ = ["EventOp", "Sensor", "check_vision"]

Sensor = tuple[int, int, int]


def check_vision(events: np.ndarray, op: str) -> None:
    """Refuse audio events for ops that move pixels."""
    if "y" not in (events.dtype.names or ()):
        raise InvalidEventsError(f"augment op {op!r} moves pixels and needs vision events (t, x, y, p); "
                                 "got events without y (audio)")


@dataclass(frozen=True)
class EventOp(ABC):
    """Base class of event transforms; subclasses set :attr:`op` and their parameter fields."""

    op: ClassVar[str] = ""
    #: True when :meth:`evaluate` is not the identity
    evaluates: ClassVar[bool] = False
    #: True when the op moves pixels (vision events only)
    spatial: ClassVar[bool] = False
    #: True when the op draws from NumPy's global generator (tonic's transforms)
    uses_numpy_global: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_params(cls, params: Params) -> EventOp:
        """Build the op from its recipe table (``params.finish()`` is called by the caller)."""

    def to_table(self) -> dict[str, Any]:
        """The op as a recipe table (``{"op": ..., <parameters>}``), ranges as lists."""
        out: dict[str, Any] = {"op": self.op}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def output_sensor(self, sensor: Sensor) -> Sensor:
        return sensor

    @abstractmethod
    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        """The random transform of one sample, drawing from ``seq`` only."""

    def evaluate(self, events: np.ndarray, sensor: Sensor) -> np.ndarray:
        return events

