"""Losses vs. the papers' formulas written out with explicit loops (float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eventkit.errors import ParameterError
from eventkit_train.losses import (
    LOSS_INPUT,
    LOSSES,
    get_loss,
    max_over_time_ce,
    rate_ce,
    rate_mse,
    spike_rate,
    spikemax,
    spikemax_g,
    spikemax_s,
)

T, B, C = 12, 4, 5


def _spikes(seed=0, p=0.4):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, C, generator=g) < p).double()


def _target(seed=0):
    return torch.randint(0, C, (B,), generator=torch.Generator().manual_seed(seed))


def _mask():
    lengths = [T, 7, 3, 10]
    return torch.arange(T).unsqueeze(1) < torch.tensor(lengths).unsqueeze(0), lengths


def _loops(s: torch.Tensor, lengths=None):
    """counts[b][i] and valid lengths by explicit loops."""
    arr = s.detach().numpy()
    lengths = lengths or [T] * B
    counts = [[sum(arr[t, b, i] for t in range(lengths[b])) for i in range(C)] for b in range(B)]
    return counts, lengths


# --------------------------------------------------------------------------- references
def ref_rate_mse(s, y, lengths=None):
    counts, lengths = _loops(s, lengths)
    return [sum((counts[b][i] / lengths[b] - (1.0 if i == y[b] else 0.0)) ** 2 for i in range(C)) / C for b in range(B)]


def ref_rate_mse_per_step(s, y, lengths=None):
    arr = s.numpy()
    lengths = lengths or [T] * B
    return [sum(sum((arr[t, b, i] - (1.0 if i == y[b] else 0.0)) ** 2 for i in range(C)) / C
                for t in range(lengths[b])) / lengths[b] for b in range(B)]


def _nll_softmax(logits, k):
    m = max(logits)
    return -(logits[k] - m - math.log(sum(math.exp(v - m) for v in logits)))


def ref_rate_ce(s, y, temperature=1.0, lengths=None):
    counts, lengths = _loops(s, lengths)
    return [_nll_softmax([c / lengths[b] / temperature for c in counts[b]], y[b]) for b in range(B)]


def ref_max_over_time(u, y, lengths=None):
    arr = u.detach().numpy()
    lengths = lengths or [T] * B
    return [_nll_softmax([max(arr[t, b, i] for t in range(lengths[b])) for i in range(C)], y[b]) for b in range(B)]


def ref_spike_rate(s, y, tr, fr, lengths=None):
    counts, lengths = _loops(s, lengths)
    return [sum((counts[b][i] / lengths[b] - (tr if i == y[b] else fr)) ** 2 for i in range(C)) / C for b in range(B)]


def ref_spikemax(s, y, window, eps, lengths=None):
    arr = s.detach().numpy()
    lengths = lengths or [T] * B
    out = []
    for b in range(B):
        total = 0.0
        for t in range(lengths[b]):
            c = [sum(arr[tau, b, i] for tau in range(max(0, t - window + 1), t + 1)) + eps for i in range(C)]
            total += -math.log(c[y[b]] / sum(c))
        out.append(total / lengths[b])
    return out


def ref_spikemax_g(s, y, eps, lengths=None):
    counts, _ = _loops(s, lengths)
    return [-math.log((counts[b][y[b]] + eps) / sum(c + eps for c in counts[b])) for b in range(B)]


def ref_spikemax_s(s, y, lengths=None):
    counts, _ = _loops(s, lengths)
    return [_nll_softmax(counts[b], y[b]) for b in range(B)]


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize("masked", [False, True])
def test_losses_match_references(masked):
    s, y = _spikes(), _target()
    yl = y.tolist()
    mask, lengths = _mask() if masked else (None, None)
    u = torch.randn(T, B, C, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    cases = [
        (rate_mse(s, y, mask=mask, reduction="none"), ref_rate_mse(s, yl, lengths)),
        (rate_mse(s, y, mask=mask, reduction="none", per_step=True), ref_rate_mse_per_step(s, yl, lengths)),
        (rate_ce(s, y, mask=mask, reduction="none"), ref_rate_ce(s, yl, 1.0, lengths)),
        (rate_ce(s, y, mask=mask, reduction="none", temperature=0.1), ref_rate_ce(s, yl, 0.1, lengths)),
        (max_over_time_ce(u, y, mask=mask, reduction="none"), ref_max_over_time(u, yl, lengths)),
        (spike_rate(s, y, 0.5, 0.1, mask=mask, reduction="none"), ref_spike_rate(s, yl, 0.5, 0.1, lengths)),
        (spikemax(s, y, 4, mask=mask, reduction="none"), ref_spikemax(s, yl, 4, 1e-3, lengths)),
        (spikemax(s, y, 1, eps=0.5, mask=mask, reduction="none"), ref_spikemax(s, yl, 1, 0.5, lengths)),
        (spikemax(s, y, 100, mask=mask, reduction="none"), ref_spikemax(s, yl, 100, 1e-3, lengths)),
        (spikemax(s, y, mask=mask, reduction="none"), ref_spikemax(s, yl, T, 1e-3, lengths)),
        (spikemax_g(s, y, mask=mask, reduction="none"), ref_spikemax_g(s, yl, 1e-3, lengths)),
        (spikemax_s(s, y, mask=mask, reduction="none"), ref_spikemax_s(s, yl, lengths)),
    ]
    for got, ref in cases:
        assert got.shape == (B,)
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_reductions():
    s, y = _spikes(1), _target(1)
    for name, fn in LOSSES.items():
        x = torch.randn(T, B, C, dtype=torch.float64) if LOSS_INPUT[name] == "membrane" else s
        kw = {"window": 3} if name == "spikemax" else {}
        none = fn(x, y, reduction="none", **kw)
        torch.testing.assert_close(fn(x, y, **kw), none.mean())
        torch.testing.assert_close(fn(x, y, reduction="sum", **kw), none.sum())


def test_masked_steps_are_ignored():
    """Whatever lies beyond a sample's length changes nothing."""
    s, y = _spikes(2), _target(2)
    mask, _ = _mask()
    s2 = s.clone()
    s2[~mask] = 1.0 - s2[~mask]
    u = torch.randn(T, B, C, dtype=torch.float64)
    u2 = u.clone()
    u2[~mask] = 100.0
    for name, fn in LOSSES.items():
        kw = {"window": 3} if name == "spikemax" else {}
        a, b = (u, u2) if LOSS_INPUT[name] == "membrane" else (s, s2)
        torch.testing.assert_close(fn(a, y, mask=mask, **kw), fn(b, y, mask=mask, **kw))


