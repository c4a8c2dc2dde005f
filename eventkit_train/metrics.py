"""Training metrics: predictions, accuracy, latency curve, spike rates, run-dir logs.

Conventions (``docs/training.md``):

* spiking output ``[T, B, C]``: the prediction is ``argmax_c sum_t out[t, b, c]`` (spike
  counts); ties go to the **lowest class index** (``torch.argmax`` returns the first maximum),
  so an all-silent output predicts class 0.
* membrane output (non-spiking readout): ``argmax_c max_t U[t, b, c]`` (``002_…`` Eq. 13).
* latency curve: accuracy of the prediction made from the outputs up to step ``t``
  (cumulative counts / running maximum), for ``t = 1..T``.
* spike rate of a neuron layer: mean of its output spikes over time steps, samples and
  neurons (spikes per neuron per step; 1 - rate is its sparsity).
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from eventkit.errors import ParameterError

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


class SpikeRecorder:
    """Forward hooks counting the spikes of neuron layers (no state in the neurons).

    ``with SpikeRecorder(model) as rec: model(x)`` then ``rec.rates()`` ->
    ``{layer name: mean spikes per neuron per step}``. Layers: ``model.spiking_layers()``
    when the model has it, else every module from :mod:`eventkit_train.neurons`.
    """

    def __init__(self, model: nn.Module, layers: Iterable[tuple[str, nn.Module]] | None = None):
        if layers is None:
            if hasattr(model, "spiking_layers"):
                layers = model.spiking_layers()
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

    def __enter__(self) -> "SpikeRecorder":
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.layers]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def remove(self) -> None:
        """Detach the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def reset(self) -> None:
        """Zero the counters."""
        for name in self.sums:
            self.sums[name] = 0.0
            self.counts[name] = 0

    def rates(self) -> dict[str, float]:
        """Mean firing rate per layer (spikes per neuron per time step)."""
        return {name: float(self.sums[name]) / self.counts[name] if self.counts[name] else 0.0 for name in self.sums}


class RunLog:
    """Per-epoch metrics of a run directory: ``metrics.json`` (list of epoch dicts),
    ``metrics.csv`` (scalar columns; per-layer rates as ``rate/<layer>``) and
    ``config.json``. Both metric files are rewritten whole after every epoch (atomic
    replace), so a crash never leaves a half-written row."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = []

    @property
    def json_path(self) -> Path:
        return self.run_dir / "metrics.json"

    @property
    def csv_path(self) -> Path:
        return self.run_dir / "metrics.csv"

    def load(self) -> list[dict[str, Any]]:
        """Read back ``metrics.json`` (for ``--resume``)."""
        if self.json_path.exists():
            self.records = read_metrics(self.run_dir)
        return self.records

    def write_config(self, config: Mapping[str, Any]) -> None:
        _atomic_write(self.run_dir / "config.json", json.dumps(dict(config), indent=2, sort_keys=True) + "\n")

    def append(self, record: Mapping[str, Any], *, keep_epochs_below: int | None = None) -> None:
        """Add one epoch record (dropping records of epochs >= ``keep_epochs_below`` first)."""
        if keep_epochs_below is not None:
            self.records = [r for r in self.records if r.get("epoch", 0) < keep_epochs_below]
        self.records.append(dict(record))
        _atomic_write(self.json_path, json.dumps(self.records, indent=1) + "\n")
        rows = [flatten_record(r) for r in self.records]
        cols: list[str] = []
        for r in rows:
            cols.extend(c for c in r if c not in cols)
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.csv_path)


def flatten_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar view of an epoch record for the CSV: ``spike_rates`` -> ``rate/<layer>``
    columns; the latency curve is kept in JSON only."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if k == "spike_rates" and isinstance(v, Mapping):
            out.update({f"rate/{name}": r for name, r in v.items()})
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
    return out


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The epoch records of a run directory (``metrics.json``)."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        raise ParameterError(f"{path}: no metrics.json; is {run_dir} a training run directory (eventkit train --out)?")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ParameterError(f"{path}: not valid JSON ({exc}); the file is damaged") from exc
    if not isinstance(data, list):
        raise ParameterError(f"{path}: expected a list of epoch records")
    return data


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


__all__ = ["predict", "correct", "latency_correct", "SpikeRecorder", "RunLog", "read_metrics", "plot_run",
           "flatten_record", "OUTPUT_KINDS"]


def plot_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """PNG curves of a run directory (matplotlib, Agg backend, imported here only):
    ``loss.png``, ``accuracy.png`` (train/test per epoch), ``spike_rates.png`` (per layer
    per epoch) and ``latency.png`` (test accuracy versus time steps, last and best epoch).
    Returns the written paths (in ``out_dir``, default the run directory)."""
    records = read_metrics(run_dir)
    if not records:
        raise ParameterError(f"{run_dir}/metrics.json has no epochs yet; nothing to plot")
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dev/plot extra
        raise ParameterError("eventkit plot needs matplotlib: pip install 'eventkit[plot]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    epochs = [int(r["epoch"]) + 1 for r in records]
    written: list[Path] = []

    def save(fig, name: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    for key, name, ylabel in (("loss", "loss.png", "loss"), ("accuracy", "accuracy.png", "accuracy")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for split in ("train", "test"):
            ys = [r.get(f"{split}_{key}") for r in records]
            if any(y is not None for y in ys):
                ax.plot(epochs, [math.nan if y is None else y for y in ys], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        save(fig, name)

    layers = [name for name in records[-1].get("spike_rates", {})]
    if layers:
        fig, ax = plt.subplots(figsize=(6, 4))
        for layer in layers:
            ax.plot(epochs, [r.get("spike_rates", {}).get(layer, math.nan) for r in records], marker=".", label=layer)
        ax.set_xlabel("epoch")
        ax.set_ylabel("spikes / neuron / step (test)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        save(fig, "spike_rates.png")

    curves = [(f"epoch {epochs[-1]} (last)", records[-1].get("latency_accuracy"))]
    best = max(records, key=lambda r: r.get("test_accuracy", -1.0))
    if best is not records[-1]:
        curves.append((f"epoch {int(best['epoch']) + 1} (best)", best.get("latency_accuracy")))
    if any(c for _, c in curves):
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, curve in curves:
            if curve:
                ax.plot(range(1, len(curve) + 1), curve, marker=".", label=label)
        ax.set_xlabel("time steps seen")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
        save(fig, "latency.png")
    return written
