"""Neurons vs. their equations stepped in plain float64 Python (written here, independently).

Every reference below is a direct transcription of the equations in the papers
(Fang et al. 2021, eq. 4–6, Bouanane et al. 2023, eq. 3–6, Jin et al. 2022, Eq. 18 / Table 2,
Shrestha et al. 2022, eq. 1 with the O(T²) convolution of ε and ν), looping over neurons and steps with Python floats.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.errors import ParameterError
from eventkit_train.losses import rate_mse
from eventkit_train.neurons import (
    CUBALIF,
    IF,
    LIF,
    NEURON_NAMES,
    PLIF,
    SIT,
    SRM,
    CUBALIFParams,
    CUBALIFState,
    LIFParams,
    LIFState,
    SITParams,
    SITState,
    SRMState,
    lif_step,
    make_neuron,
    scan,
)
from eventkit_train.neurons.cuba import cubalif_step_full
from eventkit_train.neurons.lif import lif_step_full
from eventkit_train.neurons.sit import sit_step_full
from eventkit_train.neurons.srm import srm_step_full
from eventkit_train.surrogate import ArcTan, Sigmoid

T, B, N = 40, 2, 3


def _inputs(kind: str, scale: float = 1.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "constant":
        base = torch.tensor([0.4, 1.3, 2.0], dtype=torch.float64) * scale
        return base.expand(T, B, N).clone()
    if kind == "random":
        return torch.randn(T, B, N, generator=g, dtype=torch.float64) * scale + 0.5 * scale
    if kind == "spiking":
        spikes = (torch.rand(T, B, N, generator=g) < 0.3).double()
        return spikes * torch.tensor([0.8, 1.5, 2.5], dtype=torch.float64) * scale
    raise AssertionError(kind)


def _per_neuron(x: torch.Tensor) -> list[list[float]]:
    """[T, B, N] -> list over the B*N neurons of their input sequences (python floats)."""
    arr = x.detach().to(torch.float64).reshape(x.shape[0], -1).numpy()
    return [arr[:, j].tolist() for j in range(arr.shape[1])]


def _from_per_neuron(seqs: list[list[float]], shape) -> np.ndarray:
    return np.array(seqs, dtype=np.float64).T.reshape(shape)


# --------------------------------------------------------------------------- references
def ref_lif(xs, k, vth=1.0, vr=0.0, soft=False):
    """k = 1/tau (None -> IF). H = V + k(-(V - Vr) + X); S = H >= Vth; hard/soft reset."""
    v = vr
    spikes, hs = [], []
    for x in xs:
        h = v + x if k is None else v + k * (-(v - vr) + x)
        s = 1.0 if h >= vth else 0.0
        v = h - vth * s if soft else h * (1.0 - s) + vr * s
        spikes.append(s)
        hs.append(h)
    return spikes, hs


def ref_cuba(xs_by_step, alpha, beta, vth=1.0, vr=0.0, soft=False, V=None):
    """xs_by_step: T lists of N floats. I = aI + X + V S_prev; U = (bU + I)(1 - S_prev) + vr S_prev."""
    n = len(xs_by_step[0])
    al = alpha if isinstance(alpha, list) else [alpha] * n
    be = beta if isinstance(beta, list) else [beta] * n
    i = [0.0] * n
    u = [vr] * n
    s = [0.0] * n
    out_s, out_u = [], []
    for x in xs_by_step:
        new_i, new_u, new_s = [], [], []
        for j in range(n):
            cur = al[j] * i[j] + x[j]
            if V is not None:
                cur += sum(V[j][m] * s[m] for m in range(n))
            pre = be[j] * u[j] + cur
            uj = pre - vth * s[j] if soft else pre * (1.0 - s[j]) + vr * s[j]
            new_i.append(cur)
            new_u.append(uj)
            new_s.append(1.0 if uj >= vth else 0.0)
        i, u, s = new_i, new_u, new_s
        out_s.append(s)
        out_u.append(u)
    return out_s, out_u


def ref_sit(xs, k, a, b, c, d, u_r, u_c, u_th=1.0, tau=2.0, u0=None):
    """Jin et al. 2022, Eq. 18 with reset U <- c, V <- H + d; H driven by Y (before reset)."""
    u = c if u0 is None else u0
    v = 0.0
    spikes, ys = [], []
    for i in xs:
        y = u + (k / tau) * (u - u_r) * (u - u_c) - v / tau + i / tau
        h = v + (a / tau) * (b * (y - u_r) - v)
        s = 1.0 if y >= u_th else 0.0
        u = c if s else y
        v = h + d if s else h
        spikes.append(s)
        ys.append(y)
    return spikes, ys


def ref_srm(xs, tau_s, tau_r, theta, dt=1.0):
    """u[n] = sum_{k>=1} eps(k dt) x[n-k] + sum_{k>=1} nu(k dt) s[n-k] (O(T^2) direct convolution)."""
    n_steps = len(xs)
    eps = [(k * dt / tau_s) * math.exp(1 - k * dt / tau_s) for k in range(n_steps)]
    nu = [-2 * theta * (k * dt / tau_r) * math.exp(1 - k * dt / tau_r) for k in range(n_steps)]
    s = [0.0] * n_steps
    us = []
    for n in range(n_steps):
        u = sum(eps[k] * xs[n - k] for k in range(1, n + 1)) + sum(nu[k] * s[n - k] for k in range(1, n + 1))
        s[n] = 1.0 if u >= theta else 0.0
        us.append(u)
    return s, us


# --------------------------------------------------------------------------- IF / LIF / PLIF
LIF_CASES = [
    ("if", lambda: IF(), None, False, 0.0),
    ("lif-hard", lambda: LIF(tau=2.0), 0.5, False, 0.0),
    ("lif-soft", lambda: LIF(tau=3.0, reset="soft"), 1 / 3.0, True, 0.0),
    ("lif-vreset-none", lambda: LIF(tau=2.5, v_reset=None), 1 / 2.5, True, 0.0),
    ("lif-vreset", lambda: LIF(tau=4.0, v_reset=-0.3, v_threshold=0.8), 0.25, False, -0.3),
]


@pytest.mark.parametrize("kind", ["constant", "random", "spiking"])
@pytest.mark.parametrize("name,make,k,soft,vr", LIF_CASES, ids=[c[0] for c in LIF_CASES])
def test_if_lif_match_equations(kind, name, make, k, soft, vr):
    neuron = make()
    neuron.return_membrane = True
    x = _inputs(kind, scale=1.0 if k is None else 1.5)
    spikes, mem = neuron(x)
    seqs = [ref_lif(xs, k, neuron.v_threshold, vr, soft) for xs in _per_neuron(x)]
    ref_s = _from_per_neuron([s for s, _ in seqs], x.shape)
    ref_h = _from_per_neuron([h for _, h in seqs], x.shape)
    assert spikes.dtype == torch.float64
    np.testing.assert_array_equal(spikes.numpy(), ref_s)
    np.testing.assert_allclose(mem.numpy(), ref_h, rtol=1e-12, atol=1e-12)
    assert ref_s.sum() > 0  # the case really spikes


@pytest.mark.parametrize("kind", ["constant", "random", "spiking"])
@pytest.mark.parametrize("soft", [False, True])
def test_plif_matches_equations(kind, soft):
    neuron = PLIF(tau_init=3.0, reset="soft" if soft else "hard")
    with torch.no_grad():
        neuron.a.fill_(-0.4)
    a = neuron.a.item()
    k = 1.0 / (1.0 + math.exp(-a))
    x = _inputs(kind, 1.5)
    spikes = neuron(x)
    ref = _from_per_neuron([ref_lif(xs, k, 1.0, 0.0, soft)[0] for xs in _per_neuron(x)], x.shape)
    np.testing.assert_array_equal(spikes.detach().numpy(), ref)
    assert ref.sum() > 0


def test_plif_init_and_tau():
    assert PLIF(tau_init=2.0).a.item() == pytest.approx(0.0)
    assert PLIF(tau_init=4.0).tau == pytest.approx(4.0, rel=1e-6)
    with pytest.raises(ParameterError, match="tau_init"):
        PLIF(tau_init=1.0)


def test_lif_fires_every_step_for_input_at_least_tau():
    """Jin et al. 2022, Prop. 1: with V_th = 1, V_reset = 0, any I >= tau > 1 makes LIF fire every step."""
    for tau in (1.5, 2.0, 3.0):
        for level in (tau, tau + 0.5, 3 * tau):
            x = torch.full((30, 1, 1), level, dtype=torch.float64)
            assert LIF(tau=tau)(x).sum().item() == 30


def test_detach_reset_changes_only_the_gradient():
    x = _inputs("random", 1.5).requires_grad_()
    a, b = LIF(detach_reset=False), LIF(detach_reset=True)
    sa, sb = a(x), b(x)
    assert torch.equal(sa, sb)
    ga = torch.autograd.grad(sa.sum(), x)[0]
    gb = torch.autograd.grad(sb.sum(), x)[0]
    assert not torch.allclose(ga, gb)


def test_single_step_gradient_is_the_surrogate_derivative():
    """dS_1/dX_1 = sigma'(H_1 - V_th) * (1/tau) for LIF starting at V_0 = 0."""
    sur = ArcTan(2.0)
    x = torch.linspace(-1, 4, 11, dtype=torch.float64).requires_grad_()
    state = LIFState(torch.zeros_like(x))
    s, _ = lif_step(x, state, LIFParams(0.5, 1.0, 0.0, False, False, sur))
    (g,) = torch.autograd.grad(s.sum(), x)
    h = 0.5 * x.detach()
    torch.testing.assert_close(g, sur.derivative(h - 1.0) * 0.5)