def test_perfect_output_gives_minimum():
    y = torch.tensor([0, 3])
    s = torch.zeros(10, 2, C)
    s[:, 0, 0] = 1.0
    s[:, 1, 3] = 1.0
    assert rate_mse(s, y).item() == 0.0
    s_rate = torch.zeros(10, 2, C)
    s_rate[::5, :, :] = 1.0  # 0.2 everywhere
    s_rate[:, 0, 0] = 0.0
    s_rate[::2, 0, 0] = 1.0  # 0.5 on the true class
    s_rate[:, 1, 3] = 0.0
    s_rate[::2, 1, 3] = 1.0
    assert spike_rate(s_rate, y, true_rate=0.5, false_rate=0.2).item() == pytest.approx(0.0, abs=1e-12)
    assert spikemax_g(s, y, eps=1e-9).item() == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------- gradients
def _smooth_spikes(seed=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(6, 3, 4, generator=g, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck(name, masked):
    x = _smooth_spikes()
    y = torch.tensor([0, 3, 1])
    mask = (torch.arange(6).unsqueeze(1) < torch.tensor([6, 4, 2]).unsqueeze(0)) if masked else None
    kw = {"window": 3} if name == "spikemax" else {}
    fn = LOSSES[name]
    assert torch.autograd.gradcheck(lambda inp: fn(inp, y, mask=mask, **kw), (x,))


def test_spikemax_gradients_match_paper_eq12_eq14():
    """Shrestha et al. 2022, eq. 12: dL/ds_i(t) = (p_i - y_i)/c_i (spikemax_g, with the eps in c);
    eq. 14: dL/ds_i(t) = p^s_i - y_i (spikemax_s); per sample (reduction='sum')."""
    s = _spikes(5, p=0.5).requires_grad_()
    y = _target(5)
    eps = 1e-3
    spikemax_g(s, y, eps=eps, reduction="sum").backward()
    c = s.detach().sum(0) + eps
    p = c / c.sum(-1, keepdim=True)
    onehot = torch.nn.functional.one_hot(y, C).double()
    expected = ((p - onehot) / c).unsqueeze(0).expand(T, B, C)
    torch.testing.assert_close(s.grad, expected)
    s.grad = None
    spikemax_s(s, y, reduction="sum").backward()
    ps = torch.softmax(s.detach().sum(0), -1)
    torch.testing.assert_close(s.grad, (ps - onehot).unsqueeze(0).expand(T, B, C))


def test_spikemax_running_gradient_eq11():
    """eq. 11 for one time step: dl(t)/dc_i(t) = (p_i(t) - y_i)/c_i(t) — check via a window of 1 at T = 1."""
    s = _spikes(6, p=0.6)[:1].clone().requires_grad_()
    y = _target(6)
    spikemax(s, y, 1, eps=1e-3, reduction="sum").backward()
    c = s.detach()[0] + 1e-3
    p = c / c.sum(-1, keepdim=True)
    onehot = torch.nn.functional.one_hot(y, C).double()
    torch.testing.assert_close(s.grad[0], (p - onehot) / c)


# --------------------------------------------------------------------------- registry / errors
def test_registry():
    assert set(LOSSES) == set(LOSS_INPUT) == {
        "rate_mse", "rate_ce", "max_over_time_ce", "spike_rate", "spikemax", "spikemax_g", "spikemax_s"}
    assert LOSS_INPUT["max_over_time_ce"] == "membrane"
    assert all(v == "spikes" for k, v in LOSS_INPUT.items() if k != "max_over_time_ce")
    assert get_loss("SpikeMax-G") is spikemax_g
    assert spikemax.loss_input == "spikes"
    with pytest.raises(ParameterError, match="unknown loss"):
        get_loss("hinge")


def test_bad_inputs():
    s, y = _spikes(), _target()
    with pytest.raises(ParameterError, match=r"\[T, B, C\]"):
        rate_mse(s[0], y)
    with pytest.raises(ParameterError, match="target"):
        rate_mse(s, y.double())
    with pytest.raises(ParameterError, match=r"\[0, 4\]"):
        rate_mse(s, y + C)
    with pytest.raises(ParameterError, match="mask"):
        rate_mse(s, y, mask=torch.ones(T, B + 1, dtype=torch.bool))
    bad = torch.ones(T, B, dtype=torch.bool)
    bad[:, 1] = False
    with pytest.raises(ParameterError, match="no valid time step"):
        rate_mse(s, y, mask=bad)
    with pytest.raises(ParameterError, match="reduction"):
        rate_mse(s, y, reduction="avg")
    with pytest.raises(ParameterError, match="window"):
        spikemax(s, y, 0)


def test_float32_and_autocast():
    s = _spikes().float().requires_grad_()
    y = _target()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for name, fn in LOSSES.items():
            kw = {"window": 3} if name == "spikemax" else {}
            out = fn(s, y, **kw)
            assert torch.isfinite(out)
            out.backward()
