"""The few math functions a neuron definition may call, on torch tensors.

A neuron definition (:mod:`eventkit_train.kernels.definition`) is written in plain
arithmetic (``+ - * /``, float literals, ``if`` on flags) plus the names below. Imported
from here they act on torch tensors (and Python floats); the Numba and Triton code
generators bind the same names to their own versions (:data:`NUMBA_SOURCE`,
:data:`TRITON_SOURCE`), so one definition runs on all three backends.

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
NUMBA_SOURCE = '''
@njit
def heaviside(z):
    return F(1.0) if z >= F(0.0) else F(0.0)


@njit
def exp(z):
    return math.exp(z)


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
