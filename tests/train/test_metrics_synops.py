"""Synaptic operations and energy (:mod:`eventkit_train.synops`) against hand counts and a
per-element loop over every (output, tap) pair."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from eventkit.errors import ParameterError
from eventkit_train.synops import HOROWITZ_45NM_FP32, OpCosts, OpCounter, energy_pj, fan_out_1d, ops_summary


def test_fan_out_1d_by_hand():
    # k = 3, padding 1, stride 1 over 5 inputs: the border inputs reach 2 outputs, the others 3
    assert fan_out_1d(5, 5, 3, 1, 1).tolist() == [2, 3, 3, 3, 2]
    # stride 2: outputs read inputs (-1, 0, 1), (1, 2, 3), (3, 4, 5) -> index -1 and 5 are padding
    assert fan_out_1d(5, 3, 3, 2, 1).tolist() == [1, 2, 1, 2, 1]
    # dilation 2, no padding, 2 outputs: taps (0, 2, 4) and (1, 3, 5); input 6 is never read
    assert fan_out_1d(7, 2, 3, 1, 0, 2).tolist() == [1, 1, 1, 1, 1, 1, 0]


def test_conv_with_padding_by_hand():
    """3x3 input, 2 output channels, 3x3 kernel, padding 1: a corner pixel reaches 2·4 outputs,
    an edge pixel 2·6, the centre 2·9. The conventional C_out·H·W·C_in·k² = 162 counts padding taps."""
    conv = nn.Conv2d(1, 2, 3, padding=1)
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 0] = 1.0  # corner
    x[0, 0, 1, 1] = 1.0  # centre
    with OpCounter(conv) as ops:
        conv(x)
    s = ops.summary(1)["synops"]
    assert s["ac"] == 2 * (4 + 9) and s["mac"] == 0
    assert s["ann_mac"] == 2 * (4 * 4 + 4 * 6 + 9) == 98
    # the same pixels with a graded value: multiply-accumulates
    with OpCounter(conv) as ops:
        conv(x * 3.0)
    s = ops.summary(1)["synops"]
    assert s["ac"] == 0 and s["mac"] == 26


def test_linear_known_spikes():
    fc = nn.Linear(3, 4, bias=False)
    spikes = torch.tensor([[[1.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]])  # [T=2, B=1, 3]: 3 spikes
    with OpCounter(fc) as ops:
        fc(spikes.flatten(0, 1))
    s = ops.summary(n_samples=1)
    assert s["synops"]["ac"] == 3 * 4 and s["synops"]["mac"] == 0
    assert s["synops"]["ann_mac"] == 3 * 4  # one dense pass of one sample
    e = s["energy_pj"]
    assert e["snn"] == pytest.approx(12 * 0.9) and e["ann"] == pytest.approx(12 * 4.6)
    assert e["pj_per_ac"] == 0.9 and e["pj_per_mac"] == 4.6 and "Horowitz" in e["source"]


def _loop_conv_ops(x: torch.Tensor, conv: nn.Conv2d) -> tuple[int, int]:
    """(ops on non-zero inputs, ops on all inputs of one item) by walking every output position,
    output channel and kernel tap of a 2-D conv (zero padding)."""
    N, C, H, W = x.shape
    Ho = (H + 2 * conv.padding[0] - conv.dilation[0] * (conv.kernel_size[0] - 1) - 1) // conv.stride[0] + 1
    Wo = (W + 2 * conv.padding[1] - conv.dilation[1] * (conv.kernel_size[1] - 1) - 1) // conv.stride[1] + 1
    g = conv.groups
    cin_g, cout_g = C // g, conv.out_channels // g
    nz = dense = 0
    for oc, oh, ow, ic, kh, kw in itertools.product(range(conv.out_channels), range(Ho), range(Wo), range(cin_g),
                                                    *map(range, conv.kernel_size)):
        h = oh * conv.stride[0] - conv.padding[0] + kh * conv.dilation[0]
        w = ow * conv.stride[1] - conv.padding[1] + kw * conv.dilation[1]
        if 0 <= h < H and 0 <= w < W:
            c = (oc // cout_g) * cin_g + ic
            dense += 1
            nz += int((x[:, c, h, w] != 0).sum())
    return nz, dense


@settings(max_examples=25, deadline=None)
@given(H=st.integers(3, 8), W=st.integers(3, 8), k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 2),
       d=st.integers(1, 2), g=st.sampled_from([1, 2]), cin_g=st.integers(1, 2), cout_g=st.integers(1, 2),
       seed=st.integers(0, 100))
def test_conv_fan_out_matches_a_loop_over_taps(H, W, k, s, p, d, g, cin_g, cout_g, seed):
    if H + 2 * p < d * (k - 1) + 1 or W + 2 * p < d * (k - 1) + 1:
        return
    conv = nn.Conv2d(cin_g * g, cout_g * g, k, stride=s, padding=p, dilation=d, groups=g)
    torch.manual_seed(seed)
    x = (torch.rand(3, conv.in_channels, H, W) < 0.3).float()
    with OpCounter(conv) as ops:
        conv(x)
    nz, dense = _loop_conv_ops(x, conv)
    s_ = ops.summary(1)["synops"]
    assert s_["ac"] == nz and s_["mac"] == 0
    assert s_["ann_mac"] == dense


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_same_padding_even_kernel_matches_autograd():
    """torch pads an even 'same' kernel 1 before and 2 after: input 0 reaches outputs 0, 1 only.
    Reference: the gradient of sum(conv(x)) with all-one weights counts the taps reading x."""
    conv = nn.Conv2d(1, 1, 4, padding="same", bias=False)
    nn.init.ones_(conv.weight)
    x = torch.ones(1, 1, 5, 5, requires_grad=True)
    conv(x).sum().backward()
    per_axis = fan_out_1d(5, 5, 4, 1, 1)
    assert per_axis.tolist() == [2, 3, 4, 4, 3]
    assert torch.equal(x.grad[0, 0].double(), per_axis.unsqueeze(1) * per_axis)
    with torch.no_grad(), OpCounter(conv) as ops:
        conv(x)
    assert ops.summary(1)["synops"]["ac"] == float(x.grad.sum())


def _loop_network_reference(net, x):
    """Per-layer (ac, mac, ann) of a built SpikingNet from its layers' inputs, counted by loops."""
    inputs = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: inputs.__setitem__(name, inp[0].detach()))
             for name, m in net.layers.named_children()]
    net(x)
    for h in hooks:
        h.remove()
    ref = {}
    for name, m in net.layers.named_children():
        inner = getattr(m, "module", m)
        xin = inputs[name]
        binary = bool(((xin == 0) | (xin == 1)).all())
        if isinstance(inner, nn.Conv2d):
            nz, dense = _loop_conv_ops(xin.flatten(0, 1), inner)
            ref[name] = (nz if binary else 0, 0 if binary else nz, dense)
        elif isinstance(inner, nn.Linear):
            nz = int((xin != 0).sum()) * inner.out_features
            ref[name] = (nz if binary else 0, 0 if binary else nz, xin.shape[-1] * inner.out_features)
        elif isinstance(inner, nn.AvgPool2d):  # non-overlapping windows without padding: one window per input
            k = inner.kernel_size
            covered = xin[..., :xin.shape[-2] // k * k, :xin.shape[-1] // k * k]
            ref[name] = (int((covered != 0).sum()), 0, covered[0, 0].numel())
        elif type(inner).__name__ == "VotingLayer":
            ref[name] = (int((xin != 0).sum()), 0, xin.shape[-1])
    return ref


def test_network_counts_match_loops_and_scale_per_sample():
    from eventkit_train.models import build

    torch.manual_seed(0)
    net = build("APk2s2-c4k3s1-BN-PLIF-MPk2s2-DP-FC20-PLIF-APk2s2", (2, 10, 10), "plif", v_threshold=0.05).eval()
    x = (torch.rand(3, 2, 2, 10, 10) < 0.3).float() * 2.0  # [T, B, ...] count frames
    with torch.no_grad():
        ref = _loop_network_reference(net, x)
        with OpCounter(net) as ops:
            net(x)
    s = ops.summary(n_samples=2)["synops"]
    assert set(s["layers"]) == set(ref) == {"0_avgpool", "1_conv", "7_fc", "9_voting"}
    for name, (ac, mac, dense) in ref.items():
        layer = s["layers"][name]
        assert layer["ac"] == pytest.approx(ac / 2) and layer["mac"] == pytest.approx(mac / 2), name
        assert layer["ann_mac"] + layer["ann_ac"] == dense, name
    assert s["layers"]["1_conv"]["mac"] > 0 and s["layers"]["1_conv"]["ac"] == 0  # pooled counts: graded
    assert s["layers"]["7_fc"]["mac"] == 0  # fed by spikes (through max pooling): accumulates
    assert s["total"] == pytest.approx(s["ac"] + s["mac"])


def test_recurrent_cuba_lif_counts_spikes_of_earlier_steps():
    from eventkit_train.models import fsnn

    torch.manual_seed(1)
    net = fsnn(6, 5, 3, recurrent=True, v_threshold=0.1).eval()
    x = (torch.rand(4, 1, 6) < 0.5).float()
    spikes = {}
    neuron = [m for m in net.modules() if getattr(m, "recurrent_weight", None) is not None][0]
    h = neuron.register_forward_hook(lambda m, i, o: spikes.__setitem__("s", o))
    with torch.no_grad(), OpCounter(net) as ops:
        net(x)
    h.remove()
    rec = [v for v in ops.summary(1)["synops"]["layers"].values() if v["kind"] == "recurrent"][0]
    s = spikes["s"]
    assert s[:-1].sum() > 0
    assert rec["ac"] == float(s[:-1].sum()) * 5 and rec["ann_mac"] == 25


def test_ranks_sum_and_costs():
    fc = nn.Linear(2, 3)
    with OpCounter(fc) as a:
        fc(torch.tensor([[1.0, 1.0]]))
    with OpCounter(fc) as b:
        fc(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    s = ops_summary(a.names, ["dense"], a.totals() + b.totals(), 3)  # 3 samples over two "ranks"
    assert s["synops"]["ac"] == pytest.approx((2 * 3 + 1 * 3) / 3)
    assert s["synops"]["ann_mac"] == 6  # per sample, not per rank
    costs = OpCosts(1.0, 10.0, "test")
    assert energy_pj(s["synops"], costs)["ann"] == 60.0
    assert HOROWITZ_45NM_FP32.pj_per_mac == pytest.approx(3.7 + 0.9)
    with pytest.raises(ParameterError, match="pj_per_ac"):
        OpCosts(float("nan"), 1.0, "x")
