"""NIR export/import: file round trip gives identical spikes; the continuous parameters follow the
forward-Euler mapping (checked against NIR's equations stepped by hand in float64); graphs from
other libraries; what NIR cannot express is refused by name."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")

from eventkit.errors import ParameterError  # noqa: E402 - after the importorskip above
from eventkit_train.export import from_nir, load_nir, save_nir, to_nir  # noqa: E402 - after the importorskip above
from eventkit_train.models import build, fsnn  # noqa: E402 - after the importorskip above
from eventkit_train.models.layers import TimeFolded  # noqa: E402 - after the importorskip above
from eventkit_train.neurons import CUBALIF, IF, LIF, PLIF, SIT, SRM, NeuronModule  # noqa: E402 - after the importorskip above
from eventkit_train.neurons.readout import LeakyReadout  # noqa: E402 - after the importorskip above
from eventkit_train.views import record_spikes  # noqa: E402 - after the importorskip above


def _scaled(net: nn.Module, factor: float, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for m in net.modules():  # fresh weights, scaled up so that every layer fires
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            m.reset_parameters()
            with torch.no_grad():
                m.weight.mul_(factor)
    return net.eval()


NETS = {
    "conv-lif-avgpool-plif-if": (lambda: build("c8k3s1-LIF-APk2s2-c8k3s1-PLIF-FC32-IF-FC10-LIF", (2, 12, 12),
                                               bias=True, tau=3.0), (2, 12, 12), 12.0),
    "slayer-sumpool": (lambda: build("12x12x2-6c3-2a-24-10", (2, 12, 12), neuron="lif"), (2, 12, 12), 10.0),
    "voting": (lambda: build("c4k3s1-LIF-FC40-LIF-APk4s4", (2, 8, 8), bias=True), (2, 8, 8), 10.0),
    "fsnn-cubalif-readout": (lambda: fsnn(40, 30, 5, readout_kwargs={"tau_syn": 4.0, "tau_mem": 10.0}), (40,), 4.0),
    "cubalif-heterogeneous-learnable": (
        lambda: build("40-30-5", (40,), neuron="cubalif", readout="membrane", heterogeneous=True, learnable=True,
                      alpha=list(np.linspace(0.2, 0.8, 30)), readout_kwargs={"tau_syn": 3.0, "learnable": True}),
        (40,), 4.0),
}


def _input(shape, T=14, B=3, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B) + tuple(shape), generator=g) < 0.35).float()


def layer_spikes(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Output of every neuron / readout layer, in order (eventkit_train.views.record_spikes)."""
    return [r.output for r in record_spikes(net, x)]


@pytest.mark.parametrize("key", sorted(NETS))
def test_file_round_trip_gives_identical_spikes(tmp_path, key):
    make, shape, factor = NETS[key]
    net = _scaled(make(), factor)
    path = tmp_path / "net.nir"
    graph = save_nir(net, path, shape)
    back = from_nir(nir.read(str(path)))
    assert type(graph.nodes["output"]) is nir.Output and back.input_shape == shape
    x = _input(shape)
    ours, theirs = layer_spikes(net, x), layer_spikes(back, x)
    assert len(ours) == len(theirs) >= 2
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert torch.equal(a, b), f"layer {i} differs"
    recorded = [m for m in net.modules() if isinstance(m, (NeuronModule, LeakyReadout))]
    spiking = [s for s, m in zip(ours, recorded, strict=True) if isinstance(m, NeuronModule)]
    for i, s in enumerate(spiking):  # not a vacuous comparison: every spiking layer fires, none saturates
        assert 0.01 < float(s.mean()) < 0.9, f"spiking layer {i} rate {float(s.mean())}"
    assert torch.equal(net(x), load_nir(path)(x)) and back.output == net.output


