"""Training metrics: predictions, accuracy, latency curve, spike rates.

Conventions (``docs/training.md``):

* spiking output ``[T, B, C]``: the prediction is ``argmax_c sum_t out[t, b, c]`` (spike
  counts); ties go to the **lowest class index** (``torch.argmax`` returns the first maximum),
  so an all-silent output predicts class 0.
* membrane output (non-spiking readout): ``argmax_c max_t U[t, b, c]`` (Bouanane et al. 2023, Eq. 13).
* latency curve: accuracy of the prediction made from the outputs up to step ``t``
  (cumulative counts / running maximum), for ``t = 1..T``.
* spike rate of a neuron layer: mean of its output spikes over time steps, samples and
  neurons (spikes per neuron per step; 1 - rate is its sparsity).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

import torch
from torch import Tensor, nn

from eventkit.errors import ParameterError

# the run-folder files moved to eventkit_train.runlog, the plots to eventkit_train.plots; these
# names stay importable from here
from .plots import plot_run
from .runlog import RunLog, flatten_record, read_metrics

OUTPUT_KINDS = ("spikes", "membrane")


def _check(output: Tensor, kind: str) -> None:
    if kind not in OUTPUT_KINDS:
        raise ParameterError(f"output kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    if output.dim() != 3:
        raise ParameterError(f"network output must be [T, B, C], got {list(output.shape)}")


def _running_scores(output: Tensor, kind: str) -> Tensor:
    """Scores ``[T, B, C]`` from the outputs of steps ``1..t``: spike counts (cumulative sum,
    float64, rounded to 1e-6 so that equal counts made of voting averages such as 0.1 + 0.2
    tie exactly) or the running maximum of the membrane."""
    if kind == "spikes":
        return torch.round(output.double().cumsum(0) * 1e6)
    return output.float().cummax(0).values


def predict(output: Tensor, kind: str = "spikes") -> Tensor:
    """Predicted class ``[B]`` (int64) of an output ``[T, B, C]`` (ties: lowest index)."""
    _check(output, kind)
    return _running_scores(output, kind)[-1].argmax(-1)


def correct(output: Tensor, target: Tensor, kind: str = "spikes") -> int:
    """Number of correctly classified samples of a batch."""
    return int((predict(output, kind) == target).sum())


def latency_correct(output: Tensor, target: Tensor, kind: str = "spikes") -> Tensor:
    """Correct predictions ``[T]`` (int64) using the outputs of steps ``1..t`` only."""
    _check(output, kind)
    score = _running_scores(output, kind)
    return (score.argmax(-1) == target.unsqueeze(0)).sum(1).to(torch.int64)


class ForwardHooks:
    """Base of the recorders: forward hooks attached while used as a context manager
    (``with recorder: model(x)``). Subclasses list ``(module, hook)`` in :meth:`hook_targets`."""

    _handles: list[Any]

    def hook_targets(self) -> list[tuple[nn.Module, Any]]:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must implement hook_targets")

    def __enter__(self) -> Self:
        self._handles = [m.register_forward_hook(hook) for m, hook in self.hook_targets()]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def remove(self) -> None:
        """Detach the hooks."""
        for h in getattr(self, "_handles", []):
            h.remove()
        self._handles = []


class SpikeRecorder(ForwardHooks):
    """Forward hooks counting the spikes of neuron layers (no state in the neurons).

    ``with SpikeRecorder(model) as rec: model(x)`` then ``rec.rates()`` ->
    ``{layer name: mean spikes per neuron per step}``. Layers: ``model.spiking_layers()``
    when the model has it, else every module from :mod:`eventkit_train.neurons`.
    """

    def __init__(self, model: nn.Module, layers: Iterable[tuple[str, nn.Module]] | None = None):
        if layers is None:
            spiking_layers = getattr(model, "spiking_layers", None)
            if spiking_layers is not None:
                layers = spiking_layers()
            else:
                from eventkit_train.neurons.module import NeuronModule

                layers = [(n, m) for n, m in model.named_modules() if isinstance(m, NeuronModule)]
        self.layers = list(layers)
        self.sums: dict[str, Any] = {name: 0.0 for name, _ in self.layers}  # device tensors once used
        self.counts: dict[str, int] = {name: 0 for name, _ in self.layers}
        self._handles: list[Any] = []

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            spikes = output[0] if isinstance(output, tuple) else output
            # kept on the device: no host sync per forward pass
            self.sums[name] = self.sums[name] + spikes.detach().float().sum()
            self.counts[name] += spikes.numel()
        return hook

    def hook_targets(self) -> list[tuple[nn.Module, Any]]:
        return [(m, self._hook(name)) for name, m in self.layers]

    def reset(self) -> None:
        """Zero the counters."""
        for name in self.sums:
            self.sums[name] = 0.0
            self.counts[name] = 0

    def rates(self) -> dict[str, float]:
        """Mean firing rate per layer (spikes per neuron per time step)."""
        return {name: float(self.sums[name]) / self.counts[name] if self.counts[name] else 0.0 for name in self.sums}

    def totals(self, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """``(spike sums float64 [L], element counts float64 [L])`` in layer order, to be summed
        over DDP ranks; :func:`rates_from` turns the sums into :meth:`rates`."""
        sums = torch.stack([torch.as_tensor(self.sums[n], dtype=torch.float64).to(device) for n in self.sums]) \
            if self.sums else torch.zeros(0, dtype=torch.float64, device=device)
        counts = torch.tensor([float(self.counts[n]) for n in self.sums], dtype=torch.float64, device=device)
        return sums, counts


def rates_from(names: Iterable[str], sums: Tensor, counts: Tensor) -> dict[str, float]:
    """``{layer: sum / count}`` from :meth:`SpikeRecorder.totals` (summed over ranks)."""
    rows = zip(names, sums.tolist(), counts.tolist(), strict=True)
    return {n: float(s) / float(c) if float(c) else 0.0 for n, s, c in rows}


__all__ = ["predict", "correct", "latency_correct", "SpikeRecorder", "ForwardHooks", "rates_from", "OUTPUT_KINDS",
           "RunLog", "read_metrics", "plot_run", "flatten_record"]
