"""Surrogate derivatives σ'(z) written once, in the arithmetic of a neuron definition.

Each function takes ``z = membrane - threshold`` and the surrogate's width parameters;
:func:`surrogate_grad` picks one by its kind number. They run on torch tensors as written
(``eventkit_train.surrogate`` uses them for its backward) and are compiled into the Numba
and Triton kernels by the code generators, so every path uses the same formula.

==== ================ ======================================== ============
kind name             σ'(z)                                     parameters
==== ================ ======================================== ============
0    ``arctan``       ``(α/2) / (1 + (π/2·α·z)²)``              α
1    ``sigmoid``      ``α·σ(1 - σ)``, ``σ = 1/(1 + e^{-αz})``   α
2    ``fast_sigmoid`` ``1 / (1 + β|z|)²``                       β (slope)
3    ``triangle``     ``max(0, 1 - |z|/w) / w``                 w
4    ``exponential``  ``(α/τ)·e^{-|z|/τ}``                      α, τ
==== ================ ======================================== ============
"""
from __future__ import annotations

from .ops import exp, fabs, relu

__all__ = ["ARCTAN", "SIGMOID", "FAST_SIGMOID", "TRIANGLE", "EXPONENTIAL", "KINDS",
           "d_arctan", "d_sigmoid", "d_fast_sigmoid", "d_triangle", "d_exponential", "surrogate_grad"]

ARCTAN, SIGMOID, FAST_SIGMOID, TRIANGLE, EXPONENTIAL = 0, 1, 2, 3, 4
KINDS = {"arctan": ARCTAN, "sigmoid": SIGMOID, "fast_sigmoid": FAST_SIGMOID, "triangle": TRIANGLE,
         "exponential": EXPONENTIAL}


def d_arctan(z, alpha):
    w = 1.5707963267948966 * alpha * z  # π/2·α·z
    return (alpha / 2.0) / (1.0 + w * w)


def d_sigmoid(z, alpha):
    sig = 1.0 / (1.0 + exp(-(alpha * z)))
    return alpha * sig * (1.0 - sig)


def d_fast_sigmoid(z, slope):
    r = 1.0 + slope * fabs(z)
    return 1.0 / (r * r)


def d_triangle(z, width):
    return relu(1.0 - fabs(z) / width) / width


def d_exponential(z, alpha, tau):
    return (alpha / tau) * exp(-fabs(z) / tau)


def surrogate_grad(z, kind, a, b):
    """σ'(z) of surrogate ``kind`` (see the table) with parameters ``a`` (and ``b`` for the exponential)."""
    if kind == 0:
        g = d_arctan(z, a)
    elif kind == 1:
        g = d_sigmoid(z, a)
    elif kind == 2:
        g = d_fast_sigmoid(z, a)
    elif kind == 3:
        g = d_triangle(z, a)
    else:
        g = d_exponential(z, a, b)
    return g
