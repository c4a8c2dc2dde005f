"""Every definition's hand-written ``step_vjp`` equals autograd through its own ``step`` (float64).

A second, generic check next to the comparison with the separately written ``*_step``
functions: :func:`eventkit_train.kernels.autograd_reference.definition_scan` runs the
definition's forward with the surrogate in place of ``heaviside`` and lets autograd derive the
backward; the fused node (torch backend: the same arithmetic the kernels compile) must match.
"""
from __future__ import annotations

import math

import pytest
import torch

from eventkit_train.kernels import get_definition, neuron_sequence
from eventkit_train.kernels.autograd_reference import definition_scan
from eventkit_train.surrogate import get_surrogate

CASES = [  # definition, params (tensors: learnable), flag sets, input scale
    ("lif", [0.4, 1.0, -0.1], [[True, False, False], [True, True, False], [False, False, True]], 1.5),
    ("cubalif", [0.6, 0.9, 1.0, 0.0], [[False, False], [True, False], [False, True]], 0.8),
    ("sit", [0.5, 0.175, 0.6, 0.0, 0.5, -0.05, 1.0, 1.0, 0.5], [[False, False], [True, False], [False, True]], 1.2),
    ("srm", [math.exp(-0.5), math.e / 2, math.exp(-1 / 3), -2 * math.e / 3, 1.0], [[False], [True]], 1.0),
    ("alif", [0.5, 1.0, 0.0, 0.8, 0.3], [[False, False], [True, False], [False, True]], 1.5),
]
LEARN = {"lif": [0], "cubalif": [0, 1], "alif": [0]}


@pytest.mark.parametrize("name,params,flag_sets,scale", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("surrogate", ["sigmoid", "triangle"])
def test_step_vjp_equals_autograd_of_step(name, params, flag_sets, scale, surrogate):
    if name == "alif":
        import eventkit_train.neurons.alif  # noqa: F401 - registers the definition
    d = get_definition(name)
    sur = get_surrogate(surrogate)
    g = torch.Generator().manual_seed(0)
    for flags in flag_sets:
        x = (torch.randn(8, 2, 3, generator=g, dtype=torch.float64) * scale + scale).requires_grad_(True)
        state = [(torch.rand(2, 3, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True) for _ in d.state]
        ps = [torch.tensor(p, dtype=torch.float64, requires_grad=True) if i in LEARN.get(name, []) else p
              for i, p in enumerate(params)]
        fused = neuron_sequence(name, x, state, ps, flags, sur, backend="torch")
        ref = definition_scan(d, x, state, ps, flags, sur)
        assert torch.equal(fused[0], ref[0]) and ref[0].sum() > 0
        outs_f = [fused[0], fused[1][0], *fused[2]]
        outs_r = [ref[0], ref[1][0], *ref[2]]
        ws = [torch.randn(o.shape, generator=g, dtype=torch.float64) for o in outs_r]
        wrt = [x, *state, *(p for p in ps if isinstance(p, torch.Tensor))]
        ga = torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs_f, ws, strict=True)), wrt, allow_unused=True)
        gb = torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs_r, ws, strict=True)), wrt, allow_unused=True)
        for a, b in zip(ga, gb, strict=True):
            a = torch.zeros_like(b) if a is None else a
            b = torch.zeros_like(a) if b is None else b
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
