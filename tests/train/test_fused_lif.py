"""The modules take the fused whole-sequence path (IF/LIF/PLIF here compared with the step path in
float64: spikes, membranes, final state, every gradient); ``tests/train/kernels/`` checks every neuron
on every backend."""
from __future__ import annotations

import pytest
import torch

from eventkit_train.neurons import CUBALIF, IF, LIF, PLIF, SIT, SRM
from eventkit_train.neurons import module as module_mod
from eventkit_train.neurons.base import scan


def _step_path(module, x, v0, return_membrane=True):
    """The reference: the generic scan over lif_step_full (what the module did before fusing)."""
    state = type(module.initial_state(x))(v0)
    return scan(type(module).step_fn, x, state, module.make_params(x), return_membrane=return_membrane)


CASES = [
    (IF, {}), (IF, {"reset": "soft"}), (LIF, {}), (LIF, {"tau": 3.0, "v_reset": -0.2}),
    (LIF, {"reset": "soft"}), (LIF, {"detach_reset": True}), (LIF, {"surrogate": "fast_sigmoid"}),
    (LIF, {"surrogate": "triangle", "v_reset": 0.1}), (PLIF, {}), (PLIF, {"reset": "soft", "tau_init": 4.0}),
    (PLIF, {"detach_reset": True, "surrogate": "sigmoid"}),
]


@pytest.mark.parametrize("cls,kw", CASES)
def test_fused_equals_step_path(cls, kw):
    torch.manual_seed(0)
    module = cls(return_membrane=True, **kw).double()
    x = (torch.rand(12, 3, 5, dtype=torch.float64) * 2.2 - 0.3).requires_grad_(True)
    v0 = (torch.rand(3, 5, dtype=torch.float64) * 0.5).requires_grad_(True)
    gs = torch.randn(12, 3, 5, dtype=torch.float64)
    gh = torch.randn(12, 3, 5, dtype=torch.float64)
    gv = torch.randn(3, 5, dtype=torch.float64)

    fused = module.forward_with_state(x, type(module.initial_state(x))(v0))
    ref = _step_path(module, x, v0)
    assert torch.equal(fused.spikes, ref.spikes) and fused.spikes.sum() > 0
    assert torch.equal(fused.membrane, ref.membrane) and torch.equal(fused.state.v, ref.state.v)

    params = [x, v0] + list(module.parameters())
    loss_f = (fused.spikes * gs).sum() + (fused.membrane * gh).sum() + (fused.state.v * gv).sum()
    loss_r = (ref.spikes * gs).sum() + (ref.membrane * gh).sum() + (ref.state.v * gv).sum()
    grads_f = torch.autograd.grad(loss_f, params)
    grads_r = torch.autograd.grad(loss_r, params)
    for a, b in zip(grads_f, grads_r, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [IF, LIF, PLIF, CUBALIF, lambda **k: CUBALIF(recurrent=True, n_features=3, **k),
                                  SIT.tonic, SIT.bursting, SRM],
                         ids=["if", "lif", "plif", "cubalif", "rcubalif", "sit", "sit-bursting", "srm"])
def test_fused_path_is_used_and_smooth_surrogates_keep_the_step_path(monkeypatch, make):
    calls = []
    real = module_mod.scan
    monkeypatch.setattr(module_mod, "scan", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = torch.rand(4, 2, 3)
    make()(x)
    assert calls == []  # fused: the generic scan was not used
    from eventkit_train.surrogate import ArcTan

    make(surrogate=ArcTan(smooth=True))(x)
    assert calls == [1]


def test_fused_lif_under_bf16_autocast_matches_float32():
    torch.manual_seed(1)
    x = torch.rand(6, 2, 8) * 2
    ref = LIF()(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = LIF()(x.bfloat16())
    assert out.dtype == torch.bfloat16
    assert torch.equal(out.float(), LIF()(x.bfloat16().float()))
    assert ref.shape == out.shape
