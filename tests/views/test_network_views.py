"""Spike raster of a network: the recorded arrays are the layers' outputs; the dots are the spikes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from eventkit.errors import ParameterError
from eventkit_train.models import build, fsnn
from eventkit_train.views import plot_spike_raster, record_spikes, spike_raster_data


def _net():
    torch.manual_seed(0)
    net = build("c4k3s1-LIF-APk2s2-FC30-LIF-FC5-LIF", (2, 8, 8), bias=True)
    for m in net.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            with torch.no_grad():
                m.weight.mul_(10)
    return net.eval()


def test_records_are_the_layer_outputs_in_order():
    net = _net()
    x = (torch.rand(12, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    records = record_spikes(net, x)
    assert [r.name for r in records] == ["layers.1_lif", "layers.5_lif", "layers.7_lif"]
    h, expected = x, []
    with torch.no_grad():
        for name, layer in net.layers.named_children():  # step through the layers by hand
            h = layer(h)
            if name.endswith("lif"):
                expected.append(h)
    for rec, want in zip(records, expected, strict=True):
        assert rec.spiking and torch.equal(rec.output, want)
    assert torch.equal(net(x), expected[-1])  # the hooks left the model's output alone


def test_raster_dots_are_the_spikes_of_one_sample():
    net = _net()
    x = (torch.rand(12, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    records = record_spikes(net, x)
    bands = spike_raster_data(records, sample=2)
    for band, rec in zip(bands, records, strict=True):
        s = rec.output[:, 2].reshape(12, -1)
        assert band.n_neurons == s.shape[1] == band.shown
        assert len(band.steps) == int(s.sum()) and band.rate == pytest.approx(float(s.mean()))
        assert (s[band.steps, band.neurons] == 1).all()
    assert bands[0].rate > 0 and bands[1].rate > 0
    few = spike_raster_data(records, sample=2, max_neurons=10)[0]
    assert few.shown == 10 and few.n_neurons == 4 * 8 * 8 and few.neurons.max() < 10
    fig = plot_spike_raster(records, sample=2, title="t")
    assert "rate" in fig.axes[0].get_title(loc="left")
    with pytest.raises(ParameterError, match="past the batch"):
        spike_raster_data(records, sample=3)


def test_silent_layer_is_labelled_and_the_readout_drawn():
    net = fsnn(6, 5, 3, readout_kwargs={"tau_mem": 5.0})
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.zero_()
    records = record_spikes(net, torch.ones(5, 1, 6))
    assert [r.spiking for r in records] == [True, False]
    fig = plot_spike_raster(records)
    assert "never fires" in fig.axes[0].get_title(loc="left")
    assert np.asarray(fig.axes[1].lines[0].get_ydata()).shape == (5,)