# --------------------------------------------------------------------------- CUBA-LIF
@pytest.mark.parametrize("kind", ["constant", "random", "spiking"])
@pytest.mark.parametrize("soft", [False, True])
def test_cubalif_matches_equations(kind, soft):
    neuron = CUBALIF(alpha=0.6, beta=0.9, reset="soft" if soft else "hard", return_membrane=True)
    x = _inputs(kind, 0.8)
    spikes, mem = neuron(x)
    flat = x.reshape(T, -1).tolist()
    ref_s, ref_u = ref_cuba(flat, 0.6, 0.9, soft=soft)
    np.testing.assert_array_equal(spikes.reshape(T, -1).numpy(), np.array(ref_s))
    np.testing.assert_allclose(mem.reshape(T, -1).numpy(), np.array(ref_u), rtol=1e-12, atol=1e-12)
    assert np.array(ref_s).sum() > 0
    if not soft:  # the paper's reset clears the membrane on the step after a spike
        s = np.array(ref_s)
        assert not np.any(s[1:] * s[:-1])


@pytest.mark.parametrize("kind", ["random", "spiking"])
def test_recurrent_heterogeneous_cubalif_matches_equations(kind):
    torch.manual_seed(3)
    neuron = CUBALIF(tau_syn=[2.0, 5.0, 9.0], tau_mem=[4.0, 10.0, 20.0], dt=1.0, recurrent=True, learnable=True,
                     n_features=N, return_membrane=True)
    with torch.no_grad():
        neuron.recurrent_weight.mul_(3.0)
    x = _inputs(kind, 0.8, seed=5)
    spikes, mem = neuron(x)
    alpha = [math.exp(-1 / t) for t in (2.0, 5.0, 9.0)]
    beta = [math.exp(-1 / t) for t in (4.0, 10.0, 20.0)]
    # the module stores float32 logits: take its exact alpha/beta so the reference sees the same numbers
    torch.testing.assert_close(neuron.alpha.double(), torch.tensor(alpha, dtype=torch.float64), rtol=1e-6, atol=0)
    alpha, beta = neuron.alpha.double().tolist(), neuron.beta.double().tolist()
    V = neuron.recurrent_weight.detach().double().tolist()
    for bi in range(B):
        ref_s, ref_u = ref_cuba(x[:, bi].tolist(), alpha, beta, V=V)
        np.testing.assert_array_equal(spikes[:, bi].detach().numpy(), np.array(ref_s))
        np.testing.assert_allclose(mem[:, bi].detach().numpy(), np.array(ref_u), rtol=1e-10, atol=1e-12)
    assert spikes.sum() > 0


