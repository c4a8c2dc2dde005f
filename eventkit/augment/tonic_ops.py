"""Event transforms that run tonic's own implementation (``tonic.transforms``).

Each op hands tonic a copy through :func:`~eventkit.augment.tonic_compat.to_tonic`
(signed wide fields, ``t`` rebased to start at 0), calls the tonic transform with
NumPy's global generator seeded for this (seed, epoch, sample, step) (``EventAugment``
restores the caller's global state once per sample), and takes the result back with
:func:`~eventkit.augment.tonic_compat.from_tonic` (eventkit dtype, events off the
sensor dropped, stable sort by ``t``). Empty samples are returned unchanged.

Why ``t`` is rebased: tonic's ``DropEventByTime`` draws its window over ``[0, max t]``
and ``TimeSkew`` scales about ``t = 0``; DVS Gesture samples keep the recording's
absolute clock (seconds into the file), where both would act on empty time. tonic
sees ``t - t_0`` and eventkit adds ``t_0`` back.

Where tonic's handling of a parameter is wrong or unusable, eventkit draws that
parameter itself from the same seeded global generator and passes a fixed value:
``DropEventByArea`` with a ``(low, high)`` ratio draws from ``[high, 1)`` (tonic
1.x passes ``low and high`` to ``np.random.uniform``), so eventkit draws the ratio.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from eventkit.augment.base import EventOp, Sensor
from eventkit.augment.params import Params
from eventkit.augment.seeding import seed_numpy_global
from eventkit.augment.tonic_compat import from_tonic, to_tonic
from eventkit.errors import ParameterError

__all__ = ["FlipLR", "FlipUD", "FlipPolarity", "Crop", "DropEvent", "DropTime", "DropArea", "EventDrop",
           "TimeJitter", "TimeSkew", "Noise", "SpatialJitter", "TimeReversal", "TonicOp", "run_tonic",
           "TONIC_OPS"]


def run_tonic(transform: Callable[[np.ndarray], np.ndarray], events: np.ndarray, sensor_out: Sensor,
              seq: np.random.SeedSequence | None, *, polarity: str = "01") -> np.ndarray:
    """Apply a tonic event transform to eventkit events (see the module docstring)."""
    if events.shape[0] == 0:
        return events
    t0 = int(events["t"][0])
    ev = to_tonic(events, polarity=polarity)
    ev["t"] -= t0
    if seq is not None:
        seed_numpy_global(seq)  # EventAugment restores the caller's global state once per sample
    return from_tonic(transform(ev), sensor_out, t_offset=t0)


def _tonic():
    import tonic.transforms  # imported where used: importing tonic pulls its dataset modules

    return tonic.transforms


@dataclass(frozen=True)
class _Flip(EventOp):
    uses_numpy_global: ClassVar[bool] = True
    p: float = 0.5
    _tonic_name: ClassVar[str] = ""

    @classmethod
    def from_params(cls, params: Params) -> _Flip:
        return cls(params.prob("p", 0.5))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        cls = getattr(_tonic(), self._tonic_name)
        transform = cls(p=self.p) if self._tonic_name == "RandomFlipPolarity" else cls(sensor_size=sensor, p=self.p)
        return run_tonic(transform, events, sensor, seq)


@dataclass(frozen=True)
class FlipLR(_Flip):
    """With probability ``p``: ``x' = W - 1 - x`` (tonic ``RandomFlipLR``)."""

    op: ClassVar[str] = "flip_lr"
    spatial: ClassVar[bool] = True
    _tonic_name: ClassVar[str] = "RandomFlipLR"


@dataclass(frozen=True)
class FlipUD(_Flip):
    """With probability ``p``: ``y' = H - 1 - y`` (tonic ``RandomFlipUD``)."""

    op: ClassVar[str] = "flip_ud"
    spatial: ClassVar[bool] = True
    _tonic_name: ClassVar[str] = "RandomFlipUD"


@dataclass(frozen=True)
class FlipPolarity(_Flip):
    """With probability ``p``: every event's ``p' = 1 - p`` (tonic ``RandomFlipPolarity``)."""

    op: ClassVar[str] = "flip_polarity"
    _tonic_name: ClassVar[str] = "RandomFlipPolarity"


