"""PNG figures of spiking behaviour: firing patterns (Fig. 12), parameter scans, input
distributions (Fig. 7) and spiking feature maps (Fig. 13)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .plot_dynamics import pyplot, save_figure

__all__ = ["plot_firing_patterns", "plot_param_scan", "plot_input_distribution", "plot_feature_maps"]

PATTERN_COLORS = {"silent": "#d0d7de", "single": "#9a6700", "tonic": "#0969da", "adapting": "#1a7f37",
                  "bursting": "#cf222e"}


def plot_firing_patterns(fp: Any, path: str | Path) -> Path:
    """Per neuron: a raster of the constant-input runs (labelled with their class) and the run whose
    input steps through the levels (membrane, spikes, input)."""
    plt = pyplot()
    neurons = list(dict.fromkeys(e["neuron"] for e in fp.entries))
    has_step = any(e["input"] == "step" for e in fp.entries)
    fig, axes = plt.subplots(len(neurons), 2 if has_step else 1, figsize=(13 if has_step else 6.5, 2.6 * len(neurons)),
                             squeeze=False)
    for row, name in enumerate(neurons):
        ax = axes[row][0]
        runs = [e for e in fp.entries if e["neuron"] == name and e["input"] != "step"]
        for k, e in enumerate(runs):
            t = e["sim"].spike_times()
            color = PATTERN_COLORS[e["pattern"].pattern]
            ax.plot(t, np.full(len(t), k), "o", ms=4, mfc="none", mec=color)
            ax.text(fp.T * e["sim"].step * 1.04, k, f"{e['pattern'].pattern} ({e['pattern'].spike_count})",
                    va="center", fontsize=8, color=color)
        ax.set_yticks(range(len(runs)), [f"I = {e['input']:g}" for e in runs])
        ax.set_xlim(0, fp.T * (runs[0]["sim"].step if runs else 1) * 1.3)
        ax.set_ylim(-0.6, len(runs) - 0.4)
        ax.set_title(f"{name}: spikes at constant input (class, count)", fontsize=10)
        ax.set_xlabel(f"t ({runs[0]['sim'].unit if runs else 'step'})")
        if has_step:
            ax = axes[row][1]
            e = next(e for e in fp.entries if e["neuron"] == name and e["input"] == "step")
            sim = e["sim"]
            t = np.arange(1, len(sim.input) + 1) * sim.step
            ax.plot(t, sim.membrane, color="0.4", lw=0.9, label="membrane (before reset)")
            st = sim.spike_times()
            ax.plot(st, sim.membrane[(st / sim.step).astype(int) - 1], "o", ms=4, mfc="none", mec="tab:red",
                    label="spike")
            ax2 = ax.twinx()
            ax2.step(t, sim.input, where="pre", color="tab:blue", lw=1, alpha=0.7)
            ax2.set_ylabel("input", color="tab:blue")
            for k in range(1, len(fp.inputs)):
                ax.axvline(k * fp.T * sim.step, color="tab:blue", ls=":", lw=0.8)
            ax.set_title(f"{name}: input steps {' -> '.join(f'{v:g}' for v in fp.inputs)}", fontsize=10)
            ax.set_xlabel(f"t ({sim.unit})")
            ax.legend(fontsize=7, loc="upper left")
    return save_figure(fig, path)


def plot_param_scan(scan: Any, path: str | Path) -> Path:
    """The class of the firing pattern over the two scanned parameters."""
    plt = pyplot()
    from matplotlib.colors import ListedColormap

    kinds = list(PATTERN_COLORS)
    grid = np.array([[kinds.index(lbl) for lbl in row] for row in scan.labels])
    fig, ax = plt.subplots(figsize=(6.8, 5.2))
    ax.imshow(grid, origin="lower", cmap=ListedColormap(list(PATTERN_COLORS.values())), vmin=-0.5,
              vmax=len(kinds) - 0.5, aspect="auto")
    ax.set_xticks(range(len(scan.x_values)), [f"{v:g}" for v in scan.x_values], rotation=60, fontsize=7)
    ax.set_yticks(range(len(scan.y_values)), [f"{v:g}" for v in scan.y_values], fontsize=7)
    ax.set_xlabel(scan.x_name)
    ax.set_ylabel(scan.y_name)
    base = ", ".join(f"{k}={v:g}" for k, v in scan.base_params.items())
    ax.set_title(f"{scan.neuron}{' (' + base + ')' if base else ''}, I = {scan.I:g}, T = {scan.T}", fontsize=10)
    for k, color in PATTERN_COLORS.items():
        ax.plot([], [], "s", color=color, label=k)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, path)


def plot_input_distribution(dist: Any, path: str | Path, *, coverage: float = 0.9) -> Path:
    """Histogram of the layer's input currents with the central ``coverage`` marked (Fig. 7)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    edges = np.asarray(dist.histogram["edges"])
    ax.bar(edges[:-1], dist.histogram["counts"], width=np.diff(edges), align="edge", color="tab:blue", alpha=0.7)
    lo, hi = np.quantile(dist.values, [(1 - coverage) / 2, (1 + coverage) / 2])
    for v in (lo, hi):
        ax.axvline(v, color="tab:red", ls="--", lw=1)
    ax.set_title(f"input I of layer {dist.layer}: {coverage:.0%} in [{lo:.3g}, {hi:.3g}] ({dist.count:,} values)",
                 fontsize=10)
    ax.set_xlabel("I = W·X")
    ax.set_ylabel("count (sampled values)")
    return save_figure(fig, path)


def plot_feature_maps(maps: Sequence[tuple[str, np.ndarray]], path: str | Path) -> Path:
    """Rows: networks (``label``, ``F [B, H, W]``); columns: samples; one colour scale for all (0 to the
    largest rate), so brighter means more spikes across rows too."""
    import textwrap

    plt = pyplot()
    n_rows, n_cols = len(maps), max(m.shape[0] for _, m in maps)
    fig, axes = plt.subplots(n_rows, n_cols + 1, figsize=(1.3 * n_cols + 2.6, 1.5 * n_rows + 0.2), squeeze=False,
                             gridspec_kw={"width_ratios": [2.0] + [1.0] * n_cols})
    vmax = max(float(m.max()) for _, m in maps) or 1.0
    for r, (label, m) in enumerate(maps):
        axes[r][0].axis("off")
        axes[r][0].text(0.0, 0.5, textwrap.fill(label, 26) + f"\nmean rate {m.mean():.3f}", va="center",
                        fontsize=8, transform=axes[r][0].transAxes)
        for c in range(n_cols):
            ax = axes[r][c + 1]
            ax.axis("off")
            if c < m.shape[0]:
                ax.imshow(m[c], cmap="gray", vmin=0, vmax=vmax)
    return save_figure(fig, path)