def test_cubalif_tau_conversion_and_validation():
    n = CUBALIF(tau_syn=28.0, tau_mem=140.0, dt=14.0)
    assert n.alpha.item() == pytest.approx(math.exp(-0.5), rel=1e-6)
    assert n.beta.item() == pytest.approx(math.exp(-0.1), rel=1e-6)
    assert n.tau_syn.item() == pytest.approx(28.0, rel=1e-5)
    with pytest.raises(ParameterError, match="either alpha or tau_syn"):
        CUBALIF(alpha=0.5, tau_syn=3.0)
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        CUBALIF(alpha=1.5)
    with pytest.raises(ParameterError, match="n_features"):
        CUBALIF(recurrent=True)
    with pytest.raises(ParameterError, match=r"\[T, B, 4\]"):
        CUBALIF(recurrent=True, n_features=4)(torch.zeros(3, 2, 5))


def test_cubalif_heterogeneous_broadcasts_over_channels():
    """Per-neuron decays [C] act on dim 2 of [T, B, C, H, W]."""
    neuron = CUBALIF(alpha=[0.1, 0.5], beta=[0.2, 0.95], n_features=2, return_membrane=True)
    x = torch.rand(6, 1, 2, 3, 3, dtype=torch.float64) * 0.3
    _, mem = neuron(x)
    for c, (al, be) in enumerate([(0.1, 0.2), (0.5, 0.95)]):
        al, be = float(neuron.alpha[c]), float(neuron.beta[c])
        _, ref_u = ref_cuba(x[:, 0, c].reshape(6, -1).tolist(), al, be)
        np.testing.assert_allclose(mem[:, 0, c].reshape(6, -1).numpy(), np.array(ref_u), rtol=1e-10)


