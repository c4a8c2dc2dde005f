"""Spike raster of a network's layers for one sample: what each spiking layer emits, step by step.

:func:`record_spikes` runs the network once with forward hooks on its neuron modules (the
modules of :mod:`eventkit_train.neurons`, and the non-spiking readout) and returns each
layer's output ``[T, B, ...]``; :func:`spike_raster_data` turns one sample of it into dot
coordinates (time step, neuron index); :func:`plot_spike_raster` draws one band per layer.
matplotlib is imported only when drawing (``pip install 'eventkit-snn[plot]'``).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from eventkit.errors import ParameterError

__all__ = ["LayerRecord", "RasterBand", "record_spikes", "spike_raster_data", "plot_spike_raster", "render_network",
           "run_sample_input", "render_run"]


class LayerRecord(NamedTuple):
    """``name`` of the layer in the model, its ``kind`` (class name) and ``output [T, B, ...]``
    (spikes 0/1, or the membrane of a non-spiking readout, ``spiking=False``)."""

    name: str
    kind: str
    output: Tensor
    spiking: bool


class RasterBand(NamedTuple):
    """Dots of one layer for one sample: ``steps [K]`` and ``neurons [K]`` (flattened index among
    the ``shown`` neurons), ``n_neurons`` in the layer, ``rate`` (spikes per neuron and step)."""

    name: str
    steps: np.ndarray
    neurons: np.ndarray
    n_neurons: int
    shown: int
    rate: float


def record_spikes(model: nn.Module, x: Tensor) -> list[LayerRecord]:
    """Run ``model`` on ``x [T, B, ...]`` (no gradients) and return every neuron layer's output,
    input to output order. The model's own output is not changed."""
    from eventkit_train.neurons import NeuronModule
    from eventkit_train.neurons.readout import LeakyReadout

    if not isinstance(x, Tensor) or x.dim() < 3:
        raise ParameterError(f"record_spikes: x must be a tensor [T, B, ...] (time first), got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (NeuronModule, LeakyReadout))]
    if not layers:
        raise ParameterError(f"record_spikes: {type(model).__name__} has no neuron layers")
    records: list[LayerRecord] = []

    def hook(name: str, module: nn.Module):
        def save(_m: nn.Module, _inp: Any, out: Any) -> None:
            value = out[0] if isinstance(out, tuple) else out
            records.append(LayerRecord(name, type(module).__name__, value.detach().cpu(),
                                       isinstance(module, NeuronModule)))
        return save

    handles = [m.register_forward_hook(hook(n, m)) for n, m in layers]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return records


def spike_raster_data(records: list[LayerRecord], *, sample: int = 0, max_neurons: int = 512) -> list[RasterBand]:
    """One band per spiking layer for batch element ``sample``: the (step, neuron) of every spike.
    Layers wider than ``max_neurons`` show an evenly spaced subset of them (``shown``); the
    ``rate`` is over all neurons."""
    bands = []
    for rec in records:
        if not rec.spiking:
            continue
        out = rec.output
        if sample >= out.shape[1]:
            raise ParameterError(f"sample {sample} is past the batch of {out.shape[1]}")
        s = out[:, sample].reshape(out.shape[0], -1).numpy()
        n = s.shape[1]
        keep = np.unique(np.linspace(0, n - 1, min(n, max_neurons)).round().astype(np.int64))
        steps, neurons = np.nonzero(s[:, keep])
        bands.append(RasterBand(rec.name, steps, neurons, n, int(keep.shape[0]), float(s.mean())))
    return bands


def plot_spike_raster(records: list[LayerRecord], *, sample: int = 0, title: str | None = None,
                      max_neurons: int = 512) -> Any:
    """One band per spiking layer (input at the top), a dot per spike at (time step, neuron);
    each band is labelled with the layer, its size and mean rate; a layer that never fires
    says so. The readout's membrane (if any) is drawn as lines below. Returns the Figure."""
    from eventkit.views.render import new_figure

    bands = spike_raster_data(records, sample=sample, max_neurons=max_neurons)
    readouts = [r for r in records if not r.spiking]
    T = records[0].output.shape[0]
    rows = len(bands) + (1 if readouts else 0)
    fig = new_figure(7.0, 1.3 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, 1, sharex=True))
    for ax, band in zip(axes[:len(bands)], bands, strict=True):  # the last axis: the readout
        ax.scatter(band.steps, band.neurons, s=2, marker="s", color="black", linewidths=0)
        ax.set_ylim(-0.5, band.shown - 0.5)
        ax.set_yticks([])
        shown = "" if band.shown == band.n_neurons else f", {band.shown} shown"
        silent = " · never fires" if band.rate == 0 else ""
        ax.set_ylabel(f"{band.name}\n{band.n_neurons} n{shown}", fontsize=7, rotation=0, ha="right", va="center")
        ax.set_title(f"{band.name}: rate {band.rate:.3f} spikes/neuron/step{silent}", fontsize=7, loc="left")
    if readouts:
        ax = axes[-1]
        mem = readouts[-1].output[:, sample].reshape(T, -1).numpy()
        ax.plot(np.arange(T), mem, linewidth=0.8)
        ax.set_ylabel(f"{readouts[-1].name}\nmembrane", fontsize=7, rotation=0, ha="right", va="center")
    from matplotlib.ticker import MaxNLocator

    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("time step")
    axes[-1].set_xlim(-0.5, T - 0.5)
    fig.suptitle(title or f"spike raster, sample {sample}", fontsize=9)
    return fig


