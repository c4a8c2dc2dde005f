"""Neuron configurations shared by the kernel tests: every neuron, both resets, two surrogates."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from eventkit_train.kernels import get_definition
from eventkit_train.kernels.autograd_reference import definition_scan
from eventkit_train.neurons import ALIF, CUBALIF, IF, LIF, PLIF, SIT, SRM
from eventkit_train.neurons.base import ScanResult, scan
from eventkit_train.neurons.readout import LeakyReadout, ReadoutParams, ReadoutState, readout_step


def _seeded_module(make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    torch.manual_seed(3)
    return make()


# (id, factory(surrogate name) -> module, the two surrogates, input scale, channel-shaped input)
CASES = [
    ("if-hard", lambda s: IF(surrogate=s), ("arctan", "sigmoid"), 1.0, False),
    ("if-soft", lambda s: IF(reset="soft", surrogate=s), ("arctan", "triangle"), 1.0, False),
    ("lif-hard", lambda s: LIF(tau=2.0, surrogate=s), ("arctan", "sigmoid"), 1.5, False),
    ("lif-soft-vreset-none", lambda s: LIF(tau=3.0, v_reset=None, surrogate=s), ("arctan", "sigmoid"), 1.5, False),
    ("lif-hard-vreset", lambda s: LIF(tau=3.0, v_reset=-0.2, v_threshold=0.8, surrogate=s), ("arctan", "fast_sigmoid"),
     1.5, False),
    ("lif-detach", lambda s: LIF(detach_reset=True, surrogate=s), ("arctan", "sigmoid"), 1.5, False),
    ("plif-hard", lambda s: PLIF(tau_init=3.0, surrogate=s), ("arctan", "sigmoid"), 1.5, False),
    ("plif-soft-detach", lambda s: PLIF(reset="soft", detach_reset=True, surrogate=s), ("sigmoid", "exponential"),
     1.5, False),
    ("cuba-hard", lambda s: CUBALIF(alpha=0.6, beta=0.9, surrogate=s), ("fast_sigmoid", "triangle"), 0.8, False),
    ("cuba-soft", lambda s: CUBALIF(alpha=0.5, beta=0.8, reset="soft", surrogate=s), ("fast_sigmoid", "arctan"), 0.8,
     False),
    ("cuba-learnable-hetero-detach", lambda s: CUBALIF(tau_syn=[2.0, 5.0, 9.0], tau_mem=[4.0, 10.0, 20.0],
                                                      learnable=True, n_features=3, detach_reset=True, surrogate=s),
     ("fast_sigmoid", "sigmoid"), 0.8, True),
    ("cuba-learnable-vreset", lambda s: CUBALIF(alpha=0.3, beta=0.7, learnable=True, v_reset=-0.1, surrogate=s),
     ("arctan", "triangle"), 0.8, False),
    ("rcuba-learnable", lambda s: _rcuba(s), ("fast_sigmoid", "arctan"), 0.8, False),
    ("sit-tonic", lambda s: SIT.tonic(surrogate=s), ("arctan", "sigmoid"), 2.0, False),
    ("sit-bursting-soft", lambda s: SIT.bursting(reset="soft", surrogate=s), ("arctan", "fast_sigmoid"), 1.2, False),
    ("sit-detach-uinit", lambda s: SIT.tonic(detach_reset=True, u_init=-0.05, surrogate=s), ("arctan", "sigmoid"),
     2.0, False),
    ("srm", lambda s: SRM(tau_s=2.0, tau_r=3.0, theta=1.0, surrogate=s), ("exponential", "arctan"), 1.0, False),
    ("srm-detach", lambda s: SRM(tau_s=1.5, tau_r=1.0, theta=1.5, detach_reset=True, surrogate=s),
     ("exponential", "sigmoid"), 1.0, False),
    ("alif-hard", lambda s: ALIF(tau=2.0, tau_adapt=5.0, beta_adapt=0.4, surrogate=s), ("arctan", "triangle"), 1.5,
     False),
    ("alif-soft-detach", lambda s: ALIF(tau=3.0, reset="soft", detach_reset=True, surrogate=s), ("sigmoid", "arctan"),
     1.5, False),
]
IDS = [c[0] for c in CASES]
READOUTS = [("readout-fixed", lambda: LeakyReadout(tau_syn=3.0, tau_mem=10.0)),
            ("readout-learnable", lambda: LeakyReadout(alpha=0.4, beta=0.95, learnable=True))]


def _rcuba(s: str) -> CUBALIF:
    torch.manual_seed(3)
    m = CUBALIF(tau_syn=2.0, tau_mem=5.0, recurrent=True, learnable=True, n_features=3, surrogate=s)
    with torch.no_grad():
        m.recurrent_weight.mul_(3.0)
    return m


def inputs(kind: str, shape: tuple[int, ...], scale: float, seed: int = 0) -> torch.Tensor:
    """constant, random or spiking-heavy float64 inputs [T, B, ...]."""
    g = torch.Generator().manual_seed(seed)
    n = shape[-1]
    levels = torch.linspace(0.4, 2.5, n, dtype=torch.float64)
    if kind == "constant":
        return (levels * scale).expand(shape).clone()
    if kind == "random":
        return torch.randn(shape, generator=g, dtype=torch.float64) * scale + 0.5 * scale
    if kind == "spiking":  # dense strong pulses: most neurons fire on most steps
        pulses = (torch.rand(shape, generator=g) < 0.7).double()
        return pulses * (levels + 1.5) * scale * 2.0
    raise AssertionError(kind)


def random_state(module: torch.nn.Module, x: torch.Tensor, seed: int = 1):
    """A random initial state of the module's state type (spike entries 0/1), requiring grad."""
    g = torch.Generator().manual_seed(seed)
    st = module.initial_state(x)
    out = []
    for name, v in zip(type(st)._fields, st, strict=True):
        if name == "s":
            r = (torch.rand(v.shape, generator=g) < 0.5).double()
        else:
            r = torch.rand(v.shape, generator=g, dtype=torch.float64) * 0.6 - 0.1
        out.append(r.requires_grad_(True))
    return type(st)(*out)


def step_path(module, x: torch.Tensor, state):
    """The reference: the public ``*_step`` function scanned by autograd (for a neuron without one,
    ALIF, autograd through its definition's own step)."""
    if type(module).step_fn is None:
        params, flags = module.fused_args(x)
        spikes, saved, final = definition_scan(get_definition(module.definition), x, list(state), params, flags,
                                               module.surrogate)
        return ScanResult(spikes, saved[0], type(state)(*final))
    return scan(type(module).step_fn, x, state, module.make_params(x), return_membrane=True)


def readout_reference(module: LeakyReadout, x: torch.Tensor) -> torch.Tensor:
    p = module.params()
    p = ReadoutParams(p.alpha.to(x.dtype), p.beta.to(x.dtype))
    z = torch.zeros_like(x[0])
    state, out = ReadoutState(z, z), []
    for t in range(x.shape[0]):
        u, state = readout_step(x[t], state, p)
        out.append(u)
    return torch.stack(out)


INF = math.inf