# --------------------------------------------------------------------------- SIT
SIT_TONIC = dict(k=1.0, a=0.002, b=0.02, c=0.0, d=0.2, u_r=-0.05, u_c=1.0)
SIT_BURST = dict(k=1.0, a=0.35, b=0.6, c=0.0, d=0.5, u_r=-0.05, u_c=1.0)


@pytest.mark.parametrize("kind", ["constant", "random", "spiking"])
@pytest.mark.parametrize("preset,params", [("tonic", SIT_TONIC), ("bursting", SIT_BURST)])
def test_sit_matches_eq18(kind, preset, params):
    neuron = getattr(SIT, preset)(return_membrane=True)
    x = _inputs(kind, 2.0)
    spikes, mem = neuron(x)
    seqs = [ref_sit(xs, **params) for xs in _per_neuron(x)]
    np.testing.assert_array_equal(spikes.numpy(), _from_per_neuron([s for s, _ in seqs], x.shape))
    np.testing.assert_allclose(mem.numpy(), _from_per_neuron([y for _, y in seqs], x.shape), rtol=1e-12, atol=1e-12)
    assert spikes.sum() > 0


def test_sit_table2_presets():
    t, b = SIT.tonic(), SIT.bursting()
    assert (t.a, t.b, t.c, t.d, t.k, t.u_c, t.u_r, t.u_th, t.tau) == (0.002, 0.02, 0.0, 0.2, 1.0, 1.0, -0.05, 1.0, 2.0)
    assert (b.a, b.b, b.c, b.d, b.k, b.u_c, b.u_r, b.u_th, b.tau) == (0.35, 0.6, 0.0, 0.5, 1.0, 1.0, -0.05, 1.0, 2.0)
    assert t.detach_reset is False


def _isis(spikes: list[float]) -> list[int]:
    times = [i for i, s in enumerate(spikes) if s]
    return [b - a for a, b in itertools.pairwise(times)]


