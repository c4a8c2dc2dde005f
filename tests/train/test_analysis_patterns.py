"""Firing-pattern classifier (constructed trains), Fig. 12's claims, parameter scans, the network
hooks (input distribution, feature maps) and the ``eventkit analyze`` commands."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from eventkit.cli.main import cli
from eventkit.errors import ParameterError
from eventkit_train.analysis import (
    classify_spike_train,
    feature_maps,
    firing_patterns,
    input_distribution,
    param_scan,
    resolve_layer,
)
from eventkit_train.analysis.patterns import classify_spike_times, make_model, simulate
from eventkit_train.models import build


def train_from_isis(isis, first=3, T=None):
    times = np.cumsum([first, *isis])
    s = np.zeros(T or int(times[-1]) + 2)
    s[times - 1] = 1
    return s


def test_classifier_on_constructed_trains():
    assert classify_spike_train(np.zeros(30)).pattern == "silent"
    assert classify_spike_train(train_from_isis([], first=5, T=30)).pattern == "single"
    tonic = classify_spike_train(train_from_isis([5] * 8))
    assert (tonic.pattern, tonic.detail, tonic.spike_count, tonic.first_spike) == ("tonic", "period 5", 9, 3.0)
    assert tonic.isis == (5.0,) * 8
    every = classify_spike_train(np.ones(20))
    assert (every.pattern, every.detail, every.spike_count, every.first_spike) == ("tonic", "every step", 20, 1.0)
    assert classify_spike_train(train_from_isis([2, 3] * 6)).pattern == "tonic"  # period 2.5 on a step grid
    adapting = classify_spike_train(train_from_isis([2, 3, 4, 5, 6, 8, 10]))
    assert adapting.pattern == "adapting" and adapting.adaptation_ratio == pytest.approx(9 / 2)
    stops = classify_spike_train(train_from_isis([2, 2, 3], T=60))  # fires, slows, then stays silent
    assert stops.pattern == "adapting" and "stops" in stops.detail
    bursting = classify_spike_train(train_from_isis([1, 1, 10, 1, 1, 10, 1, 1]))
    assert bursting.pattern == "bursting" and bursting.bursts == (3, 3, 3)
    chatter = classify_spike_times([0, 2, 4, 40, 42, 44, 46, 80, 82], 100.0)
    assert chatter.pattern == "bursting" and chatter.bursts == (3, 4, 2)
    # short/long ISIs closer than the burst ratio (3) are not bursts
    assert classify_spike_train(train_from_isis([1, 2, 1, 2, 1, 2, 1, 2])).pattern == "tonic"
    with pytest.raises(ParameterError):
        classify_spike_train([0, 2, 1])


def test_fig12_lif_fires_every_step_and_sit_tells_2_from_3():
    fp = firing_patterns({"SIT": "sit", "LIF": ("lif", {"tau": 2.0})}, [1.1, 1.8, 2.0, 3.0], 40)
    for level in (2.0, 3.0):
        lif = fp.get("LIF", level)["pattern"]
        assert (lif.pattern, lif.detail, lif.spike_count) == ("tonic", "every step", 40)
    sit2, sit3 = fp.get("SIT", 2.0)["pattern"], fp.get("SIT", 3.0)["pattern"]
    assert sit2.spike_count != sit3.spike_count
    # independent float64 reference of Eq. 18 with Table 2's tonic parameters
    def ref(I, T=40, a=0.002, b=0.02, c=0.0, d=0.2, k=1.0, ur=-0.05, uc=1.0, tau=2.0):
        u, v, n = 0.0, 0.0, 0
        for _ in range(T):
            y = u + k / tau * (u - ur) * (u - uc) - v / tau + I / tau
            h = v + a / tau * (b * (y - ur) - v)
            fired = y >= 1.0
            n += fired
            u, v = (c, h + d) if fired else (y, h)
        return n
    assert (sit2.spike_count, sit3.spike_count) == (ref(2.0), ref(3.0))
    assert sit2.pattern == "adapting"  # spike-frequency adaptation (Sect. 4.6)
    step = fp.get("SIT", "step")
    assert len(step["sim"].input) == 160 and fp.to_json()["entries"][0]["spikes"]


@pytest.mark.parametrize("d", [0.5, 0.6])
def test_table2_sit_bursting_does_not_burst(d):
    """Table 2's SIT-Bursting (a = 0.35, b = 0.6, c = 0) with d = 0.5 (table) or 0.6 (text) never
    fires in groups: after the first two ISIs the intervals stay within a factor of 2."""
    model = make_model("sit-bursting", d=d)
    for level in np.linspace(1.05, 10.0, 25):
        sim = simulate(model, np.full(200, level))
        pat = classify_spike_times(sim.spike_times(), 200.0)
        assert pat.pattern != "bursting"
        steady = pat.isis[2:]
        if len(steady) > 1:
            assert max(steady) / min(steady) <= 2.0


def test_param_scan_finds_where_sit_bursts():
    scan = param_scan("sit", {"a": [0.002, 0.02], "c": [0.0, 0.95]}, I=2.0, T=300, params={"d": 0.2})
    assert scan.labels[0] == ["adapting", "adapting"]  # c = 0 (Table 2)
    assert scan.labels[1][1] == "bursting"  # reset close to the threshold, as chattering in Izhikevich (2003)
    assert {"c": 0.95, "a": 0.02} in scan.where("bursting")
    js = scan.to_json()
    assert js["counts"]["bursting"] >= 1 and js["x"]["name"] == "a"
    with pytest.raises(ParameterError):
        param_scan("sit", {"a": [0.1]}, I=1.0)


def test_vanilla_chattering_bursts():
    fp = firing_patterns(["izhikevich:chattering", "izhikevich:tonic"], [10.0], 200, step_input=False)
    assert fp.get("izhikevich:chattering", 10.0)["pattern"].pattern == "bursting"
    assert fp.get("izhikevich:tonic", 10.0)["pattern"].pattern == "adapting"  # regular spiking adapts


ARCH = "c4k3s1-BN-LIF-MPk2s2-c4k3s1-BN-SIT-MPk2s2-FC10-LIF"


def test_input_distribution_records_the_layers_input_current():
    torch.manual_seed(0)
    model = build(ARCH, (2, 8, 8), "lif").eval()
    frames = torch.randint(0, 3, (3, 6, 4, 2, 8, 8), dtype=torch.uint8)  # 3 batches [B, T, 2, 8, 8]
    loader = [(f, torch.zeros(6, dtype=torch.int64)) for f in frames]
    name, module = resolve_layer(model, "sit")
    assert name == "6_sit" and resolve_layer(model, 1)[0] == "6_sit" and resolve_layer(model, "6_sit")[0] == "6_sit"
    dist = input_distribution(model, loader, "sit", max_batches=2)
    # independent: run the layers before the SIT layer by hand on the two batches
    with torch.no_grad():
        ref = torch.cat([model.layers[:6](f.transpose(0, 1).float()).flatten() for f in frames[:2]]).double().numpy()
    assert dist.count == ref.size
    assert dist.quantiles["0.5"] == pytest.approx(float(np.quantile(ref, 0.5)))
    assert dist.mean == pytest.approx(float(ref.mean()))
    assert dist.b_range().b == pytest.approx(tuple(20 * np.quantile(ref, [0.05, 0.95]) - 1))
    with pytest.raises(ParameterError, match="matches"):
        resolve_layer(model, "lif")
    with pytest.raises(ParameterError, match="no spiking layer"):
        resolve_layer(model, "plif")


def test_feature_maps_are_rates_over_time_and_channels():
    torch.manual_seed(1)
    model = build(ARCH, (2, 8, 8), "lif").eval()
    x = torch.randint(0, 4, (5, 3, 2, 8, 8)).float()
    name, maps = feature_maps(model, x, 0)
    with torch.no_grad():
        spikes = model.layers[:3](x)
    assert name == "2_lif" and maps.shape == (3, 8, 8)
    np.testing.assert_allclose(maps, spikes.double().mean(dim=(0, 2)).numpy())
    with pytest.raises(ParameterError, match="convolutional"):
        feature_maps(model, x, -1)


def test_analyze_cli_writes_png_and_json(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["analyze", "b-range", "--inputs", "-4.92", "3.83", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["b"] == pytest.approx([-99.4, 75.6]) and data["b_saddle"] == pytest.approx(-0.95)
    assert (tmp_path / "b_range.png").stat().st_size > 1000
    res = runner.invoke(cli, ["analyze", "phase-plane", "izhikevich:tonic", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    pts = json.loads(res.output)["fixed_points"]
    assert [p["kind"] for p in pts] == ["stable node", "saddle"] and pts[0]["state"] == pytest.approx([-70, -14])
    res = runner.invoke(cli, ["analyze", "patterns", "lif[tau=2]", "sit", "--inputs", "2,3", "--T", "20",
                              "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    entries = json.loads(res.output)["entries"]
    assert [e["detail"] for e in entries if e["neuron"] == "lif[tau=2]" and e["input"] != "step"] == ["every step"] * 2
    res = runner.invoke(cli, ["analyze", "scan", "sit", "--x", "a=0.02", "--y", "c=0,0.95", "--I", "2",
                              "--T", "300", "--param", "d=0.2", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["labels"] == [["adapting"], ["bursting"]]
    res = runner.invoke(cli, ["analyze", "phase-plane", "nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown neuron" in res.output
