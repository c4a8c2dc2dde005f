"""Firing patterns of a neuron under constant input (SIT paper, Fig. 12) and a classifier of spike trains.

:func:`classify_spike_times` labels a train from its inter-spike intervals (ISIs), in this order:

* ``silent``: no spike; ``single``: one spike;
* ``bursting``: the distinct ISIs split into short and long ones with a gap of at least
  ``burst_ratio`` (default 3) between the largest short and the smallest long ISI, and the
  short ISIs join the spikes into at least two groups ("bursts") of two or more spikes;
* ``adapting``: the late ISIs (mean of the last third) are at least ``adapt_ratio`` (default
  1.5) times the first ISI and no shorter than the second, and the ISIs grow on average (mean
  of ``(ISI_{k+1} - ISI_k)/(ISI_{k+1} + ISI_k)`` > 0): alternating ISIs (2, 3, 2, 3, ...: a
  period of 2.5 steps on a step grid) stay tonic. A train that stops (the silence after the
  last spike is longer than twice the longest ISI) counts that silence as its last ISI;
* ``tonic`` otherwise (``detail``: ``every step`` when every ISI is one step, else the period).

:func:`firing_patterns` runs neurons of the package (their own step functions, float64) or
vanilla Izhikevich presets (RK4 in ms) on constant inputs and, with ``step_input``, on one input
that steps through the levels (Fig. 12's "jump of the input"). :func:`param_scan` maps the class
over two parameters.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eventkit.errors import ParameterError

__all__ = ["SpikePattern", "Simulation", "FiringPatterns", "ParamScan", "classify_spike_times",
           "classify_spike_train", "simulate", "firing_patterns", "param_scan", "make_model"]

PATTERNS = ("silent", "single", "tonic", "adapting", "bursting")


@dataclass(frozen=True)
class SpikePattern:
    """A classified train: ``pattern`` (one of ``PATTERNS``), ``detail``, spike count, first-spike
    latency (same unit as the times; None when silent), ISIs, and the statistics behind the label."""

    pattern: str
    detail: str
    spike_count: int
    first_spike: float | None
    isis: tuple[float, ...]
    adaptation_ratio: float | None = None
    isi_ratio: float | None = None
    bursts: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "detail": self.detail, "spike_count": self.spike_count,
                "first_spike": self.first_spike, "isis": list(self.isis), "adaptation_ratio": self.adaptation_ratio,
                "isi_ratio": self.isi_ratio, "bursts": list(self.bursts)}


def classify_spike_times(times: Sequence[float] | np.ndarray, duration: float, *, step: float = 1.0,
                         burst_ratio: float = 3.0, adapt_ratio: float = 1.5) -> SpikePattern:
    """Classify spike ``times`` observed over ``[0, duration]`` (rules in the module docstring).

    ``step``: the sampling step, used for ``every step``. Times in any unit (steps, ms).
    """
    t = np.asarray(sorted(float(x) for x in times), dtype=np.float64)
    n = len(t)
    if n == 0:
        return SpikePattern("silent", "no spike", 0, None, ())
    first = float(t[0])
    if n == 1:
        return SpikePattern("single", f"one spike at {first:g}", 1, first, ())
    isi = np.diff(t)
    isis = tuple(float(x) for x in isi)
    ratio = float(isi.max() / isi.min()) if isi.min() > 0 else float("inf")
    bursts = _bursts(isi, burst_ratio)
    if len(bursts) >= 2:
        return SpikePattern("bursting", f"{len(bursts)} bursts of {min(bursts)}-{max(bursts)} spikes", n, first,
                            isis, None, ratio, tuple(bursts))
    seq = list(isi)
    trailing = duration - t[-1]
    if trailing > 2 * isi.max():
        seq.append(trailing)  # the train stopped: its silence is (at least) one more interval
    early = float(seq[0])
    late = float(np.mean(seq[-max(1, len(seq) // 3):]))
    trend = float(np.mean([(b - a) / (b + a) for a, b in itertools.pairwise(seq)])) if len(seq) > 1 else 0.0
    adaptation = late / early
    if adaptation >= adapt_ratio and late >= max(seq[:2]) and trend > 0:
        stopped = " then stops" if len(seq) > len(isi) else ""
        return SpikePattern("adapting", f"ISI {seq[0]:g} -> {seq[-1]:g}{stopped}", n, first, isis, adaptation, ratio)
    if np.allclose(isi, step):
        return SpikePattern("tonic", "every step", n, first, isis, adaptation, ratio)
    return SpikePattern("tonic", f"period {float(np.median(isi)):g}", n, first, isis, adaptation, ratio)


def classify_spike_train(spikes: Sequence[float] | np.ndarray, **kw: Any) -> SpikePattern:
    """Classify a binary train ``[T]`` (one entry per step; spike times are the 1-based step numbers)."""
    s = np.asarray(spikes, dtype=np.float64).ravel()
    if not np.all((s == 0) | (s == 1)):
        raise ParameterError("classify_spike_train: the train must hold only 0 and 1")
    return classify_spike_times(np.nonzero(s)[0] + 1.0, float(len(s)), **kw)


def _bursts(isi: np.ndarray, burst_ratio: float) -> list[int]:
    """Spike counts of the groups joined by short ISIs (only when short and long ISIs are apart by
    ``burst_ratio``); groups of one spike are dropped."""
    levels = np.unique(isi)
    if len(levels) < 2:
        return []
    gaps = levels[1:] / levels[:-1]
    j = int(np.argmax(gaps))
    if gaps[j] < burst_ratio:
        return []
    short = isi <= levels[j]
    groups, run = [], 1
    for is_short in short:
        if is_short:
            run += 1
        else:
            groups.append(run)
            run = 1
    groups.append(run)
    return [g for g in groups if g >= 2]


@dataclass(frozen=True)
class Simulation:
    """A run: ``spikes [T]`` (0/1), ``membrane [T]`` (potential compared with the threshold),
    ``recovery [T]`` (V after the step; None for 1-D neurons), the ``input [T]`` and the step unit."""

    spikes: np.ndarray
    membrane: np.ndarray
    recovery: np.ndarray | None
    input: np.ndarray
    step: float = 1.0
    unit: str = "step"

    def spike_times(self) -> np.ndarray:
        return (np.nonzero(self.spikes)[0] + 1.0) * self.step


def make_model(neuron: Any, **params: Any) -> Any:
    """A simulatable model: a neuron module of the package (``make_neuron`` name, e.g. ``sit``,
    ``sit-bursting``, ``lif``; ``params`` go to its constructor) or an Izhikevich system
    (``izhikevich[:preset]``, simulated in ms)."""
    from eventkit_train.neurons import make_neuron
    from eventkit_train.neurons.module import NeuronModule

    from .systems import IzhikevichSystem, get_system

    if isinstance(neuron, (NeuronModule, IzhikevichSystem)):
        return neuron
    if isinstance(neuron, str) and neuron.strip().lower().startswith("izhikevich"):
        return get_system(neuron, **params)
    if isinstance(neuron, str):
        return make_neuron(neuron, **params)
    raise ParameterError(f"cannot simulate {type(neuron).__name__}; give a neuron name, a neuron module or an "
                         "IzhikevichSystem")


def simulate(model: Any, inputs: Sequence[float] | np.ndarray, *, dt: float = 0.1) -> Simulation:
    """Run ``model`` (see :func:`make_model`) on the input sequence ``inputs [T]``.

    Neuron modules: their own step function, float64, one input value per time step.
    Izhikevich systems: RK4 with ``dt`` ms sub-steps, one input value per ms (the 2003 model's unit).
    """
    x = np.asarray(inputs, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ParameterError("simulate: inputs must be a non-empty sequence of finite numbers")
    from .systems import IzhikevichSystem

    if isinstance(model, IzhikevichSystem):
        return _simulate_system(model, x, dt)
    import torch

    xt = torch.as_tensor(x, dtype=torch.float64).reshape(-1, 1, 1)
    params = model.make_params(xt)
    state = model.initial_state(xt)
    step = type(model).step_fn
    spikes, membrane, recovery = [], [], []
    with torch.no_grad():
        for t in range(xt.shape[0]):
            s, m, state = step(xt[t], state, params)
            spikes.append(float(s))
            membrane.append(float(m))
            if hasattr(state, "u") and hasattr(state, "v"):  # SIT: (U, V)
                recovery.append(float(state.v))
    return Simulation(np.asarray(spikes), np.asarray(membrane), np.asarray(recovery) if recovery else None, x)


def _simulate_system(system: Any, x: np.ndarray, dt: float) -> Simulation:
    n_sub = max(1, int(round(1.0 / dt)))
    v0 = -65.0 if system.form == "vanilla" else system.c  # Izhikevich (2003) starts at v = -65, u = b*v
    state = np.array([v0, system.b * (v0 - system.u_b)])
    spikes, membrane, recovery = np.zeros(len(x)), np.zeros(len(x)), np.zeros(len(x))
    for t, level in enumerate(x):
        peak = state[0]
        for _ in range(n_sub):
            state = system.rk4_step(state, float(level), 1.0 / n_sub)
            peak = max(peak, state[0])
            if state[0] >= system.threshold:
                spikes[t] = 1.0
                state = system.reset(state)
        membrane[t], recovery[t] = min(peak, system.threshold), state[1]
    return Simulation(spikes, membrane, recovery, x, 1.0, "ms")


@dataclass
class FiringPatterns:
    """Result of :func:`firing_patterns`: one entry per (neuron, input) with the simulation and its class."""

    T: int
    inputs: list[float]
    entries: list[dict[str, Any]] = field(default_factory=list)

    def get(self, label: str, level: float | str) -> dict[str, Any]:
        for e in self.entries:
            if e["neuron"] == label and e["input"] == level:
                return e
        raise KeyError((label, level))

    def save(self, out_dir: str | Path, stem: str = "firing_patterns") -> dict[str, Path]:
        """Write ``<stem>.png`` and ``<stem>.json`` into ``out_dir``."""
        from .plot_patterns import plot_firing_patterns

        return _save(self, plot_firing_patterns, out_dir, stem)

    def to_json(self) -> dict[str, Any]:
        return {"T": self.T, "inputs": self.inputs, "entries": [
            {"neuron": e["neuron"], "input": e["input"], "unit": e["sim"].unit, **e["pattern"].to_json(),
             "spikes": e["sim"].spikes.astype(int).tolist()} for e in self.entries]}


def firing_patterns(neurons: Sequence[Any] | Mapping[str, Any], inputs: Sequence[float], T: int, *,
                    step_input: bool = True, **classify_kw: Any) -> FiringPatterns:
    """Simulate each neuron for ``T`` steps at each constant input (and, with ``step_input``, on
    one run of ``len(inputs)·T`` steps whose input steps through the levels); classify each train.

    ``neurons``: names / modules (labels = the names), or ``{label: name | module | (name, params)}``.
    """
    if int(T) < 2:
        raise ParameterError(f"firing_patterns: T must be >= 2 steps, got {T}")
    levels = [float(v) for v in inputs]
    if not levels:
        raise ParameterError("firing_patterns: give at least one input level")
    items = neurons.items() if isinstance(neurons, Mapping) else [(_label(n), n) for n in neurons]
    out = FiringPatterns(int(T), levels)
    for label, spec in items:
        model = make_model(spec[0], **dict(spec[1])) if isinstance(spec, tuple) else make_model(spec)
        runs: list[tuple[float | str, np.ndarray]] = [(lv, np.full(int(T), lv)) for lv in levels]
        if step_input and len(levels) > 1:
            runs.append(("step", np.repeat(levels, int(T))))
        for level, x in runs:
            sim = simulate(model, x)
            pattern = classify_spike_times(sim.spike_times(), len(x) * sim.step, step=sim.step, **classify_kw)
            out.entries.append({"neuron": label, "input": level, "sim": sim, "pattern": pattern})
    return out


def _label(neuron: Any) -> str:
    return neuron if isinstance(neuron, str) else type(neuron).__name__.lower()


@dataclass
class ParamScan:
    """Class of the train over a grid: ``labels[i][j]`` for ``y_values[i]``, ``x_values[j]``."""

    neuron: str
    I: float
    T: int
    x_name: str
    x_values: list[float]
    y_name: str
    y_values: list[float]
    labels: list[list[str]]
    spike_counts: list[list[int]]
    base_params: dict[str, Any]

    def where(self, pattern: str) -> list[dict[str, float]]:
        return [{self.y_name: y, self.x_name: x} for i, y in enumerate(self.y_values)
                for j, x in enumerate(self.x_values) if self.labels[i][j] == pattern]

    def save(self, out_dir: str | Path, stem: str | None = None) -> dict[str, Path]:
        """Write ``<stem>.png`` and ``<stem>.json`` into ``out_dir``."""
        from .plot_patterns import plot_param_scan

        return _save(self, plot_param_scan, out_dir, stem or f"param_scan_{self.neuron}_I{self.I:g}")

    def to_json(self) -> dict[str, Any]:
        counts = {p: sum(row.count(p) for row in self.labels) for p in PATTERNS}
        return {"neuron": self.neuron, "I": self.I, "T": self.T, "x": {"name": self.x_name, "values": self.x_values},
                "y": {"name": self.y_name, "values": self.y_values}, "labels": self.labels,
                "spike_counts": self.spike_counts, "counts": counts, "base_params": self.base_params}


def param_scan(neuron: str, grid: Mapping[str, Sequence[float]], I: float, *, T: int = 200,
               params: Mapping[str, Any] | None = None, **classify_kw: Any) -> ParamScan:
    """Class of the firing pattern at constant input ``I`` over two parameters, e.g.
    ``param_scan("sit-bursting", {"d": [...], "a": [...]}, I=3)`` (first key: x axis)."""
    if len(grid) != 2:
        raise ParameterError(f"param_scan: grid needs exactly two parameters, got {list(grid)}")
    (x_name, xs), (y_name, ys) = list(grid.items())
    xs, ys = [float(v) for v in xs], [float(v) for v in ys]
    if not xs or not ys:
        raise ParameterError("param_scan: every grid axis needs at least one value")
    base = dict(params or {})
    labels = [["" for _ in xs] for _ in ys]
    counts = [[0 for _ in xs] for _ in ys]
    x = np.full(int(T), float(I))
    for (i, y), (j, xv) in itertools.product(enumerate(ys), enumerate(xs)):
        try:
            model = make_model(neuron, **{**base, x_name: xv, y_name: y})
        except ParameterError as exc:
            raise ParameterError(f"param_scan: {x_name}={xv}, {y_name}={y}: {exc}") from None
        sim = simulate(model, x)
        pat = classify_spike_times(sim.spike_times(), len(x) * sim.step, step=sim.step, **classify_kw)
        labels[i][j], counts[i][j] = pat.pattern, pat.spike_count
    return ParamScan(neuron, float(I), int(T), x_name, xs, y_name, ys, labels, counts, base)


def _save(result: Any, plot, out_dir: str | Path, stem: str) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": out / f"{stem}.png", "json": out / f"{stem}.json"}
    plot(result, paths["png"])
    paths["json"].write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return paths
