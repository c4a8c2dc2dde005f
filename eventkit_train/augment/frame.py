"""Frame-level augmentation on the device: float batches ``[T, B, C, H, W]`` (time-first).

Per-sample ops (``flip_lr``, ``flip_ud``, ``roll``, ``translate``, ``rotate``, ``shear``,
``cutout``, ``one_of``) are integer pixel maps: output pixel ``(h, w)`` of sample ``b``
takes input pixel ``(src_h, src_w)`` of the same sample at every time step and channel,
or 0 where the source is off the frame (a roll wraps instead). Geometry as the event
ops of :mod:`eventkit.augment` (``x`` right, ``y`` down, centre ``((W-1)/2, (H-1)/2)``,
rounding half to even): ``rotate``/``shear`` here apply the inverse map of the event op
with the same angle, so they turn the picture the same way (nearest neighbour, as the
NDA reference code does on frames). Batch ops ``mixup`` and ``cutmix`` mix each sample
with another one of the batch and return :class:`MixedTargets`.

Random parameters are drawn on the CPU from NumPy generators seeded by
``(seed, epoch, step, rank, op position)``; only the few per-sample numbers move to the
device, so the draws do not depend on the device (the pixel maps are computed there in
float64).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from eventkit.augment.params import Params, choices_table, parse_op
from eventkit.errors import ParameterError

__all__ = ["FrameOp", "FlipLR", "FlipUD", "Roll", "Translate", "Rotate", "Shear", "Cutout", "OneOf", "Mixup",
           "CutMix", "MixedTargets", "Maps"]

Maps = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # src_h, src_w (int64 [B, H, W]), valid (bool [B, H, W])


def _grid(H: int, W: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel rows ``[1, H, 1]`` and columns ``[1, 1, W]`` (float64, on ``device``)."""
    h = torch.arange(H, device=device, dtype=torch.float64).view(1, H, 1)
    w = torch.arange(W, device=device, dtype=torch.float64).view(1, 1, W)
    return h, w


def _finish(src_h: torch.Tensor, src_w: torch.Tensor, H: int, W: int) -> Maps:
    src_h, src_w = torch.broadcast_tensors(src_h, src_w)
    valid = (src_h >= 0) & (src_h < H) & (src_w >= 0) & (src_w < W)
    return src_h.long(), src_w.long(), valid


def gather(x: torch.Tensor, maps: Maps) -> torch.Tensor:
    """``out[t, b, c, h, w] = x[t, b, c, src_h[b, h, w], src_w[b, h, w]]`` (0 where not ``valid``)."""
    T, B, C, H, W = x.shape
    src_h, src_w, valid = (torch.broadcast_to(m, (B, H, W)) for m in maps)
    flat = (src_h.clamp(0, H - 1) * W + src_w.clamp(0, W - 1)).reshape(1, B, 1, H * W).expand(T, B, C, H * W)
    out = x.reshape(T, B, C, H * W).gather(3, flat).view(T, B, C, H, W)
    return out * valid.reshape(1, B, 1, H, W).to(x.dtype)