def test_sit_spike_frequency_adaptation_and_prop1():
    """Jin et al. 2022, Sect. 4.6 / Fig. 12 / Prop. 1 with tau = 2, computed from the float64 reference:
    SIT's inter-spike intervals grow under a constant input (SFA), and inputs 2 and 3 give
    different SIT spike trains, while LIF fires on every step for both."""
    steps = 60
    trains = {}
    for level in (2.0, 3.0):
        ref, _ = ref_sit([level] * steps, **SIT_TONIC)
        ours = SIT.tonic()(torch.full((steps, 1, 1), level, dtype=torch.float64))[:, 0, 0].tolist()
        assert ours == ref
        isi = _isis(ref)
        assert len(isi) >= 5
        assert all(b >= a for a, b in itertools.pairwise(isi)), f"ISIs not non-decreasing for input {level}: {isi}"
        assert isi[-1] > isi[0], f"no adaptation for input {level}: {isi}"
        trains[level] = ref
        lif_ref, _ = ref_lif([level] * steps, 0.5)
        assert lif_ref == [1.0] * steps
        assert LIF(tau=2.0)(torch.full((steps, 1, 1), level)).sum().item() == steps
    assert trains[2.0] != trains[3.0]
    assert sum(trains[3.0]) > sum(trains[2.0])
    # the exact early patterns of the reference (U_0 = c = 0, V_0 = 0)
    assert trains[2.0][:12] == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0]
    assert trains[3.0][:6] == [1, 1, 1, 1, 1, 0]