@dataclass(frozen=True)
class Crop(EventOp):
    """A random ``size = [w, h]`` window of the sensor, shifted to the origin (tonic ``RandomCrop``);
    evaluation takes the centre window (tonic ``CenterCrop``). Frames become ``[T, P, h, w]``.
    tonic draws the corner as ``int(U[0,1) * (W - w))``: the last offset ``W - w`` is never drawn."""

    op: ClassVar[str] = "crop"
    uses_numpy_global: ClassVar[bool] = True
    evaluates: ClassVar[bool] = True
    spatial: ClassVar[bool] = True
    size: tuple[int, int]

    @classmethod
    def from_params(cls, params: Params) -> Crop:
        return cls(params.pair("size", minimum=1, names=("w", "h")))

    def output_sensor(self, sensor: Sensor) -> Sensor:
        w, h = self.size
        if w > sensor[0] or h > sensor[1]:
            raise ParameterError(f"augment op 'crop': size {list(self.size)} is larger than the sensor "
                                 f"(W, H) = {(sensor[0], sensor[1])}")
        return (w, h, sensor[2])

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        out = self.output_sensor(sensor)
        return run_tonic(_tonic().RandomCrop(sensor_size=sensor, target_size=self.size), events, out, seq)

    def evaluate(self, events: np.ndarray, sensor: Sensor) -> np.ndarray:
        out = self.output_sensor(sensor)
        return run_tonic(_tonic().CenterCrop(sensor_size=sensor, size=self.size), events, out, None)


def _as_tonic_range(value: Any) -> Any:
    return tuple(float(v) for v in value) if isinstance(value, tuple) else float(value)


@dataclass(frozen=True)
class DropEvent(EventOp):
    """Drop ``round(p N)`` events chosen uniformly (tonic ``DropEvent``); ``p`` a value or ``[low, high]``."""

    op: ClassVar[str] = "drop_event"
    uses_numpy_global: ClassVar[bool] = True
    p: float | tuple[float, float]

    @classmethod
    def from_params(cls, params: Params) -> DropEvent:
        return cls(params.span("p", minimum=0.0, maximum=1.0))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        return run_tonic(_tonic().DropEvent(p=_as_tonic_range(self.p)), events, sensor, seq)


@dataclass(frozen=True)
class DropTime(EventOp):
    """Drop the events of a random interval of ``ratio`` × the sample's duration (tonic
    ``DropEventByTime``); ``ratio`` in ``[0, 1)``, a value or ``[low, high]``."""

    op: ClassVar[str] = "drop_time"
    uses_numpy_global: ClassVar[bool] = True
    ratio: float | tuple[float, float] = 0.2

    @classmethod
    def from_params(cls, params: Params) -> DropTime:
        return cls(params.ratio("ratio", 0.2))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        return run_tonic(_tonic().DropEventByTime(duration_ratio=_as_tonic_range(self.ratio)), events, sensor, seq)


@dataclass(frozen=True)
class DropArea(EventOp):
    """Drop the events of a random box of ``int(ratio W) × int(ratio H)`` pixels (tonic
    ``DropEventByArea``; event-level cutout); ``ratio`` in ``[0, 1)``, a value or ``[low, high]``."""

    op: ClassVar[str] = "drop_area"
    uses_numpy_global: ClassVar[bool] = True
    spatial: ClassVar[bool] = True
    ratio: float | tuple[float, float] = 0.2

    @classmethod
    def from_params(cls, params: Params) -> DropArea:
        return cls(params.ratio("ratio", 0.2))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        drop_by_area = _tonic().DropEventByArea

        def transform(ev: np.ndarray) -> np.ndarray:  # runs under the seeded global generator
            ratio = self.ratio if not isinstance(self.ratio, tuple) else np.random.uniform(*self.ratio)
            return drop_by_area(sensor_size=sensor, area_ratio=float(ratio))(ev)

        return run_tonic(transform, events, sensor, seq)


