"""The few math functions a neuron definition may call, on torch tensors.

A neuron definition (:mod:`eventkit_train.kernels.definition`) is written in plain
arithmetic (``+ - * /``, float literals, ``if`` on flags) plus the names below. Imported
from here they act on torch tensors (and Python floats); the Numba and Triton code
generators bind the same names to their own versions (:data:`NUMBA_SOURCE`,
:data:`TRITON_SOURCE`), so one definition runs on all three backends. The Numba ``exp`` is
its own branch-free polynomial (within 2 ulp), so that loops calling it vectorise.

=============== =========================================================
``heaviside(z)`` 1.0 where ``z >= 0`` else 0.0, in ``z``'s dtype (Θ(0) = 1)
``exp(z)``       e^z
``fabs(z)``      |z|
``relu(z)``      max(z, 0) (NaN stays NaN)
``zeros_like(z)`` 0.0 shaped like ``z`` (a gradient that a flag switches off)
``detach(z)``    ``z`` cut from the autograd graph (identity in the kernels; marks ``detach_reset``
                 in a ``step`` so that autograd through the definition sees it)
=============== =========================================================
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["heaviside", "exp", "fabs", "relu", "zeros_like", "detach", "NAMES", "NUMBA_SOURCE", "TRITON_SOURCE"]

NAMES = ("heaviside", "exp", "fabs", "relu", "zeros_like", "detach")


def heaviside(z: Tensor) -> Tensor:
    return (z >= 0).to(z.dtype)


def exp(z: Tensor) -> Tensor:
    return torch.exp(z)


def fabs(z: Tensor) -> Tensor:
    return torch.abs(z)


def relu(z: Tensor) -> Tensor:
    return torch.clamp(z, min=0.0)


def zeros_like(z: Tensor | float) -> Tensor | float:
    return torch.zeros_like(z) if isinstance(z, Tensor) else 0.0


def detach(z: Tensor) -> Tensor:
    return z.detach() if isinstance(z, Tensor) else z


# Numba: scalars of the kernel's float type F (np.float32 or np.float64, set by the generated module).
NUMBA_SOURCE = '''from numba import types as _types
from numba.extending import intrinsic as _intrinsic
from llvmlite import ir as _ir

# exp: exponent bits of F, ln 2 in two parts (Cody–Waite: n·_LN2_HI is exact), and the range of z outside of which
# e^z is 0 or inf in F
if F is np.float32:
    _I, _SHIFT, _BIAS = np.int32, 23, 127
    _LN2_HI, _LN2_LO, _LO, _HI = F(0.693359375), F(-2.12194440e-4), F(-104.0), F(89.0)
else:
    _I, _SHIFT, _BIAS = np.int64, 52, 1023
    _LN2_HI, _LN2_LO, _LO, _HI = F(6.93147180369123816490e-01), F(1.90821492927058770002e-10), F(-746.0), F(710.0)


@_intrinsic
def _as_float(typingctx, bits):
    """Reinterpret int32 / int64 bits as float32 / float64."""
    if bits == _types.int32:
        return _types.float32(bits), lambda ctx, builder, sig, args: builder.bitcast(args[0], _ir.FloatType())
    if bits == _types.int64:
        return _types.float64(bits), lambda ctx, builder, sig, args: builder.bitcast(args[0], _ir.DoubleType())
    return None


@njit
def heaviside(z):
    return F(1.0) if z >= F(0.0) else F(0.0)


@njit
def exp(z):
    # e^z = 2^n·e^r with n = round(z/ln 2), r = z - n·ln 2 (|r| <= ln 2 / 2) and a degree-13 Taylor polynomial:
    # within 1.2 ulp of e^z in float32 and float64 (libm: 0.5), branch-free, so that loops calling it
    # vectorise (math.exp is a libm call that LLVM cannot vectorise without a vector math library)
    zc = min(max(z, _LO), _HI)
    n = math.floor(zc * F(1.4426950408889634) + F(0.5))
    fn = F(n)
    r = (zc - fn * _LN2_HI) - fn * _LN2_LO
    p = F(1.0 / 6227020800.0)
    p = p * r + F(1.0 / 479001600.0)
    p = p * r + F(1.0 / 39916800.0)
    p = p * r + F(1.0 / 3628800.0)
    p = p * r + F(1.0 / 362880.0)
    p = p * r + F(1.0 / 40320.0)
    p = p * r + F(1.0 / 5040.0)
    p = p * r + F(1.0 / 720.0)
    p = p * r + F(1.0 / 120.0)
    p = p * r + F(1.0 / 24.0)
    p = p * r + F(1.0 / 6.0)
    p = p * r + F(0.5)
    p = p * r + F(1.0)
    p = p * r + F(1.0)
    h = n >> 1  # 2^n as two factors, each a normal number, so that results near overflow and underflow round once
    e = (p * _as_float(_I((h + _BIAS) << _SHIFT))) * _as_float(_I((n - h + _BIAS) << _SHIFT))
    return z if z != z else e


@njit
def fabs(z):
    return math.fabs(z)


@njit
def relu(z):
    return F(0.0) if z < F(0.0) else z


@njit
def zeros_like(z):
    return F(0.0)


@njit
def detach(z):
    return z
'''

# Triton: blocks of neurons (tl tensors).
TRITON_SOURCE = '''
@triton.jit
def heaviside(z):
    return tl.where(z >= 0.0, 1.0, 0.0).to(z.dtype)


@triton.jit
def exp(z):
    return tl.exp(z)


@triton.jit
def fabs(z):
    return tl.abs(z)


@triton.jit
def relu(z):
    return tl.where(z < 0.0, 0.0, z).to(z.dtype)


@triton.jit
def zeros_like(z):
    return tl.zeros_like(z)


@triton.jit
def detach(z):
    return z
'''