def test_sit_bursting_differs_from_tonic():
    steps = 60
    for level in (1.8, 3.0):
        tonic, _ = ref_sit([level] * steps, **SIT_TONIC)
        burst, _ = ref_sit([level] * steps, **SIT_BURST)
        assert tonic != burst
        # bursting keeps firing (its fast recovery variable does not silence it), tonic adapts
        assert sum(burst[steps // 2:]) > sum(tonic[steps // 2:])
        got = SIT.bursting()(torch.full((steps, 1, 1), level, dtype=torch.float64))[:, 0, 0].tolist()
        assert got == burst


# --------------------------------------------------------------------------- SRM
def test_srm_recursion_reproduces_sampled_kernel():
    """Impulse at step 0 with no spikes: u_n = eps(n dt) exactly (float64)."""
    for tau_s, dt in ((1.0, 1.0), (3.0, 1.0), (5.0, 0.5)):
        x = torch.zeros(50, 1, 1, dtype=torch.float64)
        x[0] = 1.0
        _, u = SRM(tau_s=tau_s, tau_r=2.0, theta=1e9, dt=dt, return_membrane=True)(x)
        eps = [(n * dt / tau_s) * math.exp(1 - n * dt / tau_s) for n in range(50)]
        np.testing.assert_allclose(u[:, 0, 0].numpy(), eps, rtol=1e-12, atol=1e-15)


def test_srm_refractory_recursion_reproduces_sampled_kernel():
    """A spike forced through the state: the refractory filter then yields nu(n dt) exactly."""
    tau_r, theta = 3.0, 2.0
    neuron = SRM(tau_s=1.0, tau_r=tau_r, theta=theta)
    params = neuron.make_params(torch.zeros(1, 1, dtype=torch.float64))
    params = params._replace(theta=1e9)  # no further spikes
    z = torch.zeros(1, dtype=torch.float64)
    state = SRMState(z, z, torch.ones(1, dtype=torch.float64), z)  # spike s_0 = 1 just entered the filter
    res = scan(srm_step_full, torch.zeros(30, 1, dtype=torch.float64), state, params, return_membrane=True)
    nu = [-2 * theta * (n / tau_r) * math.exp(1 - n / tau_r) for n in range(1, 31)]
    np.testing.assert_allclose(res.membrane[:, 0].numpy(), nu, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["constant", "random", "spiking"])
@pytest.mark.parametrize("tau_s,tau_r,theta", [(1.0, 1.0, 1.0), (2.0, 4.0, 1.5)])
def test_srm_matches_direct_convolution(kind, tau_s, tau_r, theta):
    neuron = SRM(tau_s=tau_s, tau_r=tau_r, theta=theta, return_membrane=True)
    x = _inputs(kind, 1.0)
    spikes, mem = neuron(x)
    seqs = [ref_srm(xs, tau_s, tau_r, theta) for xs in _per_neuron(x)]
    np.testing.assert_array_equal(spikes.numpy(), _from_per_neuron([s for s, _ in seqs], x.shape))
    np.testing.assert_allclose(mem.numpy(), _from_per_neuron([u for _, u in seqs], x.shape), rtol=1e-10, atol=1e-10)
    assert spikes.sum() > 0


def test_srm_default_surrogate_is_slayer_pdf():
    n = SRM(theta=10.0, tau_rho=0.5, scale_rho=2.0)
    assert n.surrogate.name == "exponential" and n.surrogate.tau == 5.0 and n.surrogate.alpha == 2.0


# --------------------------------------------------------------------------- gradients
def _smooth(alpha: float = 4.0) -> Sigmoid:
    return Sigmoid(alpha=alpha, smooth=True)


@pytest.mark.parametrize("make", [
    lambda s: IF(surrogate=s), lambda s: LIF(surrogate=s), lambda s: LIF(surrogate=s, reset="soft"),
    lambda s: PLIF(surrogate=s, tau_init=3.0),
    lambda s: CUBALIF(alpha=0.5, beta=0.8, surrogate=s), lambda s: SIT.tonic(surrogate=s),
    lambda s: SIT.bursting(surrogate=s), lambda s: SRM(tau_s=2.0, tau_r=2.0, surrogate=s),
], ids=["if", "lif", "lif-soft", "plif", "cubalif", "sit", "sit-bursting", "srm"])
def test_gradcheck_multistep_with_smooth_surrogate(make):
    """With a smooth forward (the sigmoid itself) the whole multi-step graph is differentiable:
    gradcheck compares its backward (the surrogate-gradient BPTT) with finite differences.
    (``detach_reset=True`` is left out on purpose: it drops a true gradient path.)"""
    neuron = make(_smooth()).double()
    neuron.return_membrane = True
    x = (torch.randn(6, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 1.0).requires_grad_()
    assert torch.autograd.gradcheck(lambda inp: neuron(inp), (x,))


def test_gradcheck_plif_parameter_and_recurrent_cuba():
    sur = _smooth()
    x = (torch.randn(6, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 1.0).requires_grad_()

    def plif(inp, a):
        st = LIFState(torch.zeros_like(inp[0]))
        return scan(lif_step_full, inp, st, LIFParams(torch.sigmoid(a), 1.0, 0.0, False, False, sur)).spikes

    a = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(plif, (x, a))

    def cuba(inp, alpha_logit, beta_logit, V):
        z = torch.zeros_like(inp[0])
        p = CUBALIFParams(torch.sigmoid(alpha_logit), torch.sigmoid(beta_logit), 1.0, 0.0, False, False, sur, V)
        return scan(cubalif_step_full, inp, CUBALIFState(z, z, z), p, return_membrane=True).membrane

    al = torch.tensor([0.1, 0.5, -0.3], dtype=torch.float64, requires_grad=True)
    bl = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64, requires_grad=True)
    V = (torch.randn(3, 3, dtype=torch.float64) * 0.5).requires_grad_()
    assert torch.autograd.gradcheck(cuba, (x, al, bl, V))

    def sit(inp):
        z = torch.zeros_like(inp[0])
        p = SITParams(1.0, 0.35, 0.6, 0.0, 0.5, -0.05, 1.0, 1.0, 2.0, False, False, sur)
        return scan(sit_step_full, inp, SITState(z, z), p).spikes

    assert torch.autograd.gradcheck(sit, (x,))


def _train(neuron, params_of_interest, steps=15):
    torch.manual_seed(0)
    x = torch.rand(8, 16, 4)
    target = (x.mean(0)[:, 0] > x.mean(0)[:, 1]).long()
    lin = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(list(lin.parameters()) + list(neuron.parameters()), lr=0.05)
    before = [p.detach().clone() for p in params_of_interest]
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = neuron(lin(x * 3.0).reshape(8, 16, 2))
        loss = rate_mse(out, target)
        loss.backward()
        for p in params_of_interest:
            assert p.grad is not None and torch.all(torch.isfinite(p.grad)) and p.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    for b, p in zip(before, params_of_interest, strict=True):
        assert not torch.allclose(b, p.detach()), "parameter did not move"
    return losses


def test_plif_a_learns():
    n = PLIF(tau_init=2.0)
    _train(n, [n.a])
    assert n.tau != pytest.approx(2.0)


def test_cubalif_time_constants_learn():
    n = CUBALIF(tau_syn=2.0, tau_mem=5.0, learnable=True, heterogeneous=True, n_features=2, surrogate="arctan")
    _train(n, [n.alpha_logit, n.beta_logit])
    assert torch.all((n.alpha > 0) & (n.alpha < 1)) and torch.all((n.beta > 0) & (n.beta < 1))
    assert n.alpha.shape == (2,)


# --------------------------------------------------------------------------- module behaviour
ALL = [lambda: IF(), lambda: LIF(), lambda: PLIF(), lambda: CUBALIF(), lambda: CUBALIF(recurrent=True, n_features=5),
       lambda: SIT.tonic(), lambda: SIT.bursting(), lambda: SRM()]
ALL_IDS = ["if", "lif", "plif", "cubalif", "rcubalif", "sit", "sit-bursting", "srm"]


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_stateless_and_autocast(make):
    neuron = make()
    x = torch.randn(12, 3, 5, generator=torch.Generator().manual_seed(2)) * 2 + 1
    a, b = neuron(x), neuron(x)
    assert torch.equal(a, b)
    assert a.shape == x.shape and set(a.unique().tolist()) <= {0.0, 1.0}
    lin = torch.nn.Linear(5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = lin(x)
        out = neuron(h)
    assert h.dtype == torch.bfloat16 and out.dtype == torch.bfloat16
    # the state is computed in float32: identical to running on the same input upcast
    assert torch.equal(out.float(), neuron(h.float()).detach())
    out.float().sum().backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()


def test_state_can_be_carried_across_chunks():
    x = _inputs("random", 1.5)
    neuron = CUBALIF()
    full = neuron(x)
    first = neuron.forward_with_state(x[:15])
    second = neuron.forward_with_state(x[15:], first.state)
    assert torch.equal(torch.cat([first.spikes, second.spikes]), full)


def test_make_neuron_names():
    for name in NEURON_NAMES:
        m = make_neuron(name.upper(), n_features=3)
        assert m(torch.rand(4, 2, 3)).shape == (4, 2, 3)
    assert isinstance(make_neuron("lif", tau=3.0), LIF) and make_neuron("lif", tau=3.0).tau == 3.0
    assert make_neuron("rcubalif", n_features=3).recurrent_weight.shape == (3, 3)
    assert make_neuron("sit-bursting").a == 0.35
    assert make_neuron("srm", v_threshold=5.0).theta == 5.0
    assert make_neuron("sit", v_threshold=0.9).u_th == 0.9
    with pytest.raises(ParameterError, match="unknown neuron"):
        make_neuron("hodgkin-huxley")
    with pytest.raises(ParameterError, match="n_features"):
        make_neuron("rcubalif")
    with pytest.raises(ParameterError, match="bad keyword"):
        make_neuron("lif", taux=2.0)


def test_bad_input_raises():
    with pytest.raises(ParameterError, match=r"\[T, B"):
        LIF()(torch.zeros(5))
    with pytest.raises(ParameterError, match="floating"):
        LIF()(torch.zeros(5, 2, dtype=torch.int64))
    with pytest.raises(ParameterError, match="reset"):
        LIF(reset="medium")


def test_non_spiking_readout():
    """v_threshold = inf: never spikes, the membrane is a leaky integrator (Bouanane et al. 2023 readout)."""
    x = _inputs("random", 3.0)
    spikes, mem = CUBALIF(v_threshold=math.inf, return_membrane=True)(x)
    assert spikes.sum() == 0
    _, ref_u = ref_cuba(x.reshape(T, -1).tolist(), 0.6, 0.9, vth=math.inf)
    np.testing.assert_allclose(mem.reshape(T, -1).numpy(), np.array(ref_u), rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(tau=st.floats(1.05, 20.0), vth=st.floats(0.2, 3.0), vr=st.floats(-1.0, 0.1), soft=st.booleans(),
       seed=st.integers(0, 2**16), scale=st.floats(0.1, 5.0))
def test_lif_property_random_parameters(tau, vth, vr, soft, seed, scale):
    neuron = LIF(tau=tau, v_threshold=vth, v_reset=vr, reset="soft" if soft else "hard")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(25, 1, 4, generator=g, dtype=torch.float64) * scale + scale
    got = neuron(x)
    ref = _from_per_neuron([ref_lif(xs, 1.0 / tau, vth, vr, soft)[0] for xs in _per_neuron(x)], x.shape)
    np.testing.assert_array_equal(got.numpy(), ref)


@settings(max_examples=30, deadline=None)
@given(alpha=st.floats(0.01, 0.99), beta=st.floats(0.01, 0.99), vth=st.floats(0.2, 3.0), soft=st.booleans(),
       seed=st.integers(0, 2**16))
def test_cubalif_property_random_parameters(alpha, beta, vth, soft, seed):
    neuron = CUBALIF(alpha=alpha, beta=beta, v_threshold=vth, reset="soft" if soft else "hard")
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(25, 1, 4, generator=g, dtype=torch.float64) * 2 * vth
    got = neuron(x)
    ref_s, _ = ref_cuba(x.reshape(25, -1).tolist(), alpha, beta, vth=vth, soft=soft)
    np.testing.assert_array_equal(got.reshape(25, -1).numpy(), np.array(ref_s))


def test_cubalif_accepts_the_lif_and_if_corners_of_002_tables():
    """α = 0 (no synaptic memory) and β = 1 (no leak) are the LIF / IF cells of Bouanane et al. 2023 Tables II/III."""
    import torch

    from eventkit_train.neurons import CUBALIF

    x = torch.tensor([[0.6], [0.6], [0.0], [0.3], [0.9]], dtype=torch.float64).unsqueeze(-1)  # [T, B=1, 1]
    spikes, u = CUBALIF(alpha=0.0, beta=1.0, return_membrane=True)(x)
    # reference: I_t = X_t, U_t = (U_{t-1} + I_t)(1 - S_{t-1}), S_t = Θ(U_t - 1)
    ref_u, ref_s, uu, ss = [], [], 0.0, 0.0
    for xt in [0.6, 0.6, 0.0, 0.3, 0.9]:
        uu = (uu + xt) * (1.0 - ss)
        ss = 1.0 if uu >= 1.0 else 0.0
        ref_u.append(uu)
        ref_s.append(ss)
    assert spikes.flatten().tolist() == ref_s
    assert torch.allclose(u.flatten(), torch.tensor(ref_u, dtype=torch.float64))
    with pytest.raises(Exception, match="logits"):
        CUBALIF(alpha=0.0, beta=0.9, learnable=True)


# ---------------------------------------------------------------- ALIF (the worked example of docs/adding-a-neuron.md)
def ref_alif(xs, tau, tau_a, beta_a, vth=1.0, vr=0.0, soft=False):
    v, a, rho = vr, 0.0, math.exp(-1.0 / tau_a)
    spikes, hs = [], []
    for x in xs:
        h = v + (1.0 / tau) * (x - (v - vr))
        theta = vth + beta_a * a
        s = 1.0 if h >= theta else 0.0
        v = h - theta * s if soft else (vr if s else h)
        a = rho * a + s
        spikes.append(s)
        hs.append(h)
    return spikes, hs


@pytest.mark.parametrize("kind", ["constant", "random", "spiking"])
@pytest.mark.parametrize("soft", [False, True])
def test_alif_matches_equations_and_adapts(kind, soft):
    from eventkit_train.neurons import ALIF

    neuron = ALIF(tau=2.0, tau_adapt=8.0, beta_adapt=0.6, reset="soft" if soft else "hard", return_membrane=True)
    x = _inputs(kind, 1.5)
    spikes, mem = neuron(x)
    seqs = [ref_alif(xs, 2.0, 8.0, 0.6, soft=soft) for xs in _per_neuron(x)]
    np.testing.assert_array_equal(spikes.numpy(), _from_per_neuron([s for s, _ in seqs], x.shape))
    np.testing.assert_allclose(mem.numpy(), _from_per_neuron([h for _, h in seqs], x.shape), rtol=1e-12, atol=1e-12)
    assert spikes.sum() > 0
    if kind == "constant":  # the rising threshold makes a constant input fire less often than plain LIF
        assert spikes.sum() < LIF(tau=2.0, reset="soft" if soft else "hard")(x).sum()
