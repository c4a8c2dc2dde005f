"""Multi-step spiking neurons over ``[T, B, ...]`` (time first), norse-style.

Each neuron is a params ``NamedTuple``, a state ``NamedTuple``, a pure step
``<name>_step(x_t, state, params) -> (spike_t, new_state)`` and a thin ``nn.Module`` that
returns spikes ``[T, B, ...]`` (plus the membrane trace with ``return_membrane=True``). The
modules run the whole sequence as one autograd node built from the neuron's kernel
definition (``defs/``; Numba on CPU, Triton on CUDA, torch elsewhere); the step functions
scanned over time (:func:`~eventkit_train.neurons.base.scan`) are the reference they are
tested against, and the path taken with a smooth-forward surrogate. Modules keep no state
between calls. Equations: the module docstrings and ``docs/neurons-and-losses.md``.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from eventkit.errors import ParameterError

from .alif import ALIF, ALIFState
from .base import ScanResult, hard_reset, scan, soft_reset
from .cuba import CUBALIF, CUBALIFParams, CUBALIFState, cubalif_step
from .lif import IF, LIF, PLIF, LIFParams, LIFState, lif_step
from .module import NeuronModule
from .sit import SIT, SIT_BURSTING, SIT_TONIC, SITParams, SITState, sit_step
from .srm import SRM, SRMParams, SRMState, srm_kernels, srm_step

__all__ = [
    "IF", "LIF", "PLIF", "CUBALIF", "SIT", "SRM", "NeuronModule", "make_neuron", "NEURON_NAMES",
    "LIFParams", "LIFState", "lif_step", "CUBALIFParams", "CUBALIFState", "cubalif_step",
    "SITParams", "SITState", "sit_step", "SIT_TONIC", "SIT_BURSTING",
    "SRMParams", "SRMState", "srm_step", "srm_kernels", "scan", "ScanResult", "hard_reset", "soft_reset",
    "ALIF", "ALIFState",
]

NEURON_NAMES = ("if", "lif", "plif", "cubalif", "rcubalif", "sit", "sit-bursting", "srm")


def make_neuron(name: str, *, n_features: int | None = None, **kwargs: Any) -> nn.Module:
    """A neuron module from its name (case-insensitive; ``_`` = ``-``):
    ``"if"``, ``"lif"``, ``"plif"``, ``"cubalif"``, ``"rcubalif"`` (recurrent CUBA-LIF, needs
    ``n_features``), ``"sit"`` (Table 2 tonic), ``"sit-bursting"``, ``"srm"``.

    ``kwargs`` go to the constructor. ``n_features`` is used by the CUBA-LIF variants
    (heterogeneous / recurrent) and ignored by the others. A ``v_threshold`` keyword is
    accepted as ``theta`` for ``"srm"`` and as ``u_th`` for the SIT variants.
    """
    if not isinstance(name, str):
        raise ParameterError(f"neuron name must be a string, one of {NEURON_NAMES}, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    try:
        if key == "if":
            return IF(**kwargs)
        if key == "lif":
            return LIF(**kwargs)
        if key == "plif":
            return PLIF(**kwargs)
        if key in ("cubalif", "cuba-lif"):
            return CUBALIF(n_features=n_features, **kwargs)
        if key in ("rcubalif", "rcuba-lif"):
            if n_features is None:
                raise ParameterError("make_neuron('rcubalif') needs n_features (the layer width N of [T, B, N])")
            return CUBALIF(n_features=n_features, recurrent=True, **kwargs)
        if key in ("sit", "sit-tonic", "sit-bursting"):
            if "v_threshold" in kwargs:
                if "u_th" in kwargs:
                    raise ParameterError(f"make_neuron({name!r}): give u_th or v_threshold, not both")
                kwargs["u_th"] = kwargs.pop("v_threshold")
            return SIT.bursting(**kwargs) if key == "sit-bursting" else SIT.tonic(**kwargs)
        if key == "srm":
            if "v_threshold" in kwargs:
                if "theta" in kwargs:
                    raise ParameterError("make_neuron('srm'): give theta or v_threshold, not both")
                kwargs["theta"] = kwargs.pop("v_threshold")
            return SRM(**kwargs)
    except TypeError as exc:
        raise ParameterError(f"make_neuron({name!r}): bad keyword arguments {sorted(kwargs)}: {exc}") from None
    raise ParameterError(f"unknown neuron {name!r}; choose one of {NEURON_NAMES}")
