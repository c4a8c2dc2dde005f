"""Backend choice, the generated kernels (float32 arithmetic, threads, cache), the definition
checks, and the custom ops under ``torch.compile``."""
from __future__ import annotations

import math
import types

import pytest
import torch

from eventkit.errors import ParameterError
from eventkit_train.kernels import (
    BACKEND_ENV,
    codegen,
    get_definition,
    neuron_sequence,
    numba_backend,
    register_definition,
    resolve_backend,
    torch_backend,
)
from eventkit_train.neurons import LIF
from eventkit_train.surrogate import ArcTan, FastSigmoid

from .conftest import TRITON_SKIP

DEFS = {  # definition: (state count, float32 params, flags, input scale)
    "lif": (1, [0.5, 1.0, 0.0], [True, False, False], 1.5),
    "cubalif": (3, [0.6, 0.9, 1.0, 0.0], [False, False], 0.8),
    "sit": (2, [0.5, 0.001, 0.02, 0.0, 0.2, -0.05, 1.0, 1.0, 0.5], [False, False], 2.0),
    "srm": (4, [0.6065306597126334, 1.3591409142295225, 0.5, -2.718281828459045, 1.0], [False], 1.0),
}


def _run(name, backend, dtype=torch.float32, T=20, shape=(4, 300), sur=None):
    sur = ArcTan() if sur is None else sur
    n_state, params, flags, scale = DEFS[name]
    g = torch.Generator().manual_seed(0)
    x = (torch.rand((T, *shape), generator=g) * 2 * scale).to(dtype)
    state = [torch.zeros(shape, dtype=dtype) for _ in range(n_state)]
    x.requires_grad_(True)
    spikes, saved, final = neuron_sequence(name, x, state, params, flags, sur, backend=backend)
    (spikes.sum() + saved[0].sum() * 0.1).backward()
    return spikes, saved[0], final, x.grad


@pytest.mark.parametrize("name", list(DEFS))
def test_float32_kernels_compute_in_float32(name):
    """Float literals are typed as the kernel's float: float32 results equal the torch backend bit for bit
    (a float64 promotion inside the kernel would move membranes by an ulp and flip spikes)."""
    ref = _run(name, "torch")
    backends = ["numba"] + ([] if TRITON_SKIP else ["triton"])
    for be in backends:
        got = _run(name, be, shape=(2, 40) if be == "triton" else (4, 300))
        small = _run(name, "torch", shape=(2, 40)) if be == "triton" else ref
        assert torch.equal(got[0], small[0]) and got[0].sum() > 0, be
        assert torch.equal(got[1], small[1]), be
        for a, b in zip(got[2], small[2], strict=True):
            assert torch.equal(a, b), be
        torch.testing.assert_close(got[3], small[3], rtol=1e-5, atol=1e-6)


def test_numba_results_do_not_depend_on_the_thread_count():
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _run("cubalif", "numba", shape=(3, 1000))
        torch.set_num_threads(2)
        two = _run("cubalif", "numba", shape=(3, 1000))
    finally:
        torch.set_num_threads(old)
    for a, b in zip(one[:2] + (one[3],), two[:2] + (two[3],), strict=True):
        assert torch.equal(a, b)