def _op_table(op: Any) -> dict[str, Any]:
    """The recipe table of a frame op (a dataclass with a class-level ``op`` name)."""
    out: dict[str, Any] = {"op": op.op}
    for name in op.__dataclass_fields__:
        value = getattr(op, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


@dataclass(frozen=True)
class FrameOp(ABC):
    """A per-sample op: ``draw`` (NumPy arrays of per-sample parameters) then ``maps`` on the device."""

    op: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def from_params(cls, params: Params) -> FrameOp:
        """Build the op from its recipe table."""

    def to_table(self) -> dict[str, Any]:
        return _op_table(self)

    @abstractmethod
    def draw(self, rng: np.random.Generator, B: int, H: int, W: int) -> dict[str, np.ndarray]:
        """Per-sample parameters of a batch of ``B`` frames of ``H x W``."""

    @abstractmethod
    def maps(self, params: dict[str, torch.Tensor], H: int, W: int, device: torch.device) -> Maps:
        """The pixel maps of the batch from its parameters (tensors on ``device``)."""

    def apply(self, x: torch.Tensor, params: dict[str, np.ndarray]) -> torch.Tensor:
        _, B, _, H, W = x.shape
        dev = {k: torch.as_tensor(v, device=x.device) for k, v in params.items()}
        return gather(x, self.maps(dev, H, W, x.device))


@dataclass(frozen=True)
class FlipLR(FrameOp):
    """Each sample with probability ``p``: ``w -> W - 1 - w``."""

    op: ClassVar[str] = "flip_lr"
    p: float = 0.5

    @classmethod
    def from_params(cls, params: Params) -> FlipLR:
        return cls(params.prob("p", 0.5))

    def draw(self, rng: np.random.Generator, B: int, H: int, W: int) -> dict[str, np.ndarray]:
        return {"flip": rng.random(B) < self.p}

    def maps(self, params: dict[str, torch.Tensor], H: int, W: int, device: torch.device) -> Maps:
        h, w = _grid(H, W, device)
        flip = params["flip"].view(-1, 1, 1)
        return _finish(h, torch.where(flip, W - 1 - w, w), H, W)


@dataclass(frozen=True)
class FlipUD(FlipLR):
    """Each sample with probability ``p``: ``h -> H - 1 - h``."""

    op: ClassVar[str] = "flip_ud"

    def maps(self, params: dict[str, torch.Tensor], H: int, W: int, device: torch.device) -> Maps:
        h, w = _grid(H, W, device)
        flip = params["flip"].view(-1, 1, 1)
        return _finish(torch.where(flip, H - 1 - h, h), w, H, W)


@dataclass(frozen=True)
class Roll(FrameOp):
    """Shift each sample by integers ``dx ~ U{-max_x..max_x}``, ``dy ~ U{-max_y..max_y}`` with wrap-around
    (``torch.roll(x, (dy, dx), (-2, -1))`` per sample: the NDA policy's roll)."""

    op: ClassVar[str] = "roll"
    max_px: tuple[int, int]

    @classmethod
    def from_params(cls, params: Params) -> Roll:
        return cls(params.pair("max_px", minimum=0))

    def draw(self, rng: np.random.Generator, B: int, H: int, W: int) -> dict[str, np.ndarray]:
        mx, my = self.max_px
        return {"dx": rng.integers(-mx, mx, size=B, endpoint=True), "dy": rng.integers(-my, my, size=B, endpoint=True)}

    def maps(self, params: dict[str, torch.Tensor], H: int, W: int, device: torch.device) -> Maps:
        h, w = _grid(H, W, device)
        dx, dy = (params[k].view(-1, 1, 1).to(torch.float64) for k in ("dx", "dy"))
        return _finish(torch.remainder(h - dy, H), torch.remainder(w - dx, W), H, W)


@dataclass(frozen=True)
class Translate(Roll):
    """As ``roll`` but pixels shifted off the frame are lost and the uncovered ones are 0."""

    op: ClassVar[str] = "translate"

    @classmethod
    def from_params(cls, params: Params) -> Translate:
        return cls(params.pair("max_px", minimum=0))

    def maps(self, params: dict[str, torch.Tensor], H: int, W: int, device: torch.device) -> Maps:
        h, w = _grid(H, W, device)
        dx, dy = (params[k].view(-1, 1, 1).to(torch.float64) for k in ("dx", "dy"))
        return _finish(h - dy, w - dx, H, W)


@dataclass(frozen=True)
class Rotate(FrameOp):
    """Rotate each sample by ``θ ~ U[-max_deg, max_deg]`` about the centre (nearest source pixel,
    ``u = w - cx``, ``v = h - cy``: ``src_w = rint(cx + u cos θ + v sin θ)``,
    ``src_h = rint(cy - u sin θ + v cos θ)``); 0 outside."""

    op: ClassVar[str] = "rotate"
    max_deg: float

    @classmethod
    def from_params(cls, params: Params) -> Rotate:
        return cls(params.number("max_deg", minimum=0.0, maximum=180.0))

    def draw(self, rng: np.random.Generator, B: int, H: int, W: int) -> dict[str, np.ndarray]:
        return {"degrees": rng.uniform(-self.max_deg, self.max_deg, size=B)}

    def maps(self, params: dict[str, torch.Tensor], H: int, W: int, device: torch.device) -> Maps:
        h, w = _grid(H, W, device)
        rad = torch.deg2rad(params["degrees"].to(torch.float64)).view(-1, 1, 1)
        cx, cy = (W - 1) / 2.0, (H - 1) / 2.0
        u, v = w - cx, h - cy
        return _finish(torch.round(cy - u * torch.sin(rad) + v * torch.cos(rad)),
                       torch.round(cx + u * torch.cos(rad) + v * torch.sin(rad)), H, W)


@dataclass(frozen=True)
class Shear(FrameOp):
    """Horizontal shear of each sample by ``φ ~ U[-max_deg, max_deg]``: ``src_w = rint(w - tan φ (h - cy))``."""

    op: ClassVar[str] = "shear"
    max_deg: float

    @classmethod
    def from_params(cls, params: Params) -> Shear:
        return cls(params.number("max_deg", minimum=0.0, maximum=89.0))

    def draw(self, rng: np.random.Generator, B: int, H: int, W: int) -> dict[str, np.ndarray]:
        return {"degrees": rng.uniform(-self.max_deg, self.max_deg, size=B)}

    def maps(self, params: dict[str, torch.Tensor], H: int, W: int, device: torch.device) -> Maps:
        h, w = _grid(H, W, device)
        k = torch.tan(torch.deg2rad(params["degrees"].to(torch.float64))).view(-1, 1, 1)
        return _finish(h, torch.round(w - k * (h - (H - 1) / 2.0)), H, W)


@dataclass(frozen=True)
class Cutout(FrameOp):
    """Zero a ``size = [w, h]`` box of each sample with probability ``p`` (DeVries and Taylor, "Improved
    Regularization of Convolutional Neural Networks with Cutout", 2017): centre ``(cx, cy)`` uniform over
    the pixels, box ``[cx - w//2, cx - w//2 + w) x [cy - h//2, cy - h//2 + h)`` clipped to the frame."""

    op: ClassVar[str] = "cutout"
    size: tuple[int, int]
    p: float = 1.0

    @classmethod
    def from_params(cls, params: Params) -> Cutout:
        return cls(params.pair("size", minimum=1, names=("w", "h")), params.prob("p", 1.0))

    def draw(self, rng: np.random.Generator, B: int, H: int, W: int) -> dict[str, np.ndarray]:
        return {"cut": rng.random(B) < self.p, "cx": rng.integers(0, W, size=B), "cy": rng.integers(0, H, size=B)}

    def maps(self, params: dict[str, torch.Tensor], H: int, W: int, device: torch.device) -> Maps:
        h, w = _grid(H, W, device)
        bw, bh = self.size
        x0 = (params["cx"] - bw // 2).view(-1, 1, 1).to(torch.float64)
        y0 = (params["cy"] - bh // 2).view(-1, 1, 1).to(torch.float64)
        inside = (w >= x0) & (w < x0 + bw) & (h >= y0) & (h < y0 + bh) & params["cut"].view(-1, 1, 1)
        src_h, src_w, valid = _finish(h, w, H, W)
        return src_h, src_w, valid & ~inside


@dataclass(frozen=True)
class OneOf(FrameOp):
    """Each sample gets one of ``choices`` (uniform, or ``weights``): e.g. NDA's roll / rotate / shear."""

    op: ClassVar[str] = "one_of"
    choices: tuple[FrameOp, ...]
    weights: tuple[float, ...] | None = None

    @classmethod
    def from_params(cls, params: Params) -> OneOf:
        choices = params.choices("choices", parse_frame_op)
        for i, c in enumerate(choices):
            if not isinstance(c, FrameOp) or isinstance(c, OneOf):
                raise params.error(f"choices[{i}]", f"op {c.op!r} cannot be a choice (per-sample ops only)")
        return cls(choices, params.weights("weights", len(choices)))

    def to_table(self) -> dict[str, Any]:
        return choices_table(self.op, self.choices, self.weights)

    def draw(self, rng: np.random.Generator, B: int, H: int, W: int) -> dict[str, np.ndarray]:
        w = None if self.weights is None else np.asarray(self.weights) / sum(self.weights)
        out: dict[str, np.ndarray] = {"choice": rng.choice(len(self.choices), size=B, p=w)}
        for j, c in enumerate(self.choices):
            out.update({f"{j}.{k}": v for k, v in c.draw(rng, B, H, W).items()})
        return out

    def maps(self, params: dict[str, torch.Tensor], H: int, W: int, device: torch.device) -> Maps:
        choice = params["choice"].view(-1, 1, 1)
        result: Maps | None = None
        for j, c in enumerate(self.choices):
            sub = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"{j}.")}
            m0, m1, m2 = (torch.broadcast_to(t, (choice.shape[0], H, W)) for t in c.maps(sub, H, W, device))
            if result is not None:
                m0, m1, m2 = (torch.where(choice == j, a, b) for a, b in zip((m0, m1, m2), result, strict=True))
            result = (m0, m1, m2)
        assert result is not None  # a one_of op has at least one choice (checked when parsed)
        return result


@dataclass(frozen=True)
class MixedTargets:
    """Targets of a mixed batch: sample ``b`` is ``lam`` parts ``y_a[b]`` and ``1 - lam`` parts ``y_b[b]``.

    A loss ``L(output, labels)`` that takes integer labels is mixed the same way
    (Zhang et al., "mixup", 2018; Yun et al., "CutMix", 2019):
    ``targets.loss(L, output) = lam * L(output, y_a) + (1 - lam) * L(output, y_b)``.
    """

    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: float

    def loss(self, loss_fn: Callable[[Any, torch.Tensor], torch.Tensor], output: Any) -> torch.Tensor:
        return self.lam * loss_fn(output, self.y_a) + (1.0 - self.lam) * loss_fn(output, self.y_b)

    def soft(self, num_classes: int) -> torch.Tensor:
        """Soft targets ``[B, num_classes]``: ``lam * onehot(y_a) + (1 - lam) * onehot(y_b)``."""
        eye = torch.nn.functional.one_hot
        return self.lam * eye(self.y_a, num_classes).float() + (1.0 - self.lam) * eye(self.y_b, num_classes).float()

    def hard(self) -> torch.Tensor:
        """The label with the larger share (for accuracy): ``y_a`` when ``lam >= 0.5``."""
        return self.y_a if self.lam >= 0.5 else self.y_b


@dataclass(frozen=True)
class Mixup:
    """With probability ``p``: ``x = lam x + (1 - lam) x[perm]``, ``lam ~ Beta(alpha, alpha)``, one ``lam`` and
    one permutation per batch (else ``lam = 1``)."""

    op: ClassVar[str] = "mixup"
    alpha: float = 0.2
    p: float = 1.0

    @classmethod
    def from_params(cls, params: Params) -> Mixup:
        return cls(params.number("alpha", cls.alpha, minimum=0.0, exclusive_min=True), params.prob("p", 1.0))

    def to_table(self) -> dict[str, Any]:
        return _op_table(self)

    def draw(self, rng: np.random.Generator, B: int, H: int, W: int) -> dict[str, Any]:
        mix = bool(rng.random() < self.p)
        lam = float(rng.beta(self.alpha, self.alpha))
        return {"lam": lam if mix else 1.0, "perm": rng.permutation(B)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, MixedTargets]:
        lam, perm = params["lam"], torch.as_tensor(params["perm"], device=x.device)
        return lam * x + (1.0 - lam) * x[:, perm], MixedTargets(y, y[perm.to(y.device)], lam)


@dataclass(frozen=True)
class CutMix(Mixup):
    """With probability ``p``: a box of area ``(1 - lam) H W`` (``lam ~ Beta(alpha, alpha)``, centre uniform,
    clipped to the frame, one box per batch) is taken from ``x[perm]``; ``lam`` becomes the kept fraction
    ``1 - box area / (H W)``."""

    op: ClassVar[str] = "cutmix"
    alpha: float = 1.0

    @classmethod
    def from_params(cls, params: Params) -> CutMix:
        return cls(params.number("alpha", cls.alpha, minimum=0.0, exclusive_min=True), params.prob("p", 1.0))

    def draw(self, rng: np.random.Generator, B: int, H: int, W: int) -> dict[str, Any]:
        base = super().draw(rng, B, H, W)
        r = math.sqrt(1.0 - base["lam"])
        cw, ch = int(W * r), int(H * r)
        cx, cy = int(rng.integers(W)), int(rng.integers(H))
        x1, x2 = min(max(cx - cw // 2, 0), W), min(max(cx + cw // 2, 0), W)
        y1, y2 = min(max(cy - ch // 2, 0), H), min(max(cy + ch // 2, 0), H)
        return {**base, "box": (y1, y2, x1, x2), "lam": 1.0 - (x2 - x1) * (y2 - y1) / float(W * H)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, MixedTargets]:
        if x.dim() != 5:
            raise ParameterError(f"frame augment 'cutmix' needs frames [T, B, C, H, W], got shape {tuple(x.shape)}")
        y1, y2, x1, x2 = params["box"]
        perm = torch.as_tensor(params["perm"], device=x.device)
        out = x.clone()
        out[..., y1:y2, x1:x2] = x[:, perm, :, y1:y2, x1:x2]
        return out, MixedTargets(y, y[perm.to(y.device)], float(params["lam"]))


FRAME_OPS: dict[str, type] = {c.op: c for c in (FlipLR, FlipUD, Roll, Translate, Rotate, Shear, Cutout, OneOf,
                                                 Mixup, CutMix)}


def parse_frame_op(item: Any, where: str) -> Any:
    return parse_op(item, where, FRAME_OPS, "frame")
