"""Surrogates: Heaviside forward, backward = analytic derivative = autograd of the smooth function."""
from __future__ import annotations

import math

import pytest
import torch

from eventkit.errors import ParameterError
from eventkit_train.surrogate import (
    SURROGATES,
    ArcTan,
    Exponential,
    FastSigmoid,
    Sigmoid,
    Surrogate,
    Triangle,
    get_surrogate,
)

CASES = [
    ArcTan(), ArcTan(alpha=0.7), Sigmoid(), Sigmoid(alpha=10.0), FastSigmoid(), FastSigmoid(slope=3.0),
    Triangle(), Triangle(width=0.3), Exponential(), Exponential(alpha=0.5, tau=2.5),
]


def _points() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(200, generator=g, dtype=torch.float64) * 2,
                   torch.tensor([-1e-3, 1e-3, 0.25, -0.25, 5.0, -5.0], dtype=torch.float64)])
    # avoid the kinks of the triangle/exponential/fast-sigmoid at 0 and ±width
    return x[(x.abs() > 1e-6) & ((x.abs() - 0.3).abs() > 1e-6) & ((x.abs() - 1.0).abs() > 1e-6)]


@pytest.mark.parametrize("sur", CASES, ids=repr)
def test_forward_is_heaviside(sur: Surrogate) -> None:
    x = torch.tensor([-2.0, -1e-7, 0.0, 1e-7, 3.0])
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        y = sur(x.to(dtype))
        assert y.dtype == dtype
        assert y.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("sur", CASES, ids=repr)
def test_backward_matches_autograd_of_smooth_function(sur: Surrogate) -> None:
    x = _points().requires_grad_()
    g = torch.rand(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (sur(x) * g).sum().backward()
    ours = x.grad.clone()
    x2 = x.detach().clone().requires_grad_()
    (sur.smooth(x2) * g).sum().backward()
    torch.testing.assert_close(ours, x2.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(ours, g * sur.derivative(x.detach()), rtol=1e-12, atol=1e-14)


def test_closed_forms_at_points() -> None:
    x = torch.tensor([0.0, 0.5], dtype=torch.float64)
    # arctan with alpha=2 is arctan(pi x)/pi + 1/2, derivative 1/(1+(pi x)^2)
    torch.testing.assert_close(ArcTan(2.0).derivative(x), 1 / (1 + (math.pi * x) ** 2))
    torch.testing.assert_close(ArcTan(2.0).smooth(x), torch.atan(math.pi * x) / math.pi + 0.5)
    assert FastSigmoid(100.0).derivative(x).tolist() == [1.0, 1 / 51.0 ** 2]
    assert Triangle(1.0).derivative(x).tolist() == [1.0, 0.5]
    torch.testing.assert_close(Exponential(1.0, 2.0).derivative(x),
                               torch.tensor([0.5, 0.5 * math.exp(-0.25)], dtype=torch.float64))
    torch.testing.assert_close(Sigmoid(4.0).derivative(x)[0], torch.tensor(1.0, dtype=torch.float64))
    # triangle's smooth function goes 0 -> 1 across [-w, w]
    assert Triangle(0.5).smooth(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("sur", [ArcTan(smooth=True), Sigmoid(smooth=True), Triangle(smooth=True),
                                 Exponential(smooth=True), FastSigmoid(slope=2.0, smooth=True)], ids=repr)
def test_smooth_mode_gradcheck(sur: Surrogate) -> None:
    x = _points()[:20].requires_grad_()
    assert torch.autograd.gradcheck(sur, (x,))


def test_backward_dtype_bfloat16() -> None:
    x = torch.randn(10).to(torch.bfloat16).requires_grad_()
    ArcTan()(x).sum().backward()
    assert x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(x.grad.float(), ArcTan().derivative(x.detach().float()), rtol=1e-2, atol=1e-2)


def test_get_surrogate() -> None:
    for name, cls in SURROGATES.items():
        assert isinstance(get_surrogate(name), cls)
        assert isinstance(get_surrogate(name.upper().replace("_", "-")), cls)
    assert get_surrogate("fast_sigmoid", slope=25.0).slope == 25.0
    obj = ArcTan(3.0)
    assert get_surrogate(obj) is obj

    def f(x):
        return (x >= 0).float()

    assert get_surrogate(f) is f
    with pytest.raises(ParameterError, match="unknown surrogate"):
        get_surrogate("relu")
    with pytest.raises(ParameterError, match="alpha"):
        ArcTan(alpha=-1.0)
    with pytest.raises(ParameterError):
        get_surrogate("arctan", beta=3)
    assert ArcTan(2.0) == ArcTan(2.0) and ArcTan(2.0) != ArcTan(3.0)


@pytest.mark.parametrize("sur", CASES, ids=repr)
def test_kernel_spec_names_the_same_derivative(sur: Surrogate) -> None:
    """The fused kernels pick σ' by ``kernel_spec()``: it must be the surrogate's own derivative."""
    from eventkit_train.kernels.surrogates import surrogate_grad

    z = torch.linspace(-3, 3, 61, dtype=torch.float64)
    kind, a, b = sur.kernel_spec()
    torch.testing.assert_close(surrogate_grad(z, kind, a, b), sur.derivative(z), rtol=0, atol=0)
