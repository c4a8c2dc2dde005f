"""``torch.autograd.gradcheck`` of the fused node itself, with the spikes held fixed.

The fused forward is a step function of the membrane; its backward is the surrogate BPTT,
which finite differences cannot see. Where the spike pattern is locally constant (generic
inputs) and ``detach_reset=True`` removes the spike from the reset, the gradient of the
membrane trace and of the final state with respect to the input, the initial state and the
decays is the true derivative (the surrogate term only multiplies the zero spike gradient),
so gradcheck applies to every backend. Smooth whole networks: ``tests/train/test_neurons.py``.
"""
from __future__ import annotations

import math

import pytest
import torch

from eventkit_train.kernels import neuron_sequence
from eventkit_train.surrogate import ArcTan

from .conftest import BACKENDS

CASES = {  # name: (definition, state count, params (tensors get gradients), flags, input scale)
    "if": ("lif", 1, [1.0, 1.0, 0.0], [False, False, True], 0.8),
    "lif-hard": ("lif", 1, [0.5, 1.0, -0.1], [True, False, True], 1.5),
    "plif-soft": ("lif", 1, ["k", 1.0, 0.0], [True, True, True], 1.5),
    "cuba-hetero": ("cubalif", 3, ["alpha_c", "beta_c", 1.0, 0.0], [False, True], 0.8),
    "cuba-soft": ("cubalif", 3, ["alpha", "beta", 1.0, 0.0], [True, True], 0.8),
    "readout": ("cubalif", 3, ["alpha", "beta", math.inf, 0.0], [False, False], 1.0),
    "sit-tonic": ("sit", 2, [0.5, 0.001, 0.02, 0.0, 0.2, -0.05, 1.0, 1.0, 0.5], [False, True], 2.0),
    "sit-bursting": ("sit", 2, [0.5, 0.175, 0.6, 0.0, 0.5, -0.05, 1.0, 1.0, 0.5], [True, True], 1.2),
    "srm": ("srm", 4, [math.exp(-0.5), math.e / 2, math.exp(-1 / 3), -2 * math.e / 3, 1.0], [True], 1.0),
}
TENSOR_PARAMS = {"k": lambda: torch.tensor(0.4), "alpha": lambda: torch.tensor(0.6),
                 "beta": lambda: torch.tensor(0.85), "alpha_c": lambda: torch.tensor([0.3, 0.6, 0.9]),
                 "beta_c": lambda: torch.tensor([0.5, 0.8, 0.95])}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_gradcheck_fused_node_with_spikes_fixed(case, backend):
    name, n_state, params, flags, scale = CASES[case]
    g = torch.Generator().manual_seed(11)
    x = (torch.randn(5, 2, 3, generator=g, dtype=torch.float64) * scale + scale).requires_grad_(True)
    state = [(torch.rand(2, 3, generator=g, dtype=torch.float64) * 0.4).requires_grad_(True) for _ in range(n_state)]
    if name == "cubalif":  # the previous-spike state is binary and enters only through the (detached) reset
        state[2] = (torch.rand(2, 3, generator=g) < 0.5).double()
    tensors = [TENSOR_PARAMS[p]().double().requires_grad_(True) for p in params if isinstance(p, str)]
    sur = ArcTan()

    def run(x, *rest):
        pit = iter(rest[n_state:])
        ps = [next(pit) if isinstance(p, str) else p for p in params]
        spikes, saved, final = neuron_sequence(name, x, list(rest[:n_state]), ps, flags, sur, backend=backend)
        if name == "cubalif":
            final = final[:2]  # the final spike state is a step function (its gradient is the surrogate's)
        return (saved[0], *final)

    inputs = (x, *state, *tensors)
    spikes = neuron_sequence(name, x, state, [TENSOR_PARAMS[p]().double() if isinstance(p, str) else p
                                              for p in params], flags, sur, backend=backend)[0]
    if case != "readout":
        assert 0 < spikes.mean() < 1  # spikes really happen (and are held fixed by the small perturbations)
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)
