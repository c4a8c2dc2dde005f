"""Phase-plane analysis and the b range (SIT paper, Eqs. 5-17, Figs. 4 and 6), checked against
hand-derived closed forms and eigenvalues computed here independently (quadratic formula)."""
from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
import torch

from eventkit.errors import ParameterError
from eventkit_train.analysis import (
    CustomSystem,
    b_range,
    bifurcation,
    classify,
    find_fixed_points,
    fixed_points,
    get_system,
    phase_plane,
)
from eventkit_train.analysis.fixed_points import default_window
from eventkit_train.neurons import SIT, SITState

SIT_T = dict(k=1.0, a=0.002, b=0.02, U_r=-0.05, U_c=1.0, tau=2.0)  # Table 2, tau = 2 (Sect. 4.3)


def eig2(j11: float, j12: float, j21: float, j22: float) -> tuple[complex, complex]:
    """Eigenvalues of a 2x2 matrix by the quadratic formula (independent of numpy.linalg)."""
    tr, det = j11 + j22, j11 * j22 - j12 * j21
    root = cmath.sqrt(tr * tr - 4 * det)
    return (tr - root) / 2, (tr + root) / 2


def kind_by_hand(l1: complex, l2: complex) -> str:
    """Trace/determinant rule on the eigenvalues (textbook classification, written independently)."""
    tr, det = (l1 + l2).real, (l1 * l2).real
    if det < 0:
        return "saddle"
    if tr * tr - 4 * det < 0:
        return "stable focus" if tr < 0 else "unstable focus"
    return "stable node" if tr < 0 else "unstable node"


def sit_jacobian(U: float, k, a, b, U_r, U_c, tau) -> tuple[float, float, float, float]:
    # Eq. 5: tau dU/dt = k(U-U_r)(U-U_c) - V + I ; tau dV/dt = a(b(U-U_r) - V)
    return k * (2 * U - U_r - U_c) / tau, -1 / tau, a * b / tau, -a / tau


def test_sit_fixed_points_at_zero_input_closed_form_numeric_and_fig6():
    system = get_system("sit")
    closed = fixed_points(system, 0.0)
    assert [p.source for p in closed] == ["closed form", "closed form"]
    (u1, v1), (u2, v2) = closed[0].state, closed[1].state
    # by hand: (U - U_r)(k(U - U_c) - b) = 0 -> U = U_r or U = U_c + b/k; V = b(U - U_r)
    assert (u1, v1) == pytest.approx((-0.05, 0.0), abs=1e-12)
    assert (u2, v2) == pytest.approx((1.02, 0.02 * 1.07), abs=1e-12)
    # Fig. 6 of the paper: stable point (-0.05, 0), unstable point (1.02, 0.021)
    assert round(u2, 2) == 1.02 and round(v2, 3) == 0.021
    assert closed[0].kind == "stable node" and closed[0].stable
    assert closed[1].kind == "saddle" and not closed[1].stable
    for p in closed:
        hand = eig2(*sit_jacobian(p.state[0], **SIT_T))
        assert sorted(z.real for z in hand) == pytest.approx(sorted(z.real for z in p.eigenvalues), rel=1e-9)
        assert kind_by_hand(*hand) == p.kind
    numeric = find_fixed_points(system, 0.0, default_window(system, 0.0))
    assert len(numeric) == 2
    for p, q in zip(closed, numeric, strict=True):
        assert np.allclose(p.state, q, atol=1e-10)
    assert [p.kind for p in fixed_points(system, 0.0, method="numeric")] == ["stable node", "saddle"]


def test_vanilla_izhikevich_tonic_rest_point_and_rheobase():
    system = get_system("izhikevich:tonic")  # a=0.02, b=0.2, c=-65, d=8 (the SIT paper's tonic setting)
    rest, saddle = fixed_points(system, 0.0)
    # u = 0.2v -> 0.04v^2 + 4.8v + 140 = 0 -> v = -70 or -50 (the classic resting / threshold points)
    assert rest.state == pytest.approx((-70.0, -14.0), abs=1e-9)
    assert saddle.state == pytest.approx((-50.0, -10.0), abs=1e-9)
    for p in (rest, saddle):
        v = p.state[0]
        hand = eig2(0.08 * v + 5, -1.0, 0.02 * 0.2, -0.02)
        assert kind_by_hand(*hand) == p.kind
        assert sorted(z.real for z in hand) == pytest.approx(sorted(z.real for z in p.eigenvalues), rel=1e-9)
    assert rest.kind == "stable node" and saddle.kind == "saddle"
    # rheobase: the two points merge at I = (5 - b)^2 / 0.16 - 140 = 4 (saddle-node), Hopf just before it
    events = bifurcation(system, np.linspace(-10, 6, 17)).events
    sn = [e for e in events if e["type"] == "saddle-node"]
    assert len(sn) == 1 and sn[0]["I"] == pytest.approx(4.0, abs=1e-6)
    hopf = [e for e in events if e["type"] == "hopf"]
    # tr J = 0 at v = (a - 5)/0.08 = -62.25 -> I = -(0.04 v^2 + 4.8 v + 140)
    assert len(hopf) == 1 and hopf[0]["I"] == pytest.approx(-(0.04 * 62.25**2 - 4.8 * 62.25 + 140), abs=1e-6)


