"""Hypothesis: the Numba and Triton kernels on random shapes, parameters, flags and surrogates.

Forward (spikes, membrane, final state) against NumPy references written here from the
papers' equations (vectorised over neurons, float64; SRM as the direct convolution with the
sampled kernels); gradients against the public ``*_step`` functions scanned by autograd.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventkit_train.kernels import neuron_sequence
from eventkit_train.neurons import (
    CUBALIFParams,
    CUBALIFState,
    LIFParams,
    LIFState,
    SITParams,
    SITState,
    SRMParams,
    SRMState,
    scan,
)
from eventkit_train.neurons.cuba import cubalif_step_full
from eventkit_train.neurons.lif import lif_step_full
from eventkit_train.neurons.sit import sit_step_full
from eventkit_train.neurons.srm import srm_step_full
from eventkit_train.surrogate import get_surrogate

from .conftest import TRITON_SKIP

KERNEL_BACKENDS = ["numba"] + ([] if TRITON_SKIP else ["triton"])
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
surrogates = st.sampled_from([("arctan", {"alpha": 2.0}), ("sigmoid", {"alpha": 5.0}),
                              ("fast_sigmoid", {"slope": 25.0}), ("triangle", {"width": 0.7}),
                              ("exponential", {"alpha": 1.2, "tau": 0.6})])
shapes = st.tuples(st.integers(1, 7), st.integers(1, 3), st.integers(1, 5))


def _x(seed: int, shape, scale: float, offset: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale + offset


def _check(backend, name, x, state, params, flags, sur, ref_fwd, step_fn, step_state, step_params, learnable=()):
    """Kernel forward vs the NumPy reference, kernel gradients vs the step path."""
    x = x.requires_grad_(True)
    state = [s.clone().requires_grad_(True) for s in state]
    spikes, saved, final = neuron_sequence(name, x, state, params, flags, sur, backend=backend)
    r_spikes, r_mem, r_final = ref_fwd(x.detach().numpy(), [s.detach().numpy() for s in state])
    np.testing.assert_array_equal(spikes.detach().numpy(), r_spikes)
    np.testing.assert_allclose(saved[0].detach().numpy(), r_mem, rtol=1e-10, atol=1e-10)
    if len(r_final):  # a reference without final states (SRM's direct form) leaves them to test_equivalence.py
        for a, b in zip(final, r_final, strict=True):
            np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-10, atol=1e-10)
    ref = scan(step_fn, x, step_state(*state), step_params, return_membrane=True)
    g = torch.Generator().manual_seed(1)
    ws = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in (ref.spikes, ref.membrane, *ref.state)]
    wrt = [x, *state, *learnable]
    la = sum((t * w).sum() for t, w in zip((spikes, saved[0], *final), ws, strict=True))
    lb = sum((t * w).sum() for t, w in zip((ref.spikes, ref.membrane, *ref.state), ws, strict=True))
    grads_a = torch.autograd.grad(la, wrt, allow_unused=True)
    grads_b = torch.autograd.grad(lb, wrt, allow_unused=True)
    for a, b in zip(grads_a, grads_b, strict=True):
        a = torch.zeros_like(b) if a is None and b is not None else a
        b = torch.zeros_like(a) if b is None and a is not None else b
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------- NumPy references
def np_lif(x, v, k, vth, vr, soft):
    s_all, h_all = [], []
    for xt in x:
        h = v + xt if k is None else v + k * (xt - (v - vr))
        s = (h >= vth).astype(np.float64)
        v = h - vth * s if soft else np.where(s > 0, vr, h)
        s_all.append(s)
        h_all.append(h)
    return np.stack(s_all), np.stack(h_all), [v]


def np_cuba(x, i, u, s, alpha, beta, vth, vr, soft):
    s_all, u_all = [], []
    for xt in x:
        i = alpha * i + xt
        pre = beta * u + i
        u = pre - vth * s if soft else np.where(s > 0, vr, pre)
        s = (u >= vth).astype(np.float64)
        s_all.append(s)
        u_all.append(u)
    return np.stack(s_all), np.stack(u_all), [i, u, s]


def np_sit(x, u, v, k, a, b, c, d, u_r, u_c, u_th, tau, soft):
    s_all, y_all = [], []
    for it in x:
        y = u + (k / tau) * (u - u_r) * (u - u_c) - v / tau + it / tau
        h = v + (a / tau) * (b * (y - u_r) - v)
        s = (y >= u_th).astype(np.float64)
        u = y - u_th * s if soft else np.where(s > 0, c, y)
        v = h + d * s
        s_all.append(s)
        y_all.append(y)
    return np.stack(s_all), np.stack(y_all), [u, v]


def np_srm_direct(x, tau_s, tau_r, theta):
    """u[n] = Σ_{k>=1} ε(k) x[n-k] + Σ_{k>=1} ν(k) s[n-k] (zero initial state), direct O(T²)."""
    T = x.shape[0]
    ks = np.arange(T, dtype=np.float64)
    eps = (ks / tau_s) * np.exp(1 - ks / tau_s)
    nu = -2 * theta * (ks / tau_r) * np.exp(1 - ks / tau_r)
    s = np.zeros_like(x)
    u = np.zeros_like(x)
    for n in range(T):
        acc = np.zeros_like(x[0])
        for k in range(1, n + 1):
            acc = acc + eps[k] * x[n - k] + nu[k] * s[n - k]
        u[n] = acc
        s[n] = (acc >= theta).astype(np.float64)
    return s, u


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**16), tau=st.one_of(st.none(), st.floats(1.1, 10.0)),
       vth=st.floats(0.3, 2.0), vr=st.floats(-0.5, 0.2), soft=st.booleans(), detach=st.booleans(), sur=surrogates,
       learn=st.booleans())
def test_lif_kernels(backend, shape, seed, tau, vth, vr, soft, detach, sur, learn):
    if not soft and vr >= vth:
        vr = vth - 0.5
    x = _x(seed, shape, 1.0, 0.6)
    v0 = _x(seed + 1, shape[1:], 0.3, 0.0)
    surrogate = get_surrogate(sur[0], **sur[1])
    k = None if tau is None else torch.tensor(1.0 / tau, dtype=torch.float64, requires_grad=learn)
    kv = None if k is None else k.item()
    _check(backend, "lif", x, [v0], [1.0 if k is None else k, vth, vr], [k is not None, soft, detach], surrogate,
           lambda xn, s: np_lif(xn, s[0], kv, vth, vr, soft), lif_step_full, LIFState,
           LIFParams(k, vth, vr, soft, detach, surrogate), learnable=[k] if learn and k is not None else [])


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**16), alpha=st.floats(0.0, 0.95), beta=st.floats(0.05, 1.0),
       vth=st.floats(0.3, 2.0), soft=st.booleans(), detach=st.booleans(), sur=surrogates, hetero=st.booleans())
def test_cubalif_kernels(backend, shape, seed, alpha, beta, vth, soft, detach, sur, hetero):
    x = _x(seed, shape, 0.8, 0.5)
    z = shape[1:]
    i0, u0 = _x(seed + 1, z, 0.3, 0.0), _x(seed + 2, z, 0.3, 0.0)
    s0 = (torch.rand(z, generator=torch.Generator().manual_seed(seed)) < 0.5).double()
    n = shape[2]
    if hetero:
        a = torch.linspace(0.05, alpha + 0.01, n, dtype=torch.float64).clamp(max=0.99).requires_grad_(True)
        b = torch.linspace(0.1, beta, n, dtype=torch.float64).requires_grad_(True)
        an, bn = a.detach().numpy(), b.detach().numpy()
    else:
        a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
        an, bn = alpha, beta
    surrogate = get_surrogate(sur[0], **sur[1])
    _check(backend, "cubalif", x, [i0, u0, s0], [a, b, vth, 0.0], [soft, detach], surrogate,
           lambda xn, s: np_cuba(xn, *s, an, bn, vth, 0.0, soft), cubalif_step_full, CUBALIFState,
           CUBALIFParams(a, b, vth, 0.0, soft, detach, surrogate, None), learnable=[a, b])


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**16), bursting=st.booleans(), tau=st.floats(1.5, 4.0),
       soft=st.booleans(), detach=st.booleans(), sur=surrogates, level=st.floats(0.5, 3.0))
def test_sit_kernels(backend, shape, seed, bursting, tau, soft, detach, sur, level):
    k, a, b, c, d = (1.0, 0.35, 0.6, 0.0, 0.5) if bursting else (1.0, 0.002, 0.02, 0.0, 0.2)
    u_r, u_c, u_th = -0.05, 1.0, 1.0
    x = _x(seed, shape, 0.5, level)
    u0, v0 = _x(seed + 1, shape[1:], 0.2, 0.0), _x(seed + 2, shape[1:], 0.1, 0.0)
    surrogate = get_surrogate(sur[0], **sur[1])
    inv = 1.0 / tau
    _check(backend, "sit", x, [u0, v0], [k * inv, a * inv, b, c, d, u_r, u_c, u_th, inv], [soft, detach], surrogate,
           lambda xn, s: np_sit(xn, *s, k, a, b, c, d, u_r, u_c, u_th, tau, soft), sit_step_full, SITState,
           SITParams(k, a, b, c, d, u_r, u_c, u_th, tau, soft, detach, surrogate))


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**16), tau_s=st.floats(0.8, 4.0), tau_r=st.floats(0.8, 4.0),
       theta=st.floats(0.5, 2.0), detach=st.booleans(), sur=surrogates)
def test_srm_kernels(backend, shape, seed, tau_s, tau_r, theta, detach, sur):
    x = _x(seed, shape, 1.0, 0.8)
    a_s, a_r = math.exp(-1.0 / tau_s), math.exp(-1.0 / tau_r)
    c_s, c_r = math.e / tau_s, -2.0 * theta * math.e / tau_r
    surrogate = get_surrogate(sur[0], **sur[1])
    z = torch.zeros(shape[1:], dtype=torch.float64)

    def ref(xn, s):
        spikes, u = np_srm_direct(xn, tau_s, tau_r, theta)
        return spikes, u, []  # final filter states: compared with the step path in test_equivalence.py

    _check(backend, "srm", x, [z, z, z, z], [a_s, c_s, a_r, c_r, theta], [detach], surrogate, ref, srm_step_full,
           SRMState, SRMParams(a_s, c_s, a_r, c_r, theta, detach, surrogate))
