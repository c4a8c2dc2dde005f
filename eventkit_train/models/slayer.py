"""SLAYER's layer conventions for the spike-response-model networks of the spikemax paper.

S. B. Shrestha, L. Zhu, P. Sun, "Spikemax: Spike-based Loss Methods for Classification"
(2022) train ``34x34x2-16c5-2a-32c3-2a-64c3-512-10`` (N-MNIST),
``128x128x2-4a-16c5-2a-32c3-2a-512-11`` (DVS Gesture) and ``64-256-256-11`` (N-TIDIGITS18)
with SLAYER-PyTorch (S. B. Shrestha, G. Orchard, "SLAYER: Spike Layer Error Reassignment in
Time", NeurIPS 2018). The notation leaves out what that framework does to every layer,
and without it a ϑ = 10 network is silent on real data (no spike, no gradient):

* **Weight scaling** -- a conv layer starts from PyTorch's default initialisation,
  ``U(-1/√fan_in, 1/√fan_in)`` with ``fan_in = C_in·k·k``, multiplied by
  :data:`CONV_WEIGHT_SCALE` = 100; a dense layer the same with ``fan_in`` = its input
  features, multiplied by :data:`DENSE_WEIGHT_SCALE` = 10. The scaled values are the
  trained parameters (the scale is applied once, at initialisation).
* **Pooling weight** -- an ``<N>a`` aggregate pool sums its window with one fixed,
  untrained weight ``1.1·ϑ`` (:data:`POOL_WEIGHT_PER_THETA`), ϑ the threshold of the spiking
  layer it feeds: with the SRM kernel's peak ε(τ_s) = 1, one spike in the window brings
  the pooling neuron to ``1.1·ϑ``, so a pool relays every spike it receives.
* **No gradient through the refractory response** -- SLAYER's spike function passes the
  error to the membrane through the spike-escape density only; the refractory kernel
  added after a spike is not differentiated (``detach_reset=True`` of
  :class:`~eventkit_train.neurons.SRM`).
* **No bias** anywhere (``bias=False``, the builders' default).

Spikes are 0/1 per step of ``dt`` where SLAYER writes ``1/T_s`` and multiplies the PSP by
``T_s``: the membrane is the same, ``u = Σ_k ε(k·dt)·x_{n-k}`` (see ``neurons/srm.py``).
SLAYER's trainable axonal delays are not modelled.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from eventkit.errors import ParameterError

from .layers import SumPool2d, TimeFolded

__all__ = ["CONV_WEIGHT_SCALE", "DENSE_WEIGHT_SCALE", "POOL_WEIGHT_PER_THETA", "SLAYER_NEURON_DEFAULTS",
           "apply_slayer_conventions", "resolve_conventions", "weight_scales"]

#: SLAYER's ``weightScale`` of a conv layer (slayerPytorch ``spikeLayer.conv``)
CONV_WEIGHT_SCALE: float = 100.0
#: SLAYER's ``weightScale`` of a dense layer (slayerPytorch ``spikeLayer.dense``)
DENSE_WEIGHT_SCALE: float = 10.0
#: the aggregate-pooling weight in units of the threshold ϑ (slayerPytorch ``spikeLayer.pool``)
POOL_WEIGHT_PER_THETA: float = 1.1
#: SRM options set by the SLAYER conventions unless given explicitly
SLAYER_NEURON_DEFAULTS: dict[str, object] = {"detach_reset": True}


def _theta_of(module: nn.Module) -> float | None:
    theta = getattr(module, "theta", None)
    return float(theta) if theta is not None else None


@torch.no_grad()
def apply_slayer_conventions(layers: Sequence[nn.Module], *, conv_scale: float = CONV_WEIGHT_SCALE,
                             dense_scale: float = DENSE_WEIGHT_SCALE,
                             pool_weight_per_theta: float = POOL_WEIGHT_PER_THETA) -> None:
    """Rescale freshly initialised weights and set the pooling weights, in place.

    ``layers`` is a network's layer sequence in order (``SpikingNet.layers``): every
    ``TimeFolded(Conv2d)`` weight is multiplied by ``conv_scale``, every
    ``TimeFolded(Linear)`` weight by ``dense_scale`` (biases, if any, are left alone), and
    every :class:`SumPool2d` gets ``weight = pool_weight_per_theta · ϑ`` with ϑ the
    threshold (``theta``) of the next spiking layer. Call it once, right after building.
    Raises :class:`ParameterError` when a sum-pool feeds no layer with a threshold ϑ.
    """
    layers = list(layers)
    for i, layer in enumerate(layers):
        if isinstance(layer, TimeFolded) and isinstance(layer.module, nn.Conv2d):
            layer.module.weight.mul_(conv_scale)
        elif isinstance(layer, TimeFolded) and isinstance(layer.module, nn.Linear):
            layer.module.weight.mul_(dense_scale)
        elif isinstance(layer, SumPool2d):
            theta = next((t for t in map(_theta_of, layers[i + 1:]) if t is not None), None)
            if theta is None:
                raise ParameterError(
                    f"SLAYER conventions: the sum-pool at layer {i} feeds no spike-response (SRM) layer; "
                    f"its weight is 1.1·ϑ of that layer")
            layer.weight = pool_weight_per_theta * theta


def resolve_conventions(conventions: str | None, spec: str, auto_neurons: bool, neurons: set[str]) -> str:
    """``"slayer"`` or ``"plain"`` for ``build(conventions=...)``: ``None`` means SLAYER's
    conventions for a string in SLAYER's notation (``auto_neurons``: it names no neuron)
    whose neurons (``make_neuron`` names) are all SRM. Raises :class:`ParameterError` for an
    unknown value or SLAYER's conventions on other neurons."""
    if conventions is None:
        return "slayer" if auto_neurons and neurons == {"srm"} else "plain"
    value = str(conventions).strip().lower()
    if value not in ("slayer", "plain"):
        raise ParameterError(f"conventions must be 'slayer', 'plain' or None (automatic), got {conventions!r}")
    if value == "slayer" and neurons != {"srm"}:
        raise ParameterError(f"network spec {spec!r}: SLAYER's conventions need SRM neurons only "
                             f"(its pooling weight is 1.1·ϑ of the SRM threshold); its neurons: {sorted(neurons)}")
    return value


def weight_scales(weight_scale: Mapping[str, float] | None, conventions: str) -> tuple[float, float]:
    """``(conv, dense)`` weight factors: SLAYER's defaults updated with ``weight_scale``
    (keys ``"conv"``, ``"dense"``; finite numbers > 0). Only SLAYER's conventions scale weights."""
    if weight_scale is None:
        return CONV_WEIGHT_SCALE, DENSE_WEIGHT_SCALE
    if conventions != "slayer":
        raise ParameterError("weight_scale applies with SLAYER's conventions only (SRM neurons in SLAYER's "
                             "notation, or conventions='slayer')")
    if not isinstance(weight_scale, Mapping):
        raise ParameterError(f"weight_scale must be a table/dict with keys 'conv' and/or 'dense', got {weight_scale!r}")
    unknown = sorted(set(weight_scale) - {"conv", "dense"})
    if unknown:
        raise ParameterError(f"weight_scale: unknown key(s) {unknown}; the keys are 'conv' and 'dense'")
    out = {"conv": CONV_WEIGHT_SCALE, "dense": DENSE_WEIGHT_SCALE}
    for key, value in weight_scale.items():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        if not ok:
            raise ParameterError(f"weight_scale[{key!r}] must be a finite number > 0, got {value!r}")
        out[key] = float(value)
    return out["conv"], out["dense"]
