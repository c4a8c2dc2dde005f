"""Fused neuron kernels: one definition per neuron, three backends (torch, Numba, Triton).

* :mod:`.definition` — the format of a neuron definition and the registry;
* :mod:`.ops`, :mod:`.surrogates` — the math a definition may use, and σ' of every surrogate;
* :mod:`.torch_backend`, :mod:`.numba_backend`, :mod:`.triton_backend` — the drivers;
* :mod:`.codegen` — kernel source generation and the on-disk kernel cache;
* :mod:`.sequence` — :func:`neuron_sequence`, the one-autograd-node entry point (custom ops);
* :mod:`.recurrent` — the same with a per-step recurrent matmul (recurrent CUBA-LIF).

Nothing here imports :mod:`eventkit_train.neurons`; the neurons import this package.
"""
from .definition import NeuronDefinition, get_definition, register_definition
from .sequence import BACKEND_ENV, BACKEND_NAMES, neuron_sequence, resolve_backend

__all__ = ["NeuronDefinition", "get_definition", "register_definition", "neuron_sequence", "resolve_backend",
           "BACKEND_ENV", "BACKEND_NAMES"]