def test_backend_resolution(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert resolve_backend(cpu) == "numba"
    assert resolve_backend(torch.device("meta")) == "torch"
    assert resolve_backend(cpu, "torch") == "torch"
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert resolve_backend(cpu) == "torch"
    assert resolve_backend(cpu, "numba") == "numba"  # the keyword wins over the environment
    monkeypatch.setenv(BACKEND_ENV, "cupy")
    with pytest.raises(ParameterError, match=BACKEND_ENV):
        resolve_backend(cpu)
    with pytest.raises(ParameterError, match="CPU tensors only"):
        resolve_backend(torch.device("meta"), "numba")
    if not TRITON_SKIP:
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        with pytest.raises(ParameterError, match="TRITON_INTERPRET"):
            resolve_backend(cpu, "triton")


def test_module_backend_attribute_and_environment(monkeypatch):
    calls = []
    for mod in (numba_backend, torch_backend):
        real = mod.forward
        monkeypatch.setattr(mod, "forward", lambda *a, _r=real, _m=mod.__name__, **k: calls.append(_m) or _r(*a, **k))
    x = torch.rand(3, 2, 4)
    m = LIF()
    m(x)
    m.backend = "torch"
    m(x)
    m.backend = None
    monkeypatch.setenv(BACKEND_ENV, "torch")
    m(x)
    assert [c.rsplit(".", 1)[1] for c in calls] == ["numba_backend", "torch_backend", "torch_backend"]


def test_bad_calls_are_parameter_errors():
    x = torch.rand(3, 2, 4)
    with pytest.raises(ParameterError, match="expected 1 state"):
        neuron_sequence("lif", x, [], [0.5, 1.0, 0.0], [True, False, False], ArcTan())
    with pytest.raises(ParameterError, match="dimension 2"):
        neuron_sequence("lif", x, [x[0]], [torch.ones(3), 1.0, 0.0], [True, False, False], ArcTan())
    with pytest.raises(ParameterError, match="float32 or float64"):
        neuron_sequence("lif", x.half(), [x[0]], [0.5, 1.0, 0.0], [True, False, False], ArcTan())


def test_definition_checks():
    bad = types.ModuleType("bad_def")
    with pytest.raises(TypeError, match="lacks NAME"):
        register_definition(bad)
    lif = get_definition("lif").module
    wrong = types.ModuleType("wrong_def")
    for k in ("STATE", "SAVED", "RESTORED", "PARAMS", "LEARNABLE", "FLAGS", "restore", "step_vjp"):
        setattr(wrong, k, getattr(lif, k))
    wrong.NAME = "wrong"
    wrong.step = lambda x, v: (x, x, v)
    with pytest.raises(TypeError, match="step must take 8 arguments"):
        register_definition(wrong)
    with pytest.raises(KeyError, match="no neuron definition"):
        get_definition("hodgkin-huxley")


def test_codegen_wraps_float_literals_and_reuses_the_cache(tmp_path, monkeypatch):
    def f(x, k):
        return x * (1.0 - k) + 2
    src = codegen.function_source(f, "@njit", wrap_floats=True)
    assert "F(1.0)" in src and "F(2" not in src and src.startswith("@njit")
    monkeypatch.setenv("EVENTKIT_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(codegen, "_IMPORTED", {})
    mod = codegen.write_and_import("probe", ["X = 1"])
    (path,) = tmp_path.glob("probe_*.py")
    stamp = path.stat().st_mtime_ns
    monkeypatch.setattr(codegen, "_IMPORTED", {})
    again = codegen.write_and_import("probe", ["X = 1"])
    assert mod.X == again.X == 1 and path.stat().st_mtime_ns == stamp  # not rewritten: Numba's cache stays valid


def test_custom_ops_pass_opcheck():
    """Schema, fake (meta) implementations and autograd registration of the two ops."""
    x = torch.rand(4, 2, 3, dtype=torch.float64, requires_grad=True)
    v0 = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    k = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    p = [k, torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)]
    torch.library.opcheck(torch.ops.eventkit.neuron_forward.default,
                          ("lif", "numba", x, [v0], p, [True, False, False], [0.0, 2.0, 0.0]))


def test_fused_neuron_under_torch_compile():
    torch.manual_seed(0)
    m = LIF(surrogate=FastSigmoid(slope=5.0))
    lin = torch.nn.Linear(6, 6)

    def f(x):
        return m(lin(x)).sum()

    x = torch.rand(5, 3, 6)
    eager = torch.autograd.grad(f(x), list(lin.parameters()))
    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    out = torch.autograd.grad(compiled(x), list(lin.parameters()))
    for a, b in zip(eager, out, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("backend", ["numba"] + ([] if TRITON_SKIP else ["triton"]))
def test_broadcast_output_gradients_are_read_in_place(backend):
    """Gradients that arrive expanded (a sum: one value; a mean over time: one row) give the same
    result as the materialised gradient."""
    n_state, params, flags, scale = DEFS["cubalif"]
    x0 = torch.rand(6, 2, 5, dtype=torch.float64) * 2 * scale
    state = [torch.zeros(2, 5, dtype=torch.float64) for _ in range(n_state)]
    w_row = torch.rand(2, 5, dtype=torch.float64)
    losses = {"sum": lambda s, u: s.sum() + 0.5 * u.sum(), "time-mean": lambda s, u: (s.mean(0) * w_row).sum()}
    for name, loss in losses.items():
        grads = {}
        for be in (backend, "torch"):
            x = x0.clone().requires_grad_(True)
            spikes, saved, _ = neuron_sequence("cubalif", x, state, params, flags, ArcTan(), backend=be)
            (grads[be],) = torch.autograd.grad(loss(spikes, saved[0]), x)
        torch.testing.assert_close(grads[backend], grads["torch"], rtol=1e-12, atol=1e-14, msg=name)


@pytest.mark.parametrize("backend", ["numba", "torch"] + ([] if TRITON_SKIP else ["triton"]))
def test_empty_batch(backend):
    x = torch.rand(4, 0, 3, requires_grad=True)
    spikes, saved, final = neuron_sequence("lif", x, [torch.zeros(0, 3)], [0.5, 1.0, 0.0], [True, False, False],
                                           ArcTan(), backend=backend)
    spikes.sum().backward()
    assert spikes.shape == x.shape and final[0].shape == (0, 3) and x.grad.shape == x.shape


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numba_exp_is_accurate_at_every_magnitude(dtype):
    """The kernels' own (vectorisable) e^z: within 2 ulp of the exact value, 0 / inf / nan at the ends."""
    np = pytest.importorskip("numpy")
    exp = numba_backend.kernels(get_definition("srm"), dtype).exp
    npd = np.float32 if dtype == torch.float32 else np.float64
    rng = np.random.default_rng(0)
    hi = 88.0 if npd is np.float32 else 709.0
    z = np.concatenate([rng.uniform(-1, 1, 2000), rng.uniform(-20, 20, 2000), rng.uniform(-hi, hi, 2000),
                        [0.0, 1e-30, -1e-30, 0.5 * np.log(2), hi, -hi + 2.0]]).astype(npd)
    got = np.array([exp(v) for v in z], dtype=npd)
    exact = np.exp(z.astype(np.longdouble))
    ulps = np.abs(got - exact) / np.spacing(exact.astype(npd)).astype(np.longdouble)
    assert ulps.max() <= 2.0, (ulps.max(), z[ulps.argmax()])
    libm = np.array([math.exp(float(v)) for v in z]).astype(npd)  # Python's math.exp, rounded to the dtype
    assert (np.abs(got - libm) / np.spacing(libm)).max() <= 2.0
    big = 1000.0
    assert exp(npd(-big)) == 0.0 and exp(npd(big)) == np.inf and exp(npd(-np.inf)) == 0.0
    assert exp(npd(np.inf)) == np.inf and np.isnan(exp(npd(np.nan)))
