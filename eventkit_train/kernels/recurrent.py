"""A definition with an explicit recurrent matmul, as one autograd node (recurrent CUBA-LIF).

At step t the input becomes ``X_t + S_{t-1} @ W^T``, ``S_{t-1}`` being the STATE entry
``spike_state`` (``W [N, N]``, ``W_ij`` weighs neuron j's spike onto neuron i). The matmul
stays a torch matmul; the elementwise step is the definition evaluated by the torch backend
(any device). Backward, in reverse: the definition's ``step_vjp`` gives ``∂L/∂X'_t``, then
``∂L/∂S_{t-1} += ∂L/∂X'_t @ W``, and ``∂L/∂W = Σ_t ∂L/∂X'_tᵀ·S_{t-1}`` is one matmul at the
end. Saved: the definition's SAVED tensors (the spikes are recomputed by ``restore``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from . import torch_backend
from .definition import get_definition

__all__ = ["recurrent_sequence"]


class _Recurrent(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, meta: tuple, x: Tensor, weight: Tensor, *tensors: Tensor):
        neuron, flags, spike_state, surrogate = meta
        d = get_definition(neuron)
        state, params = list(tensors[:len(d.state)]), list(tensors[len(d.state):])
        spikes, saved, final = torch_backend.forward(d, x, state, params, flags, recurrent=(weight, spike_state))
        restored0 = [state[d.state.index(r)] for r in d.restored]
        ctx.save_for_backward(weight, *saved, *restored0, *params)
        ctx.meta = meta
        ctx.set_materialize_grads(False)
        return (spikes, *saved, *final)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None):
        neuron, flags, spike_state, surrogate = ctx.meta
        d = get_definition(neuron)
        S, Q, R = len(d.state), len(d.saved), len(d.restored)
        weight, *rest = ctx.saved_tensors
        saved, restored0, params = rest[:Q], rest[Q:Q + R], rest[Q + R:]
        zero = saved[0].new_zeros(saved[0].shape[1:])
        g_state = [zero if g is None else g for g in grads[1 + Q:]]
        learn = [ctx.needs_input_grad[3 + S + d.params.index(n)] for n in d.learnable]
        g_x, g_in, extra = torch_backend.backward(d, grads[0], grads[1], g_state, saved, restored0, params, flags,
                                                  surrogate, any(learn), recurrent=(weight, spike_state))
        *partials, s_prev = extra
        n = weight.shape[0]
        g_w = g_x.reshape(-1, n).t() @ s_prev.reshape(-1, n) if ctx.needs_input_grad[2] else None
        g_params: list[Tensor | None] = [None] * len(params)
        for i, name in enumerate(d.learnable):
            if learn[i]:
                j = d.params.index(name)
                g_params[j] = torch_backend.reduce_param_grad(partials[i], params[j])
        return (None, g_x, g_w, *g_in, *g_params)


def recurrent_sequence(neuron: str, x: Tensor, weight: Tensor, state: Sequence[Tensor], params: Sequence[Tensor],
                       flags: Sequence[bool], surrogate: Any, spike_state: int) -> tuple[Tensor, list[Tensor],
                                                                                        list[Tensor]]:
    """As :func:`eventkit_train.kernels.neuron_sequence` for ``x [T, B, N]`` with the recurrent
    input ``S_{t-1} @ weight^T`` (``weight [N, N]``; ``state[spike_state]`` holds ``S``)."""
    d = get_definition(neuron)
    st = [s.to(x.dtype).expand(x.shape[1:]) for s in state]
    ps = [p.to(x.dtype) if isinstance(p, Tensor) else torch.full((), float(p), dtype=x.dtype, device=x.device)
          for p in params]
    kind, a, b = surrogate.kernel_spec()
    meta = (d.name, tuple(bool(f) for f in flags), int(spike_state), (int(kind), float(a), float(b)))
    out = _Recurrent.apply(meta, x, weight.to(x.dtype), *st, *ps)
    Q = len(d.saved)
    return out[0], list(out[1:1 + Q]), list(out[1 + Q:])
