"""Static-image encoders: statistics, reproducibility, exact latency equation, shapes, devices, dispatcher."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.encode import (
    METHODS,
    Encoder,
    direct_encode,
    encode,
    latency_encode,
    poisson_encode,
    rate_encode,
    sample_generator,
)
from eventkit.errors import ParameterError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
LEVELS = torch.linspace(0, 1, 11)  # 0.0, 0.1, ..., 1.0


def level_image(width: int = 400, device="cpu") -> torch.Tensor:
    """[1, 11, width]: row r has intensity r/10."""
    return LEVELS.to(device).view(1, 11, 1).expand(1, 11, width).contiguous()


def assert_binomial_mean(spikes: torch.Tensor, p: torch.Tensor, sigmas: float = 5.0) -> None:
    """Row means of spikes [T, 1, 11, W] within ``sigmas`` binomial std of p [11]."""
    n = spikes.shape[0] * spikes.shape[-1]
    mean = spikes.double().mean(dim=(0, 1, 3)).cpu()
    for r in range(11):
        pr = float(p[r])
        tol = sigmas * math.sqrt(pr * (1 - pr) / n)
        assert abs(float(mean[r]) - pr) <= tol + 1e-12, (r, float(mean[r]), pr, tol)


# --------------------------------------------------------------------------- rate / poisson

@pytest.mark.parametrize("device", DEVICES)
def test_rate_mean_matches_intensity(device):
    img = level_image(device=device)
    s = rate_encode(img, 50, seed=1)
    assert s.shape == (50, 1, 11, 400) and s.dtype == torch.float32 and s.device.type == device
    assert set(torch.unique(s).tolist()) <= {0.0, 1.0}
    assert_binomial_mean(s, LEVELS.double())
    assert not s[:, 0, 0].any() and s[:, 0, 10].all()  # p = 0 never fires, p = 1 always


def test_rate_reproducible_and_seed_dependent():
    img = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = rate_encode(img, 10, seed=42)
    b = rate_encode(img, 10, seed=42)
    c = rate_encode(img, 10, seed=43)
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(rate_encode(img, 10, generator=g1), rate_encode(img, 10, generator=g2))
    u8 = rate_encode(img, 10, seed=42, dtype=torch.uint8)
    assert u8.dtype == torch.uint8 and torch.equal(u8.float(), a)
    assert torch.equal(rate_encode(img, 10, seed=42, dtype="bool").float(), a)


def test_rate_uses_uniform_draw_per_step():
    """The documented rule: S[k] = U[k] < I with one float32 draw per element and step."""
    img = torch.rand(1, 4, 5, generator=torch.Generator().manual_seed(3))
    g = sample_generator(9, 0)
    want = torch.stack([torch.rand(img.shape, generator=g) < img for _ in range(6)]).float()
    assert torch.equal(rate_encode(img, 6, generator=sample_generator(9, 0)), want)


@pytest.mark.parametrize("device", DEVICES)
def test_poisson_probability_rule(device):
    img = level_image(device=device)
    s = poisson_encode(img, 50, max_rate_hz=200.0, dt_s=0.005, seed=3)  # rate*dt = I
    p = 1 - torch.exp(-LEVELS.double())
    assert_binomial_mean(s, p)
    # distinct from the rate code: at I = 0.5, 1 - e^-0.5 = 0.393 vs 0.5 (many sigmas apart)
    assert abs(float(s[:, 0, 5].mean()) - 0.5) > 0.05
    d = poisson_encode(img, 50, seed=3)  # defaults 1000 Hz, 1 ms -> same probabilities
    assert_binomial_mean(d, p)
    assert set(torch.unique(s).tolist()) <= {0.0, 1.0}


def test_poisson_errors():
    img = torch.zeros(1, 2, 2)
    with pytest.raises(ParameterError, match="dt_s"):
        poisson_encode(img, 4, dt_s=0)
    with pytest.raises(ParameterError, match="max_rate_hz"):
        poisson_encode(img, 4, max_rate_hz=-1.0)
    with pytest.raises(ParameterError, match="seed or generator"):
        poisson_encode(img, 4, seed=1, generator=torch.Generator())


# --------------------------------------------------------------------------- direct

def test_direct_repeats_image():
    img = torch.rand(2, 3, 4, 5)
    d = direct_encode(img, 7)
    assert d.shape == (7, 2, 3, 4, 5)
    for k in range(7):
        assert torch.equal(d[k], img)
    assert d.stride(0) == 0  # an expand view by default
    c = direct_encode(img, 7, copy=True)
    assert c.is_contiguous() and torch.equal(c, d)
    u8 = torch.tensor([[[0, 51, 255]]], dtype=torch.uint8)
    np.testing.assert_allclose(direct_encode(u8, 2)[1, 0, 0].numpy(), [0.0, 0.2, 1.0], rtol=1e-6)
    with pytest.raises(ParameterError, match="dtype"):
        direct_encode(img, 3, dtype=torch.uint8)


# --------------------------------------------------------------------------- latency

def first_spike(spikes: torch.Tensor) -> torch.Tensor:
    """Index of the first spike along T (T where there is none)."""
    T = spikes.shape[0]
    any_ = spikes.bool().any(0)
    idx = spikes.bool().to(torch.int8).argmax(0)
    return torch.where(any_, idx, torch.full_like(idx, T))


def test_latency_hand_example():
    # T = 5, t_max = 4: t = floor((1 - I) * 4)
    img = torch.tensor([[[0.0, 0.5, 1.0, 0.25, 0.9]]])
    s = latency_encode(img, 5)
    want_t = [4, 2, 0, 3, 0]  # 0.9 -> floor(0.4) = 0
    assert torch.equal(first_spike(s)[0, 0], torch.tensor(want_t))
    assert torch.equal(s.sum(0), torch.ones_like(img))
    # t_max = 9 with T = 12: I = 0.25 -> floor(6.75) = 6; I = 0 -> 9
    s = latency_encode(img, 12, t_max=9)
    assert first_spike(s)[0, 0].tolist() == [9, 4, 0, 6, 0]


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.integers(0, 255), min_size=1, max_size=40),
    T=st.integers(1, 40),
    frac=st.floats(0, 1),
)
def test_latency_uint8_exact_equation(values, T, frac):
    """uint8 input: t_i = floor((255 - v) / 255 * t_max), checked in exact rationals."""
    t_max = int(frac * (T - 1))
    img = torch.tensor(values, dtype=torch.uint8).view(1, 1, -1)
    s = latency_encode(img, T, t_max=t_max, dtype=torch.uint8)
    want = [math.floor(Fraction(255 - v, 255) * t_max) for v in values]
    assert first_spike(s)[0, 0].tolist() == want
    assert s.sum(0).eq(1).all()  # threshold 0: every input fires exactly once


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(0, 1, width=32), min_size=1, max_size=40), T=st.integers(1, 30))
def test_latency_float_equation_and_order(values, T):
    img = torch.tensor(values, dtype=torch.float32).view(1, 1, -1)
    s = latency_encode(img, T)
    t = first_spike(s)[0, 0]
    exact = [math.floor((1 - Fraction(float(v))) * (T - 1)) for v in img.view(-1).tolist()]
    assert t.tolist() == exact
    assert s.sum(0).eq(1).all()
    # brighter -> earlier (never later)
    order = torch.argsort(img.view(-1), stable=True)
    assert (t[order][1:] <= t[order][:-1]).all()


def test_latency_threshold_and_image_max():
    img = torch.tensor([[[0.0, 0.2, 0.4]]])
    s = latency_encode(img, 5, threshold=1e-6)
    assert s.sum().item() == 2 and s[:, 0, 0, 0].sum() == 0  # zero input silent
    s = latency_encode(img, 5, threshold=0.3)
    assert s.sum().item() == 1 and s[:, 0, 0, 2].sum() == 1
    # I_max = image max (0.4): t = floor((0.4 - I) / 0.4 * 4) -> [4, 2, 0]
    s = latency_encode(img, 5, i_max="image")
    assert first_spike(s)[0, 0].tolist() == [4, 2, 0]
    # all-zero image with the per-image max: everything at t_max
    z = latency_encode(torch.zeros(1, 2, 2), 3, i_max="image")
    assert z[2].eq(1).all() and z[:2].eq(0).all()
    # batched: each image its own max
    b = latency_encode(torch.stack([img, img / 2]), 5, i_max="image")
    assert first_spike(b)[:, 0, 0].tolist() == [[4, 2, 0], [4, 2, 0]]


def test_latency_errors():
    img = torch.zeros(1, 2, 2)
    for kw, name in [({"t_max": 5}, "t_max"), ({"t_max": -1}, "t_max"), ({"t_max": 1.5}, "t_max"),
                     ({"threshold": 2.0}, "threshold"), ({"i_max": 0.0}, "i_max"), ({"i_max": "max"}, "i_max")]:
        with pytest.raises(ParameterError, match=name):
            latency_encode(img, 5, **kw)


# --------------------------------------------------------------------------- inputs, shapes, devices

@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5)])
def test_shapes_dtype_device(method, shape):
    img = torch.rand(shape)
    out = encode(img, 6, method)
    assert out.shape == (6, *shape) and out.dtype == torch.float32 and out.device == img.device


def test_numpy_and_uint8_inputs():
    arr = (np.arange(60, dtype=np.uint8) * 4).reshape(3, 4, 5)
    from_np = rate_encode(arr, 5, seed=2)
    as_float = rate_encode(torch.from_numpy(arr).float() / 255, 5, seed=2)
    assert from_np.device.type == "cpu" and torch.equal(from_np, as_float)
    assert torch.equal(latency_encode(arr[:, ::-1], 4), latency_encode(torch.from_numpy(arr[:, ::-1].copy()), 4))
    img = np.linspace(0, 1, 12, dtype=np.float32).reshape(1, 3, 4)
    big = img.astype(">f4")  # e.g. read from a big-endian file: same spikes as the native array
    for enc in (rate_encode, latency_encode):
        assert torch.equal(enc(big, 4, seed=1) if enc is rate_encode else enc(big, 4),
                           enc(img, 4, seed=1) if enc is rate_encode else enc(img, 4))
    with pytest.raises(ParameterError, match="dtype object not supported"):
        rate_encode(np.empty((1, 2, 2), dtype=object), 3)


def test_input_errors():
    with pytest.raises(ParameterError, match="shape"):
        rate_encode(torch.rand(4, 4), 3)
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        rate_encode(torch.full((1, 2, 2), 1.5), 3)
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        rate_encode(torch.full((1, 2, 2), float("nan")), 3)
    with pytest.raises(ParameterError, match="dtype"):
        rate_encode(torch.ones(1, 2, 2, dtype=torch.int64), 3)
    with pytest.raises(ParameterError, match="T"):
        rate_encode(torch.ones(1, 2, 2), 0)
    with pytest.raises(ParameterError, match="images"):
        rate_encode([[[0.5]]], 3)
    with pytest.raises(ParameterError, match="dtype"):
        rate_encode(torch.ones(1, 2, 2), 3, dtype=torch.int32)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_path_never_goes_through_numpy(monkeypatch, device):
    """Encoders on torch tensors stay in torch (the same code runs on CUDA)."""
    def refuse(*a, **k):
        raise AssertionError("tensor converted to NumPy inside an encoder")

    monkeypatch.setattr(torch.Tensor, "numpy", refuse)
    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    img = torch.rand(2, 1, 3, 3, device=device)
    for method in METHODS:
        out = encode(img, 4, method, **({"seed": 0} if method in ("rate", "poisson") else {}))
        assert out.device == img.device
    e = Encoder("rate", 4, {"seed": 1})
    assert e(img, index=torch.tensor([3, 4])).device == img.device


# --------------------------------------------------------------------------- per-sample seeding, Encoder

def test_sample_generator_depends_on_seed_and_index_only():
    a = torch.rand(8, generator=sample_generator(1, 5))
    assert torch.equal(a, torch.rand(8, generator=sample_generator(1, 5)))
    assert not torch.equal(a, torch.rand(8, generator=sample_generator(1, 6)))
    assert not torch.equal(a, torch.rand(8, generator=sample_generator(2, 5)))
    with pytest.raises(ParameterError, match="index"):
        sample_generator(1, 2.5)


@pytest.mark.parametrize("method", ["rate", "poisson"])
def test_encoder_per_sample_independent_of_batching(method):
    imgs = torch.rand(4, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    enc = Encoder(method, 8, {"seed": 11, "dtype": "uint8"})
    whole = enc(imgs, index=[10, 11, 12, 13])
    assert whole.shape == (8, 4, 1, 5, 5) and whole.dtype == torch.uint8
    halves = torch.cat([enc(imgs[:2], index=[10, 11]), enc(imgs[2:], index=np.array([12, 13]))], dim=1)
    assert torch.equal(whole, halves)
    for b in range(4):
        assert torch.equal(whole[:, b], enc(imgs[b], index=10 + b))
    assert not torch.equal(whole[:, 0], enc(imgs[0], index=99))


def test_encoder_dict_round_trip_and_checks():
    enc = Encoder("latency", 10, {"t_max": 7, "dtype": torch.uint8})
    d = enc.to_dict()
    assert d == {"method": "latency", "T": 10, "params": {"t_max": 7, "dtype": "uint8"}}
    again = Encoder.from_dict(d)
    assert again == enc
    img = torch.rand(1, 3, 3)
    assert torch.equal(again(img), latency_encode(img, 10, t_max=7, dtype=torch.uint8))
    assert torch.equal(Encoder("direct", 3)(img), direct_encode(img, 3))
    with pytest.raises(ParameterError, match="unknown encoding"):
        Encoder("phase", 4)
    with pytest.raises(ParameterError, match="max_rate_hz"):
        Encoder("rate", 4, {"max_rate_hz": 10.0})
    with pytest.raises(ParameterError, match="T"):
        Encoder("rate", 0)
    with pytest.raises(ParameterError, match="seed"):
        Encoder("rate", 4)(img, index=3)
    with pytest.raises(ParameterError, match="B=2"):
        Encoder("rate", 4, {"seed": 0})(torch.rand(2, 1, 2, 2), index=[1])
    with pytest.raises(ParameterError, match="T"):
        Encoder.from_dict({"method": "rate"})
    with pytest.raises(ParameterError, match="takes"):
        encode(img, 3, "direct", seed=1)


def test_encoder_is_hashable_and_checks_seed():
    a = Encoder("rate", 4, {"seed": 1, "dtype": torch.uint8})
    b = Encoder("rate", 4, {"seed": np.int64(1), "dtype": "uint8"})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(ParameterError, match="seed"):
        Encoder("rate", 4, {"seed": "1"})