@dataclass(frozen=True)
class EventDrop(EventOp):
    """tonic ``EventDrop`` (Gu et al., "EventDrop: data augmentation for event-based learning", 2021):
    one of identity, drop by time, drop by area, random drop, with the paper's ratios."""

    op: ClassVar[str] = "event_drop"
    uses_numpy_global: ClassVar[bool] = True
    spatial: ClassVar[bool] = True

    @classmethod
    def from_params(cls, params: Params) -> EventDrop:
        return cls()

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        return run_tonic(_tonic().EventDrop(sensor_size=sensor), events, sensor, seq)


@dataclass(frozen=True)
class TimeJitter(EventOp):
    """``t' = t + trunc(N(0, std_us²))`` per event (tonic ``TimeJitter``, written into the int64 field,
    so truncated toward zero), then stably re-sorted by ``t'``; no event is dropped."""

    op: ClassVar[str] = "time_jitter"
    uses_numpy_global: ClassVar[bool] = True
    std_us: float

    @classmethod
    def from_params(cls, params: Params) -> TimeJitter:
        return cls(params.number("std_us", minimum=0.0))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        transform = _tonic().TimeJitter(std=self.std_us, clip_negative=False, sort_timestamps=False)
        return run_tonic(transform, events, sensor, seq)


@dataclass(frozen=True)
class TimeSkew(EventOp):
    """``t' = t_0 + trunc(a (t - t_0) + b)`` with ``a = coefficient``, ``b = offset_us``, each a value or a
    ``[low, high]`` range drawn uniformly (tonic ``TimeSkew``); ``a > 0`` keeps the order."""

    op: ClassVar[str] = "time_skew"
    uses_numpy_global: ClassVar[bool] = True
    coefficient: float | tuple[float, float]
    offset_us: float | tuple[float, float] = 0.0

    @classmethod
    def from_params(cls, params: Params) -> TimeSkew:
        return cls(params.span("coefficient", minimum=0.0, exclusive_min=True), params.span("offset_us", 0.0))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        transform = _tonic().TimeSkew(coefficient=_as_tonic_range(self.coefficient),
                                      offset=_as_tonic_range(self.offset_us))
        return run_tonic(transform, events, sensor, seq)


@dataclass(frozen=True)
class Noise(EventOp):
    """Add ``n`` uniform background events (``x``, ``y``, ``p`` uniform over the sensor, ``t`` over
    ``[t_0, t_{N-1}]``; tonic ``UniformNoise``); ``n`` a count or ``[low, high]``."""

    op: ClassVar[str] = "noise"
    uses_numpy_global: ClassVar[bool] = True
    n: int | tuple[int, int]
    #: most background events one sample may get (16 bytes each: 1.6 GB): larger is a typo, refused
    MAX_N: ClassVar[int] = 100_000_000

    @classmethod
    def from_params(cls, params: Params) -> Noise:
        return cls(params.span("n", minimum=0, maximum=cls.MAX_N, integer=True))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        n = tuple(int(v) for v in self.n) if isinstance(self.n, tuple) else int(self.n)
        return run_tonic(_tonic().UniformNoise(sensor_size=sensor, n=n), events, sensor, seq)


@dataclass(frozen=True)
class SpatialJitter(EventOp):
    """``(x, y) += N(0, [[var_x, sigma_xy], [sigma_xy, var_y]])`` per event, truncated to integers
    (tonic ``SpatialJitter``); events leaving the sensor are dropped."""

    op: ClassVar[str] = "spatial_jitter"
    uses_numpy_global: ClassVar[bool] = True
    spatial: ClassVar[bool] = True
    var_x: float = 1.0
    var_y: float = 1.0
    sigma_xy: float = 0.0

    @classmethod
    def from_params(cls, params: Params) -> SpatialJitter:
        return cls(params.number("var_x", 1.0, minimum=0.0), params.number("var_y", 1.0, minimum=0.0),
                   params.number("sigma_xy", 0.0))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        transform = _tonic().SpatialJitter(sensor_size=sensor, var_x=self.var_x, var_y=self.var_y,
                                           sigma_xy=self.sigma_xy, clip_outliers=False)
        return run_tonic(transform, events, sensor, seq)