def test_batchnorm_is_folded_into_the_conv_before_it(tmp_path):
    net = _scaled(build("c8k3s1-BN-LIF-APk2s2-FC10-LIF", (2, 12, 12)), 2.0)
    bn = net.layers[1].module
    with torch.no_grad():
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    graph = to_nir(net, (2, 12, 12))
    assert "1_bn" not in graph.nodes and graph.nodes["0_conv"].metadata["folded_batchnorm"] == "1_bn"
    back = from_nir(graph)
    x = _input((2, 12, 12))
    with torch.no_grad():
        want = net.layers[1](net.layers[0](x))
        got = back.layers[0](x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # float32 rounding of the fold only
    agree = (layer_spikes(net, x)[0] == layer_spikes(back, x)[0]).float().mean()
    assert agree > 0.999


# --------------------------------------------------------- the continuous parameters, by hand

def _euler(node, x: np.ndarray, dt: float) -> np.ndarray:
    """NIR's equation of ``node`` stepped with forward Euler in float64, from the node's continuous
    parameters only; spikes compare ``v >= v_threshold`` (eventkit's Θ(0) = 1) and the CubaLIF
    reset acts at the step after a spike (eventkit's CUBA-LIF, recorded in the node's metadata)."""
    p = {k: np.asarray(getattr(node, k), dtype=np.float64) for k in
         ("tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in") if hasattr(node, k)}
    v = np.zeros(x.shape[1:]) if "v_reset" not in p else p["v_reset"] * np.ones(x.shape[1:])
    if isinstance(node, (nir.LIF, nir.LI)):
        v = p["v_leak"] * np.ones(x.shape[1:]) if isinstance(node, nir.LIF) else np.zeros(x.shape[1:])
    i = np.zeros(x.shape[1:])
    z = np.zeros(x.shape[1:])
    out = []
    for t in range(x.shape[0]):
        if isinstance(node, nir.IF):
            v = v + dt * p["r"] * x[t]
        elif isinstance(node, (nir.LIF, nir.LI)):
            v = v + dt / p["tau"] * (p["v_leak"] - v + p["r"] * x[t])
        else:  # CubaLIF, CubaLI
            i = i + dt / p["tau_syn"] * (-i + p["w_in"] * x[t])
            v = v + dt / p["tau_mem"] * (p["v_leak"] - v + p["r"] * i)
            if isinstance(node, nir.CubaLIF):
                v = np.where(z > 0, p["v_reset"], v)
        if isinstance(node, (nir.LI, nir.CubaLI)):
            out.append(v.copy())
            continue
        z = (v >= p["v_threshold"]).astype(np.float64)
        out.append(z)
        if not isinstance(node, nir.CubaLIF):
            v = np.where(z > 0, p["v_reset"], v)
    return np.stack(out)


@pytest.mark.parametrize("dt", [1e-4, 1e-3])
@pytest.mark.parametrize("neuron", [
    lambda: IF(v_threshold=1.3), lambda: IF(v_reset=-0.2),
    lambda: LIF(tau=3.7, v_threshold=0.8), lambda: LIF(tau=1.5, v_reset=0.1, v_threshold=0.9),
    lambda: PLIF(tau_init=4.0), lambda: CUBALIF(alpha=0.55, beta=0.85, v_threshold=1.2),
    lambda: CUBALIF(alpha=[0.2, 0.5, 0.7, 0.9, 0.4, 0.6], beta=0.9, n_features=6),
    lambda: LeakyReadout(tau_mem=6.0), lambda: LeakyReadout(tau_syn=2.5, tau_mem=7.0),
], ids=["if", "if-reset", "lif", "lif-reset", "plif", "cubalif", "cubalif-per-neuron", "li", "cubali"])
def test_node_parameters_follow_nirs_equations_stepped_by_euler(neuron, dt):
    mod = neuron()
    graph = to_nir(nn.Sequential(mod), (6,), dt=dt)
    node = graph.nodes["0"]
    x = np.random.default_rng(3).uniform(-0.5, 3.0, (30, 4, 6))
    with torch.no_grad():
        ours = mod(torch.from_numpy(x)).numpy()
    ref = _euler(node, x, dt)
    if isinstance(mod, LeakyReadout):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    else:
        assert 0.05 < ref.mean() < 0.95
        np.testing.assert_array_equal(ours, ref)


def _strip(graph):
    """The graph as another library would write it: no eventkit metadata, no dt."""
    for node in graph.nodes.values():
        node.metadata = {}
    graph.metadata = {}
    return graph


@pytest.mark.parametrize("key", ["conv-lif-avgpool-plif-if", "fsnn-cubalif-readout"])
def test_graph_without_eventkit_metadata_is_read_from_the_continuous_parameters(key):
    make, shape, factor = NETS[key]
    net = _scaled(make(), factor).double()
    graph = _strip(to_nir(net, shape))  # dt = 1e-4 s, the default of from_nir too
    if key.startswith("fsnn"):
        with pytest.warns(UserWarning, match="clears the membrane at the step after a spike"):
            back = from_nir(graph).double()
    else:
        back = from_nir(graph).double()
    x = _input(shape).double()
    for a, b in zip(layer_spikes(net, x), layer_spikes(back, x), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_foreign_gains_move_into_the_threshold():
    """A LIF with r = 2 (input gain) and an IF with r·dt = 0.5 fire exactly where the same
    neurons with their thresholds and resets divided by the gain fire."""
    lif = nir.LIF(tau=np.full(4, 3e-4), r=np.full(4, 2.0), v_leak=np.full(4, 0.2), v_threshold=np.full(4, 1.6),
                  v_reset=np.full(4, 0.2))
    iff = nir.IF(r=np.full(4, 5e3), v_threshold=np.full(4, 1.0), v_reset=np.zeros(4))
    for node in (lif, iff):
        graph = nir.NIRGraph.from_list(nir.Input(input_type=np.array([4])), node, nir.Output(output_type=np.array([4])))
        net = from_nir(graph, dt=1e-4).double()
        x = np.random.default_rng(0).uniform(0, 1.2, (25, 2, 4))
        ref = _euler(node, x, 1e-4)
        with torch.no_grad():
            np.testing.assert_array_equal(net(torch.from_numpy(x)).numpy(), ref)


# ------------------------------------------------------------------------------ refusals

@pytest.mark.parametrize("model, shape, match", [
    (lambda: nn.Sequential(TimeFolded(nn.Linear(4, 4)), SIT.tonic()), (4,), r"layer '1' is a SIT neuron"),
    (lambda: nn.Sequential(TimeFolded(nn.Linear(4, 4)), SRM()), (4,), r"layer '1' is a SRM neuron"),
    (lambda: nn.Sequential(LIF(v_reset=None)), (4,), r"layer '0' \(LIF\) uses a soft"),
    (lambda: build("c4k3s1-LIF-MPk2s2-FC4-LIF", (2, 8, 8)), (2, 8, 8), r"layer '2_maxpool' is max pooling"),
    (lambda: fsnn(4, 3, 2, recurrent=True), (4,), r"layer '1_rcubalif' is a recurrent CUBA-LIF"),
    (lambda: nn.Sequential(TimeFolded(nn.BatchNorm1d(4)), LIF()), (4,), r"BatchNorm layer '0' does not follow"),
    (lambda: nn.Sequential(TimeFolded(nn.ReLU())), (4,), r"layer '0' \(TimeFolded of ReLU\) has no NIR"),
])
def test_what_nir_cannot_express_is_named(model, shape, match):
    with pytest.raises(ParameterError, match=match):
        to_nir(model(), shape)


def test_bad_arguments_and_graphs_are_named():
    net = nn.Sequential(TimeFolded(nn.Linear(4, 3)), LIF())
    with pytest.raises(ParameterError, match="dt must be a positive"):
        to_nir(net, (4,), dt=0)
    with pytest.raises(ParameterError, match=r"layer '0' does not take input_shape \[5\]"):
        to_nir(net, (5,))
    graph = to_nir(net, (4,), dt=1e-3)
    with pytest.raises(ParameterError, match="exported with dt=0.001"):
        from_nir(graph, dt=1e-4)
    with pytest.raises(ParameterError, match="expected a nir.NIRGraph"):
        from_nir({"nodes": {}})
    thr = nir.NIRGraph.from_list(nir.Input(input_type=np.array([3])), nir.Threshold(threshold=np.ones(3)),
                                 nir.Output(output_type=np.array([3])))
    with pytest.raises(ParameterError, match="node 'threshold' is a Threshold"):
        from_nir(thr)
    branch = to_nir(net, (4,))
    branch.edges.append(("input", "1"))
    with pytest.raises(ParameterError, match="only chain graphs"):
        from_nir(branch)
    with pytest.raises(ParameterError, match="no NIR file"):
        load_nir("/nonexistent/net.nir")


# ------------------------------------------------------------------- another library's import

def test_snntorch_imports_the_graph_and_fires_the_same_spikes():
    """snnTorch's ``import_from_nir`` (forward Euler at its fixed dt = 1e-4 s) runs the exported
    LIF network; both give the same output spikes on the same input."""
    snntorch_nir = pytest.importorskip("snntorch.import_nir")
    from snntorch import utils as snn_utils

    net = _scaled(build("c8k3s1-LIF-APk2s2-FC32-LIF-FC10-LIF", (2, 12, 12), bias=True, tau=4.0), 20.0)
    theirs_net = snntorch_nir.import_from_nir(to_nir(net, (2, 12, 12), dt=1e-4))
    x = _input((2, 12, 12), T=20, B=3)
    with torch.no_grad():
        ours = net(x)
        per_sample = []
        for b in range(x.shape[1]):  # snnTorch's Flatten counts NIR's dims with the batch: run unbatched
            snn_utils.reset(theirs_net)
            steps = [theirs_net(x[t, b]) for t in range(x.shape[0])]
            per_sample.append(torch.stack([s[0] if isinstance(s, tuple) else s for s in steps]))
    theirs = torch.stack(per_sample, 1)
    assert ours.sum() > 20
    assert torch.equal(ours, theirs)