def sample_input(model: nn.Module, events: np.ndarray, sensor_size: tuple[int, int, int], *, T: int,
                 audio: bool) -> Tensor:
    """Frames of one sample shaped for ``model`` (``model.input_shape``): ``[T, 1, *input_shape]`` float.

    Vision: ``to_frames(split_by="time")`` ``[T, P, H, W]`` (polarities merged when the model
    takes one channel). Audio: ``T`` equal time bins over the recording, ``[T, C]`` with the
    polarities merged (or ``[T, P, C]`` when the model takes that)."""
    from eventkit.audio import to_audio_frames
    from eventkit.frames import to_frames

    shape = tuple(getattr(model, "input_shape", ()))
    if audio:
        t = events["t"]
        span = int(t[-1]) - int(t[0]) + 1 if t.shape[0] else 1
        merged = len(shape) == 1
        f = to_audio_frames(events, sensor_size, T=T, dt_us=max(1, -(-span // T)), start_us=int(t[0]) if t.shape[0]
                            else 0, merge_polarity=merged, squeeze_polarity=merged)
    else:
        f = to_frames(events, sensor_size, T=T, split_by="time", merge_polarity=bool(shape) and shape[0] == 1)
    if shape and tuple(f.shape[1:]) != shape:
        raise ParameterError(f"the network takes [T, B, {', '.join(map(str, shape))}] but the sample gives frames "
                             f"{list(f.shape)}; pass the sample the network was trained on")
    return torch.from_numpy(f.astype(np.float32))[:, None]


def layer_summary(records: list[LayerRecord]) -> list[dict[str, Any]]:
    """Name, kind, spike count and rate (spikes per neuron and step) of each spiking layer."""
    return [{"name": r.name, "kind": r.kind, "spikes": int(r.output.sum()), "rate": float(r.output.mean())}
            for r in records if r.spiking]


def render_network(model: nn.Module, events: np.ndarray, sensor_size: tuple[int, int, int], *, T: int, audio: bool,
                   out: str, title: str) -> dict[str, Any]:
    """Record ``model``'s layers on one sample and write the spike raster to ``out``; returns a
    summary (file, per-layer rate and spike count) for ``--json``."""
    from eventkit.views.render import save_figure

    model.eval()
    records = record_spikes(model, sample_input(model, events, sensor_size, T=T, audio=audio))
    save_figure(plot_spike_raster(records, title=title), out)
    layers = layer_summary(records)
    return {"source": title, "kind": "spikes", "T": T, "file": str(out), "layers": layers}


def run_sample_input(run: Any, sample_id: str, split: str, *, root: str | None = None,
                     cache: str | None = None) -> tuple[Tensor, int]:
    """The input ``[T, 1, ...]`` (float, scaled) and label that a trained run's evaluation gives
    sample ``sample_id`` of dataset split ``split``: read from the run's own cache (built when
    missing) with its T (``eval_T``), input scale and the event ops' evaluation part (a centre
    crop, a time window), so the raster shows what the network saw when it was scored.
    ``run``: an :class:`eventkit_train.runs.Run`."""
    from eventkit.cache import CacheStore
    from eventkit.loader import to_device

    from .data import open_data, prepare_data, split_loader

    config = run.config.replace(root=root, cache=cache)
    if split not in (config.train_split, config.test_split):
        raise ParameterError(f"split {split!r}: the run {run.run_dir} reads {config.train_split!r} and "
                             f"{config.test_split!r}")
    stores = prepare_data(config, progress=False)
    data = open_data(config, stores, warn=False)
    ids = CacheStore.open(stores[split], storage_options=config.storage_options or None).sample_ids()
    try:
        k = ids.index(sample_id)
    except ValueError:
        raise ParameterError(f"sample {sample_id!r} is not in the run's {split} store {stores[split]}") from None
    loader = split_loader(config, data, split, train=False, samples=np.array([k], dtype=np.int64), batch_size=1,
                          rank=0, world_size=1, pin_memory=False, workers=0)
    x, y = to_device(next(iter(loader)), "cpu")
    if data.scale != 1.0:
        x.mul_(data.scale)
    return x, int(y[0])


def render_run(run: Any, sample: Any, *, out: str, root: str | None = None, cache: str | None = None,
               title: str | None = None) -> dict[str, Any]:
    """The spike raster of a trained run's network (``run``: :class:`eventkit_train.runs.Run`) on
    a dataset sample (``sample``: an :class:`eventkit.views.LoadedSample` of the run's dataset),
    framed as the run evaluates it (:func:`run_sample_input`); returns the ``--json`` summary."""
    from eventkit.views.render import save_figure

    if sample.sample_id is None or sample.split is None:
        raise ParameterError(f"{sample.title}: --run draws a sample of the run's dataset (NAME[:index]); for an "
                             f"event file export the network to NIR and use --net FILE.nir")
    x, label = run_sample_input(run, sample.sample_id, sample.split, root=root, cache=cache)
    run.model.eval()
    records = record_spikes(run.model, x)
    heading = title or f"{sample.title} · run {run.run_dir.name} ({run.weights}, epoch {run.epoch + 1})"
    save_figure(plot_spike_raster(records, title=heading), out)
    layers = layer_summary(records)
    return {"source": heading, "kind": "spikes", "T": int(x.shape[0]), "label": label, "file": str(out),
            "layers": layers}
