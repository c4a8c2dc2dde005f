"""Surrogate gradients of the spike function ``S = Θ(x)``, ``x = v - v_threshold``.

Every surrogate is a :class:`torch.autograd.Function` whose forward is the Heaviside
step (``x >= 0`` → 1.0, else 0.0, in ``x``'s dtype) and whose backward is the analytic
derivative ``σ'(x)`` of a smooth function ``σ``, scaled by the surrogate's width
parameter. A small callable class holds the parameter:

============== =========================================== ==========================================
name           smooth function σ(x)                        derivative σ'(x) used in backward
============== =========================================== ==========================================
``arctan``     ``arctan(π/2·α·x)/π + 1/2``                 ``(α/2) / (1 + (π/2·α·x)²)``
``sigmoid``    ``1 / (1 + exp(-α·x))``                     ``α·σ(x)·(1 - σ(x))``
``fast_sigmoid`` ``x / (1 + β|x|)`` (Bouanane et al. 2023, eq. 12)     ``1 / (1 + β|x|)²`` (SuperSpike)
``triangle``   piecewise quadratic, 0 → 1 on ``[-w, w]``   ``max(0, 1 - |x|/w) / w``
``exponential`` ``α·(1 + sign(x)(1 - exp(-|x|/τ)))``        ``(α/τ)·exp(-|x|/τ)`` (SLAYER spike-escape PDF)
============== =========================================== ==========================================

Conventions:

* ``ArcTan(alpha=2.0)`` follows SpikingJelly / PLIF (Fang et al. 2021): with α = 2 the smooth
  function is ``arctan(πx)/π + 1/2``, the form written in Jin et al. 2022, Sect. 4.3.
* ``FastSigmoid(slope=100.0)``: steepness β̃ = 100 of Bouanane et al. 2023, Table I; the derivative is
  not normalised (peak 1 at x = 0, snnTorch / SuperSpike convention).
* ``Exponential(alpha=1.0, tau=1.0)``: SLAYER's spike-escape density
  ``ρ(u) = (scale_ρ / τ_ρ)·exp(-|u - ϑ| / τ_ρ)`` with ``alpha = scale_ρ`` and ``tau`` the
  density width in membrane units (SLAYER uses ``τ_ρ·ϑ``: :class:`~eventkit_train.neurons.SRM`
  passes ``tau = tau_rho * theta``). lava-dl halves the density (``scale_ρ/2/τ_ρ``); we keep
  slayerPytorch's unhalved form cited by Shrestha et al. 2022.

``smooth=True`` makes the *forward* the smooth function itself (no step). That mode exists
for ``torch.autograd.gradcheck`` of whole multi-step networks: with a smooth forward the
graph is differentiable and its autograd gradient is exactly the surrogate gradient that
the step forward would propagate through the same graph. Use ``Sigmoid``/``ArcTan`` for
smooth networks: the fast sigmoid's σ (eq. 12 of Bouanane et al. 2023) ranges over ±1/β, not 0..1.

The backward is computed in float32 (or float64 for float64 inputs) and cast to the
gradient's dtype, so it is AMP-safe.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from eventkit.errors import ParameterError
from eventkit_train.kernels.surrogates import (
    KINDS,
    d_arctan,
    d_exponential,
    d_fast_sigmoid,
    d_sigmoid,
    d_triangle,
)

__all__ = [
    "Surrogate",
    "ArcTan",
    "Sigmoid",
    "FastSigmoid",
    "Triangle",
    "Exponential",
    "get_surrogate",
    "SURROGATES",
    "heaviside",
]


def heaviside(x: Tensor) -> Tensor:
    """Θ(x): 1.0 where ``x >= 0`` else 0.0, in ``x``'s dtype."""
    return (x >= 0).to(x.dtype)


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


# --------------------------------------------------------------------------- derivatives
# written once in kernel arithmetic (eventkit_train.kernels.surrogates): the step path, the
# fused neurons and the Numba / Triton kernels all evaluate these same functions
_d_arctan = d_arctan
_d_sigmoid = d_sigmoid
_d_fast_sigmoid = d_fast_sigmoid
_d_triangle = d_triangle
_d_exponential = d_exponential


# --------------------------------------------------------------------------- smooth functions
def _s_arctan(x: Tensor, alpha: float) -> Tensor:
    return torch.atan(math.pi / 2.0 * alpha * x) / math.pi + 0.5


def _s_sigmoid(x: Tensor, alpha: float) -> Tensor:
    return torch.sigmoid(alpha * x)


def _s_fast_sigmoid(x: Tensor, slope: float) -> Tensor:
    return x / (1.0 + slope * x.abs())


def _s_triangle(x: Tensor, width: float) -> Tensor:
    xc = torch.clamp(x, -width, width)
    left = (xc + width) ** 2 / (2.0 * width * width)
    right = 1.0 - (width - xc) ** 2 / (2.0 * width * width)
    return torch.where(xc < 0, left, right)