def test_sit_bifurcation_matches_closed_forms():
    system = get_system("sit")
    events = {e["type"]: e["I"] for e in bifurcation(system, np.linspace(-0.5, 0.4, 10)).events}
    # discriminant of U^2 - (0.97)U + (-0.051 + I) = 0 vanishes at I = 0.97^2/4 + 0.051
    assert events["saddle-node"] == pytest.approx(0.97**2 / 4 + 0.051, abs=1e-9)
    u_h = (0.95 + 0.002) / 2  # trace = 0: k(2U - U_r - U_c) = a
    assert events["hopf"] == pytest.approx(-(u_h**2 - 0.97 * u_h - 0.051), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_classification_matches_independent_eigenvalues(seed):
    rng = np.random.default_rng(seed)
    for _ in range(300):
        j = rng.normal(size=4) * rng.choice([0.01, 1, 100])
        hand = eig2(*j)
        assert classify(np.linalg.eigvals(j.reshape(2, 2)))[0] == kind_by_hand(*hand)
    assert classify([0.5j, -0.5j])[0] == "center"
    assert classify([0.0, -1.0])[0] == "non-hyperbolic"
    assert classify([-2.0]) == ("stable node", True) and classify([3.0]) == ("unstable node", False)


@pytest.mark.parametrize("seed", range(4))
def test_numeric_solver_agrees_with_closed_form_for_random_parameters(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(4):
        params = dict(k=rng.uniform(0.3, 3), a=rng.uniform(0.001, 0.5), b=rng.uniform(-1, 2),
                      u_r=rng.uniform(-0.5, 0), u_c=rng.uniform(0.5, 1.5))
        system = get_system("sit", **params)
        I = rng.uniform(-0.5, 0.1)
        closed = system.closed_form_fixed_points(I)
        numeric = find_fixed_points(system, I, default_window(system, I))
        assert len(numeric) == len(closed)
        for p, q in zip(closed, numeric, strict=True):
            assert np.allclose(p, q, atol=1e-9)
        # the closed form really zeroes the vector field (Eq. 5)
        for p in closed:
            assert np.max(np.abs(system.rhs(p, I))) < 1e-12


def test_custom_system_uses_the_numeric_solver():
    # van der Pol-like cubic: dU = U - U^3/3 - V + I, dV = 0.08(U + 0.7 - 0.8V) (FitzHugh-Nagumo)
    fhn = CustomSystem(lambda x, I: np.array([x[0] - x[0] ** 3 / 3 - x[1] + I, 0.08 * (x[0] + 0.7 - 0.8 * x[1])]))
    (p,) = fixed_points(fhn, 0.0, window=(-2.5, 2.5, -1.5, 2.0))
    assert p.source == "numeric"
    u = p.state[0]
    assert u - u**3 / 3 - (u + 0.7) / 0.8 == pytest.approx(0.0, abs=1e-10)
    hand = eig2(1 - u * u, -1.0, 0.08, -0.064)
    assert p.kind == kind_by_hand(*hand)
    # Hopf where the trace 1 - u^2 - 0.064 vanishes: u = -sqrt(0.936), I = w - u + u^3/3 with w = (u + 0.7)/0.8
    pp = phase_plane(fhn, 0.5, window=(-2.5, 2.5, -1.0, 2.5), bifurcation_inputs=np.linspace(0, 1, 11))
    u_h = -math.sqrt(0.936)
    (hopf,) = [e for e in pp.bifurcation.events if e["type"] == "hopf"]
    assert hopf["I"] == pytest.approx((u_h + 0.7) / 0.8 - u_h + u_h**3 / 3, abs=1e-7)
    assert pp.contour_grid is not None and pp.fixed_points[0].kind == "unstable focus"


def test_b_range_eq17_and_stability_at_the_target():
    res = b_range([-4.92, 3.83], k=1, U_r=-0.05, U_c=1)
    assert res.b == pytest.approx((-99.4, 75.6), abs=1e-9)  # the paper prints [-97.4, 75.6]
    assert (res.slope, res.intercept) == pytest.approx((20.0, -1.0))  # Eq. 17: b = -1 + 20 I
    assert res.b_saddle == pytest.approx(-0.95)
    for b in (-99.4, -50.0, -1.0):
        seg = res.kind_at(b)
        assert seg["kind"] == "saddle" and not seg["stable"]
        # independently: U = 0 is a fixed point for I = (b + 1)/20 and det J < 0 there
        I = (b + 1) / 20
        assert (0 - SIT_T["U_r"]) * (0 - SIT_T["U_c"]) - b * (0 - SIT_T["U_r"]) + I == pytest.approx(0, abs=1e-12)
        assert kind_by_hand(*eig2(*sit_jacobian(0.0, **{**SIT_T, "b": b}))) == "saddle"
    for b in (-0.5, 0.02, 75.6):
        assert res.kind_at(b)["stable"]
        assert kind_by_hand(*eig2(*sit_jacobian(0.0, **{**SIT_T, "b": b}))) == res.kind_at(b)["kind"]
    assert res.stable_fraction == pytest.approx((75.6 + 0.95) / 175.0)
    samples = np.random.default_rng(0).normal(-0.5, 2.5, 20_000)
    lo, hi = np.quantile(samples, [0.05, 0.95])
    assert b_range(samples).b == pytest.approx((20 * lo - 1, 20 * hi - 1))
    with pytest.raises(ParameterError):
        b_range([1.0])


def test_discrete_map_stability_is_checked_by_iterating_eq18():
    # a = 0.35 (SIT-Bursting), b = 40: the ODE's rest point is a stable focus but the tau = 2 step map is not
    res = b_range([-4.92, 3.83], a=0.35)
    seg = res.kind_at(40.0)
    assert seg["stable"] and seg["map_stable"] is False
    assert res.kind_at(10.0)["map_stable"] is True
    for b, grows in ((40.0, True), (10.0, False)):
        I = (b + 1) / 20  # puts the fixed point at U = 0, V = 0.05 b
        neuron = SIT(k=1, a=0.35, b=b, c=0.0, d=0.0, u_r=-0.05, u_c=1.0, u_th=1e9)  # never fires
        x = torch.full((16, 1, 1), I, dtype=torch.float64)  # multipliers 1.925 (b = 40) and 0.658 (b = 10)
        start = SITState(torch.full((1, 1), 1e-6, dtype=torch.float64),
                         torch.full((1, 1), 0.05 * b, dtype=torch.float64))
        res = neuron.forward_with_state(x, start)
        assert float(res.spikes.sum()) == 0
        assert (not abs(float(res.state.u)) < 1e-4) == grows  # nan/inf (blown up) counts as grown


def test_phase_plane_overlays_the_networks_own_eq18_steps():
    pp = phase_plane("sit", 0.5, discrete_steps=60)
    spikes = SIT.tonic()(torch.full((60, 1, 1), 0.5, dtype=torch.float64)).flatten()
    assert list(pp.discrete.spikes) == [float(i + 1) for i in torch.nonzero(spikes).flatten().tolist()]
    assert len(spikes.nonzero()) >= 2
    assert pp.fixed_points == []  # I = 0.5 is above the saddle-node input 0.2862: no rest point, it fires
    zero = phase_plane("sit", 0.0)
    assert [p["kind"] for p in zero.to_json()["fixed_points"]] == ["stable node", "saddle"]
    assert zero.numeric_agreement is not None and zero.numeric_agreement < 1e-9
    lif = phase_plane("lif", 2.0, discrete_steps=5)
    assert lif.fixed_points[0].state == (2.0,) and lif.fixed_points[0].kind == "stable node"
    assert list(lif.discrete.spikes) == [1.0, 2.0, 3.0, 4.0, 5.0]  # Prop. 1: I >= tau fires every step


def test_phase_plane_errors_and_params():
    with pytest.raises(ParameterError, match="unknown neuron"):
        phase_plane("hodgkin-huxley")
    with pytest.raises(ParameterError, match="window"):
        phase_plane("sit", window=(1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ParameterError, match="preset"):
        get_system("izhikevich:nonexistent")
    assert get_system("sit-bursting", d=0.6).d == 0.6
    assert get_system(SIT.bursting(d=0.6)).b == 0.6
    assert math.isclose(get_system("izhikevich:chattering").c, -50.0)
