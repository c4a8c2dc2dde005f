"""Every fused neuron equals its step-by-step autograd path, on every backend (float64).

Spikes, membrane traces, final states and the gradients w.r.t. the input, every initial
state variable and every learnable parameter, for both resets, two surrogates per neuron,
constant / random / spiking-heavy inputs, T = 1, a batch of 1 and non-contiguous inputs.
The reference is the public ``*_step`` function scanned by autograd (written separately from
the kernel definitions); ``tests/train/test_neurons.py`` checks that against the papers'
equations.
"""
from __future__ import annotations

import pytest
import torch

from .cases import CASES, IDS, READOUTS, inputs, random_state, readout_reference, step_path
from .conftest import BACKENDS

RTOL, ATOL = 1e-9, 1e-11


def _grads(result, weights, wrt):
    outs = (result.spikes, result.membrane, *result.state)
    loss = sum((o * w).sum() for o, w in zip(outs, weights, strict=True))
    return torch.autograd.grad(loss, wrt, allow_unused=True)


def compare(module, x: torch.Tensor) -> torch.Tensor:
    """Fused vs step path on ``x``; returns the reference spikes."""
    x = x.detach().requires_grad_(True)
    state = random_state(module, x)
    fused = module.forward_with_state(x, state, return_membrane=True)
    ref = step_path(module, x, state)
    assert torch.equal(fused.spikes, ref.spikes)
    torch.testing.assert_close(fused.membrane, ref.membrane, rtol=1e-12, atol=1e-12)
    for a, b in zip(fused.state, ref.state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    g = torch.Generator().manual_seed(7)
    weights = [torch.randn(o.shape, generator=g, dtype=torch.float64)
               for o in (ref.spikes, ref.membrane, *ref.state)]
    wrt = [x, *state, *module.parameters()]
    for name, a, b in zip(["x", *type(state)._fields, *(n for n, _ in module.named_parameters())],
                          _grads(fused, weights, wrt), _grads(ref, weights, wrt), strict=True):
        if a is None or b is None:  # no path in one graph: the other must be zero
            assert all(t is None or not t.any() for t in (a, b)), name
            continue
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL, msg=lambda m, name=name: f"gradient of {name}: {m}")
    return ref.spikes


def _module(make, surrogate: str, backend: str):
    torch.manual_seed(3)
    module = make(surrogate).double()
    module.backend = backend
    assert module.uses_fused_path()
    return module


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fused_equals_step_path(case, backend):
    _, make, surrogates, scale, channels = case
    shape = (9, 2, 3, 2) if channels else (9, 2, 3)
    for surrogate in surrogates:
        module = _module(make, surrogate, backend)
        fired = {kind: compare(module, inputs(kind, shape, scale)).mean().item()
                 for kind in ("constant", "random", "spiking")}
        assert fired["random"] > 0 and fired["spiking"] > 0.1, fired


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_edge_shapes_and_layouts(case, backend):
    """T = 1, a batch of 1, and two non-contiguous layouts (strided, permuted)."""
    _, make, surrogates, scale, channels = case
    module = _module(make, surrogates[0], backend)
    tail = (3, 2) if channels else (3,)
    compare(module, inputs("random", (1, 2, *tail), scale))
    compare(module, inputs("spiking", (7, 1, *tail), scale))
    wide = inputs("random", (7, 2, *tail[:-1], 2 * tail[-1]), scale, seed=4)
    strided = wide[..., ::2]
    assert not strided.is_contiguous()
    compare(module, strided)
    if not channels:
        permuted = inputs("random", (3, 7, 2), scale, seed=5).permute(1, 2, 0)
        assert permuted.shape == (7, 2, 3) and not permuted.is_contiguous()
        compare(module, permuted)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,make", READOUTS, ids=[r[0] for r in READOUTS])
def test_readout_equals_step_path(name, make, backend):
    module = make().double()
    module.backend = backend
    for shape, kind in (((9, 2, 4), "random"), ((1, 3, 2), "spiking"), ((6, 1, 3), "constant")):
        x = inputs(kind, shape, 1.0).requires_grad_(True)
        u = module(x)
        ref = readout_reference(module, x)
        torch.testing.assert_close(u, ref, rtol=1e-12, atol=1e-12)
        w = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        wrt = [x, *module.parameters()]
        pairs = zip(torch.autograd.grad((u * w).sum(), wrt), torch.autograd.grad((ref * w).sum(), wrt), strict=True)
        for a, b in pairs:
            torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)