def _s_exponential(x: Tensor, alpha: float, tau: float) -> Tensor:
    return alpha * (1.0 + torch.sign(x) * (1.0 - torch.exp(-x.abs() / tau)))


# --------------------------------------------------------------------------- autograd functions
class _SpikeFn(torch.autograd.Function):
    """Heaviside forward; backward = grad · derivative(x, *params)."""

    derivative: Callable[..., Tensor]

    @staticmethod
    def setup_context(ctx, inputs, output):  # torch API
        x, *params = inputs
        ctx.save_for_backward(x)
        ctx.params = params

    @classmethod
    def _backward(cls, ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        xc = x.to(_compute_dtype(x))
        grad = grad_output.to(xc.dtype) * cls.derivative(xc, *ctx.params)
        return (grad.to(grad_output.dtype),) + (None,) * len(ctx.params)


class ArcTanFn(_SpikeFn):
    """Θ(x) forward; backward ``(α/2)/(1 + (π/2·α·x)²)``."""

    derivative = staticmethod(_d_arctan)

    @staticmethod
    def forward(x: Tensor, alpha: float) -> Tensor:
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output):
        return ArcTanFn._backward(ctx, grad_output)


class SigmoidFn(_SpikeFn):
    """Θ(x) forward; backward ``α·sig(αx)(1 - sig(αx))``."""

    derivative = staticmethod(_d_sigmoid)

    @staticmethod
    def forward(x: Tensor, alpha: float) -> Tensor:
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output):
        return SigmoidFn._backward(ctx, grad_output)


class FastSigmoidFn(_SpikeFn):
    """Θ(x) forward; backward ``1/(1 + β|x|)²``."""

    derivative = staticmethod(_d_fast_sigmoid)

    @staticmethod
    def forward(x: Tensor, slope: float) -> Tensor:
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output):
        return FastSigmoidFn._backward(ctx, grad_output)


class TriangleFn(_SpikeFn):
    """Θ(x) forward; backward ``max(0, 1 - |x|/w)/w``."""

    derivative = staticmethod(_d_triangle)

    @staticmethod
    def forward(x: Tensor, width: float) -> Tensor:
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output):
        return TriangleFn._backward(ctx, grad_output)


class ExponentialFn(_SpikeFn):
    """Θ(x) forward; backward ``(α/τ)·exp(-|x|/τ)`` (SLAYER)."""

    derivative = staticmethod(_d_exponential)

    @staticmethod
    def forward(x: Tensor, alpha: float, tau: float) -> Tensor:
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output):
        return ExponentialFn._backward(ctx, grad_output)


# --------------------------------------------------------------------------- callable wrappers
def _positive(name: str, value: float, cls: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"{cls}: {name} must be a finite number > 0, got {value!r}")
    return value


class Surrogate:
    """Base class: ``spikes = surrogate(x)`` with ``x = v - v_threshold`` (any shape/device/dtype)."""

    name: str = ""
    _fn: type[_SpikeFn]

    def __init__(self, smooth: bool = False) -> None:
        self.smooth_forward = bool(smooth)

    def _params(self) -> tuple[float, ...]:
        raise ParameterError(f"{type(self).__name__} defines no parameters")  # pragma: no cover

    def __call__(self, x: Tensor) -> Tensor:
        if self.smooth_forward:
            return self.smooth(x)
        return self._fn.apply(x, *self._params())

    def smooth(self, x: Tensor) -> Tensor:
        """The smooth function σ(x) whose derivative is the backward (differentiable by autograd)."""
        return self._smooth_impl(x, *self._params())

    def derivative(self, x: Tensor) -> Tensor:
        """The analytic derivative σ'(x) used by the backward pass."""
        return self._fn.derivative(x, *self._params())

    def kernel_spec(self) -> tuple[int, float, float]:
        """``(kind, a, b)`` naming this derivative for the fused kernels
        (:func:`eventkit_train.kernels.surrogates.surrogate_grad`)."""
        p = self._params()
        return KINDS[self.name], p[0], p[1] if len(p) > 1 else 0.0

    _smooth_impl: Callable[..., Tensor]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._describe().items())
        return f"{type(self).__name__}({args})"

    def _describe(self) -> dict:
        d = dict(zip(self._param_names, self._params(), strict=True))
        if self.smooth_forward:
            d["smooth"] = True
        return d

    _param_names: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Surrogate) and type(self) is type(other) and self._describe() == other._describe()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self._describe().items())))


