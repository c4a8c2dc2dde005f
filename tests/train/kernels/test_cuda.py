"""The Triton kernels compiled for a real GPU (skipped without CUDA): ``pytest tests/train/kernels -k cuda``.

Run with ``TRITON_INTERPRET=0`` (``benchmarks/run_gpu.sh`` does). float64: every neuron equals its
step path on the GPU exactly as on the CPU backends; float32: the Triton spikes agree with the
torch backend on the same device; bf16 autocast keeps the state in float32; the fused modules
work under ``torch.compile`` (inductor).
"""
from __future__ import annotations

import os

import pytest
import torch

from eventkit_train.kernels import neuron_sequence
from eventkit_train.neurons import LIF, SIT
from eventkit_train.surrogate import ArcTan

from .cases import CASES, IDS, inputs
from .test_equivalence import compare

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
              pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1",
                                 reason="TRITON_INTERPRET=1: run with TRITON_INTERPRET=0 to test compiled Triton")]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cuda_triton_equals_step_path_float64(case):
    _, make, surrogates, scale, channels = case
    shape = (9, 2, 3, 2) if channels else (9, 2, 3)
    for surrogate in surrogates:
        torch.manual_seed(3)
        module = make(surrogate).double().cuda()
        module.backend = "triton"
        for kind in ("constant", "random", "spiking"):
            compare(module, inputs(kind, shape, scale).cuda())


@pytest.mark.parametrize("name,state,params,flags", [
    ("lif", 1, [0.5, 1.0, 0.0], [True, False, False]),
    ("cubalif", 3, [0.6, 0.9, 1.0, 0.0], [False, False]),
    ("sit", 2, [0.5, 0.001, 0.02, 0.0, 0.2, -0.05, 1.0, 1.0, 0.5], [False, False]),
    ("srm", 4, [0.6, 1.36, 0.5, -2.7, 1.0], [False]),
])
def test_cuda_float32_triton_agrees_with_torch_backend(name, state, params, flags):
    x = (torch.rand(20, 64, 4096, device="cuda") * 3.0)
    st = [torch.zeros(64, 4096, device="cuda") for _ in range(state)]
    out = {}
    for be in ("triton", "torch"):
        xr = x.clone().requires_grad_(True)
        s, saved, _ = neuron_sequence(name, xr, st, params, flags, ArcTan(), backend=be)
        s.sum().backward()
        out[be] = (s, saved[0], xr.grad)
    mismatch = (out["triton"][0] != out["torch"][0]).float().mean().item()
    assert mismatch < 1e-4 and out["torch"][0].sum() > 0  # FMA contraction may move a membrane by an ulp
    torch.testing.assert_close(out["triton"][1], out["torch"][1], rtol=1e-4, atol=1e-4)


def test_cuda_bf16_autocast_keeps_state_in_float32():
    lin = torch.nn.Linear(64, 64).cuda()
    x = torch.rand(10, 8, 64, device="cuda")
    for make in (LIF, SIT.tonic):
        m = make()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            h = lin(x)
            out = m(h)
        assert h.dtype == torch.bfloat16 and out.dtype == torch.bfloat16
        assert torch.equal(out.float(), m(h.float()).detach())
        out.float().sum().backward()
        assert torch.isfinite(lin.weight.grad).all()


def test_cuda_torch_compile_inductor():
    m = LIF().cuda()
    lin = torch.nn.Linear(32, 32).cuda()

    def f(x):
        return m(lin(x)).sum()

    x = torch.rand(8, 4, 32, device="cuda")
    eager = torch.autograd.grad(f(x), list(lin.parameters()))
    got = torch.autograd.grad(torch.compile(f, fullgraph=True)(x), list(lin.parameters()))
    for a, b in zip(eager, got, strict=True):
        torch.testing.assert_close(a, b)
