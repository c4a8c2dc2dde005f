"""Networks from the papers' notation: parser, builders, layers (against direct references)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from eventkit.errors import ParameterError
from eventkit_train.models import (
    TABLE1_SPECS,
    LeakyReadout,
    SpikeMaxPool2d,
    SpikingDropout,
    TimeFolded,
    VotingLayer,
    build,
    count_parameters,
    fsnn,
    parse_spec,
    plif_net,
    plif_spec,
)
from eventkit_train.neurons import CUBALIF, IF, LIF, PLIF, SIT, SRM


def kinds(spec: str) -> list[str]:
    return [layer.kind for layer in parse_spec(spec)]


# ---------------------------------------------------------------- parser

def test_parse_table1_nmnist_tokens():
    layers = parse_spec(TABLE1_SPECS["nmnist"][0])
    assert [layer.kind for layer in layers] == [
        "conv", "bn", "neuron", "maxpool", "conv", "bn", "neuron", "maxpool",
        "dropout", "dense", "neuron", "dropout", "dense", "neuron", "avgpool"]
    assert layers[0].args == {"out": 128, "k": 3, "s": 1, "p": 1}
    assert [layers[i].args["name"] for i in (2, 6, 10, 13)] == ["lif", "sit", "lif", "lif"]
    assert layers[9].args == {"out": 2048} and layers[12].args == {"out": 100}
    assert layers[14].args == {"k": 10, "s": 10}
    assert layers[8].args == {"p": 0.5}


def test_parse_repeats_and_spaces():
    # CIFAR-10 row, printed with stray spaces around '-'
    layers = parse_spec(TABLE1_SPECS["cifar10"][0])
    convs = [layer for layer in layers if layer.kind == "conv"]
    assert len(convs) == 6 and all(c.args["out"] == 256 for c in convs)
    assert [layer.args["name"] for layer in layers if layer.kind == "neuron"] == ["lif", "sit"] + ["lif"] * 6
    nested = kinds("{{c8k3s1-LIF}*2-MPk2s2}*3-FC10")
    assert nested == (["conv", "neuron"] * 2 + ["maxpool"]) * 3 + ["dense"]


@pytest.mark.parametrize("text,name", [("SIT-Bursting", "sit-bursting"), ("SIT Bursting", "sit-bursting"),
                                       ("SITB", "sit-bursting"), ("CUBA-LIF", "cubalif"), ("srm", "srm"),
                                       ("RCUBALIF", "rcubalif"), ("plif", "plif"), ("IF", "if")])
def test_parse_neuron_names(text, name):
    layers = parse_spec(f"FC10-{text}")
    assert layers[1].kind == "neuron" and layers[1].args["name"] == name


def test_parse_slayer():
    layers = parse_spec("34x34x2-16c5-2a-32c3-2a-64c3 -512-10")
    assert [layer.kind for layer in layers] == ["input", "conv", "sumpool", "conv", "sumpool", "conv", "dense", "dense"]
    assert layers[0].args["dims"] == (34, 34, 2)
    assert layers[1].args == {"out": 16, "k": 5, "s": 1, "p": 2}
    assert layers[2].args == {"k": 2, "s": 2}
    assert parse_spec("700-200-20")[0].args["dims"] == (700,)


def test_parse_dropout_probability():
    assert parse_spec("DP0.8-FC10")[0].args == {"p": 0.8}


@pytest.mark.parametrize("bad", ["", "c128k3s1-XYZ-FC10", "{c8k3s1-LIF*2-FC10", "c8k3s1--FC10",
                                 "{c8k3s1}*0-FC10", "DP1.5-FC10", "c8k3s1-LIF}-FC10"])
def test_parse_errors(bad):
    with pytest.raises(ParameterError):
        parse_spec(bad)


# ---------------------------------------------------------------- Table 1 networks

@pytest.mark.parametrize("dataset", sorted(TABLE1_SPECS))
def test_table1_builds_and_trains(dataset):
    """Every Table 1 string of Jin et al. 2022 at full size: forward + backward (T=2, B=1)."""
    spec, shape, n_classes = TABLE1_SPECS[dataset]
    torch.manual_seed(0)
    net = build(spec, shape, n_classes=n_classes)
    x = (torch.rand(2, 1, *shape) < 0.3).float()
    out = net(x)
    assert out.shape == (2, 1, n_classes)
    assert net.output == "spikes"
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    names = [type(m).__name__ for _, m in net.spiking_layers()]
    assert names.count("SIT") == 1 and set(names) == {"LIF", "SIT"}


def test_table1_nmnist_parameter_count():
    # conv 2->128, BN, conv 128->128, BN, FC 128*8*8 -> 2048, FC 2048 -> 100 (no biases, as SpikingJelly's PLIF nets)
    spec, shape, _ = TABLE1_SPECS["nmnist"]
    net = build(spec, shape)
    expected = 2 * 128 * 9 + 256 + 128 * 128 * 9 + 256 + 128 * 8 * 8 * 2048 + 2048 * 100
    assert count_parameters(net) == expected


def test_sit_variants_and_neuron_map():
    spec = "c4k3s1-BN-SIT-MPk2s2-FC10-LIF"
    sit = dict(build(spec, (2, 8, 8)).spiking_layers())
    burst = dict(build(spec, (2, 8, 8), neuron_map={"sit": "sit-bursting"}).spiking_layers())
    assert isinstance(sit["2_sit"], SIT) and isinstance(burst["2_sit_bursting"], SIT)
    assert repr(sit["2_sit"]) != repr(burst["2_sit_bursting"])  # Table 2: different a, b, d
    plif = build(spec, (2, 8, 8), neuron_map={"LIF": "plif"})
    assert any(isinstance(m, PLIF) for _, m in plif.spiking_layers())
    # tokens or names, any case; keys that are no neuron, or none of this network's, are errors
    swapped = build("FC20-SITB-FC10-CUBALIF", (8,), neuron_map={"SITB": "lif", "CUBA-LIF": "plif"})
    assert [n for n, _ in swapped.spiking_layers()] == ["1_lif", "3_plif"]
    with pytest.raises(ParameterError, match="'lfi' is not a neuron"):
        build("FC20-SITB-FC10-CUBALIF", (8,), neuron_map={"lfi": "plif"})
    with pytest.raises(ParameterError, match=r"\['lif'\] match no neuron"):
        build("FC20-SITB-FC10-CUBALIF", (8,), neuron_map={"LIF": "plif"})


def test_explicit_li_readout_equals_membrane_readout_in_slayer_notation():
    """`700-200-20-LI` and `700-200-20` with readout='membrane': the same layers (no spiking
    layer between the last dense layer and the readout)."""
    a = build("700-200-20", (1, 700), "cubalif", readout="membrane")
    b = build("700-200-20-LI", (1, 700), "cubalif")
    names = [n for n, _ in a.layers.named_children()]
    assert names == [n for n, _ in b.layers.named_children()] == ["0_flatten", "1_fc", "2_cubalif", "3_fc",
                                                                  "4_readout"]


def test_neuron_kwargs_filtered_per_class():
    # tau goes to LIF (and SIT) but not to IF; a per-type dict reaches only that type
    net = build("c4k3s1-IF-MPk2s2-FC10-LIF", (2, 8, 8), tau=4.0, lif={"v_threshold": 0.5})
    layers = dict(net.spiking_layers())
    assert isinstance(layers["1_if"], IF)
    assert "tau=4.0" in repr(layers["5_lif"]) and "v_threshold=0.5" in repr(layers["5_lif"])


# ---------------------------------------------------------------- SLAYER / PLIF / FSNN

def test_slayer_nmnist_net():
    net = build("34x34x2-16c5-2a-32c3-2a-64c3-512-10", (2, 34, 34), "srm")
    mods = [type(m).__name__ for m in net.layers]
    # a spiking layer after every conv, sum-pool and dense layer
    assert mods == ["TimeFolded", "SRM", "SumPool2d", "SRM", "TimeFolded", "SRM", "SumPool2d", "SRM",
                    "TimeFolded", "SRM", "TimeFolded", "TimeFolded", "SRM", "TimeFolded", "SRM"]
    assert count_parameters(net) == 2 * 16 * 25 + 16 * 32 * 9 + 32 * 64 * 9 + 64 * 8 * 8 * 512 + 512 * 10
    out = net(torch.zeros(3, 2, 2, 34, 34))
    assert out.shape == (3, 2, 10)
    assert isinstance(build("34x34x2-8c3-2a-10", (2, 34, 34), "lif").spiking_layers()[0][1], LIF)


def test_slayer_gesture_and_ntidigits_shapes():
    net = build("128x128x2-4a-16c5-2a-32c3-2a-512-11", (2, 128, 128), "lif", width=0.25)
    assert net(torch.zeros(2, 1, 2, 128, 128)).shape == (2, 1, 11)
    net = build("64-256-256-11", (1, 64), "lif")
    assert net(torch.zeros(2, 3, 1, 64)).shape == (2, 3, 11)


def test_input_dims_checked():
    with pytest.raises(ParameterError, match="declares input"):
        build("34x34x2-16c5-10", (2, 128, 128))
    net = build("34x34x2-8c3-10", (2, 34, 34))
    with pytest.raises(ParameterError, match="expects input"):
        net(torch.zeros(2, 1, 2, 32, 32))
    with pytest.raises(ParameterError, match="outputs but the dataset has"):
        build("34x34x2-8c3-10", (2, 34, 34), n_classes=11)
    with pytest.raises(ParameterError, match="dense"):
        build("c4k3s1-LIF", (2, 8, 8))


@pytest.mark.parametrize("dataset,args,shape,expected", [
    ("mnist", (1, 2, 2, 128, 10), (1, 28, 28),
     "{c128k3s1-BN-PLIF-MPk2s2}*2-DP-FC1568-PLIF-DP-FC100-PLIF-APk10s10"),
    ("cifar10", (3, 2, 2, 256, 10), (3, 32, 32),
     "{{c256k3s1-BN-PLIF}*3-MPk2s2}*2-DP-FC4096-PLIF-DP-FC100-PLIF-APk10s10"),
    ("cifar10dvs", (1, 4, 2, 128, 10), (2, 128, 128),
     "{c128k3s1-BN-PLIF-MPk2s2}*4-DP-FC2048-PLIF-DP-FC100-PLIF-APk10s10"),
    ("dvsgesture", (1, 5, 2, 128, 11), (2, 128, 128),
     "{c128k3s1-BN-PLIF-MPk2s2}*5-DP-FC512-PLIF-DP-FC110-PLIF-APk10s10"),
])
def test_plif_spec_table1(dataset, args, shape, expected):
    """Tab. 1 of Fang et al. 2021: N_conv, N_down, N_fc; first FC = in/4, second FC = 10 * classes."""
    assert plif_spec(*args, shape) == expected


def test_plif_net_nmnist_matches_000_layout():
    net = plif_net(1, 2, 2, 128, 10, (2, 34, 34), tau_init=2.0)
    ref = parse_spec(TABLE1_SPECS["nmnist"][0])
    mine = parse_spec(net.spec)
    assert [(layer.kind, layer.args) for layer in mine if layer.kind != "neuron"] == \
        [(layer.kind, layer.args) for layer in ref if layer.kind != "neuron"]
    assert all(isinstance(m, PLIF) for _, m in net.spiking_layers())
    assert net(torch.zeros(2, 1, 2, 34, 34)).shape == (2, 1, 10)


def test_fsnn_and_rsnn():
    net = fsnn(700, 200, 20, neuron="cubalif", tau_syn=14.0, tau_mem=1680.0, dt=14.0)
    assert net.output == "membrane" and isinstance(net.layers[-1], LeakyReadout)
    assert [type(m).__name__ for m in net.layers] == ["TimeFolded", "CUBALIF", "TimeFolded", "LeakyReadout"]
    x = (torch.rand(6, 2, 700) < 0.05).float()
    u = net(x)
    assert u.shape == (6, 2, 20)
    u.amax(0).sum().backward()
    rsnn = fsnn(2312, 200, 10, recurrent=True, input_shape=(2, 34, 34))
    hidden = rsnn.spiking_layers()[0][1]
    assert isinstance(hidden, CUBALIF) and "recurrent=True" in repr(hidden)
    assert rsnn(torch.zeros(3, 1, 2, 34, 34)).shape == (3, 1, 10)
    with pytest.raises(ParameterError):
        fsnn(neuron="lif", recurrent=True)


def test_membrane_readout_replaces_last_neuron():
    net = build("c4k3s1-BN-LIF-MPk2s2-FC20-LIF-APk2s2", (2, 8, 8), readout="membrane")
    assert [type(m).__name__ for m in net.layers][-2:] == ["LeakyReadout", "VotingLayer"]
    assert net.output == "membrane" and len(net.spiking_layers()) == 1
    li = build("16-8-4-LI", (16,), "if")
    assert li.output == "membrane" and isinstance(li.layers[-1], LeakyReadout)
    with pytest.raises(ParameterError):
        build("16-8-4-LI", (16,), readout="spikes")


# ---------------------------------------------------------------- layers vs direct references

def test_time_folded_conv_equals_per_step_loop():
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    x = torch.rand(4, 2, 2, 6, 6)
    ref = torch.stack([conv(x[t]) for t in range(4)])
    torch.testing.assert_close(TimeFolded(conv)(x), ref)


def test_spike_maxpool_equals_per_step_max():
    x = (torch.rand(3, 2, 4, 6, 6) < 0.3).float()
    out = SpikeMaxPool2d(2, 2)(x)
    ref = torch.zeros(3, 2, 4, 3, 3)
    for t in range(3):
        for i in range(3):
            for j in range(3):
                ref[t, :, :, i, j] = x[t, :, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].amax(dim=(-1, -2))
    assert torch.equal(out, ref)


def test_voting_layer_mean_of_groups():
    x = torch.rand(3, 2, 30)
    out = VotingLayer(10)(x)
    ref = torch.stack([x[..., 10 * c:10 * (c + 1)].mean(-1) for c in range(3)], dim=-1)
    torch.testing.assert_close(out, ref)


def test_sum_pool_is_window_sum():
    net = build("8x8x1-2a-4", (1, 8, 8), "if")
    sumpool = net.layers[0]
    x = torch.rand(2, 1, 1, 8, 8)
    ref = x.reshape(2, 1, 1, 4, 2, 4, 2).sum(dim=(-1, -3))
    torch.testing.assert_close(sumpool(x), ref)


def test_spiking_dropout_mask_shared_over_time():
    torch.manual_seed(0)
    drop = SpikingDropout(0.5)
    x = torch.ones(5, 4, 200)
    y = drop(x)
    assert torch.equal(y, y[0].expand_as(y))  # one mask per sample and neuron, all time steps
    assert set(torch.unique(y).tolist()) <= {0.0, 2.0}
    assert not torch.equal(y[0, 0], y[0, 1])  # samples get different masks
    assert 0.35 < float((y[0] > 0).float().mean()) < 0.65
    drop.eval()
    assert torch.equal(drop(x), x)


def test_leaky_readout_against_float64_loop():
    alpha, beta = 0.6, 0.9
    x = torch.randn(7, 3, 5)
    out = LeakyReadout(alpha, beta)(x)
    i = u = torch.zeros(3, 5, dtype=torch.float64)
    ref = []
    for t in range(7):
        i = alpha * i + x[t].double()
        u = beta * u + i
        ref.append(u)
    torch.testing.assert_close(out.double(), torch.stack(ref), rtol=1e-5, atol=1e-6)
    ro = LeakyReadout(tau_syn=28.0, tau_mem=700.0, dt=14.0)
    assert math.isclose(float(ro.params().beta), math.exp(-14 / 700), rel_tol=1e-6)
    assert math.isclose(float(ro.params().alpha), math.exp(-14 / 28), rel_tol=1e-6)
    learn = LeakyReadout(0.5, 0.9, learnable=True)
    learn(x).sum().backward()
    assert learn.beta_logit.grad is not None


def test_width_scaling_keeps_output_layer():
    spec = TABLE1_SPECS["dvsgesture"][0]
    net = build(spec, (2, 128, 128), width=1 / 16)
    assert net.n_classes == 11
    fcs = [m.module for m in net.layers if isinstance(m, TimeFolded) and isinstance(m.module, torch.nn.Linear)]
    assert fcs[0].out_features == 32 and fcs[-1].out_features == 110


def test_gradient_reaches_first_layer_and_srm_threshold():
    torch.manual_seed(0)
    net = build("c8k3s1-BN-PLIF-MPk2s2-FC20-PLIF-APk2s2", (2, 8, 8))
    x = (torch.rand(4, 3, 2, 8, 8) < 0.5).float()
    out = net(x)
    F.mse_loss(out.mean(0), torch.eye(10)[:3]).backward()
    conv = net.layers[0].module
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    srm = build("16-4", (16,), "srm", v_threshold=10.0)
    assert isinstance(srm.spiking_layers()[0][1], SRM)


def test_unknown_neuron_option_is_refused():
    # a typo in [train.neuron_kwargs] used to be dropped silently for every neuron
    with pytest.raises(ParameterError, match=r"\['tua'\].*none of its neurons"):
        build("c4k3s1-LIF-MPk2s2-FC10-LIF", (2, 8, 8), tua=2.0)
    with pytest.raises(ParameterError, match="tau_init"):
        build("34x34x2-8c3-10", (2, 34, 34), "lif", tau_init=2.0)  # PLIF's option on a LIF-only net
    # an option that some neuron of the net accepts is fine (tau: LIF yes, IF no)
    build("c4k3s1-IF-MPk2s2-FC10-LIF", (2, 8, 8), tau=4.0)


def test_voting_layer_is_exact_under_bf16_autocast():
    from eventkit_train.models import VotingLayer

    s = torch.zeros(2, 3, 20)
    s[:, :, :7] = 1.0  # 7 of 10 votes for class 0, 3 of 10 for class 1
    s[:, :, 10:13] = 1.0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = VotingLayer(10)(s.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, VotingLayer(10)(s), rtol=0, atol=0)
    assert float(out[0, 0, 0]) == pytest.approx(0.7, abs=1e-7)


def test_leaky_readout_bad_time_constants():
    from eventkit_train.models import LeakyReadout

    for kw in ({"tau_mem": 0.0}, {"tau_mem": -5.0}, {"dt": 0.0}, {"tau_syn": -1.0}, {"tau_mem": math.nan}):
        with pytest.raises(ParameterError, match="LeakyReadout"):
            LeakyReadout(**kw)
    assert float(LeakyReadout(tau_syn=0.0).params().alpha) == 0.0  # tau_syn = 0: no synaptic filter