class ArcTan(Surrogate):
    """σ(x) = arctan(π/2·α·x)/π + 1/2; σ'(x) = (α/2)/(1 + (π/2·α·x)²). α = 2 → arctan(πx)/π + 1/2."""

    name = "arctan"
    _fn = ArcTanFn
    _smooth_impl = staticmethod(_s_arctan)
    _param_names = ("alpha",)

    def __init__(self, alpha: float = 2.0, smooth: bool = False) -> None:
        super().__init__(smooth)
        self.alpha = _positive("alpha", alpha, "ArcTan")

    def _params(self) -> tuple[float, ...]:
        return (self.alpha,)


class Sigmoid(Surrogate):
    """σ(x) = 1/(1 + exp(-αx)); σ'(x) = α·σ(x)(1 - σ(x))."""

    name = "sigmoid"
    _fn = SigmoidFn
    _smooth_impl = staticmethod(_s_sigmoid)
    _param_names = ("alpha",)

    def __init__(self, alpha: float = 4.0, smooth: bool = False) -> None:
        super().__init__(smooth)
        self.alpha = _positive("alpha", alpha, "Sigmoid")

    def _params(self) -> tuple[float, ...]:
        return (self.alpha,)


class FastSigmoid(Surrogate):
    """σ(x) = x/(1 + β|x|) (Bouanane et al. 2023, eq. 12); σ'(x) = 1/(1 + β|x|)², β = ``slope``
    (100 in that paper)."""

    name = "fast_sigmoid"
    _fn = FastSigmoidFn
    _smooth_impl = staticmethod(_s_fast_sigmoid)
    _param_names = ("slope",)

    def __init__(self, slope: float = 100.0, smooth: bool = False) -> None:
        super().__init__(smooth)
        self.slope = _positive("slope", slope, "FastSigmoid")

    def _params(self) -> tuple[float, ...]:
        return (self.slope,)


class Triangle(Surrogate):
    """σ'(x) = max(0, 1 - |x|/w)/w (unit area); σ is its piecewise-quadratic integral (0 below -w, 1 above w)."""

    name = "triangle"
    _fn = TriangleFn
    _smooth_impl = staticmethod(_s_triangle)
    _param_names = ("width",)

    def __init__(self, width: float = 1.0, smooth: bool = False) -> None:
        super().__init__(smooth)
        self.width = _positive("width", width, "Triangle")

    def _params(self) -> tuple[float, ...]:
        return (self.width,)


class Exponential(Surrogate):
    """SLAYER spike-escape PDF: σ'(x) = (α/τ)·exp(-|x|/τ); σ(x) = α(1 + sign(x)(1 - exp(-|x|/τ)))."""

    name = "exponential"
    _fn = ExponentialFn
    _smooth_impl = staticmethod(_s_exponential)
    _param_names = ("alpha", "tau")

    def __init__(self, alpha: float = 1.0, tau: float = 1.0, smooth: bool = False) -> None:
        super().__init__(smooth)
        self.alpha = _positive("alpha", alpha, "Exponential")
        self.tau = _positive("tau", tau, "Exponential")

    def _params(self) -> tuple[float, ...]:
        return (self.alpha, self.tau)


SURROGATES: dict[str, type[Surrogate]] = {
    "arctan": ArcTan,
    "sigmoid": Sigmoid,
    "fast_sigmoid": FastSigmoid,
    "triangle": Triangle,
    "exponential": Exponential,
}


def get_surrogate(name_or_obj: str | Surrogate | Callable[[Tensor], Tensor], **kw) -> Callable[[Tensor], Tensor]:
    """A surrogate from its name (``"arctan"``, ``"sigmoid"``, ``"fast_sigmoid"``, ``"triangle"``,
    ``"exponential"``; case-insensitive, ``-`` = ``_``) with keyword parameters, or the object itself.

    A callable that is not a :class:`Surrogate` is accepted as is (it must map ``x`` to spikes).
    """
    if isinstance(name_or_obj, Surrogate):
        if kw:
            raise ParameterError(
                f"get_surrogate: parameters {sorted(kw)} given together with a ready surrogate {name_or_obj!r}; "
                "pass a name instead, e.g. get_surrogate('arctan', alpha=2.0)"
            )
        return name_or_obj
    if isinstance(name_or_obj, str):
        key = name_or_obj.strip().lower().replace("-", "_")
        if key not in SURROGATES:
            raise ParameterError(
                f"unknown surrogate {name_or_obj!r}; choose one of {sorted(SURROGATES)}"
            )
        cls = SURROGATES[key]
        try:
            return cls(**kw)
        except TypeError as exc:
            raise ParameterError(f"surrogate {key!r}: bad parameters {kw}: {exc}") from None
    if callable(name_or_obj):
        if kw:
            raise ParameterError("get_surrogate: keyword parameters are only accepted with a surrogate name")
        return name_or_obj
    raise ParameterError(
        f"surrogate must be a name in {sorted(SURROGATES)}, a Surrogate or a callable, got {type(name_or_obj).__name__}"
    )
