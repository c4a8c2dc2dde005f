"""A recipe's ``[augment]`` table: :class:`AugmentConfig` (event part + frame part).

::

    [[augment.event]]          # event ops, in order, in the loader workers (eventkit.augment)
    op = "flip_lr"
    p = 0.5
    [[augment.frame]]          # frame ops, in order, on the device (eventkit_train.augment.frame)
    op = "cutout"
    size = [16, 16]

``AugmentConfig.from_table(table, source=...)`` validates everything (unknown keys and
ops, out-of-range values) and raises :class:`~eventkit.errors.ParameterError` naming the
key, e.g. ``runs/x.toml: augment.frame[0].size: ...``. See ``docs/augmentation.md``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from eventkit.augment import EventAugment
from eventkit.errors import ParameterError
from eventkit_train.augment.frame import FrameOp, MixedTargets, Mixup, parse_frame_op

__all__ = ["AugmentConfig", "FrameAugment", "frame_seed"]

_FRAME_TAG = 0x66726175  # "frau": frame streams never coincide with event streams of the same seed


def frame_seed(seed: int, epoch: int, step: int, rank: int = 0, op: int = 0) -> np.random.SeedSequence:
    """Seed of frame op ``op`` for training step ``step`` of ``epoch`` on ``rank``."""
    values = [seed, epoch, step, rank, op]
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0 for v in values):
        raise ParameterError(f"frame augmentation seed/epoch/step/rank must be integers >= 0, got {values}")
    return np.random.SeedSequence([int(seed), int(epoch), int(step), int(rank), _FRAME_TAG], spawn_key=(int(op),))


@dataclass(frozen=True)
class FrameAugment:
    """Frame ops applied on the device to a float batch ``[T, B, C, H, W]``.

    ``aug(x, y, seed=, epoch=, step=, rank=0) -> (x, targets)``: per-sample ops in order, then
    the batch op (``mixup``/``cutmix``, at most one, last). ``targets`` is ``y`` unchanged, or
    :class:`~eventkit_train.augment.frame.MixedTargets` when a batch op is configured (also when
    it was skipped this step: ``lam = 1``). Call it in training steps only.
    """

    ops: tuple[FrameOp, ...] = ()
    mix: Mixup | None = None

    @classmethod
    def from_table(cls, items: Sequence[Mapping[str, Any]] | None, *, source: str) -> FrameAugment:
        where = f"{source}: augment.frame"
        if items is None:
            return cls()
        if isinstance(items, Mapping) or not isinstance(items, (list, tuple)):
            raise ParameterError(f"{where}: must be an array of op tables ([[augment.frame]] ... op = \"flip_lr\"), "
                                 f"got {type(items).__name__}")
        ops: list[FrameOp] = []
        mix = None
        for i, item in enumerate(items):
            op = parse_frame_op(item, f"{where}[{i}]")
            if isinstance(op, Mixup):
                if i != len(items) - 1:
                    raise ParameterError(f"{where}[{i}].op: {op.op!r} mixes whole batches and must be the last "
                                         "frame op (one of mixup/cutmix at most)")
                mix = op
            else:
                ops.append(op)
        return cls(tuple(ops), mix)

    def to_table(self) -> list[dict[str, Any]]:
        return [op.to_table() for op in self.ops] + ([self.mix.to_table()] if self.mix is not None else [])

    @property
    def is_empty(self) -> bool:
        return not self.ops and self.mix is None

    @property
    def mixes(self) -> bool:
        """True when targets come back as :class:`MixedTargets`."""
        return self.mix is not None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, *, seed: int, epoch: int, step: int,
                 rank: int = 0) -> tuple[torch.Tensor, torch.Tensor | MixedTargets]:
        if self.ops and x.dim() != 5:
            raise ParameterError(f"frame augment ops {[op.op for op in self.ops]} need frames [T, B, C, H, W], "
                                 f"got shape {tuple(x.shape)}")
        if x.dim() < 2 or not x.is_floating_point():
            raise ParameterError(f"frame augmentation needs a float batch [T, B, ...] (after to_device), got "
                                 f"{x.dtype} of shape {tuple(x.shape)}")
        B = x.shape[1]
        H, W = (x.shape[-2], x.shape[-1]) if x.dim() == 5 else (1, 1)
        for k, op in enumerate(self.ops):
            params = op.draw(np.random.default_rng(frame_seed(seed, epoch, step, rank, k)), B, H, W)
            x = op.apply(x, params)
        if self.mix is None:
            return x, y
        params = self.mix.draw(np.random.default_rng(frame_seed(seed, epoch, step, rank, len(self.ops))), B, H, W)
        return self.mix.apply(x, y, params)


_TOP_KEYS = ("event", "frame")


@dataclass(frozen=True)
class AugmentConfig:
    """A recipe's ``[augment]`` table, validated: ``event`` (an :class:`eventkit.augment.EventAugment`,
    applied in the loader workers before framing) and ``frame`` (a :class:`FrameAugment`, applied on
    the device). Both are off in evaluation."""

    event: EventAugment = field(default_factory=EventAugment)
    frame: FrameAugment = field(default_factory=FrameAugment)

    @classmethod
    def from_table(cls, table: Mapping[str, Any] | None, *, source: str) -> AugmentConfig:
        """Validate a ``[augment]`` table (``None`` or ``{}``: no augmentation). ``source`` (e.g. the
        recipe's path, or ``"--augment"``) starts every error message."""
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise ParameterError(f"{source}: augment: must be a table with 'event' and/or 'frame' arrays, got "
                                 f"{type(table).__name__}")
        unknown = [k for k in table if k not in _TOP_KEYS]
        if unknown:
            raise ParameterError(f"{source}: augment.{unknown[0]}: unknown key; [augment] takes {list(_TOP_KEYS)} "
                                 "(arrays of op tables)")
        return cls(EventAugment.from_table(table.get("event"), source=source),
                   FrameAugment.from_table(table.get("frame"), source=source))

    @classmethod
    def from_toml(cls, text: str, *, source: str = "--augment") -> AugmentConfig:
        """Read the body of an ``[augment]`` table written as TOML, e.g. the CLI value
        ``'event = [{op = "flip_lr"}]'``."""
        import tomllib

        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ParameterError(f"{source}: not a TOML [augment] table body ({exc}), e.g. "
                                 "'event = [{op = \"flip_lr\", p = 0.5}]'") from None
        return cls.from_table(table, source=source)

    def to_table(self) -> dict[str, Any]:
        """The normalised table (``from_table(c.to_table(), ...) == c``); empty parts are left out."""
        out: dict[str, Any] = {}
        if not self.event.is_empty:
            out["event"] = self.event.to_table()
        if not self.frame.is_empty:
            out["frame"] = self.frame.to_table()
        return out

    @property
    def is_empty(self) -> bool:
        return self.event.is_empty and self.frame.is_empty

    def frame_batch(self, x: torch.Tensor, y: torch.Tensor, *, seed: int, epoch: int, step: int, rank: int = 0,
                    train: bool = True) -> tuple[torch.Tensor, torch.Tensor | MixedTargets]:
        """The device part for one batch: :class:`FrameAugment` in training, ``(x, y)`` unchanged otherwise."""
        if not train or self.frame.is_empty:
            return x, y
        return self.frame(x, y, seed=seed, epoch=epoch, step=step, rank=rank)

