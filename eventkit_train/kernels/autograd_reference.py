"""Autograd through a definition's own ``step``: the step-by-step path of any neuron definition.

The definition's functions are re-bound so that ``heaviside`` is the surrogate (a step
forward with the surrogate's backward, or the smooth function with ``smooth=True``), then
``step`` is scanned over T with autograd recording the graph. Its gradients come from
autograd, not from the hand-written ``step_vjp``, so comparing the two checks the VJP of a
new neuron; it is also the step path (and the ``gradcheck`` path) of a neuron that has no
separately written ``*_step`` function.
"""
from __future__ import annotations

from collections.abc import Sequence
from types import FunctionType
from typing import Any

import torch
from torch import Tensor

from .codegen import module_functions
from .definition import NeuronDefinition
from .torch_backend import broadcast_params

__all__ = ["with_surrogate", "definition_scan"]


def with_surrogate(d: NeuronDefinition, surrogate: Any) -> FunctionType:
    """The definition's ``step`` with ``heaviside`` replaced by ``surrogate`` (in every helper it calls)."""
    scope = dict(vars(d.module))
    scope["heaviside"] = surrogate
    for fn in module_functions(d.module):
        scope[fn.__name__] = FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    return scope["step"]


def definition_scan(d: NeuronDefinition, x: Tensor, state: Sequence[Tensor], params: Sequence[Any],
                    flags: Sequence[bool], surrogate: Any) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """``(spikes [T, ...], SAVED [T, ...], final STATE)`` with an autograd graph through every step."""
    step = with_surrogate(d, surrogate)
    p = broadcast_params([q if isinstance(q, Tensor) else torch.tensor(float(q), dtype=x.dtype, device=x.device)
                          for q in params], x)
    st = list(state)
    spikes: list[Tensor] = []
    saved: list[list[Tensor]] = [[] for _ in d.saved]
    for t in range(x.shape[0]):
        out = step(x[t], *st, *p, *flags)
        spikes.append(out[0])
        for q in range(len(d.saved)):
            saved[q].append(out[1 + q])
        st = list(out[1 + len(d.saved):])
    return torch.stack(spikes), [torch.stack(s) for s in saved], st
