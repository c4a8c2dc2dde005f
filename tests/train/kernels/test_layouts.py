"""The Numba kernels on channels-last and bfloat16 activations: same results as on contiguous float32."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eventkit_train.kernels import get_definition, neuron_sequence, numba_backend
from eventkit_train.kernels.layout import time_major_strides
from eventkit_train.surrogate import ArcTan

ALPHA = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)  # per channel: a wrong channel index shows
PARAMS = [ALPHA, 0.85, 1.0, 0.0]
FLAGS = [False, False]


def _cuba(x: torch.Tensor, alpha: torch.Tensor, weights: torch.Tensor):
    state = [torch.zeros(x.shape[1:], dtype=torch.float64) for _ in range(3)]
    spikes, saved, final = neuron_sequence("cubalif", x, state, [alpha, *PARAMS[1:]], FLAGS, ArcTan(),
                                           backend="numba")
    loss = (spikes * weights).sum() + 0.3 * (saved[0] * weights).sum()
    return spikes, saved, final, torch.autograd.grad(loss, [x, alpha])


def _input(dtype=torch.float64):
    g = torch.Generator().manual_seed(5)
    x = torch.rand(6, 2, 3, 4, 5, generator=g, dtype=torch.float64) * 1.6
    return x.to(dtype), torch.randn(x.shape, generator=g, dtype=torch.float64)


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    T, B = t.shape[:2]
    return t.reshape(T * B, *t.shape[2:]).contiguous(memory_format=torch.channels_last).view(t.shape)


def test_channels_last_activations_run_in_place_and_match_contiguous():
    x, w = _input()
    xc = _channels_last(x)
    assert not xc.is_contiguous() and time_major_strides(xc) == xc.stride()
    ref = _cuba(x.clone().requires_grad_(), ALPHA.clone().requires_grad_(), w)
    got = _cuba(xc.requires_grad_(), ALPHA.clone().requires_grad_(), _channels_last(w))
    assert got[0].stride() == xc.stride() and got[1][0].stride() == xc.stride()  # outputs keep the layout
    assert got[3][0].stride() == xc.stride()
    assert torch.equal(got[0], ref[0]) and ref[0].sum() > 0
    for a, b in zip([*got[1], *got[2], *got[3]], [*ref[1], *ref[2], *ref[3]], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)


def test_a_layout_with_time_inside_is_copied_to_contiguous():
    x, _ = _input()
    xt = x.permute(1, 0, 2, 3, 4).contiguous().permute(1, 0, 2, 3, 4)  # batch outermost in memory
    assert time_major_strides(xt) == x.stride()
    spikes = neuron_sequence("lif", xt, [torch.zeros(x.shape[1:], dtype=x.dtype)], [0.5, 1.0, 0.0],
                             [True, False, False], ArcTan(), backend="numba")[0]
    assert spikes.is_contiguous()


def test_bfloat16_activations_are_computed_in_float32():
    """bf16 in, bf16 spikes and input gradient out, float32 state: equal to the float32 run on the same values
    with the input gradient rounded to bf16 once (to nearest even, as torch)."""
    x16, w = _input(torch.bfloat16)
    w16 = w.to(torch.bfloat16)
    alpha = ALPHA.float()

    def run(x, w):
        state = [torch.zeros(x.shape[1:]) for _ in range(3)]
        x = x.requires_grad_()
        spikes, saved, final = neuron_sequence("cubalif", x, state, [alpha, *PARAMS[1:]], FLAGS, ArcTan(),
                                               backend="numba")
        (g,) = torch.autograd.grad((spikes * w).sum(), x)
        return spikes, saved[0], final, g

    got = run(x16.clone(), w16)
    ref = run(x16.float(), w16.float())
    assert got[0].dtype == torch.bfloat16 and got[1].dtype == torch.float32 and got[3].dtype == torch.bfloat16
    assert torch.equal(got[0].float(), ref[0]) and ref[0].sum() > 0
    assert torch.equal(got[1], ref[1])
    for a, b in zip(got[2], ref[2], strict=True):
        assert torch.equal(a, b)
    assert torch.equal(got[3], ref[3].to(torch.bfloat16))


def test_bfloat16_rounding_equals_torch():
    k = numba_backend.kernels(get_definition("lif"), torch.float32)
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32)
    v = bits.view(np.float32)
    v = np.concatenate([v, np.array([0.0, -0.0, 1.0, np.inf, -np.inf, 3.4e38, 1.00390625, 1.01171875],
                                    dtype=np.float32)])  # the last two: halfway cases (round to even)
    got = np.array([k._bf16(f) for f in v], dtype=np.int16)
    want = torch.from_numpy(v).to(torch.bfloat16).view(torch.int16).numpy()
    finite = ~np.isnan(v)
    assert np.array_equal(got[finite], want[finite])
    assert np.all(torch.from_numpy(got[~finite]).view(torch.bfloat16).isnan().numpy())


@pytest.mark.parametrize("autocast", [False, True])
def test_neuron_module_under_cpu_autocast(autocast):
    from eventkit_train.neurons import PLIF

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1).to(memory_format=torch.channels_last)
    neuron = PLIF(tau_init=2.0)
    x = torch.rand(4, 2, 2, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = conv(_channels_last(x).reshape(8, 2, 6, 6)).reshape(4, 2, 3, 6, 6)
        s = neuron(y)
    assert s.dtype == y.dtype
    s.float().sum().backward()
    assert conv.weight.grad is not None and neuron.a.grad is not None and torch.isfinite(conv.weight.grad).all()