@dataclass(frozen=True)
class TimeReversal(EventOp):
    """With probability ``p``: ``t' = t_0 + (t_{N-1} - t)`` in reversed order, and ``p' = 1 - p`` when
    ``flip_polarities`` (tonic ``RandomTimeReversal``)."""

    op: ClassVar[str] = "time_reversal"
    uses_numpy_global: ClassVar[bool] = True
    p: float = 0.5
    flip_polarities: bool = True

    @classmethod
    def from_params(cls, params: Params) -> TimeReversal:
        return cls(params.prob("p", 0.5), params.flag("flip_polarities", True))

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        transform = _tonic().RandomTimeReversal(p=self.p, flip_polarities=self.flip_polarities)
        return run_tonic(transform, events, sensor, seq)


#: tonic transforms usable by name with ``op = "tonic"`` (events in, events out, sensor kept)
TONIC_OPS = ("Decimation", "Denoise", "DropEvent", "DropEventByArea", "DropEventByTime", "DropPixel", "EventDrop",
             "MergePolarities", "RandomDropPixel", "RandomFlipLR", "RandomFlipPolarity", "RandomFlipUD",
             "RandomTimeReversal", "RefractoryPeriod", "SpatialJitter", "TimeJitter", "TimeSkew", "UniformNoise")
#: deterministic filters: ``eval = true`` applies them to evaluation too
TONIC_FILTERS = ("Decimation", "Denoise", "DropPixel", "MergePolarities", "RefractoryPeriod")


def _tonic_arg(value: Any) -> Any:
    """TOML arrays as tuples (tonic tests ``isinstance(x, tuple)`` for ranges)."""
    if isinstance(value, list):
        return tuple(_tonic_arg(v) for v in value)
    return value


@dataclass(frozen=True)
class TonicOp(EventOp):
    """Any of :data:`TONIC_OPS` by class name with its keyword arguments (``sensor_size`` is filled in
    when the class takes one). ``eval = true`` (filters of :data:`TONIC_FILTERS` only) applies the
    filter to evaluation too, so training and evaluation see the same kind of events."""

    op: ClassVar[str] = "tonic"
    uses_numpy_global: ClassVar[bool] = True
    name: str
    args: Mapping[str, Any] = field(default_factory=dict, hash=False)
    eval: bool = False

    @property
    def evaluates(self) -> bool:  # type: ignore[override]
        return self.eval

    @classmethod
    def from_params(cls, params: Params) -> TonicOp:
        name = params.raw("name")
        if name not in TONIC_OPS:
            raise params.error("name", f"must be one of tonic's event transforms {list(TONIC_OPS)}, got {name!r}")
        args = params.raw("args", {})
        if not isinstance(args, Mapping):
            raise params.error("args", f"must be a table of keyword arguments, got {args!r}")
        klass = getattr(_tonic(), name)
        accepted = {f.name for f in dataclasses.fields(klass)}
        unknown = sorted(set(args) - accepted)
        if unknown or "sensor_size" in args:
            raise params.error("args", f"{name} takes {sorted(accepted - {'sensor_size'})} (sensor_size is filled "
                                       f"in), got {sorted(args)}")
        evaluate = params.flag("eval", False)
        if evaluate and name not in TONIC_FILTERS:
            raise params.error("eval", f"only the deterministic filters {list(TONIC_FILTERS)} may run in "
                                       f"evaluation; {name} is random")
        return cls(name, {str(k): _tonic_arg(v) for k, v in args.items()}, evaluate)

    def to_table(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "args": dict(self.args), "eval": self.eval}

    def _transform(self, sensor: Sensor) -> Callable[[np.ndarray], np.ndarray]:
        klass = getattr(_tonic(), self.name)
        kwargs = dict(self.args)
        if "sensor_size" in {f.name for f in dataclasses.fields(klass)}:
            kwargs["sensor_size"] = sensor
        return klass(**kwargs)

    def train(self, events: np.ndarray, sensor: Sensor, seq: np.random.SeedSequence) -> np.ndarray:
        return run_tonic(self._transform(sensor), events, sensor, seq)

    def evaluate(self, events: np.ndarray, sensor: Sensor) -> np.ndarray:
        return run_tonic(self._transform(sensor), events, sensor, None) if self.eval else events
