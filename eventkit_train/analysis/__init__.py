"""Neuron dynamics and network analysis (the phase-plane method of Jin et al., "SIT: A Bionic and
Non-Linear Neuron for Spiking Neural Network"), and sweeps over training recipes.

* :func:`phase_plane` — vector field, nullclines, fixed points (closed form and numeric),
  Jacobian / eigenvalues / class, trajectories, the network's discrete steps, bifurcations in I.
* :func:`b_range` — the ``b`` that puts SIT's stable point at a target for an input range
  (Eq. 8 / 17 generalised) and where that point really is stable.
* :func:`firing_patterns`, :func:`classify_spike_train`, :func:`param_scan` — Fig. 12 and a
  tonic / adapting / bursting classifier from inter-spike intervals.
* :func:`input_distribution`, :func:`feature_maps` — Fig. 7 and Fig. 13 on a trained network.

Plots need matplotlib (the ``plot`` extra); it is imported only when a figure is drawn.
Guide: ``docs/analysis.md``.
"""
from __future__ import annotations

from .brange import BRange, b_for_input, b_range
from .fixed_points import Bifurcation, FixedPoint, bifurcation, classify, find_fixed_points, fixed_points
from .network import InputDistribution, feature_maps, input_distribution, load_run_model, resolve_layer
from .patterns import (
    FiringPatterns,
    ParamScan,
    SpikePattern,
    classify_spike_times,
    classify_spike_train,
    firing_patterns,
    param_scan,
    simulate,
)
from .phase_plane import PhasePlane, phase_plane
from .systems import IZHIKEVICH_PRESETS, CustomSystem, IzhikevichSystem, LIFSystem, QIFSystem, get_system

__all__ = [
    "phase_plane", "PhasePlane", "get_system", "LIFSystem", "QIFSystem", "IzhikevichSystem", "CustomSystem",
    "IZHIKEVICH_PRESETS", "fixed_points", "find_fixed_points", "classify", "bifurcation", "FixedPoint",
    "Bifurcation", "b_range", "b_for_input", "BRange", "firing_patterns", "classify_spike_train",
    "classify_spike_times", "param_scan", "simulate", "SpikePattern", "FiringPatterns", "ParamScan",
    "input_distribution", "feature_maps", "InputDistribution", "load_run_model", "resolve_layer",
]
