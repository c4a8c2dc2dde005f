"""The PNG curves of a run folder (``eventkit plot RUN_DIR``): :func:`plot_run`.

Every figure names the run folder, the dataset, T and the network string in its title, and
carries a red warning line when a neuron layer fired no spike on the test set in the last
epoch. matplotlib (Agg backend) is imported only here.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventkit.errors import EventkitError, ParameterError

from .runlog import read_metrics, silent_layers, silent_warning

__all__ = ["plot_run", "RunInfo", "run_info", "PLOT_FILES"]

#: the files :func:`plot_run` can write (synops.png only for runs that recorded synaptic operations)
PLOT_FILES = ("loss.png", "accuracy.png", "spike_rates.png", "latency.png", "synops.png")


@dataclass(frozen=True)
class RunInfo:
    """What a plot title says about a run: folder name, dataset, network string, T, best epoch (0-based)."""

    name: str
    dataset: str
    arch: str
    T: int | None
    best_epoch: int | None

    def header(self, width: int = 100) -> str:
        """``run NAME · dataset D · T = 10`` and the network string wrapped at ``-`` to ``width`` characters."""
        head = f"run {self.name} · dataset {self.dataset}" + (f" · T = {self.T}" if self.T else "")
        return head + "\n" + "\n".join(_wrap(f"network {self.arch}", width))


def _wrap(text: str, width: int) -> list[str]:
    """Break ``text`` after ``-`` (or spaces) so that no line is longer than ``width`` where possible."""
    lines, line = [], ""
    for part in text.replace(" ", " \0").replace("-", "-\0").split("\0"):
        if line and len(line) + len(part) > width:
            lines.append(line.rstrip())
            line = ""
        line += part
    return lines + ([line.rstrip()] if line.strip() else [])


def _read_json(path: Path) -> dict[str, Any]:
    for p in (path, path.parent / "current" / path.name):
        if p.is_file():
            try:
                data = json.loads(p.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def run_info(run_dir: str | os.PathLike) -> RunInfo:
    """Title facts of a run folder from its ``summary.json`` and ``config.json`` (``?`` when unknown)."""
    run = Path(run_dir)
    summary, config = _read_json(run / "summary.json"), _read_json(run / "config.json")
    arch = summary.get("arch") or config.get("arch")
    if not arch and config.get("dataset"):
        try:  # a recipe without arch uses the dataset's default network
            from .config import TrainConfig, resolve_arch

            fields = {k: v for k, v in config.items() if k in TrainConfig.__dataclass_fields__}
            arch = resolve_arch(TrainConfig.from_dict(fields, source=f"{run}/config.json"))
        except EventkitError:  # a config this version cannot read: the title says "?" rather than failing
            arch = None
    T = config.get("T")
    best = summary.get("best_epoch")
    return RunInfo(name=run.resolve().name, dataset=str(summary.get("dataset") or config.get("dataset") or "?"),
                   arch=str(arch or "?"), T=int(T) if isinstance(T, int) else None,
                   best_epoch=int(best) if isinstance(best, int) else None)


def plot_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """PNG figures of a run directory, into ``out_dir`` (default the run directory):

    * ``loss.png``, ``accuracy.png``: train / validation / test per epoch (the epoch of
      ``best.pt`` marked);
    * ``spike_rates.png``: spikes per neuron per step of every neuron layer on the test set;
    * ``latency.png``: test accuracy versus the time steps seen, last epoch and best epoch;
    * ``synops.png``: synaptic operations per sample and layer (last epoch, SNN ACs and MACs
      beside the ANN equivalent) and the energy estimate per sample per epoch (runs that
      recorded ``synops``).

    Titles name the run, dataset, T and network; a layer that fired no spike in the last
    epoch is named in a red warning on every figure. Returns the written paths.
    """
    records = read_metrics(run_dir)
    if not records:
        raise ParameterError(f"{run_dir}/metrics.json has no epochs yet; nothing to plot")
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dev/plot extra
        raise ParameterError("eventkit plot needs matplotlib: pip install 'eventkit-snn[plot]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = run_info(run_dir)
    epochs = [int(r["epoch"]) + 1 for r in records]
    silent = silent_layers(records[-1])
    warning = f"warning: {silent_warning(silent, f'on the test set in epoch {epochs[-1]}')}" if silent else ""
    written: list[Path] = []

    def figure(title: str, ncols: int = 1):
        fig, axes = plt.subplots(1, ncols, figsize=(7 if ncols == 1 else 11, 5), layout="constrained")
        fig.suptitle(f"{title}\n{info.header(95 if ncols == 1 else 150)}", fontsize=8)
        if warning:
            fig.supxlabel("\n".join(_wrap(warning, 95 if ncols == 1 else 150)), fontsize=8, color="tab:red")
        for ax in (axes if ncols > 1 else [axes]):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs and time steps
        return fig, axes

    def save(fig, name: str) -> None:
        path = out / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    curves = (("loss", "loss.png", "Loss per epoch"), ("accuracy", "accuracy.png", "Accuracy per epoch"))
    for key, name, title in curves:
        fig, ax = figure(title)
        for split in ("train", "val", "test"):
            ys = [r.get(f"{split}_{key}") for r in records]
            if any(y is not None for y in ys):
                ax.plot(epochs, [math.nan if y is None else y for y in ys], marker="o",
                        label={"val": "validation"}.get(split, split))
        if info.best_epoch is not None:
            ax.axvline(info.best_epoch + 1, color="grey", linestyle=":", label=f"best.pt (epoch {info.best_epoch + 1})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
        save(fig, name)

    layers = list(records[-1].get("spike_rates") or {})
    if layers:
        fig, ax = figure("Spike rate of each neuron layer (test set)")
        for layer in layers:
            ys = [(r.get("spike_rates") or {}).get(layer, math.nan) for r in records]
            ax.plot(epochs, ys, marker=".", label=layer + (" (silent)" if layer in silent else ""),
                    linestyle="--" if layer in silent else "-")
        ax.set_xlabel("epoch")
        ax.set_ylabel("spikes / neuron / step")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        save(fig, "spike_rates.png")

    _latency(records, figure, save)
    if isinstance(records[-1].get("synops"), Mapping):
        _synops(records, epochs, figure, save)
    return written


def _latency(records: Sequence[Mapping[str, Any]], figure, save) -> None:
    curves = [(f"epoch {int(records[-1]['epoch']) + 1} (last)", records[-1].get("latency_accuracy"))]
    scored = [r for r in records if r.get("val_accuracy") is not None]
    best = max(scored, key=lambda r: r["val_accuracy"]) if scored else records[-1]  # first maximum, as best.pt
    if best is not records[-1]:
        curves.append((f"epoch {int(best['epoch']) + 1} (best on validation)", best.get("latency_accuracy")))
    if not any(c for _, c in curves):
        return
    fig, ax = figure("Test accuracy versus time steps seen (latency)")
    for label, curve in curves:
        if curve:
            ax.plot(range(1, len(curve) + 1), curve, marker=".", label=label)
    ax.set_xlabel("time steps seen (prediction from steps 1..t)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, "latency.png")


def _synops(records: Sequence[Mapping[str, Any]], epochs: list[int], figure, save) -> None:
    last = records[-1]
    ops, energy = last["synops"], last.get("energy_pj") or {}
    layers = ops.get("layers", {})
    fig, (left, right) = figure("Synaptic operations and energy estimate per sample (test set)", ncols=2)
    names = list(layers)
    x = list(range(len(names)))
    w = 0.27
    series = (("SNN AC", [layers[n]["ac"] for n in names], "tab:blue"),
              ("SNN MAC", [layers[n]["mac"] for n in names], "tab:orange"),
              ("ANN MAC + AC", [layers[n]["ann_mac"] + layers[n]["ann_ac"] for n in names], "tab:grey"))
    for j, (label, values, color) in enumerate(series):
        left.bar([i + (j - 1) * w for i in x], [v if v > 0 else math.nan for v in values], w, label=label, color=color)
    left.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    if any(v > 0 for _, values, _ in series for v in values):
        left.set_yscale("log")
    left.set_ylabel("operations per sample")
    left.set_title(f"per layer, epoch {int(last['epoch']) + 1}", fontsize=9)
    left.grid(alpha=0.3, axis="y")
    left.legend(fontsize="small")
    snn = [(r.get("energy_pj") or {}).get("snn") for r in records]
    ann = [(r.get("energy_pj") or {}).get("ann") for r in records]
    right.plot(epochs, [math.nan if v is None else v / 1e6 for v in snn], marker="o", label="SNN")
    right.plot(epochs, [math.nan if v is None else v / 1e6 for v in ann], linestyle="--", label="ANN equivalent")
    right.set_xlabel("epoch")
    right.set_ylabel("energy per sample (µJ)")
    right.set_ylim(bottom=0)
    costs = (f"AC {energy.get('pj_per_ac', '?')} pJ, MAC {energy.get('pj_per_mac', '?')} pJ "
             f"(Horowitz, ISSCC 2014, 45 nm fp32)" if "Horowitz" in str(energy.get("source", "")) else
             f"AC {energy.get('pj_per_ac', '?')} pJ, MAC {energy.get('pj_per_mac', '?')} pJ")
    right.set_title(f"arithmetic only: {costs}", fontsize=8)
    right.grid(alpha=0.3)
    right.legend(fontsize="small")
    save(fig, "synops.png")
