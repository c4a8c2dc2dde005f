"""A definition with an explicit recurrent matmul, as one autograd node (recurrent CUBA-LIF).

At step t the input becomes ``X_t + S_{t-1} @ W^T``, ``S_{t-1}`` being the STATE entry
``spike_state`` (``W [N, N]``, ``W_ij`` weighs neuron j's spike onto neuron i). The matmul
stays a torch matmul; the elementwise step is the definition evaluated by the torch backend
(any device). Backward, in reverse: the definition's ``step_vjp`` gives ``∂L/∂X'_t``, then
``∂L/∂S_{t-1} += ∂L/∂X'_t @ W``, and ``∂L/∂W = Σ_t ∂L/∂X'_tᵀ·S_{t-1}`` is one matmul at the
end. Saved: the definition's SAVED tensors (the spikes are recomputed by ``restore``).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from .definition import get_definition
from .torch_backend import broadcast_params, reduce_param_grad

__all__ = ["recurrent_sequence"]


class _Recurrent(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, meta: tuple, x: Tensor, weight: Tensor, *tensors: Tensor):
        neuron, flags, spike_state, surrogate = meta
        d = get_definition(neuron)
        S = len(d.state)
        state, params = list(tensors[:S]), list(tensors[S:])
        p = broadcast_params(params, x)
        spikes = torch.empty_like(x)
        saved = [torch.empty_like(x) for _ in d.saved]
        st = list(state)
        Q = len(d.saved)
        for t in range(x.shape[0]):
            out = d.step(x[t] + st[spike_state] @ weight.t(), *st, *p, *flags)
            spikes[t] = out[0]
            for q in range(Q):
                saved[q][t] = out[1 + q]
            st = list(out[1 + Q:])
        restored0 = [state[d.state.index(r)] for r in d.restored]
        ctx.save_for_backward(weight, *saved, *restored0, *params)
        ctx.meta = meta
        ctx.set_materialize_grads(False)
        return (spikes, *saved, *st)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None):
        neuron, flags, spike_state, surrogate = ctx.meta
        d = get_definition(neuron)
        S, Q, R = len(d.state), len(d.saved), len(d.restored)
        weight, *rest = ctx.saved_tensors
        saved, restored0, params = rest[:Q], rest[Q:Q + R], rest[Q + R:]
        p = broadcast_params(params, saved[0])
        g_spikes, g_membrane, g_state = grads[0], grads[1], list(grads[1 + Q:])
        zero = saved[0].new_zeros(saved[0].shape[1:])
        g_state = [zero if g is None else g for g in g_state]
        learn = [ctx.needs_input_grad[3 + S + d.params.index(n)] for n in d.learnable]
        kind, a, b = surrogate
        T = saved[0].shape[0]
        g_x = torch.empty_like(saved[0])
        s_prev = torch.empty_like(saved[0])
        acc: list = [0.0] * len(d.learnable)
        r_spike = d.restored.index(d.state[spike_state])
        for t in range(T - 1, -1, -1):
            if t > 0:
                r = d.restore(*(s[t - 1] for s in saved), *p, *flags)
                prev = r if R > 1 else (r,)
            else:
                prev = tuple(restored0)
            s_prev[t] = prev[r_spike]
            out = d.step_vjp(0.0 if g_spikes is None else g_spikes[t], 0.0 if g_membrane is None else g_membrane[t],
                             *g_state, *(s[t] for s in saved), *prev, *p, *flags, any(learn), kind, a, b)
            g_x[t] = out[0]
            g_state = list(out[1:1 + S])
            g_state[spike_state] = g_state[spike_state] + out[0] @ weight
            if any(learn):
                acc = [acc[i] + out[1 + S + i] for i in range(len(acc))]
        n = weight.shape[0]
        g_w = g_x.reshape(-1, n).t() @ s_prev.reshape(-1, n) if ctx.needs_input_grad[2] else None
        g_params: list[Tensor | None] = [None] * len(params)
        for i, name in enumerate(d.learnable):
            if learn[i]:
                j = d.params.index(name)
                part = acc[i] if isinstance(acc[i], Tensor) else torch.zeros_like(zero)
                g_params[j] = reduce_param_grad(part.expand_as(zero), params[j])
        return (None, g_x, g_w, *g_state, *g_params)


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
